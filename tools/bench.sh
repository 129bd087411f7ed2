#!/usr/bin/env bash
# The benchmark, from a fresh clone: envelope against its peers (pyrage, Tink, the AWS Encryption
# SDK) and the raw primitive, each case in a fresh process. Uses its own venv, .venv-bench, so the
# peers never land in the development venv. Arguments go to tools/bench.py, for example:
#
#   tools/bench.sh --size-mib 1024 --flat-check 4096     # the README table
#   tools/bench.sh --size-mib 64 --repeat 1              # quick look
set -euo pipefail
cd "$(dirname "$0")/.."
ENVELOPE_VENV="$PWD/.venv-bench"
python="${PYTHON:-python3}"
stamp="$ENVELOPE_VENV/.bench-installed-$(cat pyproject.toml tools/bench-requirements.txt "$0" | sha256sum | cut -c1-16)"

if [ ! -f "$stamp" ]; then
    echo "setting up $ENVELOPE_VENV (first run only) ..." >&2
    "$python" -m venv "$ENVELOPE_VENV"
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$ENVELOPE_VENV/bin/python" -m pip install --quiet -e . -r tools/bench-requirements.txt
    "$ENVELOPE_VENV/bin/python" -c "import envelope, pyrage, tink, aws_encryption_sdk"  # fail loudly
    rm -f "$ENVELOPE_VENV"/.bench-installed-*
    touch "$stamp"
fi
exec "$ENVELOPE_VENV/bin/python" tools/bench.py "$@"
