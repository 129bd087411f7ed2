#!/usr/bin/env python3
"""Sealed objects on a local S3 server and sealed shards on a Dask cluster: three measurements.

1. Bytes fetched to read 1 MiB at a random offset of a 256 MiB sealed object, counted where s3fs
   returns them (every ranged GET), against header + 2 tokens.
2. Sequential read of a 256 MiB sealed object (envelope::s3://, verified) against the same
   plaintext read through s3fs with its defaults, both as a loop of 1 MiB reads and as one read():
   best of --rounds, interleaved, ratio within this run.
3. Sealing 64 shards of 16 MiB (local files, in /dev/shm when it exists, where the workers' TMPDIR
   also points so that fsspec stages outputs there) with envelope.dask on a LocalCluster of two
   single-threaded worker processes against one: best of --rounds, ratio.

The S3 server is moto's server mode in a child process on a loopback port (tests/remote_fixtures.py).

    python tools/bench_remote.py                 # about 2 minutes on 2 cores
    python tools/bench_remote.py --skip-dask --size-mib 64
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import fsspec
import s3fs

import envelope
import envelope.dask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from remote_fixtures import MotoServer  # one launcher for the tests and this tool

MIB = 1 << 20
BUCKET = "envelope-bench"


@contextmanager
def counting_fetches() -> Iterator[list[int]]:
    """Record the length of every ranged read s3fs makes (S3File._fetch_range is its one GET path)."""
    sizes: list[int] = []
    original = s3fs.core.S3File._fetch_range

    def counted(self: Any, start: int, end: int) -> bytes:
        data: bytes = original(self, start, end)
        sizes.append(len(data))
        return data

    s3fs.core.S3File._fetch_range = counted
    try:
        yield sizes
    finally:
        s3fs.core.S3File._fetch_range = original


def best(function: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def drain(f: Any, size: int) -> None:
    while f.read(size):
        pass


def remote(args: argparse.Namespace, rows: list[tuple[str, str, str, str]], *, ranged_gets: bool) -> None:
    server = MotoServer(ranged_gets=ranged_gets)
    where = "moto, ranged GETs read the range" if ranged_gets else "stock moto"
    try:
        options = server.options()
        s3 = s3fs.S3FileSystem(**options)
        s3.mkdir(BUCKET)
        key = envelope.generate_private_key()
        key_dir = Path(tempfile.mkdtemp())
        key_path = key_dir / "bench.pem"
        key_path.write_bytes(envelope.private_key_pem(key))
        size = args.size_mib * MIB
        payload = os.urandom(size)
        s3.pipe(f"{BUCKET}/plain.bin", payload)
        sealed_url = f"envelope::s3://{BUCKET}/sealed.bin.env"
        with fsspec.open(sealed_url, "wb", envelope={"recipients": key.public_key()}, s3=options) as f:
            f.write(payload)
        envelope_options: dict[str, Any] = {"identity": str(key_path)}
        if args.read_ahead_mib:
            envelope_options["read_ahead"] = args.read_ahead_mib * MIB
        read_options = {"envelope": envelope_options, "s3": options}
        with s3.open(f"{BUCKET}/sealed.bin.env", "rb") as raw:
            layout = envelope.inspect(raw)
        assert layout.chunk_count is not None and layout.file_size is not None
        final_token = layout.file_size - layout.header_size - (layout.chunk_count - 1) * layout.token_size

        # 1. random 1 MiB reads
        rng = random.Random(2026)
        fetched, requests = [], []
        for _ in range(args.random_reads):
            offset = rng.randrange(0, size - MIB)
            with counting_fetches() as sizes, fsspec.open(sealed_url, "rb", **read_options) as f:
                f.seek(offset)
                assert f.read(MIB) == payload[offset : offset + MIB]
            fetched.append(sum(sizes))
            requests.append(len(sizes))
        target = layout.header_size + 2 * layout.token_size
        rows.append(
            (
                f"{where}: random 1 MiB read of {args.size_mib} MiB, bytes fetched (max of {args.random_reads})",
                f"{max(fetched):,} in {max(requests)} GETs",
                f"<= {target:,} (header {layout.header_size} + 2 tokens of {layout.token_size})",
                f"{max(fetched) / target:.4f}x; final token {final_token} B, header window {4096} B",
            )
        )

        # 2. sequential reads, interleaved rounds
        def plain_loop() -> None:
            with s3.open(f"{BUCKET}/plain.bin", "rb") as f:
                drain(f, MIB)

        def sealed_loop() -> None:
            with fsspec.open(sealed_url, "rb", **read_options) as f:
                drain(f, MIB)

        def plain_all() -> None:
            with s3.open(f"{BUCKET}/plain.bin", "rb") as f:
                assert len(f.read()) == size

        def sealed_all() -> None:
            with fsspec.open(sealed_url, "rb", **read_options) as f:
                assert len(f.read()) == size

        results: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, function in (
                ("plain loop", plain_loop),
                ("sealed loop", sealed_loop),
                ("plain read()", plain_all),
                ("sealed read()", sealed_all),
            ):
                results[name] = min(results.get(name, float("inf")), best(function, 1))
        for style in ("loop", "read()"):
            plain, sealed = results[f"plain {style}"], results[f"sealed {style}"]
            rows.append(
                (
                    f"{where}: sequential {args.size_mib} MiB, {'1 MiB reads' if style == 'loop' else 'one read()'}",
                    f"sealed {size / sealed / 1e6:.0f} MB/s, plain s3fs {size / plain / 1e6:.0f} MB/s",
                    ">= 0.8x plain",
                    f"{plain / sealed:.2f}x",
                )
            )
        shutil.rmtree(key_dir)
    finally:
        server.stop()


def cluster(args: argparse.Namespace, rows: list[tuple[str, str, str, str]]) -> None:
    from dask.distributed import Client, LocalCluster

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="envelope-bench-", dir=base))
    try:
        plain = root / "plain"
        plain.mkdir()
        block = os.urandom(args.shard_mib * MIB)
        for index in range(args.shards):
            (plain / f"shard-{index:04d}.bin").write_bytes(block[index:] + block[:index])
        key = envelope.generate_private_key()
        clusters = {
            workers: LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env={"TMPDIR": str(root)},  # fsspec stages uncommitted local outputs in TMPDIR
            )
            for workers in (1, 2)
        }
        try:
            times: dict[int, float] = {}
            for _ in range(args.rounds):
                for workers, local in clusters.items():
                    shutil.rmtree(root / "sealed", ignore_errors=True)
                    with Client(local) as client:
                        client.wait_for_workers(workers)
                        bag = envelope.dask.seal_prefix(str(plain), str(root / "sealed"), key.public_key())
                        start = time.perf_counter()
                        done = bag.compute()
                        elapsed = time.perf_counter() - start
                    assert len(done) == args.shards
                    times[workers] = min(times.get(workers, float("inf")), elapsed)
        finally:
            for local in clusters.values():
                local.close()
        total = args.shards * args.shard_mib * MIB
        rows.append(
            (
                f"seal {args.shards} shards of {args.shard_mib} MiB, LocalCluster 2x1 thread vs 1x1",
                f"{total / times[2] / 1e6:.0f} MB/s vs {total / times[1] / 1e6:.0f} MB/s",
                ">= 1.6x",
                f"{times[1] / times[2]:.2f}x",
            )
        )
    finally:
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="sealed object size (default 256)")
    parser.add_argument("--random-reads", type=int, default=8, help="random 1 MiB reads (default 8)")
    parser.add_argument("--shards", type=int, default=64, help="shards to seal on Dask (default 64)")
    parser.add_argument("--shard-mib", type=int, default=16, help="shard size (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept (default 3)")
    parser.add_argument("--read-ahead-mib", type=int, default=0, help="read_ahead option (default: the SDK's)")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-stock", action="store_true", help="skip the stock moto server")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    if not args.skip_s3:
        if not args.skip_stock:
            remote(args, rows, ranged_gets=False)
        remote(args, rows, ranged_gets=True)
    if not args.skip_dask:
        cluster(args, rows)
    header = ("measurement", "result", "target", "ratio")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
