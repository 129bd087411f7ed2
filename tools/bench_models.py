#!/usr/bin/env python3
"""Loading a model: envelope's adapters against plaintext loaders and the encrypted peers, in one run.

The model is N MiB of float32 tensors shaped like a 1 GiB checkpoint (issue 20): 4096x2816 matrices
(44 MiB each; 23 of them at 1 GiB) plus 24 small 4096-row tensors that fill the rest (4096x32 at
1 GiB). ``--size-mib`` scales the number of big matrices. Every tool saves the same tensors to its
own file, on tmpfs (``--dir``, /dev/shm by default) in a temporary folder removed at the end.

Cases, whole model (each a dict of torch tensors on the CPU at the end):

- ``torch_load``: ``torch.load(path, weights_only=True)`` of the plaintext ``torch.save`` file;
- ``safetensors``: ``safetensors.torch.load_file`` of the plaintext;
- ``cryptotensors``: ``cryptotensors.torch.load_file`` of a file encrypted (AES-256-GCM) and signed
  (Ed25519) by cryptotensors; its keys (JWK) are registered beforehand with
  ``cryptotensors.register_direct_key_provider``, the signing key as its public half only, so that
  the signer is pinned as envelope's is;
- ``tensorizer``: ``TensorDeserializer(path, device="cpu", encryption=DecryptionParams.from_key(k))``
  of a state dict written by ``TensorSerializer(..., encryption=EncryptionParams(k))``, default
  options otherwise (``verify_hash=False``, its own choice of reader threads);
- ``envelope_torch`` / ``envelope_safetensors``: ``envelope.models.torch.load`` and
  ``envelope.models.safetensors.load(..., library="torch")``, files sealed to an RSA-3072 recipient
  and signed with an Ed25519 key, loaded with the signer pinned (``signed_by=``).

Cases, one 46 MB tensor (4096x2816 float32) by name, opening the file included:
``safetensors.safe_open(...).get_tensor``, cryptotensors' ``safe_open(...).get_tensor``,
tensorizer's ``TensorDeserializer(..., lazy_load=True)[name]``, and
``envelope.models.safetensors.safe_open(path, key, framework="pt", signed_by=...).get_tensor`` when
the envelope being run has it (the case is skipped with a note otherwise). A peer that is not
installed is skipped with a note.

Method. Each run of a case is a fresh Python process (``--worker``): it imports what it needs and
loads its keys (untimed; a key is parsed, never generated, there: the setup made them all), resets
its peak-RSS mark (``echo 5 > /proc/self/clear_refs``), reads VmRSS, then times the call from just
before it until every tensor is materialised: one float is read from every 4 KiB page of every
tensor, so that a loader that maps the file lazily (safetensors) pays its page faults inside the
timing, as an eager one does. Then it reads VmHWM: the peak RSS increase of the load is VmHWM after
minus VmRSS before (tmpfs pages a loader maps count, as they are resident memory of the process).
Interpreter start-up and imports are outside both figures. The loaded tensors are then checked
against the saved ones (names, shapes, a checksum of each first row), untimed. The parent runs
``--rounds`` rounds, every case once per round (round robin, the starting case rotating), so that
noise on a shared machine spreads over all cases alike, and reports the best and the median time
and the largest peak. Ratios are taken within the run: best / best (median / median).

    tools/bench_models.sh --size-mib 1024 --rounds 5 --chart docs/bench-models.png
    tools/bench_models.sh --size-mib 64 --rounds 1                 # quick look
    .venv-bench-models/bin/python tools/bench_models.py --help

tools/bench_models.sh makes its own venv, .venv-bench-models, with the CPU build of torch and the
peers pinned in tools/bench-models-requirements.txt.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, NamedTuple

MIB = 1 << 20
BIG_SHAPE = (4096, 2816)  # 44 MiB of float32: the tensor of the one-tensor cases
BIG_MIB = BIG_SHAPE[0] * BIG_SHAPE[1] * 4 // MIB
SMALL_COUNT = 24
SMALL_ROWS = 4096
PAGE_FLOATS = 4096 // 4  # one float32 per 4 KiB page
RSS_MARGIN_MIB = 64  # issue 20: a load peaks at most at the model's size plus this


class Case(NamedTuple):
    label: str
    kind: str  # "model" (the whole model) or "tensor" (one big tensor by name)
    module: str  # what must be importable for the case to run
    file: str  # which prepared file it reads


CASES = {
    "torch_load": Case("torch.load(weights_only=True), plaintext", "model", "torch", "model.pt"),
    "safetensors": Case("safetensors.torch.load_file, plaintext", "model", "safetensors", "model.safetensors"),
    "cryptotensors": Case("cryptotensors load_file (encrypted, signed)", "model", "cryptotensors", "model.ct"),
    "tensorizer": Case("tensorizer, encrypted", "model", "tensorizer", "model.tensors"),
    "envelope_torch": Case("envelope torch adapter (signed, pinned)", "model", "envelope", "torch.env"),
    "envelope_safetensors": Case("envelope safetensors adapter (signed, pinned)", "model", "envelope", "st.env"),
    "safetensors_one": Case(
        "safetensors safe_open().get_tensor, plaintext", "tensor", "safetensors", "model.safetensors"
    ),
    "cryptotensors_one": Case("cryptotensors safe_open().get_tensor", "tensor", "cryptotensors", "model.ct"),
    "tensorizer_one": Case("tensorizer lazy_load=True, [name]", "tensor", "tensorizer", "model.tensors"),
    "envelope_one": Case("envelope safetensors safe_open().get_tensor (pinned)", "tensor", "envelope", "st.env"),
}
# The references of the ratio columns, per kind: (plaintext, encrypted peer).
REFERENCES = {"model": ("torch_load", "cryptotensors"), "tensor": ("safetensors_one", "cryptotensors_one")}
ENVELOPE_MODEL_CASES = ("envelope_torch", "envelope_safetensors")
LOAD_TARGET = 1.3  # issue 20: envelope's whole-model load at most this times torch.load's


# --- the model and the keys (made once, in a child process, untimed) ------------------------------


def model_layout(size_mib: int) -> dict[str, tuple[int, int]]:
    """Tensor names and shapes: as many 4096x2816 matrices as fit, then 24 small ones for the rest."""
    big = max(1, (size_mib - SMALL_COUNT // 2) // BIG_MIB)
    rest = max(size_mib - big * BIG_MIB, 1) * MIB
    columns = max(1, rest // (SMALL_COUNT * SMALL_ROWS * 4))
    layout = {f"layers.{i}.weight": BIG_SHAPE for i in range(big)}
    layout.update({f"layers.{i}.norm": (SMALL_ROWS, columns) for i in range(SMALL_COUNT)})
    return layout


def one_tensor_name(layout: dict[str, tuple[int, int]]) -> str:
    big = [name for name, shape in layout.items() if shape == BIG_SHAPE]
    return big[len(big) // 2]


def _fingerprint(tensor: Any) -> float:
    """A checksum of the first row: enough to tell that the right bytes came back."""
    return float(tensor.detach()[0].double().sum())


def prepare(work: str, size_mib: int, cases: list[str]) -> None:
    """Write the model with every tool the chosen cases need, the keys, and manifest.json."""
    import torch

    layout = model_layout(size_mib)
    generator = torch.Generator().manual_seed(20)
    tensors = {name: torch.randn(shape, generator=generator) for name, shape in layout.items()}
    files = {CASES[case].file for case in cases}
    writers = {
        "model.pt": _save_torch,
        "model.safetensors": _save_safetensors,
        "model.ct": _save_cryptotensors,
        "model.tensors": _save_tensorizer,
        "torch.env": _save_envelope,
        "st.env": _save_envelope,
    }
    for file in sorted(files):
        print(f"  writing {file} ...", file=sys.stderr)
        writers[file](work, file, tensors)
    manifest = {
        "tensors": {name: [list(t.shape), _fingerprint(t)] for name, t in tensors.items()},
        "one": one_tensor_name(layout),
        "bytes": sum(t.numel() * t.element_size() for t in tensors.values()),
    }
    _write(work, "manifest.json", json.dumps(manifest).encode())


def _save_torch(work: str, file: str, tensors: dict[str, Any]) -> None:
    import torch

    torch.save(tensors, os.path.join(work, file))


def _save_safetensors(work: str, file: str, tensors: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    save_file(tensors, os.path.join(work, file))


def _save_cryptotensors(work: str, file: str, tensors: dict[str, Any]) -> None:
    """An AES-256-GCM data key and an Ed25519 signing key, as JWKs (standard base64, as it expects)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptotensors.torch import save_file

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    signing = ed25519.Ed25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    enc_key = {"kty": "oct", "alg": "aes256gcm", "kid": "bench-enc", "k": b64(os.urandom(32))}
    sign_key = {
        "kty": "okp",
        "alg": "ed25519",
        "kid": "bench-sign",
        "d": b64(signing.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())),
        "x": b64(signing.public_key().public_bytes(raw, serialization.PublicFormat.Raw)),
    }
    save_file(tensors, os.path.join(work, file), config={"enc_key": enc_key, "sign_key": sign_key})
    verify_only = {k: v for k, v in sign_key.items() if k != "d"}
    _write(work, "cryptotensors.jwks", json.dumps({"keys": [enc_key, verify_only]}).encode())


