#!/usr/bin/env python3
"""Where the time goes, and what it predicts for more cores; many small files; the cost of signing.

Three measurements, each printed as a table (run on a quiet machine; ratios, not lone figures):

1. Serial fraction. For each path (seal_file, open_file, seal, open, the readers), one run with
   2 worker threads: the calling thread's CPU time per chunk (time.thread_time: reads, writes,
   hand-offs, in-order delivery) and the workers' CPU time per chunk. Workers also hold the GIL for
   their Python-level work around the crypto calls: that part is estimated from a run with 64-byte
   chunks, where the crypto is negligible, and counted as serial. Predicted throughput on N cores
   is chunk_size / (serial + parallel / N) (Amdahl), capped by nothing else: memory bandwidth and
   the page cache will cap it earlier on a real machine.
2. Many small files: seal_file / open_file of 64 KiB files one by one, files per second, against
   envelope.seal in memory and the rate of the RSA operation alone; then all of them at once
   through envelope.dask on a LocalCluster of one single-threaded process per core.
3. Signing cost: seal_file / open_file of the same payload unsigned and signed (Ed25519, ECDSA
   P-256, ML-DSA-65), interleaved, best of --repeat; and, since whole runs differ by less than the
   machine's noise, the signature work alone (hashing the footer's tag list, one signature or one
   verification), timed on its own, as a share of the unsigned run.

    python tools/bench_scaling.py --size-mib 256            # all three
    python tools/bench_scaling.py --only serial --cores 16
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable

import envelope
from envelope._stream import default_threads

MIB = 1 << 20


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(run: Callable[[], object]) -> tuple[float, float, float]:
    """(wall, calling-thread CPU, whole-process CPU) seconds of one run."""
    prepare = getattr(run, "prepare", None)
    if prepare is not None:
        prepare()  # not measured: removing the previous output frees its pages, which costs CPU
    wall, thread, process = time.perf_counter(), time.thread_time(), _cpu()
    run()
    return time.perf_counter() - wall, time.thread_time() - thread, _cpu() - process


def _fresh(op: Callable[[], object], *outputs: str) -> Callable[[], object]:
    """``op``, whose outputs are removed before each run, untimed: every run writes new files, as
    a first run does (replacing a file would add the freeing of the old one's pages)."""

    def prepare() -> None:
        for output in outputs:
            if os.path.exists(output):
                os.unlink(output)

    op.prepare = prepare  # type: ignore[attr-defined]
    return op


def _paths(work: str, key: object, chunk_size: int, threads: int) -> dict[str, Callable[[], object]]:
    public = key.public_key()  # type: ignore[attr-defined]
    plain, sealed, out = (os.path.join(work, n) for n in ("plain.bin", "sealed.env", "out.bin"))

    def fresh(op: Callable[[], object]) -> Callable[[], object]:
        return _fresh(op, out)

    def read_loop(reader_class: type) -> Callable[[], object]:
        def run() -> object:
            with open(sealed, "rb", buffering=0) as f:
                source = f if reader_class is envelope.EnvelopeReader else _Pipe(f)
                with reader_class(source, key, threads=threads) as reader:
                    buffer = bytearray(1 << 16)
                    while reader.readinto(buffer):
                        pass
            return None

        return run

    data = open(plain, "rb").read() if os.path.getsize(plain) <= 512 * MIB else None
    sealed_bytes = open(sealed, "rb").read() if data is not None else None
    paths = {
        "seal_file": fresh(lambda: envelope.seal_file(plain, out, public, chunk_size=chunk_size, threads=threads)),
        "open_file": fresh(lambda: envelope.open_file(sealed, out, key, threads=threads)),
        "EnvelopeReader loop": read_loop(envelope.EnvelopeReader),
        "EnvelopeStreamReader loop": read_loop(envelope.EnvelopeStreamReader),
    }
    if data is not None:
        paths["seal (bytes)"] = lambda: envelope.seal(data, public, chunk_size=chunk_size, threads=threads)
        paths["open (bytes)"] = lambda: envelope.open(sealed_bytes, key, threads=threads)  # type: ignore[arg-type]
    return paths


class _Pipe(io.RawIOBase):
    """A file seen as a pipe (not seekable)."""

    def __init__(self, f: io.RawIOBase) -> None:
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        return self._f.readinto(buffer)  # type: ignore[arg-type]


def serial_fraction(work: str, key: object, size: int, cores: list[int], repeat: int) -> None:
    chunk = envelope.DEFAULT_CHUNK_SIZE
    chunks = size // chunk + 1
    tiny_work = tempfile.mkdtemp(dir=work)
    tiny_size = 8 * MIB // 16  # 64-byte chunks: the same number of jobs costs only Python overhead
    _write(os.path.join(tiny_work, "plain.bin"), tiny_size)
    envelope.seal_file(
        os.path.join(tiny_work, "plain.bin"), os.path.join(tiny_work, "sealed.env"), key.public_key(), chunk_size=64
    )  # type: ignore[attr-defined]
    tiny_chunks = tiny_size // 64 + 1
    real = _paths(work, key, chunk, threads=2)
    tiny = _paths(tiny_work, key, 64, threads=2)
    print(
        f"\nSerial fraction, {size // MIB} MiB, {chunk // 1024} KiB chunks, 2 worker threads "
        f"(best of {repeat} by wall time; microseconds per chunk):\n"
    )
    header = "| path | MB/s here | calling thread | workers | worker Python (GIL) | serial | "
    header += " | ".join(f"predicted MB/s, {n} cores" for n in cores) + " |"
    print(header)
    print("|---|" + "---:|" * (5 + len(cores)))
    for name, run in real.items():
        wall, thread, process = min((_measure(run) for _ in range(repeat)), key=lambda m: m[0])
        _, tiny_thread, tiny_process = min((_measure(tiny[name]) for _ in range(repeat)), key=lambda m: m[0])
        caller = thread / chunks
        workers = (process - thread) / chunks
        python = max(0.0, (tiny_process - tiny_thread) / tiny_chunks)  # per-job overhead, GIL held
        serial = caller + python
        parallel = max(0.0, workers - python)
        predicted = [chunk / (serial + parallel / n) / 1e6 for n in cores]
        print(
            f"| {name} | {size / wall / 1e6:.0f} | {caller * 1e6:.0f} | {workers * 1e6:.0f} | {python * 1e6:.0f} "
            f"| {serial * 1e6:.0f} | " + " | ".join(f"{p:.0f}" for p in predicted) + " |"
        )


def small_files(work: str, key: object, count: int, repeat: int) -> None:
    public = key.public_key()  # type: ignore[attr-defined]
    folder = tempfile.mkdtemp(dir=work)
    names = [os.path.join(folder, f"f{i}") for i in range(count)]
    payload = os.urandom(64 << 10)
    for name in names:
        with open(name, "wb") as f:
            f.write(payload)

    sealed = [name + ".env" for name in names]
    opened = [name + ".out" for name in names]

    def seal_all() -> None:
        for name in names:
            envelope.seal_file(name, name + ".env", public)

    def open_all() -> None:
        for name in names:
            envelope.open_file(name + ".env", name + ".out", key)

    identity = envelope.RsaIdentity(key)  # type: ignore[arg-type]

    def open_all_identity() -> None:  # the key's checks run once, not once per file
        for name in names:
            envelope.open_file(name + ".env", name + ".out", identity)

    def seal_memory() -> None:
        for _ in names:
            envelope.seal(payload, public)

    def unwrap_only() -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        oaep = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
        wrapped = public.encrypt(b"k" * 32, oaep)
        for _ in names:
            key.decrypt(wrapped, oaep)  # type: ignore[attr-defined]

    # The same files sealed to an age X25519 key and to an ML-KEM-768 + X25519 key (FORMAT.md 4.2,
    # 4.4): what the identity costs per file, beside RSA-3072.
    others = {
        "x25519": envelope.X25519Identity.generate(),
        "mlkem768x25519": envelope.MlKem768X25519Identity.generate(),
    }
    for kind, other in others.items():
        for name in names:
            envelope.seal_file(name, f"{name}.{kind}.env", other.recipient())

    def open_all_with(kind: str, other: object) -> Callable[[], None]:
        def run() -> None:
            for name in names:
                envelope.open_file(f"{name}.{kind}.env", name + ".out", other)  # type: ignore[arg-type]

        return run

    rows = [
        ("seal_file, one by one", _fresh(seal_all, *sealed)),
        ("open_file, one by one", _fresh(open_all, *opened)),
        ("open_file, one by one, one RsaIdentity for all", _fresh(open_all_identity, *opened)),
        *(
            (f"open_file, one by one, one {type(o).__name__} for all", _fresh(open_all_with(k, o), *opened))
            for k, o in others.items()
        ),
        ("envelope.seal in memory", seal_memory),
        ("RSA-OAEP unwrap alone", unwrap_only),
    ]
    print(f"\nMany small files: {count} files of 64 KiB in {folder} (best of {repeat}, interleaved):\n")
    print("| operation | files/s |")
    print("|---|---:|")
    best = dict.fromkeys((label for label, _ in rows), float("inf"))
    for _ in range(repeat):  # interleaved, so that a slow spell of the machine hits every row
        for label, run in rows:
            best[label] = min(best[label], _measure(run)[0])
    for label, _ in rows:
        print(f"| {label} | {count / best[label]:.0f} |")
    rsa, x, pq = (best[f"open_file, one by one, one {n} for all"] for n in ("RsaIdentity", "X25519Identity",
                                                                              "MlKem768X25519Identity"))  # fmt: skip
    print(
        f"\nX25519 identity: {count / x:.0f} files/s, {rsa / x:.2f}x the RSA-3072 rate (issue 18: >= 2,000 and >= 3x);"
    )
    print(f"ML-KEM-768 + X25519: {count / pq:.0f} files/s, {x / pq:.2f}x the X25519 rate (issue 18: >= 0.5x)")
    _small_files_on_dask(folder, key, names, repeat)


def _small_files_on_dask(folder: str, key: object, names: list[str], repeat: int) -> None:
    """The same files through envelope.dask on a LocalCluster of one single-threaded worker
    process per core: the many-files-at-once path, which spreads the per-file Python and RSA work
    (GIL-bound in one process) over processes. Skipped without dask.distributed."""
    try:
        from dask.distributed import Client, LocalCluster

        import envelope.dask
    except ImportError:
        print("| envelope.dask rows | skipped: dask.distributed is not installed |")
        return
    key_path = os.path.join(folder, "key.pem")
    envelope.save_private_key(key_path, key)
    public = key.public_key()  # type: ignore[attr-defined]
    seal_pairs = [(name, name + ".dask.env") for name in names]
    open_pairs = [(name + ".dask.env", name + ".dask.out") for name in names]
    workers = default_threads()  # one per core available, as the SDK counts them
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        # Warm-up outside the timing: the workers import envelope and load the key once.
        envelope.dask.seal_files(seal_pairs[:workers], public).compute()
        envelope.dask.open_files(open_pairs[:workers], identity=key_path).compute()
        rows = [
            (
                f"envelope.dask.seal_files, {workers} worker processes",
                _fresh(lambda: envelope.dask.seal_files(seal_pairs, public).compute(), *(d for _, d in seal_pairs)),
            ),
            (
                f"envelope.dask.open_files, {workers} worker processes",
                _fresh(
                    lambda: envelope.dask.open_files(open_pairs, identity=key_path).compute(),
                    *(d for _, d in open_pairs),
                ),
            ),
        ]
        for label, run in rows:
            best = min(_measure(run)[0] for _ in range(repeat))
            print(f"| {label} | {len(names) / best:.0f} |")


def signing_cost(work: str, key: object, repeat: int) -> None:
    public = key.public_key()  # type: ignore[attr-defined]
    plain = os.path.join(work, "plain.bin")
    out = os.path.join(work, "signed.env")
    back = os.path.join(work, "signed.out")
    signers = {
        "unsigned": None,
        "ed25519": envelope.generate_signing_key("ed25519"),
        "ecdsa-p256-sha256": envelope.generate_signing_key("ecdsa-p256-sha256"),
        "ml-dsa-65": envelope.generate_signing_key("ml-dsa-65"),
    }
    seal: dict[str, list[float]] = {name: [] for name in signers}
    opened: dict[str, list[float]] = {name: [] for name in signers}
    for _ in range(repeat):
        for name, signer in signers.items():
            sealing = _fresh(lambda s=signer: envelope.seal_file(plain, out, public, sign_with=s), out)
            seal[name].append(_measure(sealing)[0])
            pinned = signer.public_key() if signer is not None else None
            opening = _fresh(lambda p=pinned: envelope.open_file(out, back, key, signed_by=p), back)
            opened[name].append(_measure(opening)[0])
    size = os.path.getsize(plain)
    chunks = -(-size // envelope.DEFAULT_CHUNK_SIZE)
    print(f"\nSigning cost, seal_file / open_file of {size // MIB} MiB (best of {repeat}, interleaved):\n")
    print(
        "| signature | seal MB/s | x unsigned | signing work alone, % of unsigned seal "
        "| open MB/s | x unsigned | verifying work alone, % of unsigned open |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, signer in signers.items():
        s, o = min(seal[name]), min(opened[name])
        sign_s, verify_s = _signature_work(signer, chunks) if signer is not None else (0.0, 0.0)
        print(
            f"| {name} | {size / s / 1e6:.0f} | {min(seal['unsigned']) / s:.3f} "
            f"| {100 * sign_s / min(seal['unsigned']):.3f} | {size / o / 1e6:.0f} "
            f"| {min(opened['unsigned']) / o:.3f} | {100 * verify_s / min(opened['unsigned']):.3f} |"
        )


def _signature_work(key: object, chunks: int) -> tuple[float, float]:
    """Seconds (best of 20) for what signing adds to a file of ``chunks`` chunks beyond keeping the
    tags: SHA-256 over the tag list and one signature (seal), or the same hash and one
    verification (open). The to-be-signed bytes around the digest are a few hundred bytes."""
    import hashlib

    from envelope import signing

    signer = signing.as_signer(key)
    tags = os.urandom(32 * chunks)
    message = b"x" * 300

    def sign() -> bytes:
        return signer.sign(message + hashlib.sha256(tags).digest())

    signature = sign()

    def verify() -> None:
        signing.verify(signer.algorithm, signer.public_key_der, message + hashlib.sha256(tags).digest(), signature)

    return min(_measure(sign)[0] for _ in range(20)), min(_measure(verify)[0] for _ in range(20))


def _write(path: str, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for offset in range(0, size, MIB):
            f.write(block[: min(MIB, size - offset)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=lambda t: [int(x) for x in t.split(",")], default=[2, 4, 8, 16])
    parser.add_argument("--small-files", type=int, default=500)
    parser.add_argument("--only", choices=["serial", "small", "signing"])
    parser.add_argument(
        "--dir",
        default="/dev/shm" if os.path.isdir("/dev/shm") else None,
        help="where the files go (default: /dev/shm, so the disk is not what is measured)",
    )
    args = parser.parse_args()
    key = envelope.generate_private_key(3072)
    with tempfile.TemporaryDirectory(prefix="bench-scaling-", dir=args.dir) as work:
        size = args.size_mib * MIB
        _write(os.path.join(work, "plain.bin"), size)
        envelope.seal_file(os.path.join(work, "plain.bin"), os.path.join(work, "sealed.env"), key.public_key())
        print(f"{os.cpu_count()} cores here, Python {sys.version.split()[0]}, files in {args.dir or 'TMPDIR'}")
        if args.only in (None, "serial"):
            serial_fraction(work, key, size, args.cores, args.repeat)
        if args.only in (None, "small"):
            small_files(work, key, args.small_files, args.repeat)
        if args.only in (None, "signing"):
            signing_cost(work, key, args.repeat)


if __name__ == "__main__":
    main()
