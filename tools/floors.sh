#!/usr/bin/env bash
# The core dependencies (cryptography, msgpack, bcrypt) at both ends of what pyproject.toml allows:
# envelope without extras in a throwaway virtual environment, once with each at the minimum that
# tools/floors.txt pins, once with the newest releases; each time, the tests that need no framework,
# object store or cluster (CORE_TESTS). Run by .ci/run; about a minute per end.
#
#   tools/floors.sh                  # both
#   tools/floors.sh lowest           # or newest: one end
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
CORE_DEPS=(bcrypt cryptography msgpack)
# Every test module that imports no framework and starts no S3 server or Dask cluster, less the
# slowest (test_cli.py, test_crash_safety.py, test_readme.py: behaviour, not dependencies).
CORE_TESTS=(
    tests/test_api.py tests/test_format.py tests/test_stream.py tests/test_roundtrip.py tests/test_tamper.py
    tests/test_vectors.py tests/test_fuzz_regressions.py tests/test_inspect.py tests/test_keys.py
    tests/test_recipients.py tests/test_signatures.py tests/test_files.py tests/test_fileio.py
    tests/test_cli_edges.py tests/test_cli_signing.py tests/test_packaging.py tests/test_signature_scope.py
    tests/test_x25519.py tests/test_sshkeys.py tests/test_mlkem.py tests/test_passphrase.py tests/test_migrate.py
    tests/test_external_keys.py tests/test_batch.py
)

quiet() { grep -v "^WARNING: Location" >&2 || true; }  # pip's noise about this machine's index paths

ends=("$@")
[ ${#ends[@]} -gt 0 ] || ends=(lowest newest)
for end in "${ends[@]}"; do
    case "$end" in
        lowest) install=(-c tools/floors.txt) ;;
        newest) install=(--upgrade "${CORE_DEPS[@]}") ;;
        *) echo "usage: tools/floors.sh [lowest|newest]" >&2; exit 2 ;;
    esac
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    "$python" -m venv "$scratch/venv"
    venv_python="$scratch/venv/bin/python"
    # Wheels only for the core dependencies: a floor that needs a compiler is not a floor users get.
    "$venv_python" -m pip install --quiet --only-binary "$(IFS=,; echo "${CORE_DEPS[*]}")" \
        "${install[@]}" -e . pytest hypothesis 2>&1 | quiet
    versions="$("$venv_python" -m pip list --format=freeze 2>/dev/null | grep -iE "^($(IFS='|'; echo "${CORE_DEPS[*]}"))==")"
    echo "== core tests, $end core dependencies: $(echo $versions)"
    if [ "$end" = lowest ]; then
        # The constraints pinned them; say so if pip ever installed something else.
        diff <(grep -E "^[a-z]" tools/floors.txt | sort) <(echo "$versions" | tr 'A-Z' 'a-z' | sort)
    fi
    (cd "$scratch" && "$venv_python" -c "import envelope, envelope.signing, envelope.cli.main")
    "$venv_python" -m pytest -p no:cacheprovider "${CORE_TESTS[@]}"
    rm -rf "$scratch"
    trap - EXIT
done
