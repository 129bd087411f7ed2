#!/usr/bin/env python3
"""Many files at once: envelope's batch functions against pyrage and against envelope one file at a time.

Cases: 500 and 5,000 files of 64 KiB, and 50 files of 4 MiB, on tmpfs (/dev/shm) and on a disk
folder (--disk, by default a folder beside this repository). For each case, in one run, each method
in a fresh process, interleaved, best of --repeat:

- envelope batch seal (``seal_files``, RSA-3072 recipient, --workers processes) and batch open
  (``open_files``, the RSA-3072 private key): every output synced before it is named, each output
  folder synced once before the call returns (docs/SDK.md, "Many files at once");
- envelope one file at a time (``seal_file`` / ``open_file`` in a loop, one ``RsaIdentity``):
  every output synced, and its folder synced, before the next file starts;
- pyrage 1.4 (``encrypt_file`` / ``decrypt_file`` in a loop, age X25519): no fsync at all; its
  outputs sit in the page cache when it returns (a power cut can lose or truncate them);
- the RSA-3072 OAEP-SHA256 private operation alone, on one process and on --workers processes:
  the bound of any opening that needs one per file.

Also each method's peak RSS (the process and its workers, the largest of them), which must not
grow with the number of files. Identity kinds for batch open are listed in ``IDENTITIES``: a new
kind (X25519 when its recipient type lands) is one line there.

    pip install -r tools/bench-requirements.txt   # pyrage (or tools/bench.sh once, then its venv)
    python tools/bench_batch.py                                   # the table in docs/PERFORMANCE.md
    python tools/bench_batch.py --cases 500x64K --repeat 1 --no-disk   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "spec" / "vectors" / "keys"
CASES = {"500x64K": (500, 64 << 10), "5000x64K": (5000, 64 << 10), "50x4M": (50, 4 << 20)}

# Batch-open identity kinds: name -> (recipient for sealing, identity for opening), both made in the
# child from the key files. One line per kind.
IDENTITIES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "rsa3072": lambda: _rsa_pair("rsa3072-a"),
    "x25519": lambda: _age_pair("x25519-a"),
}


def _rsa_pair(name: str) -> tuple[Any, Any]:
    import envelope

    key = envelope.load_private_key(KEYS / f"{name}.pem")
    return key.public_key(), envelope.RsaIdentity(key)


def _age_pair(name: str) -> tuple[Any, Any]:
    import envelope

    (identity,) = envelope.key_file_identities(KEYS / f"{name}.age")
    return envelope.age_recipient((KEYS / f"{name}.pub.age").read_text().strip()), identity


# --- what each child process measures --------------------------------------------------------------


def _peak_rss_mib() -> float:
    """This process's peak (VmHWM: ru_maxrss would include the parent's, kept across exec) and its
    largest reaped worker's."""
    own = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def _cpu() -> float:
    """CPU seconds of this process and of its reaped workers (user and system): what the work
    costs whatever else runs on the machine."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def _pairs(source: Path, target: Path, suffix: str, strip: str = "") -> list[tuple[Path, Path]]:
    names = sorted(os.listdir(source))
    return [(source / n, target / ((n[: -len(strip)] if strip else n) + suffix)) for n in names]


def child(method: str, source: Path, target: Path, workers: int, kind: str) -> dict[str, float]:
    """Run one method over every file of ``source`` into ``target``; return seconds and peak RSS."""
    if method.startswith("pyrage"):
        import pyrage

        identity = pyrage.x25519.Identity.from_str((source.parent / "age.key").read_text().strip())
        recipient = identity.to_public()
        if method == "pyrage-seal":
            pairs = _pairs(source, target, ".age")
            cpu, started = _cpu(), time.perf_counter()
            for src, dst in pairs:
                pyrage.encrypt_file(str(src), str(dst), [recipient])
        else:
            pairs = _pairs(source, target, "", ".age")
            cpu, started = _cpu(), time.perf_counter()
            for src, dst in pairs:
                pyrage.decrypt_file(str(src), str(dst), [identity])
        return {"seconds": time.perf_counter() - started, "cpu": _cpu() - cpu, "rss_mib": _peak_rss_mib()}
    if method.startswith("rsa"):
        return _rsa_rate(int(method.split("-")[1]))
    import envelope

    recipient, identity = IDENTITIES[kind]()
    if method in ("batch-seal", "single-seal"):
        pairs = _pairs(source, target, ".env")
    else:
        pairs = _pairs(source, target, "", ".env")
    cpu, started = _cpu(), time.perf_counter()
    if method == "batch-seal":
        results = envelope.seal_files(pairs, recipient, workers=workers)
    elif method == "batch-open":
        results = envelope.open_files(pairs, identity, workers=workers)
    elif method == "single-seal":
        for src, dst in pairs:
            envelope.seal_file(src, dst, recipient)
        results = []
    elif method == "single-open":
        for src, dst in pairs:
            envelope.open_file(src, dst, identity)
        results = []
    else:
        raise SystemExit(f"unknown method {method}")
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    failed = [str(r) for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} files failed: {failed[:3]}")
    return {"seconds": seconds, "cpu": cpu, "rss_mib": _peak_rss_mib()}


def _rsa_work(count: int) -> float:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    import envelope

    key = envelope.load_private_key(KEYS / "rsa3072-a.pem")
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    wrapped = key.public_key().encrypt(os.urandom(32), oaep)
    started = time.perf_counter()
    for _ in range(count):
        key.decrypt(wrapped, oaep)
    return time.perf_counter() - started


def _rsa_rate(processes: int, count: int = 400) -> dict[str, float]:
    """``count`` private operations on each of ``processes`` processes at once: the wall time and
    the CPU time they took."""
    import multiprocessing

    cpu = _cpu()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        started = time.perf_counter()
        pool.map(_rsa_work, [count] * processes)
        seconds = time.perf_counter() - started
        pool.close()
        pool.join()
    return {"seconds": seconds, "ops": count * processes, "cpu": _cpu() - cpu, "rss_mib": _peak_rss_mib()}


# --- the parent: data, runs, table --------------------------------------------------------------------


def run_child(method: str, source: Path, target: Path, workers: int, kind: str = "rsa3072") -> dict[str, float]:
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    command = [sys.executable, __file__, "--child", method, str(source), str(target), str(workers), kind]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{method} failed: {done.stderr.strip()[-2000:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(target)
    return measured


def make_case(base: Path, count: int, size: int) -> dict[str, Path]:
    """Plaintexts, and the same files sealed by envelope and by pyrage (inputs of the open runs)."""
    import envelope

    plain, sealed, aged = base / "plain", base / "sealed", base / "aged"
    for folder in (plain, sealed, aged):
        folder.mkdir(parents=True)
    block = os.urandom(size)
    for index in range(count):
        (plain / f"part-{index:05d}.bin").write_bytes(block[index % 61 :] + block[: index % 61])
    for kind, folder in (("rsa3072", sealed), ("x25519", base / "sealed-x25519")):
        folder.mkdir(exist_ok=True)
        recipient, _ = IDENTITIES[kind]()
        results = envelope.seal_files(_pairs(plain, folder, ".env"), recipient)
        assert all(r.ok for r in results)
    try:
        import pyrage
    except ImportError:
        return {"plain": plain, "sealed": sealed, "sealed-x25519": base / "sealed-x25519"}
    identity = pyrage.x25519.Identity.generate()
    (base / "age.key").write_text(str(identity) + "\n")
    for src, dst in _pairs(plain, aged, ".age"):
        pyrage.encrypt_file(str(src), str(dst), [identity.to_public()])
    return {"plain": plain, "sealed": sealed, "sealed-x25519": base / "sealed-x25519", "aged": aged}


PYRAGE_SEAL = "pyrage encrypt_file, one by one"
PYRAGE_OPEN = "pyrage decrypt_file, one by one (X25519)"
METHODS = [
    # (label, method, input folder, durability)
    ("envelope batch seal", "batch-seal", "plain", "file fsync before its name; one folder fsync"),
    ("envelope seal_file, one by one", "single-seal", "plain", "file fsync before its name; folder fsync each"),
    (PYRAGE_SEAL, "pyrage-seal", "plain", "none (page cache)"),
    ("envelope batch open (RSA-3072)", "batch-open", "sealed", "file fsync before its name; one folder fsync"),
    (
        "envelope batch open (X25519)",
        "batch-open-x25519",
        "sealed-x25519",
        "file fsync before its name; one folder fsync",
    ),
    ("envelope open_file, one by one", "single-open", "sealed", "file fsync before its name; folder fsync each"),
    (PYRAGE_OPEN, "pyrage-open", "aged", "none (page cache)"),
]


RSA = "RSA-3072 private operation alone"


def measure_case(args: argparse.Namespace, count: int, size: int, folder: Path) -> dict[str, Any]:
    """Every method over one case, --repeat rounds, interleaved; the best run of each (and the
    largest peak RSS seen). The RSA rate is measured in the same rounds, so that it sees the same
    load."""
    base = Path(tempfile.mkdtemp(prefix="envelope-bench-batch-", dir=folder))
    best: dict[str, dict[str, float]] = {}
    try:
        inputs = make_case(base, count, size)
        for _ in range(args.repeat):
            runs = [(label, method, inputs.get(source)) for label, method, source, _ in METHODS]
            runs.append((RSA, f"rsa-{args.workers}", base))
            for label, method, source in runs:
                if source is None or (method.startswith("single") and count > args.one_by_one_max):
                    continue
                kind = "x25519" if method.endswith("-x25519") else "rsa3072"
                measured = run_child(method.removesuffix("-x25519"), source, base / "out", args.workers, kind)
                kept = best.get(label)
                if kept is None or measured["seconds"] < kept["seconds"]:
                    best[label] = {**measured, "rss_mib": max(measured["rss_mib"], kept["rss_mib"] if kept else 0)}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated among: " + ", ".join(CASES))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method per case, interleaved (best kept)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="batch processes")
    parser.add_argument("--tmpfs", default="/dev/shm", help="a tmpfs folder")
    parser.add_argument(
        "--disk", default=str(ROOT.parent), help="a folder on a disk (a temporary folder is made in it)"
    )
    parser.add_argument("--no-disk", action="store_true", help="tmpfs only")
    parser.add_argument(
        "--one-by-one-max",
        type=int,
        default=1000,
        help="cases with more files leave out the one-by-one rows (their rate does not depend on the count)",
    )
    args = parser.parse_args()
    if args.child:
        method, source, target, workers, kind = args.child
        print(json.dumps(child(method, Path(source), Path(target), int(workers), kind)))
        return 0
    try:
        import pyrage  # noqa: F401
    except ImportError:
        print("pyrage is not installed: its rows are left out (pip install -r tools/bench-requirements.txt)")
    load = os.getloadavg()
    print(f"{len(os.sched_getaffinity(0))} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"batch workers: {args.workers}; best of {args.repeat}", flush=True)  # fmt: skip
    places = [("tmpfs", Path(args.tmpfs))] + ([] if args.no_disk else [("disk", Path(args.disk))])
    print("| case | where | method | durability | files/s | vs pyrage | CPU ms/file | peak RSS MiB |")
    print("|---|---|---|---|---:|---:|---:|---:|", flush=True)
    bounds = []
    for case in args.cases.split(","):
        count, size = CASES[case]
        for place, folder in places:
            best = measure_case(args, count, size, folder)
            for label, _method, source, durability in METHODS:
                if label not in best:
                    continue
                rate = count / best[label]["seconds"]
                peer = best.get(PYRAGE_SEAL if source == "plain" else PYRAGE_OPEN)  # pyrage: age X25519
                ratio = f"{rate / (count / peer['seconds']):.2f}x" if peer else "-"
                rss, cpu = best[label]["rss_mib"], best[label]["cpu"] / count * 1e3
                print(f"| {case} | {place} | {label} | {durability} | {rate:.0f} | {ratio} | {cpu:.2f} | {rss:.0f} |")
            opened = best["envelope batch open (RSA-3072)"]
            rsa = best[RSA]
            bounds.append(
                (case, place, count / opened["seconds"], rsa["ops"] / rsa["seconds"],
                 opened["cpu"] / count * 1e3, rsa["cpu"] / rsa["ops"] * 1e3)
            )  # fmt: skip
    print()
    print(f"| case | where | batch open files/s | RSA-3072 private operations/s, {args.workers} processes | ratio "
          "| CPU ms per file opened | CPU ms per RSA operation | ratio |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for case, place, rate, rsa_rate, cpu, rsa_cpu in bounds:
        print(f"| {case} | {place} | {rate:.0f} | {rsa_rate:.0f} | {rate / rsa_rate:.2f} | {cpu:.2f} | {rsa_cpu:.2f} "
              f"| {rsa_cpu / cpu:.2f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
