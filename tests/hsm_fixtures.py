"""A real PKCS#11 token for the tests: SoftHSM2 (Debian package softhsm2), initialised in a
temporary folder through SOFTHSM2_CONF, with the key pairs the tests use made on it by
envelope.pkcs11.generate_key_pair. tools/test.sh sets ENVELOPE_REQUIRE_FRAMEWORKS=1 and .ci/run
installs softhsm2: there a missing SoftHSM2 or python-pkcs11 fails instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from remote_fixtures import need

MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
PIN = "5678"
SO_PIN = "1234"


def _missing(what: str) -> None:
    if os.environ.get("ENVELOPE_REQUIRE_FRAMEWORKS"):
        pytest.fail(f"{what} is required here (ENVELOPE_REQUIRE_FRAMEWORKS=1): apt-get install softhsm2")
    pytest.skip(f"{what} is not installed (apt-get install softhsm2)")


@dataclass
class Token:
    """The token "models" and its keys; ``uri(object)`` names one with module-path and a pin-source."""

    folder: Path
    module: str
    pin_file: Path

    def uri(self, obj: str, *, pin: bool = True, token: str = "models", extra: str = "") -> str:
        query = f"module-path={self.module}" + (f"&pin-source=file:{self.pin_file}" if pin else "")
        return f"pkcs11:token={token};object={obj}{extra}?{query}"


_TOKEN: Token | None = None


def softhsm_token() -> Token:
    """One token per test process: SoftHSM2 reads SOFTHSM2_CONF when its module is first loaded,
    and a process loads a module once."""
    global _TOKEN
    if _TOKEN is not None:
        return _TOKEN
    need("pkcs11")
    util = shutil.which("softhsm2-util")
    module = next((m for m in MODULE_CANDIDATES if os.path.isfile(m)), None)
    if util is None or module is None:
        _missing("SoftHSM2")
    assert util is not None and module is not None
    folder = Path(tempfile.mkdtemp(prefix="envelope-softhsm-"))
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # children (the CLI tests) inherit it
    for label in ("models", "spare", "pins"):
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", PIN],
            check=True, capture_output=True,
        )  # fmt: skip
    pin_file = folder / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    token = Token(folder, module, pin_file)
    from envelope import pkcs11

    pkcs11.generate_key_pair(token.uri("prod-key"), "rsa", bits=2048)
    pkcs11.generate_key_pair(token.uri("signer-ec"), "ecdsa-p256-sha256")
    pkcs11.generate_key_pair(token.uri("signer-ed"), "ed25519")
    _TOKEN = token
    return token
