#!/usr/bin/env python3
"""A sharded safetensors model folder on a local S3 server: issue 20's remote targets.

1. Whole folder: every shard's bytes read through envelope (``open_folder`` on the s3:// URL,
   ``SealedFolder.read_into`` per shard, as ``envelope.models.transformers.from_pretrained``
   reads them; and one ``open_folder`` per shard on two threads) against s3fs reading the same
   plaintext shards (``S3FileSystem.open().read()`` with its defaults, ``cat_file`` per shard,
   and ``cat`` of all shards at once, concurrent GETs). Interleaved rounds, best and median;
   ratio = s3fs time / envelope time (target: at least 0.8), against each s3fs way; the table's
   ratio column is against the fastest of them in this run.
2. One tensor: bytes and GETs fetched (every ranged GET counted where s3fs makes it) by
   ``envelope.models.safetensors.safe_open(url).get_tensor`` on one shard sealed on its own, and
   by ``SealedFolder.read_into`` of the same tensor's range in the sealed folder, against the
   tensor's chunks (whole tokens) plus the 4 KiB header window.
3. Where the time goes: the GET of the sealed folder alone (``cat_file``), the decryption alone
   (the same sealed bytes from tmpfs, ``read_into`` on one and two workers), the bytes one remote
   read of every shard fetches, and a profile of one remote read (calling thread) by function.

The S3 server is moto's server mode in a child process on a loopback port, answering ranged GETs
with the range (tests/remote_fixtures.py). The folder holds config.json, the index and the shards.

    python tools/bench_remote_models.py                      # 4 shards of 64 MiB, 5 rounds
    python tools/bench_remote_models.py --shards 4 --shard-mib 16 --rounds 3
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import s3fs
from safetensors.numpy import load_file, save_file

import envelope
from envelope.folders import open_folder, seal_folder
from envelope.fsspec import HEADER_WINDOW
from envelope.models.safetensors import safe_open
from envelope.models.safetensors import save as save_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_remote import BUCKET, MIB, counting_fetches  # the same moto setup and GET counter
from remote_fixtures import MotoServer


def build_folder(root: Path, shards: int, shard_mib: int) -> dict[str, int]:
    """A transformers-style folder: config.json, the index and ``shards`` safetensors shards of
    about ``shard_mib`` MiB of float32 tensors (8 of 1024 columns plus a small bias each)."""
    rng = np.random.default_rng(2026)
    rows = shard_mib * MIB // (8 * 1024 * 4)
    weight_map: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for shard in range(shards):
        name = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {}
        for layer in range(8):
            prefix = f"layers.{shard * 8 + layer}"
            tensors[f"{prefix}.weight"] = rng.standard_normal((rows, 1024), dtype=np.float32)
            tensors[f"{prefix}.bias"] = rng.standard_normal(1024, dtype=np.float32)
        save_file(tensors, str(root / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
        sizes[name] = (root / name).stat().st_size
    total = sum(sizes.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (root / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (root / "config.json").write_text(json.dumps({"model_type": "bench", "layers": shards * 8}))
    return sizes


def tensor_table(read: Callable[[int, int], bytes]) -> tuple[int, dict[str, tuple[int, int]]]:
    """The data offset and each tensor's [begin, end) of a safetensors file, from ``read(offset, n)``."""
    (length,) = struct.unpack("<Q", read(0, 8))
    header = json.loads(read(8, length))
    header.pop("__metadata__", None)
    return 8 + length, {name: tuple(info["data_offsets"]) for name, info in header.items()}


def timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4, help="shards (default 4)")
    parser.add_argument("--shard-mib", type=int, default=64, help="about this many MiB per shard (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--profile-lines", type=int, default=12, help="functions shown in the profile (default 12)")
    parser.add_argument("--verbose", action="store_true", help="print every GET's length")
    args = parser.parse_args()

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    root = Path(tempfile.mkdtemp(prefix="envelope-bench-", dir=base))
    server = MotoServer(ranged_gets=True)
    try:
        options = server.options()
        s3 = s3fs.S3FileSystem(**options)
        s3.mkdir(BUCKET)
        plain = root / "plain"
        plain.mkdir()
        sizes = build_folder(plain, args.shards, args.shard_mib)
        shard_names = sorted(sizes)
        total = sum(sizes.values())
        key = envelope.generate_private_key()
        sealed_url = f"s3://{BUCKET}/model.env"
        seal_folder(plain, sealed_url, key.public_key(), storage_options=options)
        s3.put(str(plain), f"{BUCKET}/plain", recursive=True)
        plain_paths = [f"{BUCKET}/plain/{name}" for name in shard_names]
        assert s3.size(plain_paths[0]) == sizes[shard_names[0]]
        shard_url = f"s3://{BUCKET}/shard.safetensors.env"
        # the adapter writes safetensors.numpy.save's bytes (checked below against the plaintext shard)
        tensors = load_file(str(plain / shard_names[0]))
        save_model(tensors, shard_url, key.public_key(), tensor_metadata={"format": "pt"}, storage_options=options)
        del tensors
        expected = {name: (plain / name).read_bytes() for name in shard_names}

        # 1. every shard, interleaved rounds
        def envelope_serial() -> None:
            with open_folder(sealed_url, key, storage_options=options) as folder:
                for name in shard_names:
                    out = bytearray(folder.size(name))
                    folder.read_into(name, out)

        def one_shard(name: str) -> None:
            with open_folder(sealed_url, key, storage_options=options) as folder:
                out = bytearray(folder.size(name))
                folder.read_into(name, out)

        def envelope_parallel() -> None:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(one_shard, shard_names))

        def s3fs_default() -> None:
            for path in plain_paths:
                with s3.open(path, "rb") as f:
                    f.read()

        def s3fs_cat_file() -> None:
            for path in plain_paths:
                s3.cat_file(path)

        def s3fs_cat_all() -> None:
            s3.cat(plain_paths)

        # correctness first, once: the bytes envelope returns are the shards'
        with open_folder(sealed_url, key, storage_options=options) as folder:
            for name in shard_names:
                out = bytearray(folder.size(name))
                folder.read_into(name, out)
                assert out == expected[name], name
        assert s3.cat(plain_paths) == {path: expected[path.rsplit("/", 1)[1]] for path in plain_paths}

        cases: dict[str, Callable[[], None]] = {
            "s3fs open().read(), defaults, one shard after another": s3fs_default,
            "s3fs cat_file, one shard after another": s3fs_cat_file,
            "s3fs cat of all shards (concurrent GETs)": s3fs_cat_all,
            "envelope open_folder(s3://).read_into, one shard after another": envelope_serial,
            "envelope one open_folder per shard, 2 threads": envelope_parallel,
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, function in cases.items():
                times[name].append(timed(function))
        best = {name: min(t) for name, t in times.items()}
        median = {name: statistics.median(t) for name, t in times.items()}
        baseline = min((name for name in cases if name.startswith("s3fs")), key=lambda name: best[name])
        print(f"\n{args.shards} shards, {total / MIB:.0f} MiB of safetensors; {args.rounds} interleaved rounds\n")
        print("| read every shard | best s | median s | MB/s (best) | fastest s3fs / this (best) | (median) |")
        print("|---|---:|---:|---:|---:|---:|")
        for name in cases:
            print(
                f"| {name} | {best[name]:.3f} | {median[name]:.3f} | {total / best[name] / 1e6:.0f} "
                f"| {best[baseline] / best[name]:.2f} | {median[baseline] / median[name]:.2f} |"
            )
        for envelope_case in (
            "envelope open_folder(s3://).read_into, one shard after another",
            "envelope one open_folder per shard, 2 threads",
        ):
            for plain_case in cases:
                if plain_case.startswith("s3fs"):
                    ratio = best[plain_case] / best[envelope_case]
                    print(
                        f"  {envelope_case} vs {plain_case}: {ratio:.2f}x "
                        f"(median {median[plain_case] / median[envelope_case]:.2f}x; target >= 0.8)"
                    )

        # 2. one tensor
        with s3.open(f"{BUCKET}/model.env", "rb") as raw:
            layout = envelope.inspect(raw)
        chunk, token = layout.chunk_size, layout.token_size
        data_start, table = tensor_table(lambda at, n: expected[shard_names[0]][at : at + n])
        names = sorted((n for n in table if n.endswith(".weight")), key=lambda n: table[n][0])
        print("\n| one tensor of a remote shard | bytes fetched | GETs | bound | fetched / bound |")
        print("|---|---:|---:|---:|---:|")

        def row(what: str, sizes: list[int], bound: int, bound_text: str) -> None:
            print(f"| {what} | {sum(sizes):,} | {len(sizes)} | {bound:,} {bound_text} | {sum(sizes) / bound:.4f} |")

        # fsspec binds a file's _fetch_range when it opens it: one counter per object, split by position
        for label, tensor in (("middle", names[len(names) // 2]), ("first", names[0])):
            begin, end = table[tensor]
            start, stop = data_start + begin, data_start + end
            tokens = (stop - 1) // chunk - start // chunk + 1
            what = f"{label} weight, {(end - begin) / MIB:.2f} MiB over {tokens} chunks"
            with counting_fetches() as gets:
                with safe_open(shard_url, key, framework="np", storage_options=options) as f:
                    opened = len(gets)
                    array = f.get_tensor(tensor)
            assert array.tobytes() == expected[shard_names[0]][start:stop]
            if args.verbose:
                print(f"  safe_open {tensor} [{start}, {stop}): GETs {gets}, the first {opened} opening")
            row(f"safe_open(sealed shard), opening ({what})", gets[:opened], HEADER_WINDOW, "(header window)")
            row("the same: get_tensor", gets[opened:], tokens * token, "(its tokens)")
            row("the same: opening + get_tensor", gets, tokens * token + HEADER_WINDOW, "(its tokens + header window)")

            with counting_fetches() as gets, open_folder(sealed_url, key, storage_options=options) as folder:
                with folder.open(shard_names[0]) as member:

                    def read(at: int, n: int, member: io.BufferedIOBase = member) -> bytes:
                        member.seek(at)
                        return member.read(n)

                    member_start, _ = tensor_table(read)
                assert member_start == data_start
                opened = len(gets)
                # where the member sits in the folder's payload (a private attribute: a tool's look)
                at = folder._member(shard_names[0]).offset + start
                member_tokens = (at + (stop - start) - 1) // chunk - at // chunk + 1
                out = bytearray(end - begin)
                folder.read_into(shard_names[0], out, start)
            assert out == expected[shard_names[0]][start:stop]
            if args.verbose:
                print(f"  folder {tensor}: GETs {gets}, the first {opened} opening")
            row(f"open_folder + member's safetensors header ({what})", gets[:opened], HEADER_WINDOW, "(header window)")
            row(
                "the same: read_into(the tensor's range)",
                gets[opened:],
                member_tokens * token,
                f"(its {member_tokens} tokens in the folder)",
            )
            row("the same: all", gets, member_tokens * token + HEADER_WINDOW, "(its tokens + header window)")

        # 3. where the time goes
        sealed_bytes = s3.cat_file(f"{BUCKET}/model.env")
        get_times = [timed(lambda: s3.cat_file(f"{BUCKET}/model.env")) for _ in range(3)]
        local = root / "model.env"
        local.write_bytes(sealed_bytes)

        def decrypt(threads: int) -> None:
            with open_folder(local, key) as folder:
                for name in shard_names:
                    out = bytearray(folder.size(name))
                    folder.read_into(name, out, threads=threads)

        one_worker = min(timed(lambda: decrypt(1)) for _ in range(3))
        two_workers = min(timed(lambda: decrypt(2)) for _ in range(3))
        fresh = min(timed(lambda: [bytearray(sizes[n]) for n in shard_names]) for _ in range(3))
        print(f"\nWhere the time goes ({len(sealed_bytes) / MIB:.0f} MiB sealed, best of 3):")
        print(f"  one GET of the whole sealed object (s3fs cat_file): {min(get_times):.3f} s")
        print(
            f"  decrypting the same from tmpfs, read_into, 1 worker: {one_worker:.3f} s; 2 workers: {two_workers:.3f} s"
        )
        print(f"  allocating the output buffers (bytearray, zeroed): {fresh:.3f} s")
        serial = best["envelope open_folder(s3://).read_into, one shard after another"]
        print(f"  envelope remote, one shard after another (best above): {serial:.3f} s")
        with counting_fetches() as gets:
            envelope_serial()
        print(
            f"  bytes fetched by one envelope read of every shard: {sum(gets):,} in {len(gets)} GETs "
            f"({sum(gets) / len(sealed_bytes):.3f}x the sealed object's {len(sealed_bytes):,})"
        )
        profile = cProfile.Profile()
        profile.enable()
        envelope_serial()
        profile.disable()
        print("\nProfile of one remote read of every shard (calling thread; the fetch runs on another):")
        stats = pstats.Stats(profile)
        stats.sort_stats("tottime").print_stats(args.profile_lines)
    finally:
        server.stop()
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