def _save_tensorizer(work: str, file: str, tensors: dict[str, Any]) -> None:
    from tensorizer import EncryptionParams, TensorSerializer

    params = EncryptionParams.random()
    serializer = TensorSerializer(os.path.join(work, file), encryption=params)
    serializer.write_state_dict(tensors)
    serializer.close()
    _write(work, "tensorizer.key", params.key)


def _save_envelope(work: str, file: str, tensors: dict[str, Any]) -> None:
    import envelope

    if not os.path.exists(os.path.join(work, "rsa.pem")):
        _write(work, "rsa.pem", envelope.private_key_pem(envelope.generate_private_key(3072)))
        signing = envelope.generate_signing_key("ed25519")
        _write(work, "signer.pem", envelope.signing_key_pem(signing))
        _write(work, "signer.pub", envelope.verifying_key_pem(signing.public_key()))
    recipient = envelope.parse_private_key(_read(work, "rsa.pem")).public_key()
    signer = envelope.parse_signing_key(_read(work, "signer.pem"))
    path = os.path.join(work, file)
    if file == "torch.env":
        from envelope.models import torch as adapter
    else:
        from envelope.models import safetensors as adapter  # type: ignore[no-redef]
    adapter.save(tensors, path, recipient, sign_with=signer)


def _read(work: str, name: str) -> bytes:
    with open(os.path.join(work, name), "rb") as f:
        return f.read()


