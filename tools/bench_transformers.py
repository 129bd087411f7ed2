#!/usr/bin/env python3
"""Loading a Hugging Face model folder: transformers' own ``from_pretrained`` of the plaintext folder
against ``envelope.models.transformers.from_pretrained`` of the same folder sealed and signed (signer
pinned), in one run.

The model is a GPT-2 (``GPT2LMHeadModel``) of about ``--size-mib`` MiB of float32 weights: up to 8
blocks of width 512 (12 MiB of weights each; one per 32 MiB) and a vocabulary sized to fill the rest
(tied to the output layer, so stored once), saved with ``max_shard_size=--shard-mib`` MiB by transformers'
``save_pretrained`` (plaintext) and by envelope's (sealed to an RSA-3072 recipient, signed with
Ed25519), both in a temporary folder on tmpfs (``--dir``, /dev/shm by default) removed at the end.

Method, as tools/bench_models.py: each load is a fresh Python process (``--worker``) that imports
transformers, parses its keys and builds a throwaway tiny model first (untimed), resets its peak-RSS
mark (``/proc/self/clear_refs``), then times ``from_pretrained`` until every parameter has been
read (one float from every 4 KiB page, so that transformers' memory-mapped safetensors pays its page
faults inside the timing); the peak RSS increase is VmHWM after minus VmRSS before. The outputs of
both loads on a fixed input are checked equal to the saved model's, untimed. ``--rounds`` rounds,
both cases once per round (the first one alternating); best and median time, largest peak, and the
ratios envelope / transformers.

    .venv/bin/python tools/bench_transformers.py --size-mib 256 --rounds 5
    .venv/bin/python tools/bench_transformers.py --size-mib 32 --rounds 1     # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CASES = {
    "transformers": "transformers from_pretrained, plaintext folder",
    "envelope": "envelope from_pretrained, sealed + signed, signer pinned",
}
WIDTH = 512
MIB = 1 << 20


def _model(size_mib: int) -> Any:
    import torch
    import transformers

    block = 12 * WIDTH * WIDTH * 4 + 13 * WIDTH * 4  # weights of one GPT-2 block, bytes (12 MiB)
    blocks = max(1, min(8, size_mib // 32))
    vocab = max(256, (size_mib * MIB - blocks * block) // (WIDTH * 4))
    config = transformers.GPT2Config(n_layer=blocks, n_embd=WIDTH, n_head=16, vocab_size=vocab, n_positions=128)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


def prepare(work: str, size_mib: int, shard_mib: int) -> float:
    import torch

    import envelope
    from envelope.models import transformers as sealed_hf

    model = _model(size_mib)
    recipient = envelope.generate_private_key(3072)
    signer = envelope.generate_signing_key()
    with open(os.path.join(work, "recipient.pem"), "wb") as f:
        f.write(envelope.private_key_pem(recipient))
    with open(os.path.join(work, "signer.pub"), "wb") as f:
        f.write(envelope.verifying_key_pem(signer.public_key()))
    model.save_pretrained(os.path.join(work, "plain"), max_shard_size=shard_mib * MIB)
    sealed_hf.save_pretrained(
        model,
        os.path.join(work, "sealed.env"),
        recipient.public_key(),
        sign_with=signer,
        max_shard_size=shard_mib * MIB,
    )
    with torch.no_grad():
        torch.save(model(torch.tensor([[1, 2, 3, 4]])).logits, os.path.join(work, "expected.pt"))
    return sum(p.numel() * p.element_size() for p in model.parameters()) / MIB  # tied ones once


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))


def worker(case: str, work: str) -> dict[str, Any]:
    import torch
    import transformers

    import envelope
    from envelope.models import transformers as sealed_hf

    os.environ["HF_HUB_OFFLINE"] = "1"
    key = envelope.load_private_key(os.path.join(work, "recipient.pem"))
    signer = os.path.join(work, "signer.pub")
    transformers.GPT2LMHeadModel(transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=8))
    transformers.utils.logging.disable_progress_bar()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    if case == "transformers":
        model = transformers.GPT2LMHeadModel.from_pretrained(os.path.join(work, "plain"))
    else:
        model = sealed_hf.from_pretrained(os.path.join(work, "sealed.env"), key, signed_by=signer)
    for parameter in model.parameters():  # every page read
        flat = parameter.detach().reshape(-1)
        float(flat[:: 1024 // parameter.element_size()].sum())
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") - before
    with torch.no_grad():
        same = torch.equal(model(torch.tensor([[1, 2, 3, 4]])).logits, torch.load(os.path.join(work, "expected.pt")))
    if not same:
        raise SystemExit(f"{case}: the loaded model's outputs differ from the saved model's")
    return {"seconds": seconds, "peak_mib": peak}


def run_rounds(work: str, rounds: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
    order = list(CASES)
    for round_ in range(rounds):
        for case in order if round_ % 2 == 0 else order[::-1]:
            command = [sys.executable, os.path.abspath(__file__), "--worker", case, work]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise SystemExit(f"case {case} failed:\n{result.stderr[-3000:]}{result.stdout[-2000:]}")
            run = json.loads(result.stdout.splitlines()[-1])
            runs[case].append(run)
            note = f"{run['seconds']:.3f} s, +{run['peak_mib']:.0f} MiB"
            print(f"  [{round_ + 1}/{rounds}] {case}: {note}", file=sys.stderr)
    return {
        case: {
            "best": min(r["seconds"] for r in rs),
            "median": statistics.median(r["seconds"] for r in rs),
            "peak": max(r["peak_mib"] for r in rs),
        }
        for case, rs in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Time transformers' from_pretrained of a plaintext folder against envelope's of the same "
        "folder sealed and signed; print a table with ratios.",
        epilog="Example: tools/bench_transformers.py --size-mib 256 --shard-mib 64 --rounds 5",
    )
    parser.add_argument("--size-mib", type=int, default=256, help="model size in MiB of float32 (default 256)")
    parser.add_argument("--shard-mib", type=int, default=64, help="max_shard_size of both folders in MiB (default 64)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, every case once per round (default 5)")
    parser.add_argument("--dir", default="/dev/shm", help="where the temporary folder goes (default /dev/shm)")
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    work = tempfile.mkdtemp(prefix="bench-transformers-", dir=args.dir)
    try:
        print(f"preparing a {args.size_mib} MiB GPT-2 in {args.shard_mib} MiB shards in {work} ...", file=sys.stderr)
        size = prepare(work, args.size_mib, args.shard_mib)
        results = run_rounds(work, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import torch
    import transformers

    print(
        f"\nfrom_pretrained of a {size:.0f} MiB GPT-2 ({args.shard_mib} MiB shards), {args.rounds} rounds, "
        f"{os.cpu_count()} cores; torch {torch.__version__}, transformers {transformers.__version__}\n"
    )
    print("| load | best s | median s | peak RSS of the load |")
    print("|---|---|---|---|")
    for case, label in CASES.items():
        r = results[case]
        print(f"| {label} | {r['best']:.3f} | {r['median']:.3f} | +{r['peak']:.0f} MiB |")
    e, t = results["envelope"], results["transformers"]
    print(
        f"\nenvelope / transformers: {e['best'] / t['best']:.2f}x (best), {e['median'] / t['median']:.2f}x (median); "
        f"peak {e['peak'] / size:.2f}x the model (transformers: {t['peak'] / size:.2f}x)"
    )


if __name__ == "__main__":
    main()
