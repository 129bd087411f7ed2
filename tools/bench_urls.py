#!/usr/bin/env python3
"""URLs in the SDK's path functions against s3fs doing the same transfer: ratios within one run.

- envelope.seal_file(local -> s3://) against s3fs uploading the same plaintext through the same
  uncommitted multipart upload (fs._open(..., autocommit=False), 1 MiB writes, commit), and
  against s3fs.put_file (one PUT below 100 MiB);
- envelope.open_file(s3:// -> local) against s3fs.get_file of the plaintext object.

The S3 server is moto's server mode in a child process on loopback, serving ranged GETs like S3
(tests/remote_fixtures.py, ranged_gets=True). Best of --rounds, interleaved.

    python tools/bench_urls.py               # about 30 seconds on 2 cores
    python tools/bench_urls.py --size-mib 256
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import s3fs

import envelope

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from remote_fixtures import MotoServer

MIB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    server = MotoServer(ranged_gets=True)
    try:
        options = server.options()
        s3 = s3fs.S3FileSystem(**options)
        s3.mkdir("bench")
        key = envelope.generate_private_key(2048)
        data = os.urandom(args.size_mib * MIB)
        with tempfile.TemporaryDirectory() as folder:
            plain, fetched, opened = (os.path.join(folder, name) for name in ("plain.bin", "got.bin", "opened.bin"))
            Path(plain).write_bytes(data)

            def upload() -> None:
                f = s3._open("bench/upload.bin", "wb", autocommit=False)
                for start in range(0, len(data), MIB):
                    f.write(data[start : start + MIB])
                f.close()
                f.commit()

            s3.put_file(plain, "bench/plain.bin")
            runs: dict[str, Callable[[], object]] = {
                "s3fs put_file (one PUT)": lambda: s3.put_file(plain, "bench/plain.bin"),
                "s3fs uncommitted upload": upload,
                "envelope.seal_file -> s3://": lambda: envelope.seal_file(
                    plain, "s3://bench/x.env", key.public_key(), overwrite=True, storage_options=options
                ),
                "s3fs get_file": lambda: s3.get_file("bench/plain.bin", fetched),
                "envelope.open_file s3:// ->": lambda: envelope.open_file(
                    "s3://bench/x.env", opened, key, overwrite=True, storage_options=options
                ),
            }
            best = {name: float("inf") for name in runs}
            for _ in range(args.rounds):
                for name, run in runs.items():
                    started = time.perf_counter()
                    run()
                    best[name] = min(best[name], time.perf_counter() - started)
            assert Path(opened).read_bytes() == data
    finally:
        server.stop()
    for name, seconds in best.items():
        print(f"{name:30s} {args.size_mib / seconds:7.0f} MiB/s")
    seal = best["envelope.seal_file -> s3://"]
    print(f"seal_file / same upload: {best['s3fs uncommitted upload'] / seal:.2f}x")
    print(f"seal_file / put_file:    {best['s3fs put_file (one PUT)'] / seal:.2f}x")
    print(f"open_file / get_file:    {best['s3fs get_file'] / best['envelope.open_file s3:// ->']:.2f}x")


if __name__ == "__main__":
    main()
