#!/usr/bin/env python3
"""Cross-implementation check: Python seals and Node.js opens, and the reverse, on random inputs.

Needs `node` and `npm ci` done in spec/reference (tools/test.sh does both). Prints one line per
failure and ends with `N passed, M failed`; exits 1 on any failure.

    python tools/crosscheck.py --rounds 20 --seed 1
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import envelope

ROOT = Path(__file__).resolve().parent.parent
NODE_CLI = ROOT / "spec" / "reference" / "cli.mjs"
KEYS = ROOT / "spec" / "vectors" / "keys"


def random_metadata(rng: random.Random) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for i in range(rng.randint(0, 4)):
        metadata[f"k{i}-{rng.choice(['name', 'ü', 'x'])}"] = rng.choice(
            [rng.randint(-(2**40), 2**40), f"text {rng.random()}", None, True, [1, "two"], {"n": {"m": [False]}}]
        )
    return metadata


def node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(NODE_CLI), *args], capture_output=True, text=True, timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="random cases per direction (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"crosscheck seed {seed}")
    names = ["rsa2048-a", "rsa3072-a", "rsa4096-a", "rsa2048-b"]
    private = {n: envelope.load_private_key(KEYS / f"{n}.pem") for n in names}
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="envelope-crosscheck-") as tmp:
        work = Path(tmp)
        for round_ in range(args.rounds):
            chunk = rng.choice([16, 17, 100, 4096, 65536, 1 << 20])
            size = rng.choice([0, 1, chunk - 1, chunk, chunk + 1, rng.randint(0, 3 * chunk), rng.randint(0, 3 << 20)])
            data = rng.randbytes(size)
            recipients = rng.sample(names, rng.randint(1, 3))
            opener = rng.choice(recipients)
            metadata = random_metadata(rng)
            plain, sealed, out, meta_out = (work / f"{round_}.{ext}" for ext in ("bin", "env", "out", "json"))
            plain.write_bytes(data)

            # Python seals, Node opens.
            sealed.write_bytes(
                envelope.seal(data, [private[n].public_key() for n in recipients], metadata=metadata, chunk_size=chunk)
            )
            result = node(
                "open", "--key", str(KEYS / f"{opener}.pem"), str(sealed), str(out), "--meta-out", str(meta_out)
            )
            label = f"size={size} chunk={chunk} recipients={recipients}"
            if result.returncode != 0 or out.read_bytes() != data or json.loads(meta_out.read_text()) != metadata:
                failed += 1
                print(f"FAIL python->node {label}: {result.stderr.strip()}")
            else:
                passed += 1
            out.unlink(missing_ok=True)

            # Node seals, Python opens.
            recipient_args = [a for n in recipients for a in ("--recipient", str(KEYS / f"{n}.pub.pem"))]
            result = node(
                "seal",
                *recipient_args,
                "--chunk-size",
                str(chunk),
                "--meta-json",
                json.dumps(metadata),
                str(plain),
                str(sealed.with_suffix(".node.env")),
            )
            try:
                if result.returncode != 0:
                    raise RuntimeError(result.stderr.strip())
                opened, got_metadata, _ = envelope.open_with_metadata(
                    sealed.with_suffix(".node.env").read_bytes(), private[opener]
                )
                if opened != data or got_metadata != metadata:
                    raise RuntimeError("plaintext or metadata differs")
                passed += 1
            except (RuntimeError, envelope.EnvelopeError) as exc:
                failed += 1
                print(f"FAIL node->python {label}: {exc}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
