#!/usr/bin/env python3
"""The cost of finding and unwrapping a file's data key, for every recipient kind (FORMAT.md 4).

For each kind: one identity, a header's recipient entry wrapped to it, and ``identity.unwrap``
timed call by call; the table gives the median and the 90th percentile of many calls, and the ratio
to RSA-3072's median (the RSA private operation is what makes opening many small files slow). Key
loading is not counted: each identity is made once, as a program opening many files does.

    python tools/bench_unwrap.py               # every kind, 2000 calls each (200 for RSA-4096)
    python tools/bench_unwrap.py --calls 500

A new kind is one line of KINDS: its name, and a function returning an identity and a recipient.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ed25519

import envelope
from envelope._datakey import DataKey


def _rsa(bits: int) -> Callable[[], tuple[object, object]]:
    def make() -> tuple[object, object]:
        key = envelope.generate_private_key(bits)
        return envelope.RsaIdentity(key), envelope.RsaRecipient(key.public_key())

    return make


def _pair(identity: object) -> tuple[object, object]:
    return identity, identity.recipient()  # type: ignore[attr-defined]


KINDS: dict[str, Callable[[], tuple[object, object]]] = {
    "x25519": lambda: _pair(envelope.X25519Identity.generate()),
    "ssh-ed25519": lambda: _pair(envelope.SshEd25519Identity(ed25519.Ed25519PrivateKey.generate())),
    "mlkem768x25519": lambda: _pair(envelope.MlKem768X25519Identity.generate()),
    "rsa-oaep-sha256 (RSA-2048)": _rsa(2048),
    "rsa-oaep-sha256 (RSA-3072)": _rsa(3072),
    "rsa-oaep-sha256 (RSA-4096)": _rsa(4096),
}
REFERENCE = "rsa-oaep-sha256 (RSA-3072)"


def timings(identity: object, recipient: object, calls: int) -> list[float]:
    entries = [recipient.wrap(DataKey.generate())]  # type: ignore[attr-defined]
    unwrap = identity.unwrap  # type: ignore[attr-defined]
    for _ in range(min(50, calls)):  # warm up
        unwrap(entries)
    found = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        unwrap(entries)
        found.append((time.perf_counter_ns() - start) / 1e3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per kind (RSA-4096: a tenth)")
    args = parser.parse_args()
    medians: dict[str, tuple[float, float]] = {}
    for name, make in KINDS.items():
        identity, recipient = make()
        calls = max(20, args.calls // 10) if "4096" in name else args.calls
        found = sorted(timings(identity, recipient, calls))
        medians[name] = (statistics.median(found), found[int(0.9 * (len(found) - 1))])
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, cryptography {_version()}: unwrap of one entry\n")
    print("| kind | median (µs) | p90 (µs) | vs RSA-3072 |")
    print("|---|---:|---:|---:|")
    reference = medians[REFERENCE][0]
    for name, (median, p90) in medians.items():
        print(f"| {name} | {median:.0f} | {p90:.0f} | {median / reference:.2f}x |")


def _version() -> str:
    import cryptography

    return cryptography.__version__


if __name__ == "__main__":
    main()
