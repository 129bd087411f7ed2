#!/usr/bin/env bash
# The model-loading benchmark, from a fresh clone: envelope's torch and safetensors adapters against
# torch.load, safetensors, cryptotensors and tensorizer, each case in a fresh process. Uses its own
# venv, .venv-bench-models, so the peers never land in the development venv. Arguments go to
# tools/bench_models.py, for example:
#
#   tools/bench_models.sh --size-mib 1024 --rounds 5 --chart docs/bench-models.png   # docs/PERFORMANCE.md
#   tools/bench_models.sh --size-mib 64 --rounds 1                                   # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
ENVELOPE_VENV="$PWD/.venv-bench-models"
python="${PYTHON:-python3}"
stamp="$ENVELOPE_VENV/.bench-models-installed-$(cat pyproject.toml tools/bench-models-requirements.txt "$0" | sha256sum | cut -c1-16)"

quiet_pip() {
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet "$@" 2>&1 | grep -v "^WARNING: Location" >&2 || true
}

if [ ! -f "$stamp" ]; then
    echo "setting up $ENVELOPE_VENV (first run only) ..." >&2
    "$python" -m venv "$ENVELOPE_VENV"
    quiet_pip --upgrade pip
    # The CPU build of torch first: tensorizer requires torch, and a plain 'torch' requirement would
    # pull the multi-GB CUDA build.
    quiet_pip "torch==2.13.0"
    quiet_pip -e ".[torch,safetensors]" -r tools/bench-models-requirements.txt
    "$ENVELOPE_VENV/bin/python" -c "import envelope, torch, safetensors, tensorizer, cryptotensors, matplotlib"  # fail loudly
    rm -f "$ENVELOPE_VENV"/.bench-models-installed-*
    touch "$stamp"
fi
exec "$ENVELOPE_VENV/bin/python" tools/bench_models.py "$@"
