#!/usr/bin/env python3
"""Keys on a PKCS#11 token against key files: what a token costs per open (SoftHSM2).

Makes a SoftHSM2 token in a temporary folder (SOFTHSM2_CONF), an RSA key pair on it and a file
key of the same size, seals a small file to both, then measures in this process:

- the median latency of ``envelope.open`` of the small file with the file key (``RsaIdentity``)
  and with the token key (``Pkcs11Identity``, raw RSA with the OAEP decoding here, as SoftHSM2
  refuses OAEP with SHA-256), over many opens;
- unwraps per second through the token (``unwrap_key`` alone) and through the file key, from the
  median time of one;
- token operations per open, counted (one, once the mechanism is known).

SoftHSM2 is a software token: a hardware HSM's own latency (a network or USB round trip) comes on
top. Needs softhsm2 (apt) and envelope-ml[pkcs11].

    python tools/bench_tokens.py --opens 500 --bits 3072
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN = "5678"


def token(folder: Path) -> str:
    """A fresh SoftHSM2 token "bench"; the module's path."""
    module = next((m for m in MODULES if os.path.isfile(m)), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        sys.exit("SoftHSM2 is not installed (apt-get install softhsm2)")
    (folder / "tokens").mkdir()
    (folder / "softhsm2.conf").write_text(
        f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(folder / "softhsm2.conf")
    subprocess.run([util, "--init-token", "--free", "--label", "bench", "--so-pin", "1234", "--pin", PIN],
                   check=True, capture_output=True)  # fmt: skip
    return module


def median_us(run: object, times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opens", type=int, default=300, help="opens timed for each key (default 300)")
    parser.add_argument("--bits", type=int, default=3072, help="RSA key size (default 3072)")
    parser.add_argument("--size", type=int, default=1024, help="plaintext bytes of the small file (default 1024)")
    args = parser.parse_args()

    import envelope
    from envelope import pkcs11
    from envelope._oaep import decode_or_random

    with tempfile.TemporaryDirectory(prefix="envelope-bench-tokens-") as tmp:
        module = token(Path(tmp))
        uri = f"pkcs11:token=bench;object=bench-key?module-path={module}"
        public = pkcs11.generate_key_pair(uri, "rsa", bits=args.bits, pin=PIN)
        on_token = pkcs11.Pkcs11Identity(uri, pin=PIN)
        in_file = envelope.RsaIdentity(envelope.generate_private_key(args.bits))
        data = os.urandom(args.size)
        for_token = envelope.seal(data, public)
        for_file = envelope.seal(data, in_file.recipient())
        assert envelope.open(for_token, on_token) == data  # the first open settles the mechanism

        operations = 0
        inner = on_token._decrypt

        def counted(*a: object, **k: object) -> bytes:
            nonlocal operations
            operations += 1
            return inner(*a, **k)  # type: ignore[arg-type]

        on_token._decrypt = counted  # type: ignore[method-assign]
        token_us = median_us(lambda: envelope.open(for_token, on_token), args.opens)
        ops_per_open = operations / args.opens
        file_us = median_us(lambda: envelope.open(for_file, in_file), args.opens)

        import io

        from envelope._header import read_header

        wrapped = bytes(read_header(io.BytesIO(for_token))[1].recipients[0].fields["key"])
        file_wrapped = bytes(read_header(io.BytesIO(for_file))[1].recipients[0].fields["key"])
        # From the median time of one unwrap (the machine may be shared: a mean would count others' work).
        token_rate = 1e6 / median_us(lambda: on_token.unwrap_key(wrapped), args.opens)
        file_rate = 1e6 / median_us(lambda: in_file._unwrap(file_wrapped), args.opens)
        encoded = on_token._decrypt(wrapped, pkcs11._library().Mechanism.RSA_X_509)
        decode_us = median_us(lambda: decode_or_random(encoded, len(encoded)), 1000)
        on_token.close()

    print(f"RSA-{args.bits}, {args.size}-byte file, median of {args.opens} opens; mechanism {on_token.mechanism}")
    print(f"{'key':<28}{'open (median)':>16}{'unwraps/s':>12}{'token ops/open':>16}")
    print(f"{'file key (RsaIdentity)':<28}{file_us / 1000:>13.2f} ms{file_rate:>12.0f}{'-':>16}")
    print(f"{'SoftHSM2 token (x509)':<28}{token_us / 1000:>13.2f} ms{token_rate:>12.0f}{ops_per_open:>16.2f}")
    print(f"token / file: open latency x{token_us / file_us:.2f}, unwrap rate x{token_rate / file_rate:.2f}")
    print(f"of which the OAEP decoding in Python (RFC 8017 7.1.2, branch-free): {decode_us:.0f} us per unwrap")


if __name__ == "__main__":
    main()