def _write(work: str, name: str, data: bytes) -> None:
    with open(os.path.join(work, name), "wb") as f:
        f.write(data)


# --- the loaders: each returns the call to time, its imports done and its keys loaded -------------

Load = Callable[[], dict[str, Any]]  # returns the tensors it loaded, by name


def _torch_load(work: str, path: str, name: str) -> Load:
    import torch

    return lambda: torch.load(path, weights_only=True)


def _safetensors(work: str, path: str, name: str) -> Load:
    from safetensors.torch import load_file

    return lambda: load_file(path)


def _safetensors_one(work: str, path: str, name: str) -> Load:
    from safetensors import safe_open

    def load() -> dict[str, Any]:
        with safe_open(path, framework="pt") as f:
            return {name: f.get_tensor(name)}

    return load


def _cryptotensors_keys(work: str) -> None:
    """Register the data key and the signer's public key; the file names them by key id."""
    import cryptotensors

    cryptotensors.register_direct_key_provider(keys=json.loads(_read(work, "cryptotensors.jwks")))


def _cryptotensors(work: str, path: str, name: str) -> Load:
    from cryptotensors.torch import load_file

    _cryptotensors_keys(work)
    return lambda: load_file(path)


def _cryptotensors_one(work: str, path: str, name: str) -> Load:
    from cryptotensors import safe_open

    _cryptotensors_keys(work)

    def load() -> dict[str, Any]:
        with safe_open(path, framework="pt") as f:
            return {name: f.get_tensor(name)}

    return load


def _tensorizer(work: str, path: str, name: str, *, lazy: bool = False) -> Load:
    from tensorizer import DecryptionParams, TensorDeserializer

    decryption = DecryptionParams.from_key(_read(work, "tensorizer.key"))

    def load() -> dict[str, Any]:
        with TensorDeserializer(path, device="cpu", lazy_load=lazy, encryption=decryption) as deserializer:
            return {name: deserializer[name]} if lazy else dict(deserializer)

    return load


def _tensorizer_one(work: str, path: str, name: str) -> Load:
    return _tensorizer(work, path, name, lazy=True)


def _envelope_keys(work: str) -> tuple[Any, Any]:
    import envelope

    return envelope.parse_private_key(_read(work, "rsa.pem")), envelope.parse_verifying_key(_read(work, "signer.pub"))


