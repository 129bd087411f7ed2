#!/usr/bin/env python3
"""What passphrases, shared Fernet keys and the Fernet migration cost here (FORMAT.md 4.5, 4.6;
docs/SDK.md). Prints three tables:

1. scrypt at each work factor (log2 N, r = 8, p = 1): the time of one derivation (median of
   --runs, each in a fresh process so that memory is measured alone) and the process's peak RSS
   growth, beside the memory scrypt needs (128 * r * N). This is what sealing and opening a
   passphrase file cost, and what R48's limit bounds.
2. unwrapping a `fernet` entry (find by key id, HKDF, ChaCha20-Poly1305): median of many, beside
   RSA-2048/3072/4096 OAEP unwraps measured the same way (the function `unwrap_rows` is meant to
   be folded into tools/bench_unwrap.py).
3. migrating a whole-file Fernet token (envelope.migrate_fernet_token, file to file) against the
   naive way (read, Fernet.decrypt, envelope.seal in memory): time and peak memory, in fresh
   processes, best of --runs.

    python tools/bench_passphrase.py --runs 5 --work-factors 14,16,18,20 --token-mib 256
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Peak memory is the child's VmHWM (/proc/self/status): getrusage's ru_maxrss survives exec on
# Linux, so a child would report its parent's peak.
_HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
"""

_SCRYPT_CHILD = (
    _HWM
    + """
import json, sys, time
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
ln = int(sys.argv[1])
before = hwm()
start = time.perf_counter()
Scrypt(salt=bytes(34), length=32, n=1 << ln, r=8, p=1).derive(b"correct horse battery staple")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss": hwm() - before}))
"""
)

_MIGRATE_CHILD = (
    _HWM
    + """
import json, sys, time
import envelope
from cryptography.fernet import Fernet
how, src, dst, key = sys.argv[1:5]
start = time.perf_counter()
if how == "stream":
    envelope.migrate_fernet_token(src, dst, key, envelope.FernetKey(key), overwrite=True)
else:
    with open(src, "rb") as f:
        plaintext = Fernet(key.encode()).decrypt(f.read())
    with open(dst, "wb") as f:
        f.write(envelope.seal(plaintext, envelope.FernetKey(key)))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss": hwm()}))
"""
)


def child(code: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def scrypt_table(work_factors: list[int], runs: int) -> None:
    from envelope.limits import MAX_SCRYPT_WORK_FACTOR, scrypt_memory

    print(f"scrypt (r = 8, p = 1), median of {runs} fresh processes; readers refuse over {MAX_SCRYPT_WORK_FACTOR}")
    print(f"{'work factor':>11}  {'N':>9}  {'needs':>9}  {'peak RSS growth':>15}  {'time':>8}")
    for ln in work_factors:
        results = [child(_SCRYPT_CHILD, str(ln)) for _ in range(runs)]
        seconds = statistics.median(r["seconds"] for r in results)
        rss = statistics.median(r["rss"] for r in results)
        needs = scrypt_memory(ln) / 2**20
        print(f"{ln:>11}  {1 << ln:>9}  {needs:>6.0f} MiB  {rss / 2**20:>11.0f} MiB  {seconds:>7.3f}s")


def unwrap_rows(count: int) -> list[tuple[str, float]]:
    """(kind, median seconds) of one unwrap, found by key id among the file's entries, as an
    identity does it when a file is opened (the header MAC check is not included)."""
    import envelope
    from envelope._datakey import DataKey

    data_key = DataKey.generate()
    rows = []
    shared = envelope.FernetKey.generate()
    kinds: list[tuple[str, object, object]] = [("fernet", shared, shared)]
    for bits in (2048, 3072, 4096):
        private = envelope.generate_private_key(bits)
        kinds.append((f"rsa-{bits}", envelope.RsaRecipient(private.public_key()), envelope.RsaIdentity(private)))
    for name, recipient, identity in kinds:
        entries = [recipient.wrap(data_key)]  # type: ignore[attr-defined]
        times = []
        for _ in range(count):
            start = time.perf_counter()
            identity.unwrap(entries)  # type: ignore[attr-defined]
            times.append(time.perf_counter() - start)
        rows.append((name, statistics.median(times)))
    return rows


def unwrap_table(count: int) -> None:
    rows = unwrap_rows(count)
    fernet = rows[0][1]
    print(f"\nunwrap of one entry, median of {count}")
    print(f"{'kind':>9}  {'median':>10}  {'x fernet':>8}")
    for name, seconds in rows:
        print(f"{name:>9}  {seconds * 1e6:>7.1f} us  {seconds / fernet:>8.1f}")


def migrate_table(mib: int, runs: int) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    with tempfile.TemporaryDirectory(prefix="bench-passphrase-") as tmp:
        src, dst = Path(tmp) / "token.txt", Path(tmp) / "out.env"
        with open(src, "wb") as f:
            f.write(Fernet(key).encrypt(os.urandom(mib << 20)) + b"\n")
        print(f"\nmigrating a Fernet token of {mib} MiB of plaintext ({src.stat().st_size / 2**20:.0f} MiB of text), "
              f"file to file, best of {runs} fresh processes")  # fmt: skip
        print(f"{'way':>30}  {'time':>8}  {'MB/s':>6}  {'peak RSS':>9}")
        best = {}
        for _ in range(runs):  # interleaved, so that load on the machine hits both alike
            for how in ("stream", "naive"):
                r = child(_MIGRATE_CHILD, how, str(src), str(dst), key.decode())
                if how not in best or r["seconds"] < best[how]["seconds"]:
                    best[how] = r
        names = {"stream": "migrate_fernet_token (streamed)", "naive": "Fernet.decrypt + seal in memory"}
        for how, r in best.items():
            rate = (mib << 20) / r["seconds"] / 1e6
            print(f"{names[how]:>30}  {r['seconds']:>7.2f}s  {rate:>6.0f}  {r['rss'] / 2**20:>5.0f} MiB")
        ratio = best["naive"]["rss"] / best["stream"]["rss"]
        print(f"peak memory, naive / streamed: {ratio:.1f}x; time, streamed / naive: "
              f"{best['stream']['seconds'] / best['naive']['seconds']:.2f}x")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per scrypt and migration row (default 3)")
    parser.add_argument("--work-factors", default="14,16,18,20", help="comma-separated (default 14,16,18,20)")
    parser.add_argument("--unwraps", type=int, default=2000, help="unwraps per kind (default 2000)")
    parser.add_argument("--token-mib", type=int, default=256, help="plaintext MiB of the migrated token (default 256)")
    args = parser.parse_args()
    scrypt_table([int(x) for x in args.work_factors.split(",")], args.runs)
    unwrap_table(args.unwraps)
    migrate_table(args.token_mib, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
