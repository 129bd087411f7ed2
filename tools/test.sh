#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs
#   1. pytest: unit, property (hypothesis), vector, CLI and model-adapter tests;
#   2. the Node.js reference implementation's own tests (spec/reference);
#   3. that spec/vectors regenerates byte for byte;
#   4. the cross-implementation check (Python seals -> Node opens, and the reverse).
# Extra arguments go to pytest (for example: tools/test.sh -k vectors).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/_systools.sh
source tools/_venv.sh "all,dev"

echo "== pytest"
export ENVELOPE_REQUIRE_FRAMEWORKS=1  # model tests fail, rather than skip, if a framework is missing
python -m pytest "$@"

echo "== Node.js reference implementation"
(cd spec/reference && npm ci --silent --no-audit --no-fund && node --test --test-reporter=spec test/*.test.mjs | tail -n 8)

echo "== vectors regenerate byte for byte"
python tools/make_vectors.py --check

echo "== cross-implementation check"
python tools/crosscheck.py --rounds 10
