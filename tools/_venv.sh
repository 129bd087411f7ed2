# Sourced by tools/test.sh and tools/demo.sh: make sure .venv exists with envelope installed
# (editable) and the given extras, then put it first on PATH. Reinstalls only when pyproject.toml
# or this file changed, so the second run starts at once.
#
#   source tools/_venv.sh "all,dev"

set -euo pipefail
ENVELOPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVELOPE_VENV="${ENVELOPE_VENV:-$ENVELOPE_ROOT/.venv}"
extras="$1"
python="${PYTHON:-python3}"
stamp="$ENVELOPE_VENV/.envelope-installed-$(cat "$ENVELOPE_ROOT/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)-${extras//,/-}"

if [ ! -f "$stamp" ]; then
    echo "setting up $ENVELOPE_VENV with envelope-ml[$extras] (first run only) ..." >&2
    "$python" -m venv "$ENVELOPE_VENV"
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
    if [[ ",$extras," == *",all,"* || ",$extras," == *",torch,"* ]]; then
        # The CPU build of torch (a plain 'torch' requirement would pull a multi-GB CUDA build).
        "$ENVELOPE_VENV/bin/python" -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    fi
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet -e "$ENVELOPE_ROOT[$extras]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$ENVELOPE_VENV/bin/python" -c "import envelope" # fail loudly if the install did not work
    rm -f "$ENVELOPE_VENV"/.envelope-installed-*
    touch "$stamp"
fi
export PATH="$ENVELOPE_VENV/bin:$PATH"
