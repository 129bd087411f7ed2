#!/usr/bin/env bash
# The main job end to end, from a fresh clone: installs what it needs, makes real keys, trains and
# seals a real Keras model, inspects it, loads it back and checks its predictions (tools/demo.py).
# It needs envelope, Keras and one Keras backend: JAX on the CPU, the lightest (no TensorFlow, no
# PyTorch), in its own environment, .venv-demo, beside the test suite's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVELOPE_VENV="${ENVELOPE_VENV:-$PWD/.venv-demo}"
source tools/_venv.sh "keras" "jax[cpu]"
export KERAS_BACKEND=jax JAX_PLATFORMS=cpu
python tools/demo.py "${1:-demo-out}"
