#!/usr/bin/env python3
"""Seal/open throughput and peak memory of envelope against its peers, side by side in one run.

Every case runs in a fresh Python process (so peak RSS is its own) on the same payload file, which
sits in the page cache; the runs of all cases are interleaved (round robin), so that noise on a
shared machine spreads over all of them alike. Reported: plaintext MB/s (median of --repeat runs),
peak RSS (VmHWM), and ratios to the raw primitive: AES-128-CBC + HMAC-SHA256 per 1 MiB chunk, file
to file, on 2 threads (what envelope does, minus the format) and on 1 thread.

Peers, each file to file with its own streaming API: pyrage (age, X25519 recipient), Tink streaming
AEAD (AES256_GCM_HKDF_1MB), the AWS Encryption SDK (raw RSA-3072 OAEP-SHA256 master key, default
commitment policy and algorithm suite, 1 MiB frames). A peer that is not installed is skipped;
tools/bench.sh installs them all into .venv-bench.

    tools/bench.sh --size-mib 1024 --flat-check 4096      # the README table
    tools/bench.sh --size-mib 1024 --repeat 1 --cases seal_file open_file \\
        --sweep-chunk-sizes 65536,262144,1048576,4194304  # chunk size sweep
    tools/bench.sh --size-mib 64 --repeat 1               # quick look

envelope's seal_file/open_file fsync their output (atomic outputs); the peers do not. The
"seal_stream"/"open_stream" rows are envelope on plain file objects, without fsync, to show it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

MIB = 1 << 20
CHUNK = 1 << 20  # the raw primitive's chunk, Tink's segment, the AWS SDK's frame
AWS_FRAME_LENGTH = 1 << 20  # the SDK's default is 4096 bytes


class Case(NamedTuple):
    label: str
    engine: str  # a key of ENGINES, or "memory" for the in-memory cases
    encrypt: bool


CASES = {
    "seal_file": Case("envelope seal_file", "envelope_file", True),
    "open_file": Case("envelope open_file", "envelope_file", False),
    "seal_stream": Case("envelope seal_stream, file objects, no fsync", "envelope_stream", True),
    "open_stream": Case("envelope open_stream, file objects, no fsync", "envelope_stream", False),
    "cli_seal": Case("envelope seal (the command, whole process)", "cli", True),
    "cli_open": Case("envelope open (the command, whole process)", "cli", False),
    "reader_read": Case("envelope EnvelopeReader read loop (64 KiB reads)", "envelope_reader", False),
    "stream_reader_read": Case("envelope EnvelopeStreamReader read loop, pipe", "envelope_stream_reader", False),
    "seal_bytes": Case("envelope.seal (bytes)", "memory", True),
    "open_bytes": Case("envelope.open (bytes)", "memory", False),
    "raw2_encrypt": Case("raw AES-CBC+HMAC, 1 MiB chunks, 2 threads (encrypt)", "raw2", True),
    "raw2_decrypt": Case("raw AES-CBC+HMAC, 1 MiB chunks, 2 threads (decrypt)", "raw2", False),
    "raw_encrypt": Case("raw AES-CBC+HMAC, 1 MiB chunks, 1 thread (encrypt)", "raw1", True),
    "raw_decrypt": Case("raw AES-CBC+HMAC, 1 MiB chunks, 1 thread (decrypt)", "raw1", False),
    "tink_encrypt": Case("Tink streaming AEAD AES256_GCM_HKDF_1MB (encrypt)", "tink", True),
    "tink_decrypt": Case("Tink streaming AEAD AES256_GCM_HKDF_1MB (decrypt)", "tink", False),
    "pyrage_encrypt": Case("pyrage (age, X25519) encrypt_file", "pyrage", True),
    "pyrage_decrypt": Case("pyrage (age, X25519) decrypt_file", "pyrage", False),
    "aws_encrypt": Case("aws-encryption-sdk, raw RSA-3072, 1 MiB frames (encrypt)", "aws", True),
    "aws_decrypt": Case("aws-encryption-sdk, raw RSA-3072, 1 MiB frames (decrypt)", "aws", False),
    "naive_encrypt": Case("naive: Fernet on the whole payload (encrypt)", "memory", True),
    "naive_decrypt": Case("naive: Fernet on the whole payload (decrypt)", "memory", False),
}
PEER_MODULES = {"tink": "tink", "pyrage": "pyrage", "aws": "aws_encryption_sdk"}
FILE_CASES = ("seal_file", "open_file")  # what --sweep-chunk-sizes and --flat-check run
# (envelope case, reference case, minimum ratio): the targets of the performance issues.
TARGETS = [
    ("cli_seal", "tink_encrypt", 1.0),
    ("cli_seal", "pyrage_encrypt", 1.0),
    ("cli_seal", "raw2_encrypt", 0.85),
    ("cli_open", "tink_decrypt", 1.0),
    ("cli_open", "pyrage_decrypt", 1.0),
    ("cli_open", "raw2_decrypt", 0.85),
    ("stream_reader_read", "open_stream", 0.85),
    ("seal_file", "tink_encrypt", 1.0),
    ("seal_file", "pyrage_encrypt", 2.0),
    ("seal_file", "raw2_encrypt", 0.85),
    ("open_file", "tink_decrypt", 1.0),
    ("open_file", "pyrage_decrypt", 2.5),
    ("open_file", "raw2_decrypt", 0.85),
]
RSS_LIMIT_MIB = 64  # envelope seal_file/open_file, whatever the payload size

Op = Callable[[str, str], object]  # (source path, destination path)


# --- engines: each returns the operation, its keys already loaded (key setup is not timed) -------


def _envelope_file(work: str, encrypt: bool, chunk_size: int | None = None) -> Op:
    import envelope

    key = envelope.parse_private_key(_read(work, "key.pem"))
    size = chunk_size or envelope.DEFAULT_CHUNK_SIZE
    if encrypt:
        return lambda src, dst: envelope.seal_file(src, dst, key.public_key(), chunk_size=size)
    return lambda src, dst: envelope.open_file(src, dst, key)


def _envelope_stream(work: str, encrypt: bool, chunk_size: int | None = None) -> Op:
    import envelope

    key = envelope.parse_private_key(_read(work, "key.pem"))
    size = chunk_size or envelope.DEFAULT_CHUNK_SIZE

    def op(src: str, dst: str) -> None:
        with open(src, "rb") as f, open(dst, "wb") as g:
            if encrypt:
                envelope.seal_stream(f, g, key.public_key(), chunk_size=size)
            else:
                envelope.open_stream(f, g, key)

    return op


def _raw(work: str, encrypt: bool, threads: int = 1) -> Op:
    """The primitive Fernet builds on, with no format around it: the speed ceiling of envelope.

    Per chunk, AES-128-CBC (one full padding block: chunks are multiples of 16) then HMAC-SHA256 of
    the ciphertext. With several threads: read and write on the calling thread, in order, at most
    threads + 2 chunks in flight (envelope's own pipeline shape).
    """
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key, mac_key, iv = b"k" * 16, b"m" * 16, b"i" * 16
    step = CHUNK if encrypt else CHUNK + 16 + 32

    def seal(data: memoryview, out: memoryview) -> int:
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        w = enc.update_into(data, out)
        w += enc.update_into(b"\x10" * 16, out[w:])
        h = hmac.HMAC(mac_key, hashes.SHA256())
        h.update(out[:w])
        out[w : w + 32] = h.finalize()
        return w + 32

    def unseal(data: memoryview, out: memoryview) -> int:
        h = hmac.HMAC(mac_key, hashes.SHA256())
        h.update(data[:-32])
        h.verify(bytes(data[-32:]))
        dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        return dec.update_into(data[:-32], out) - 16

    job = seal if encrypt else unseal

    def op(src: str, dst: str) -> None:
        with open(src, "rb") as f, open(dst, "wb") as g:
            if threads == 1:
                buffer, out = memoryview(bytearray(step)), memoryview(bytearray(CHUNK + 96))
                while n := f.readinto(buffer):
                    g.write(out[: job(buffer[:n], out)])
                return
            free = [(memoryview(bytearray(step)), memoryview(bytearray(CHUNK + 96))) for _ in range(threads + 2)]
            pending: deque[Future[tuple[memoryview, memoryview, int]]] = deque()

            def run(buffer: memoryview, n: int, out: memoryview) -> tuple[memoryview, memoryview, int]:
                return buffer, out, job(buffer[:n], out)

            def deliver() -> None:
                buffer, out, w = pending.popleft().result()
                g.write(out[:w])
                free.append((buffer, out))

            with ThreadPoolExecutor(threads) as pool:
                while True:
                    if not free:
                        deliver()
                    buffer, out = free.pop()
                    n = f.readinto(buffer)
                    if not n:
                        break
                    pending.append(pool.submit(run, buffer, n, out))
                while pending:
                    deliver()

    return op


def _raw2(work: str, encrypt: bool) -> Op:
    return _raw(work, encrypt, threads=2)


def _tink(work: str, encrypt: bool) -> Op:
    import tink
    from tink import secret_key_access, streaming_aead

    streaming_aead.register()
    handle = tink.json_proto_keyset_format.parse(_read(work, "tink.json").decode(), secret_key_access.TOKEN)
    primitive = handle.primitive(streaming_aead.StreamingAead)

    def op(src: str, dst: str) -> None:
        with open(src, "rb") as f, open(dst, "wb") as g:
            if encrypt:
                with primitive.new_encrypting_stream(g, b"") as stream:
                    shutil.copyfileobj(f, stream, CHUNK)
            else:
                with primitive.new_decrypting_stream(f, b"") as stream:
                    shutil.copyfileobj(stream, g, CHUNK)

    return op


def _pyrage(work: str, encrypt: bool) -> Op:
    import pyrage

    identity = pyrage.x25519.Identity.from_str(_read(work, "age.key").decode())
    if encrypt:
        recipient = identity.to_public()
        return lambda src, dst: pyrage.encrypt_file(src, dst, [recipient])
    return lambda src, dst: pyrage.decrypt_file(src, dst, [identity])


def _aws(work: str, encrypt: bool) -> Op:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.key_providers.raw import RawMasterKey, WrappingKey

    master_key = RawMasterKey(
        provider_id="bench",
        key_id=b"rsa-3072",
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
            wrapping_key=_read(work, "key.pem"),
            wrapping_key_type=EncryptionKeyType.PRIVATE,
        ),
    )
    client = aws_encryption_sdk.EncryptionSDKClient()  # default commitment policy
    options = {"mode": "encrypt", "frame_length": AWS_FRAME_LENGTH} if encrypt else {"mode": "decrypt"}

    def op(src: str, dst: str) -> None:
        with (
            open(src, "rb") as f,
            open(dst, "wb") as g,
            client.stream(source=f, key_provider=master_key, **options) as s,
        ):
            while piece := s.read(CHUNK):
                g.write(piece)

    return op


def _envelope_reader(work: str, encrypt: bool, chunk_size: int | None = None, *, pipe: bool = False) -> Op:
    """A read loop over a reader: what a framework's load does (64 KiB reads, into one buffer)."""
    import io

    import envelope

    key = envelope.parse_private_key(_read(work, "key.pem"))

    class Pipe(io.RawIOBase):
        def __init__(self, f: io.RawIOBase) -> None:
            self._f = f

        def readable(self) -> bool:
            return True

        def readinto(self, b: object) -> int:
            return self._f.readinto(b)  # type: ignore[arg-type]

    def op(src: str, dst: str) -> None:
        with open(src, "rb", buffering=0) as f:
            reader_class = envelope.EnvelopeStreamReader if pipe else envelope.EnvelopeReader
            with reader_class(Pipe(f) if pipe else f, key) as reader:
                buffer = bytearray(1 << 16)
                while reader.readinto(buffer):
                    pass

    return op


def _envelope_stream_reader(work: str, encrypt: bool, chunk_size: int | None = None) -> Op:
    return _envelope_reader(work, encrypt, chunk_size, pipe=True)


def _cli_command(work: str, case: Case, src: str, dst: str) -> list[str]:
    """The envelope command of a "cli" case, run as a user would."""
    envelope_bin = os.path.join(os.path.dirname(sys.executable), "envelope")
    if case.encrypt:
        return [envelope_bin, "seal", "-q", "-r", os.path.join(work, "key.pem.pub"), "-o", dst, src]
    return [envelope_bin, "open", "-q", "-i", os.path.join(work, "key.pem"), "-o", dst, src]


ENGINES: dict[str, Callable[..., Op]] = {
    "envelope_file": _envelope_file,
    "envelope_stream": _envelope_stream,
    "envelope_reader": _envelope_reader,
    "envelope_stream_reader": _envelope_stream_reader,
    "raw1": _raw,
    "raw2": _raw2,
    "tink": _tink,
    "pyrage": _pyrage,
    "aws": _aws,
}


def _read(work: str, name: str) -> bytes:
    with open(os.path.join(work, name), "rb") as f:
        return f.read()


# Engines that only read what another engine sealed.
SEALED_BY = {"envelope_reader": "envelope_file", "envelope_stream_reader": "envelope_file", "cli": "envelope_file"}


def _sealed(work: str, engine: str, chunk_size: int | None = None) -> str:
    """Where the encrypted payload of ``engine`` (the input of its decrypt case) is kept."""
    engine = SEALED_BY.get(engine, engine)
    return os.path.join(work, f"{engine}-{chunk_size}.enc" if chunk_size else f"{engine}.enc")


def _engine(engine: str, work: str, encrypt: bool, chunk_size: int | None) -> Op:
    return ENGINES[engine](work, encrypt, chunk_size) if chunk_size else ENGINES[engine](work, encrypt)


# --- the worker: one case, in its own process ------------------------------------------------


def _worker(case_id: str, work: str, chunk_size: int | None) -> dict[str, float]:
    case = CASES[case_id]
    payload = os.path.join(work, "payload.bin")
    out = os.path.join(work, f"out-{case_id}")
    if os.path.exists(out):
        os.unlink(out)
    if case.engine == "memory":
        seconds, base = _in_memory(case_id, work)
    else:
        op = _engine(case.engine, work, case.encrypt, chunk_size)
        src = payload if case.encrypt else _sealed(work, case.engine, chunk_size)
        base = _rss_mib("VmRSS")
        start = time.perf_counter()
        op(src, out)
        seconds = time.perf_counter() - start
    if os.path.exists(out):
        os.unlink(out)
    return {"seconds": seconds, "peak_rss_mib": _rss_mib("VmHWM"), "base_rss_mib": base}


def _in_memory(case_id: str, work: str) -> tuple[float, float]:
    """Time one in-memory case; the data is read before the clock starts. Returns (seconds, RSS
    before the data was read)."""
    from cryptography.fernet import Fernet

    import envelope

    key = envelope.parse_private_key(_read(work, "key.pem"))
    source = {
        "seal_bytes": "payload.bin",
        "open_bytes": "envelope_file.enc",
        "naive_encrypt": "payload.bin",
        "naive_decrypt": "naive.token",
    }[case_id]
    base = _rss_mib("VmRSS")
    data = _read(work, source)
    start = time.perf_counter()
    if case_id == "seal_bytes":
        result = envelope.seal(data, key.public_key())
    elif case_id == "open_bytes":
        result = envelope.open(data, key)
    elif case_id == "naive_encrypt":
        result = Fernet(Fernet.generate_key()).encrypt(data)
    else:
        result = Fernet(_read(work, "naive.key")).decrypt(data)
    seconds = time.perf_counter() - start
    assert len(result) > 0
    return seconds, base


def _rss_mib(field: str) -> float:
    """VmRSS now, or VmHWM: this process image's own high-water mark (afresh at exec; ru_maxrss is not)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


# --- driver ----------------------------------------------------------------------------------


def _available(case_id: str) -> bool:
    module = PEER_MODULES.get(CASES[case_id].engine)
    return module is None or importlib.util.find_spec(module) is not None


def _prepare(work: str, size_mib: int, cases: list[str], chunk_sizes: list[int]) -> None:
    """The payload, the keys, and every decrypt case's input (made by its own engine)."""
    import envelope

    payload = os.path.join(work, "payload.bin")
    block = os.urandom(MIB)
    with open(payload, "wb") as f:
        for _ in range(size_mib):
            f.write(block)
    key = envelope.generate_private_key(3072)
    with open(os.path.join(work, "key.pem"), "wb") as f:
        f.write(envelope.private_key_pem(key))
    with open(os.path.join(work, "key.pem.pub"), "wb") as f:
        f.write(envelope.public_key_pem(key))
    os.chmod(os.path.join(work, "key.pem"), 0o600)
    if "tink" in {CASES[c].engine for c in cases}:
        import tink
        from tink import secret_key_access, streaming_aead

        streaming_aead.register()
        handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
        with open(os.path.join(work, "tink.json"), "w") as f:
            f.write(tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    if "pyrage" in {CASES[c].engine for c in cases}:
        import pyrage

        with open(os.path.join(work, "age.key"), "w") as f:
            f.write(str(pyrage.x25519.Identity.generate()))
    engines = {SEALED_BY.get(CASES[c].engine, CASES[c].engine) for c in cases if not CASES[c].encrypt} - {"memory"}
    if "open_bytes" in cases:
        engines.add("envelope_file")
    for engine in sorted(engines):
        _engine(engine, work, True, None)(payload, _sealed(work, engine))
    for chunk_size in chunk_sizes:
        _engine("envelope_file", work, True, chunk_size)(payload, _sealed(work, "envelope_file", chunk_size))
    if "naive_decrypt" in cases:
        # In a child: this process must stay small, since a command it spawns (vfork, then exec)
        # starts with its high-water mark as ru_maxrss.
        subprocess.run([sys.executable, __file__, "--prepare-naive", work], check=True)


def _prepare_naive(work: str) -> None:
    from cryptography.fernet import Fernet

    naive_key = Fernet.generate_key()
    with open(os.path.join(work, "naive.key"), "wb") as f:
        f.write(naive_key)
    with open(os.path.join(work, "naive.token"), "wb") as f:
        f.write(Fernet(naive_key).encrypt(_read(work, "payload.bin")))


class Result(NamedTuple):
    speed: float  # plaintext MB/s, median, of the operation alone
    rss: float  # peak RSS MiB, max over runs
    base: float  # RSS before the operation, MiB
    whole: float  # plaintext MB/s, median, of the whole process (start-up, imports, keys included)


Job = tuple[str, int | None]  # (case id, chunk size or None for the default)


def _run(work: str, size_mib: int, jobs: list[Job], repeat: int) -> dict[Job, Result]:
    """Run every job ``repeat`` times, round robin, each run in a fresh process."""
    runs: dict[Job, list[dict[str, float]]] = {job: [] for job in jobs}
    for round_ in range(repeat):
        for case, chunk_size in jobs:
            if CASES[case].engine == "cli":
                runs[case, chunk_size].append(_run_command(work, CASES[case]))
            else:
                command = [sys.executable, __file__, "--worker", case, work]
                if chunk_size:
                    command += ["--chunk-size", str(chunk_size)]
                started = time.perf_counter()
                result = subprocess.run(command, capture_output=True, text=True)
                whole = time.perf_counter() - started
                if result.returncode != 0:
                    raise SystemExit(f"case {case} failed:\n{result.stderr}")
                runs[case, chunk_size].append({**json.loads(result.stdout.splitlines()[-1]), "whole_seconds": whole})
            speed = size_mib * MIB / 1e6 / runs[case, chunk_size][-1]["seconds"]
            where = f" (chunk size {chunk_size})" if chunk_size else ""
            print(f"  [{round_ + 1}/{repeat}] {CASES[case].label}{where}: {speed:.0f} MB/s", file=sys.stderr)
    size_mb = size_mib * MIB / 1e6
    return {
        job: Result(
            size_mb / statistics.median(r["seconds"] for r in rs),
            max(r["peak_rss_mib"] for r in rs),
            statistics.median(r["base_rss_mib"] for r in rs),
            size_mb / statistics.median(r["whole_seconds"] for r in rs),
        )
        for job, rs in runs.items()
    }


def _run_command(work: str, case: Case) -> dict[str, float]:
    """One run of a command, timed from the outside: the whole process, as a user waits for it.

    It is started by a small, fresh process (``--time-command``): a process spawned from this one
    would begin with this one's high-water mark as its ru_maxrss (vfork, then exec), and this one
    ran the peers' preparation."""
    src = os.path.join(work, "payload.bin") if case.encrypt else _sealed(work, "envelope_file")
    dst = os.path.join(work, "out-cli")
    if os.path.exists(dst):
        os.unlink(dst)
    command = [sys.executable, __file__, "--time-command", *_cli_command(work, case, src, dst)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{case.label} failed: {result.stderr}")
    os.unlink(dst)
    seconds, peak_kib = json.loads(result.stdout)
    return {"seconds": seconds, "whole_seconds": seconds, "peak_rss_mib": peak_kib / 1024, "base_rss_mib": 0.0}


def _time_command(command: list[str]) -> None:
    """Run ``command`` and print [wall seconds, its peak RSS in KiB]; exit with its status."""
    with tempfile.TemporaryFile() as stderr_file:  # a file, not a pipe: nothing waits for a reader
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr_file)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage, which Popen.wait drops
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        if status != 0:
            stderr_file.seek(0)
            sys.exit(stderr_file.read().decode(errors="replace") or f"exit status {process.returncode}")
    print(json.dumps([seconds, usage.ru_maxrss]))


def _by_case(results: dict[Job, Result], chunk_size: int | None = None) -> dict[str, Result]:
    return {case: r for (case, size), r in results.items() if size == chunk_size}


def _ratio(results: dict[str, Result], case: str, reference: str) -> str:
    return f"{results[case].speed / results[reference].speed:.2f}" if reference in results else "-"


def _print_table(results: dict[str, Result], size_mib: int) -> None:
    head = f"| {'case':<58} | {'MB/s':>6} | {'x raw 2T':>8} | {'x raw 1T':>8} | {'whole process MB/s':>18} "
    print(head + f"| {'x raw 2T':>8} | {'peak RSS MiB':>12} | {'RSS/N':>5} |")
    print(f"|{'-' * 60}|{'-' * 7}:|{'-' * 9}:|{'-' * 9}:|{'-' * 19}:|{'-' * 9}:|{'-' * 13}:|{'-' * 6}:|")
    for case, r in results.items():
        direction = "encrypt" if CASES[case].encrypt else "decrypt"
        rss_n = f"{r.rss / size_mib:.2f}" if CASES[case].engine == "memory" else "-"
        raw = results.get("raw2_" + direction)
        whole_ratio = f"{r.whole / raw.whole:.2f}" if raw else "-"
        if CASES[case].engine == "cli":  # a command is timed whole process only
            alone, raw2, raw1 = "-", "-", "-"
        else:
            alone = f"{r.speed:.0f}"
            raw2, raw1 = _ratio(results, case, "raw2_" + direction), _ratio(results, case, "raw_" + direction)
        print(
            f"| {CASES[case].label:<58} | {alone:>6} | {raw2:>8} | {raw1:>8} | {r.whole:>18.0f} | {whole_ratio:>8} "
            f"| {r.rss:>12.0f} | {rss_n:>5} |"
        )


def _print_memory(results: dict[str, Result], size_mib: int) -> None:
    """In-memory envelope: peak RSS against what must be held anyway (input + output)."""
    rows = [c for c in ("seal_bytes", "open_bytes") if c in results]
    if not rows:
        return
    print(f"\nIn memory, N = {size_mib} MiB; input + output is the least any one-shot API must hold:\n")
    print("| case | input MiB | output MiB | peak RSS MiB | RSS/N | interpreter MiB | above in+out+interpreter MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in rows:
        r = results[case]
        held = 2 * size_mib  # sealed bytes are N plus 0.01 % (tokens, header); the plaintext is N
        print(
            f"| {CASES[case].label} | {size_mib} | {size_mib} | {r.rss:.0f} | {r.rss / size_mib:.2f} "
            f"| {r.base:.0f} | {r.rss - r.base - held:.0f} |"
        )


def _check(value: float, limit: float, at_least: bool) -> str:
    return "PASS" if (value >= limit if at_least else value <= limit) else "MISS"


def _print_ratios(results: dict[str, Result]) -> None:
    if not any(case in results and reference in results for case, reference, _ in TARGETS):
        return
    print("\nTargets (ratios of plaintext MB/s, same run):\n")
    print("| envelope | vs | ratio | target | result |")
    print("|---|---|---:|---:|---|")
    for case, reference, minimum in TARGETS:
        if case in results and reference in results:
            # A command is compared whole process to whole process (start-up, imports, keys).
            whole = CASES[case].engine == "cli"
            ratio = (
                (results[case].whole / results[reference].whole)
                if whole
                else results[case].speed / results[reference].speed
            )
            print(
                f"| {CASES[case].label} | {CASES[reference].label} | {ratio:.2f} | >= {minimum:.2f} "
                f"| {_check(ratio, minimum, True)} |"
            )
        stream = case.replace("_file", "_stream")  # the same without fsync, for information
        if stream != case and stream in results and reference in results:
            ratio = results[stream].speed / results[reference].speed
            print(f"| ({CASES[stream].label}) | {CASES[reference].label} | {ratio:.2f} | ({minimum:.2f}) | (info) |")


def _print_sweep(sweep: dict[int, dict[str, Result]], size_mib: int, repeat: int) -> None:
    print(f"\nChunk size sweep, envelope seal_file/open_file, {size_mib} MiB (median of {repeat}, interleaved):\n")
    print("| chunk size | seal MB/s | seal peak RSS MiB | open MB/s | open peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    for chunk_size, results in sweep.items():
        seal, open_ = results["seal_file"], results["open_file"]
        print(f"| {chunk_size} | {seal.speed:.0f} | {seal.rss:.0f} | {open_.speed:.0f} | {open_.rss:.0f} |")


def _print_flat(by_size: dict[int, dict[str, Result]], repeat: int) -> None:
    print(f"\nPeak RSS against payload size, envelope seal_file/open_file (median of {repeat}):\n")
    print("| payload MiB | seal MB/s | seal peak RSS MiB | open MB/s | open peak RSS MiB | target | result |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for size, results in sorted(by_size.items()):
        seal, open_ = results["seal_file"], results["open_file"]
        worst = max(seal.rss, open_.rss)
        print(
            f"| {size} | {seal.speed:.0f} | {seal.rss:.0f} | {open_.speed:.0f} | {open_.rss:.0f} "
            f"| <= {RSS_LIMIT_MIB} | {_check(worst, RSS_LIMIT_MIB, False)} |"
        )


def _sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=256, help="payload size in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown (default 3)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help=f"subset of: {' '.join(CASES)}")
    parser.add_argument(
        "--flat-check",
        "--sizes",
        dest="sizes",
        type=_sizes,
        default=[],
        metavar="MIB[,MIB...]",
        help="also run envelope seal_file/open_file at these payload sizes (peak RSS must stay flat)",
    )
    parser.add_argument(
        "--sweep-chunk-sizes",
        type=_sizes,
        default=[],
        metavar="BYTES[,BYTES...]",
        help="also run envelope seal_file/open_file at --size-mib with these chunk sizes",
    )
    parser.add_argument("--dir", help="where the payload goes (default: the system temp folder)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare-naive", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--time-command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--chunk-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_command:
        _time_command(args.time_command)
        return
    if args.prepare_naive:
        _prepare_naive(args.prepare_naive)
        return
    if args.worker:
        print(json.dumps(_worker(args.worker[0], args.worker[1], args.chunk_size)))
        return
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {' '.join(unknown)}; known: {' '.join(CASES)}")
    cases = [c for c in CASES if c in args.cases and _available(c)]  # table order
    for case in set(args.cases) - set(cases):
        print(f"skipping {case}: {PEER_MODULES[CASES[case].engine]} is not installed", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="envelope-bench-", dir=args.dir) as work:
        print(f"preparing {args.size_mib} MiB payload in {work} ...", file=sys.stderr)
        _prepare(work, args.size_mib, cases, args.sweep_chunk_sizes)
        results = _by_case(_run(work, args.size_mib, [(case, None) for case in cases], args.repeat))
        if args.sweep_chunk_sizes:  # all chunk sizes interleaved, so noise hits them alike
            jobs = [(case, size) for size in args.sweep_chunk_sizes for case in FILE_CASES]
            swept = _run(work, args.size_mib, jobs, args.repeat)
            sweep = {size: _by_case(swept, size) for size in args.sweep_chunk_sizes}
    by_size = {args.size_mib: results} if all(c in results for c in FILE_CASES) else {}
    for size in args.sizes:
        if size in by_size:
            continue
        with tempfile.TemporaryDirectory(prefix="envelope-bench-", dir=args.dir) as work:
            print(f"preparing {size} MiB payload in {work} ...", file=sys.stderr)
            _prepare(work, size, list(FILE_CASES), [])
            by_size[size] = _by_case(_run(work, size, [(case, None) for case in FILE_CASES], args.repeat))

    print(
        f"\n{args.size_mib} MiB payload, file to file (page cache), median of {args.repeat}, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n"
    )
    _print_table(results, args.size_mib)
    _print_ratios(results)
    _print_memory(results, args.size_mib)
    if args.sweep_chunk_sizes:
        _print_sweep(sweep, args.size_mib, args.repeat)
    if args.sizes:
        _print_flat(by_size, args.repeat)


if __name__ == "__main__":
    main()
