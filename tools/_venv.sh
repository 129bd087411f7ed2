# Sourced by tools/test.sh and tools/demo.sh: make sure the virtual environment ENVELOPE_VENV (.venv
# unless set) exists with envelope installed (editable), the given extras and any other packages,
# then put it first on PATH. Reinstalls only when pyproject.toml, this file or the arguments changed,
# so the second run starts at once. The test suite and the demo use two environments (.venv and
# .venv-demo), so that neither undoes the other's install.
#
#   source tools/_venv.sh "all,dev"
#   source tools/_venv.sh "keras" "jax[cpu]"   # extras, then other requirements

set -euo pipefail
ENVELOPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENVELOPE_VENV="${ENVELOPE_VENV:-$ENVELOPE_ROOT/.venv}"
extras="$1"
packages="${2:-}"
python="${PYTHON:-python3}"
stamp="$ENVELOPE_VENV/.envelope-installed-$( (cat "$ENVELOPE_ROOT/pyproject.toml" "${BASH_SOURCE[0]}"; echo "$packages") | sha256sum | cut -c1-16)-${extras//,/-}"

if [ ! -f "$stamp" ]; then
    echo "setting up $ENVELOPE_VENV with envelope-ml[$extras] $packages (first run only) ..." >&2
    "$python" -m venv "$ENVELOPE_VENV"
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" >&2 || true
    if [[ ",$extras," == *",all,"* || ",$extras," == *",torch,"* ]]; then
        # The CPU build of torch (a plain 'torch' requirement would pull a multi-GB CUDA build).
        "$ENVELOPE_VENV/bin/python" -m pip install --quiet "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" >&2 || true
    fi
    # shellcheck disable=SC2086 # $packages: zero or more requirements
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet -e "$ENVELOPE_ROOT[$extras]" $packages 2>&1 | grep -v "^WARNING: Location" >&2 || true
    "$ENVELOPE_VENV/bin/python" -c "import envelope" # fail loudly if the install did not work
    rm -f "$ENVELOPE_VENV"/.envelope-installed-*
    touch "$stamp"
fi
export PATH="$ENVELOPE_VENV/bin:$PATH"
