#!/usr/bin/env python3
"""Seal/open throughput and peak memory of envelope against simple peers, side by side in one run.

Every case runs in a fresh Python process (so peak RSS is its own) on the same payload file, which
sits in the page cache. Reported: plaintext MB/s (median of --repeat runs), peak RSS, and the
ratio to the raw primitive (AES-128-CBC + HMAC-SHA256 per chunk, one thread, file to file), the
ceiling for a Fernet-based format on one core.

    python tools/bench.py --size-mib 256            # the table in the README
    python tools/bench.py --size-mib 64 --repeat 1  # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "envelope seal_file": "seal_file",
    "envelope open_file": "open_file",
    "envelope.seal (bytes)": "seal_bytes",
    "envelope.open (bytes)": "open_bytes",
    "raw AES-CBC+HMAC, 1 MiB chunks, file to file (encrypt)": "raw_encrypt",
    "raw AES-CBC+HMAC, 1 MiB chunks, file to file (decrypt)": "raw_decrypt",
    "naive: Fernet on the whole payload (encrypt)": "naive_encrypt",
    "naive: Fernet on the whole payload (decrypt)": "naive_decrypt",
}


# --- workers: each runs in its own process ----------------------------------------------------


def _worker(case: str, work: str) -> dict[str, float]:
    import envelope

    payload = os.path.join(work, "payload.bin")
    sealed = os.path.join(work, "payload.env")
    key = envelope.load_private_key(open(os.path.join(work, "key.pem"), "rb").read())
    out = os.path.join(work, f"out-{case}")
    if os.path.exists(out):
        os.unlink(out)
    start = time.perf_counter()
    if case == "seal_file":
        envelope.seal_file(payload, out, key.public_key())
    elif case == "open_file":
        envelope.open_file(sealed, out, key)
    elif case == "seal_bytes":
        with open(payload, "rb") as f:
            data = f.read()
        start = time.perf_counter()
        result = envelope.seal(data, key.public_key())
        assert len(result) > len(data)
    elif case == "open_bytes":
        with open(sealed, "rb") as f:
            data = f.read()
        start = time.perf_counter()
        result = envelope.open(data, key)
        assert len(result) > 0
    elif case in ("raw_encrypt", "raw_decrypt"):
        _raw(payload if case == "raw_encrypt" else out + ".src", out, encrypt=case == "raw_encrypt", work=work)
    elif case == "naive_encrypt":
        from cryptography.fernet import Fernet

        with open(payload, "rb") as f:
            token = Fernet(Fernet.generate_key()).encrypt(f.read())
        with open(out, "wb") as f:
            f.write(token)
    elif case == "naive_decrypt":
        from cryptography.fernet import Fernet

        with open(os.path.join(work, "naive.key"), "rb") as f:
            fernet = Fernet(f.read())
        with open(os.path.join(work, "naive.token"), "rb") as f:
            plain = fernet.decrypt(f.read())
        with open(out, "wb") as f:
            f.write(plain)
    else:
        raise SystemExit(f"unknown case {case}")
    seconds = time.perf_counter() - start
    if os.path.exists(out):
        os.unlink(out)
    return {"seconds": seconds, "peak_rss_mib": _peak_rss_mib()}


def _peak_rss_mib() -> float:
    """This process image's own high-water mark (VmHWM starts afresh at exec; ru_maxrss does not)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _raw(src: str, dst: str, *, encrypt: bool, work: str) -> None:
    """The primitive Fernet builds on, with no format around it: the speed ceiling on one core."""
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    chunk = 1 << 20
    key, mac_key, iv = b"k" * 16, b"m" * 16, b"i" * 16
    if not encrypt:
        src = os.path.join(work, "raw.enc")
    buffer = bytearray(chunk + 16 + 32)
    out = bytearray(chunk + 64)
    step = chunk + 16 + 32 if not encrypt else chunk
    with open(src, "rb") as f, open(dst, "wb") as g:
        view = memoryview(buffer)[:step]
        while n := f.readinto(view):
            if encrypt:
                enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
                w = enc.update_into(view[:n], out)
                w += enc.update_into(b"\x10" * 16, memoryview(out)[w:])
                h = hmac.HMAC(mac_key, hashes.SHA256())
                h.update(memoryview(out)[:w])
                g.write(memoryview(out)[:w])
                g.write(h.finalize())
            else:
                h = hmac.HMAC(mac_key, hashes.SHA256())
                h.update(view[: n - 32])
                h.verify(bytes(view[n - 32 : n]))
                dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
                w = dec.update_into(view[: n - 32], out)
                g.write(memoryview(out)[: w - 16])


# --- driver ----------------------------------------------------------------------------------


def _prepare(work: str, size_mib: int) -> None:
    import envelope

    payload = os.path.join(work, "payload.bin")
    block = os.urandom(1 << 20)
    with open(payload, "wb") as f:
        for _ in range(size_mib):
            f.write(block)
    key = envelope.generate_private_key(3072)
    with open(os.path.join(work, "key.pem"), "wb") as f:
        f.write(envelope.private_key_pem(key))
    envelope.seal_file(payload, os.path.join(work, "payload.env"), key.public_key())
    _raw(payload, os.path.join(work, "raw.enc"), encrypt=True, work=work)
    from cryptography.fernet import Fernet

    naive_key = Fernet.generate_key()
    with open(os.path.join(work, "naive.key"), "wb") as f:
        f.write(naive_key)
    with open(payload, "rb") as src, open(os.path.join(work, "naive.token"), "wb") as dst:
        dst.write(Fernet(naive_key).encrypt(src.read()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="payload size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown (default 3)")
    parser.add_argument("--cases", nargs="*", default=list(CASES.values()), help="subset of case ids")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return
    with tempfile.TemporaryDirectory(prefix="envelope-bench-") as work:
        print(f"preparing {args.size_mib} MiB payload in {work} ...", file=sys.stderr)
        _prepare(work, args.size_mib)
        size_mb = args.size_mib * (1 << 20) / 1e6
        rows = []
        for label, case in CASES.items():
            if case not in args.cases:
                continue
            runs = []
            for _ in range(args.repeat):
                result = subprocess.run(
                    [sys.executable, __file__, "--worker", case, work], capture_output=True, text=True, check=True
                )
                runs.append(json.loads(result.stdout))
            seconds = statistics.median(r["seconds"] for r in runs)
            rss = max(r["peak_rss_mib"] for r in runs)
            rows.append((label, case, size_mb / seconds, rss))
            print(f"  {label}: {size_mb / seconds:.0f} MB/s", file=sys.stderr)
    speeds = {case: speed for _, case, speed, _ in rows}
    print(
        f"\n{args.size_mib} MiB payload, median of {args.repeat}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}\n"
    )
    print(f"| {'case':<58} | {'MB/s':>6} | {'x raw':>6} | {'peak RSS MiB':>12} |")
    print(f"|{'-' * 60}|{'-' * 8}|{'-' * 8}|{'-' * 14}|")
    for label, case, speed, rss in rows:
        reference = speeds.get("raw_decrypt" if "open" in case or "decrypt" in case else "raw_encrypt")
        ratio = f"{speed / reference:.2f}" if reference else "-"
        print(f"| {label:<58} | {speed:>6.0f} | {ratio:>6} | {rss:>12.0f} |")


if __name__ == "__main__":
    main()
