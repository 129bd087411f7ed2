#!/usr/bin/env python3
"""Latency of the commands on small files: what a user waits for, start-up included.

Runs each command many times in fresh processes and prints the median and best wall time, next to
`python -c pass` (the interpreter's own start-up) so the overhead can be read as a difference:

- `envelope-info --help` and `envelope-info` on a small file (target: within 3 x the interpreter's
  start-up);
- `envelope open` of a 1 KiB file with 2048, 3072 and 4096-bit keys (private-key loading: the SDK
  replaces OpenSSL's full validation with a pairwise check; the "full validation" rows show what
  that saves);
- `envelope open` of a file with 1, 10 and 1000 recipients (lookup by key id: the cost must not grow).

    python tools/bench_latency.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import envelope
from envelope._datakey import DataKey
from envelope._format import Header, RecipientEntry, encode_header, encode_prefix
from envelope._stream import ChunkSealer

BIN = Path(sys.executable).parent


# Children may cache bytecode, as an installed package has it (pip compiles it at install time):
# with PYTHONDONTWRITEBYTECODE set, as in some CI images, every run would compile envelope's
# sources again and the figures would measure the compiler. One untimed run per command fills the
# cache.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    env = {**CHILD_ENV, **(env or {})}
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000, min(samples) * 1000


def many_recipients_file(work: Path, key: envelope.RsaIdentity, count: int) -> Path:
    """A file with `count` recipients, ours last; the others are decoys with random key ids."""
    data_key = DataKey.generate()
    decoys = [
        RecipientEntry("rsa-oaep-sha256", {"kid": os.urandom(32), "key": os.urandom(384)}) for _ in range(count - 1)
    ]
    entries = (*decoys, key.recipient().wrap(data_key))
    header = encode_header(Header(chunk_size=1 << 20, recipients=entries, commit=data_key.commitment()))
    authenticated = encode_prefix(len(header)) + header
    token = ChunkSealer(data_key, 1 << 20).seal(0, True, b"x" * 1024)
    path = work / f"recipients-{count}.env"
    path.write_bytes(authenticated + data_key.header_mac(authenticated) + token)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per row (default 20)")
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="envelope-latency-") as tmp:
        work = Path(tmp)
        payload = work / "small.bin"
        payload.write_bytes(os.urandom(1024))
        out = work / "out.bin"

        def row(label: str, command: list[str], env: dict[str, str] | None = None) -> None:
            if out.exists():
                out.unlink()
            median, best = timed(command, args.runs, env)
            rows.append((label, median, best))
            print(f"  {label}: {median:.0f} ms", file=sys.stderr)

        row("python -c pass (interpreter start-up)", [sys.executable, "-c", "pass"])
        row("python -c 'import envelope'", [sys.executable, "-c", "import envelope"])
        row("envelope-info --help", [str(BIN / "envelope-info"), "--help"])
        keys = {}
        for bits in (2048, 3072, 4096):
            key = envelope.generate_private_key(bits)
            keys[bits] = key
            (work / f"k{bits}.pem").write_bytes(envelope.private_key_pem(key))
            envelope.seal_file(payload, work / f"small-{bits}.env", key.public_key())
        row("envelope-info small file", [str(BIN / "envelope-info"), str(work / "small-3072.env")])
        full = (
            "import sys, envelope; k = envelope.load_private_key(sys.argv[1], full_validation=True);"
            "envelope.open_file(sys.argv[2], sys.argv[3], k, overwrite=True)"
        )
        for bits in (2048, 3072, 4096):
            command = [str(BIN / "envelope"), "open", "-q", "--force", "-i", str(work / f"k{bits}.pem"), "-o", str(out)]
            row(f"envelope open, 1 KiB, RSA-{bits}", [*command, str(work / f"small-{bits}.env")])
            sdk = [sys.executable, "-c", full, str(work / f"k{bits}.pem"), str(work / f"small-{bits}.env"), str(out)]
            row(f"  same via SDK, full OpenSSL key validation, RSA-{bits}", sdk)
            fast = sdk.copy()
            fast[2] = full.replace(", full_validation=True", "")
            row(f"  same via SDK, pairwise check (default), RSA-{bits}", fast)
        identity = envelope.RsaIdentity(keys[3072])
        for count in (1, 10, 1000):
            path = many_recipients_file(work, identity, count)
            command = [
                str(BIN / "envelope"),
                "open",
                "-q",
                "--force",
                "-i",
                str(work / "k3072.pem"),
                "-o",
                str(out),
                str(path),
            ]
            row(f"envelope open, {count} recipients ({path.stat().st_size // 1024} KiB header+payload)", command)

    print(
        f"\nmedian and best of {args.runs} runs after one untimed run, bytecode cached, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    print(f"| {'command':<64} | {'median ms':>9} | {'best ms':>7} |")
    print(f"|{'-' * 66}|{'-' * 11}|{'-' * 9}|")
    for label, median, best in rows:
        print(f"| {label:<64} | {median:>9.0f} | {best:>7.0f} |")


if __name__ == "__main__":
    main()