def _envelope_torch(work: str, path: str, name: str) -> Load:
    from envelope.models import torch as adapter

    key, signer = _envelope_keys(work)
    return lambda: adapter.load(path, key, signed_by=signer)


def _envelope_safetensors(work: str, path: str, name: str) -> Load:
    from envelope.models import safetensors as adapter

    key, signer = _envelope_keys(work)
    return lambda: adapter.load(path, key, library="torch", signed_by=signer)


def _envelope_one(work: str, path: str, name: str) -> Load:
    from envelope.models import safetensors as adapter

    key, signer = _envelope_keys(work)

    def load() -> dict[str, Any]:
        opened = adapter.safe_open(path, key, framework="pt", signed_by=signer)
        with opened if hasattr(opened, "__enter__") else contextlib.nullcontext(opened) as f:
            return {name: f.get_tensor(name)}

    return load


LOADERS: dict[str, Callable[[str, str, str], Load]] = {
    "torch_load": _torch_load,
    "safetensors": _safetensors,
    "cryptotensors": _cryptotensors,
    "tensorizer": _tensorizer,
    "envelope_torch": _envelope_torch,
    "envelope_safetensors": _envelope_safetensors,
    "safetensors_one": _safetensors_one,
    "cryptotensors_one": _cryptotensors_one,
    "tensorizer_one": _tensorizer_one,
    "envelope_one": _envelope_one,
}


# --- the worker: one run of one case, in its own process ----------------------------------------


