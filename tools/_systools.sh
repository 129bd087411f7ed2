# Sourced by .ci/run and tools/test.sh: the system tools the tests drive, installed with apt when
# missing (as root, or through sudo). ssh-keygen (OpenSSH key files), openssl (PKCS#8
# interoperability), strace (the test that no plaintext touches the disk), chattr (an output folder
# that refuses new files), softhsm2-util (a real PKCS#11 token for tests/test_pkcs11.py, which fails
# rather than skips without it under tools/test.sh), and Node.js for spec/reference.
missing=()
for pair in ssh-keygen:openssh-client openssl:openssl strace:strace chattr:e2fsprogs softhsm2-util:softhsm2; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt)" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
node --version >/dev/null 2>&1 || { echo "Node.js 20.19+ is needed for spec/reference" >&2; exit 1; }
