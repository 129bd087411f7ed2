#!/usr/bin/env bash
# The main job end to end, from a fresh clone: installs what it needs, makes real keys, trains and
# seals a real Keras model, inspects it, loads it back and checks its predictions (tools/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_venv.sh "all,dev"
python tools/demo.py "${1:-demo-out}"