def _status_mib(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Set VmHWM to the current RSS (Linux 4.0+), so that the next peak is the load's own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _touch(tensors: dict[str, Any]) -> None:
    """Read one float per 4 KiB page of every tensor: a lazily mapped tensor gets materialised."""
    for tensor in tensors.values():
        float(tensor.detach().reshape(-1)[::PAGE_FLOATS].sum())


def _check(case: str, tensors: dict[str, Any], manifest: dict[str, Any]) -> None:
    expected = manifest["tensors"]
    names = [manifest["one"]] if CASES[case].kind == "tensor" else list(expected)
    if sorted(tensors) != sorted(names):
        raise SystemExit(f"{case}: loaded {len(tensors)} tensors, expected {len(names)}")
    for name in names:
        shape, fingerprint = expected[name]
        got = tensors[name]
        if list(got.shape) != shape or not math.isclose(_fingerprint(got), fingerprint, rel_tol=1e-9):
            raise SystemExit(f"{case}: tensor {name} differs from the one saved")


def _import_frameworks(case: str) -> None:
    """What the loaders import lazily on their first call (envelope's adapters, safe_open with
    framework="pt"): imported here, so that no import is timed."""
    import torch
    import torch.utils.serialization  # noqa: F401  (torch.load's first call imports it)

    if CASES[case].file in ("model.safetensors", "st.env"):
        import safetensors.torch  # noqa: F401


def worker(case: str, work: str) -> dict[str, Any]:
    manifest = json.loads(_read(work, "manifest.json"))
    _import_frameworks(case)
    load = LOADERS[case](work, os.path.join(work, CASES[case].file), manifest["one"])
    gc.collect()
    modules = set(sys.modules)
    _reset_peak()
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    tensors = load()
    _touch(tensors)
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") - before
    imported = sorted(set(sys.modules) - modules)
    _check(case, tensors, manifest)
    return {"seconds": seconds, "peak_mib": peak, "rss_before_mib": before, "imported": imported}


# --- the driver -----------------------------------------------------------------------------------


class Result(NamedTuple):
    best: float  # seconds
    median: float  # seconds
    peak: float  # MiB, the largest over the rounds


def skipped_cases(cases: list[str]) -> dict[str, str]:
    """The cases that cannot run here, with the reason."""
    reasons = {}
    for case in cases:
        module = CASES[case].module
        if importlib.util.find_spec(module) is None:
            reasons[case] = f"{module} is not installed"
        elif case == "envelope_one" and not _envelope_has_safe_open():
            reasons[case] = "this envelope has no envelope.models.safetensors.safe_open yet"
    return reasons


def _envelope_has_safe_open() -> bool:
    from envelope.models import safetensors as adapter

    return callable(getattr(adapter, "safe_open", None))


def run_rounds(work: str, cases: list[str], rounds: int) -> dict[str, Result]:
    """Every case once per round, in a fresh process each; the first case rotates from round to round."""
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    for round_ in range(rounds):
        shift = round_ % len(cases)
        for case in cases[shift:] + cases[:shift]:
            command = [sys.executable, os.path.abspath(__file__), "--worker", case, work]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"case {case} failed:\n{result.stderr}{result.stdout}")
            run = json.loads(result.stdout.splitlines()[-1])
            runs[case].append(run)
            if run["imported"] and round_ == 0:
                print(f"  note: {case} imported {len(run['imported'])} modules inside the timing", file=sys.stderr)
            print(
                f"  [{round_ + 1}/{rounds}] {CASES[case].label}: {run['seconds']:.3f} s, +{run['peak_mib']:.0f} MiB",
                file=sys.stderr,
            )
    return {
        case: Result(
            min(r["seconds"] for r in rs),
            statistics.median(r["seconds"] for r in rs),
            max(r["peak_mib"] for r in rs),
        )
        for case, rs in runs.items()
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in (
        "envelope-ml",
        "torch",
        "safetensors",
        "cryptotensors",
        "tensorizer",
        "cryptography",
        "numpy",
        "matplotlib",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[package] = importlib.metadata.version(package)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        spec = importlib.util.find_spec("envelope")  # the envelope the workers import, wherever it lives
        root = os.path.dirname(spec.origin) if spec and spec.origin else "."
        commit = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        found["envelope-ml"] = f"{found.get('envelope-ml', '?')} (commit {commit})"
    return found


def machine() -> str:
    model = platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    return f"{model}, {os.cpu_count()} cores"


# --- output -----------------------------------------------------------------------------------------


def _ratio(results: dict[str, Result], case: str, reference: str) -> str:
    if reference not in results:
        return "-"
    r, ref = results[case], results[reference]
    return f"{r.best / ref.best:.2f} / {r.median / ref.median:.2f}"


def print_table(results: dict[str, Result], kind: str, model_mib: float) -> None:
    plain, peer = REFERENCES[kind]
    rows = [case for case in results if CASES[case].kind == kind]
    if not rows:
        return
    unit, scale = ("s", 1.0) if kind == "model" else ("ms", 1000.0)
    what = f"the whole model ({model_mib:.0f} MiB)" if kind == "model" else "one 4096x2816 float32 tensor (44 MiB)"
    print(f"\nLoad of {what}; ratios are best / best and median / median:\n")
    print(
        f"| case | best {unit} | median {unit} | x {plain} | x {peer} | peak RSS increase MiB |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for case in rows:
        r = results[case]
        print(
            f"| {CASES[case].label} | {r.best * scale:.3f} | {r.median * scale:.3f} | {_ratio(results, case, plain)} "
            f"| {_ratio(results, case, peer)} | {r.peak:.0f} |"
        )


def print_targets(results: dict[str, Result], model_mib: float) -> None:
    """Issue 20's targets, as far as this run measured them (times: best of the rounds)."""
    rows = []
    for case in ENVELOPE_MODEL_CASES:
        if case not in results:
            continue
        r = results[case]
        for reference, limit in (("cryptotensors", 1.0), ("tensorizer", 1.0), ("torch_load", LOAD_TARGET)):
            if reference in results:
                ratio = r.best / results[reference].best
                rows.append(
                    (CASES[case].label, f"time x {reference}", f"{ratio:.2f}", f"<= {limit:.2f}", ratio <= limit)
                )
        limit_mib = model_mib + RSS_MARGIN_MIB
        rows.append((CASES[case].label, "peak RSS MiB", f"{r.peak:.0f}", f"<= {limit_mib:.0f}", r.peak <= limit_mib))
    if "envelope_one" in results and "cryptotensors_one" in results:
        ratio = results["envelope_one"].best / results["cryptotensors_one"].best
        rows.append((CASES["envelope_one"].label, "time x cryptotensors_one", f"{ratio:.2f}", "<= 1.00", ratio <= 1))
    if not rows:
        return
    print("\nIssue 20's targets (best times):\n")
    print("| envelope case | measure | value | target | result |\n|---|---|---:|---:|---|")
    for label, measure, value, target, met in rows:
        print(f"| {label} | {measure} | {value} | {target} | {'met' if met else '**missed**'} |")


def draw_chart(path: str, results: dict[str, Result], title: str, model_mib: float) -> None:
    """Two panels, whole-model cases: load time (bar: best, dot: median) and peak RSS increase (the
    dashed line: the model's size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [case for case in results if CASES[case].kind == "model"]
    if not cases:
        print("no whole-model case ran: no chart", file=sys.stderr)
        return
    labels = [CASES[case].label for case in cases]
    colors = ["tab:blue" if case.startswith("envelope") else "tab:gray" for case in cases]
    rows = range(len(cases))
    figure, (times, memory) = plt.subplots(1, 2, figsize=(13, 0.55 * len(cases) + 2.2), sharey=True)
    best = [results[case].best for case in cases]
    times.barh(rows, best, color=colors)
    times.plot([results[case].median for case in cases], rows, "k.", label="median")
    times.set_xlabel("load time, s (bar: best; dot: median)")
    for row, case in zip(rows, cases, strict=True):
        r = results[case]
        times.annotate(f" {r.best:.3f}" if r.best < 0.1 else f" {r.best:.2f}", (r.median, row), va="center", fontsize=8)
    times.set_yticks(list(rows), labels)
    times.invert_yaxis()
    peaks = [results[case].peak for case in cases]
    memory.barh(rows, peaks, color=colors)
    memory.set_xlabel("peak RSS increase of the load, MiB")
    for row, value in zip(rows, peaks, strict=True):
        memory.annotate(f" {value:.0f}", (value, row), va="center", fontsize=8)
    memory.axvline(model_mib, color="k", linestyle="--", linewidth=0.8)
    memory.annotate(" model size", (model_mib, len(cases) - 0.5), fontsize=8)
    for axes, right in ((times, max(results[case].median for case in cases)), (memory, max(*peaks, model_mib))):
        axes.set_xlim(0, right * 1.18)
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"chart written to {path}", file=sys.stderr)


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="model size in MiB (default 1024)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds, one run per case (default 5)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help=f"subset of: {' '.join(CASES)}")
    parser.add_argument("--chart", metavar="PATH.png", help="also draw the whole-model cases into this PNG")
    parser.add_argument("--dir", default="/dev/shm", help="where the model files go (default /dev/shm, tmpfs)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if args.prepare:
        prepare(args.prepare[0], int(args.prepare[1]), args.prepare[2:])
        return
    unknown = [case for case in args.cases if case not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {' '.join(unknown)}; known: {' '.join(CASES)}")
    if args.chart and importlib.util.find_spec("matplotlib") is None:
        parser.error("--chart needs matplotlib (tools/bench_models.sh installs it)")
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("torch is not installed: every case needs it (tools/bench_models.sh installs it all)")
    skipped = skipped_cases(args.cases)
    for case, reason in skipped.items():
        print(f"skipping {case}: {reason}", file=sys.stderr)
    cases = [case for case in CASES if case in args.cases and case not in skipped]  # table order
    if not cases:
        raise SystemExit("no case to run")

    with tempfile.TemporaryDirectory(prefix="envelope-bench-models-", dir=args.dir) as work:
        print(f"preparing a {args.size_mib} MiB model in {work} ...", file=sys.stderr)
        # In a child: this process stays small, and the model's memory is gone before any case runs.
        subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--prepare", work, str(args.size_mib), *cases], check=True
        )
        manifest = json.loads(_read(work, "manifest.json"))
        results = run_rounds(work, cases, args.rounds)

    model_mib = manifest["bytes"] / MIB
    count = len(manifest["tensors"])
    found = versions()
    print(
        f"\n{model_mib:.0f} MiB model ({count} float32 tensors), files on {args.dir}, {args.rounds} interleaved "
        f"rounds, each run a fresh process; {machine()}"
    )
    print("versions: " + ", ".join(f"{name} {version}" for name, version in found.items()))
    for case, reason in skipped.items():
        print(f"skipped {case}: {reason}")
    print_table(results, "model", model_mib)
    print_table(results, "tensor", model_mib)
    print_targets(results, model_mib)
    if args.chart:
        title = (
            f"Loading {model_mib:.0f} MiB of float32 tensors ({count} tensors), best of {args.rounds} interleaved "
            f"rounds, fresh process per run\n{machine()}; "
            + ", ".join(
                f"{name} {found[name].split(' ')[0]}" for name in found if name not in ("python", "matplotlib", "numpy")
            )
        )
        draw_chart(args.chart, results, title, model_mib)


if __name__ == "__main__":
    main()
