#!/usr/bin/env python3
"""Cross-implementation check: Python seals and Node.js opens, and the reverse, on random inputs.

Rounds cycle through unsigned files and files signed with each algorithm of spec/FORMAT.md
section 8.2; recipients are RSA keys and shared Fernet keys (section 4.6), or, one round in five, a
passphrase alone (section 4.5, work factor 10); the opening side pins the signer (``signed_by``,
``--signed-by``) among a decoy, checks the reported signer, refuses the file when only the decoy
is pinned (R28), and runs the other side's keyless signature check. Needs `node` and `npm ci` done
in spec/reference (tools/test.sh does both). Prints one line per failure and ends with
`N passed, M failed`; exits 1 on any failure.

    python tools/crosscheck.py --rounds 20 --seed 1
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import envelope

ROOT = Path(__file__).resolve().parent.parent
NODE_CLI = ROOT / "spec" / "reference" / "cli.mjs"
KEYS = ROOT / "spec" / "vectors" / "keys"
ALGORITHMS = ("ed25519", "ecdsa-p256-sha256", "ml-dsa-65")
PASSPHRASES = ("passphrase-a", "passphrase-nfd")


class Mismatch(Exception):
    """One direction of one round did not give what the other side sealed."""


@dataclass(frozen=True)
class SignerFiles:
    """A signing key written where the Node CLI can read it, and the Python objects for it."""

    algorithm: str
    key_id: str
    private_pem: Path
    public_pem: Path
    signing_key: Any
    verifying_key: Any


def make_signer(algorithm: str, directory: Path, name: str) -> SignerFiles:
    key = envelope.generate_signing_key(algorithm)
    private_pem, public_pem = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private_pem.write_bytes(envelope.signing_key_pem(key))
    public_pem.write_bytes(envelope.verifying_key_pem(key))
    # Section 8.1: the key id is SHA-256 of the SubjectPublicKeyInfo DER, the PEM's body.
    der = base64.b64decode("".join(public_pem.read_text().splitlines()[1:-1]))
    key_id = hashlib.sha256(der).hexdigest()
    return SignerFiles(algorithm, key_id, private_pem, public_pem, key, envelope.load_verifying_key(public_pem))


@dataclass(frozen=True)
class Case:
    """One round's inputs, the same for both directions."""

    data: bytes
    metadata: dict[str, Any]
    chunk: int
    recipients: list[str]  # key names in spec/vectors/keys
    opener: str
    signer: SignerFiles | None
    decoy: SignerFiles  # pinned beside the signer, and alone to check R28


def random_metadata(rng: random.Random) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for i in range(rng.randint(0, 4)):
        metadata[f"k{i}-{rng.choice(['name', 'ü', 'x'])}"] = rng.choice(
            [rng.randint(-(2**40), 2**40), f"text {rng.random()}", None, True, [1, "two"], {"n": {"m": [False]}}]
        )
    return metadata


def public_file(name: str) -> Path:
    """A test key's public key file: SPKI PEM, an age recipient (FORMAT.md 4.2, 4.4), an
    ssh-ed25519 line (4.3), or the secret itself for a shared Fernet key or a passphrase (4.5, 4.6)."""
    for suffix in (".fernet", ".passphrase", ".pub.pem", ".pub.age", ".openssh.pub"):
        if (KEYS / f"{name}{suffix}").exists():
            return KEYS / f"{name}{suffix}"
    raise FileNotFoundError(name)


def private_file(name: str) -> Path:
    for suffix in (".fernet", ".passphrase", ".pem", ".age", ".openssh"):
        if (KEYS / f"{name}{suffix}").exists():
            return KEYS / f"{name}{suffix}"
    raise FileNotFoundError(name)


def symmetric_key(path: Path) -> Any:
    """A shared Fernet key or a passphrase (FORMAT.md 4.5, 4.6): one object seals and opens."""
    if path.suffix == ".fernet":
        return envelope.FernetKey(path.read_text())
    return envelope.Passphrase(path.read_text("utf-8"), work_factor=WORK_FACTOR)


def python_recipient(name: str) -> Any:
    path = public_file(name)
    if path.suffix in (".fernet", ".passphrase"):
        return symmetric_key(path)
    return envelope.load_public_key(path) if path.suffix == ".pem" else envelope.age_recipient(path.read_text().strip())


def python_opener(name: str) -> Any:
    path = private_file(name)
    if path.suffix in (".fernet", ".passphrase"):
        return symmetric_key(path)
    return envelope.load_private_key(path) if path.suffix == ".pem" else envelope.key_file_identities(path)


def node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(NODE_CLI), *args], capture_output=True, text=True, timeout=300)


def expect_node_ok(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise Mismatch(result.stderr.strip() or f"node exited {result.returncode}")


def expect_node_signer_error(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 1 or not result.stderr.startswith("SignerError: "):
        raise Mismatch(f"a decoy pin did not fail with SignerError: {result.returncode} {result.stderr.strip()}")


def signer_json(signer: SignerFiles | None) -> dict[str, str] | None:
    return None if signer is None else {"algorithm": signer.algorithm, "key_id": signer.key_id}


WORK_FACTOR = 10  # of passphrase entries: cheap, and allowed (FORMAT.md 4.5)


def python_to_node(work: Path, case: Case) -> None:
    sealed, out, meta_out, signer_out = (work / name for name in ("py.env", "py.out", "py.json", "py.signer"))
    signer, decoy = case.signer, case.decoy
    recipients = [python_recipient(n) for n in case.recipients]
    sign_with = None if signer is None else signer.signing_key
    file = envelope.seal(case.data, recipients, metadata=case.metadata, chunk_size=case.chunk, sign_with=sign_with)
    sealed.write_bytes(file)
    pins = [] if signer is None else ["--signed-by", str(decoy.public_pem), "--signed-by", str(signer.public_pem)]
    key = ["--key", str(private_file(case.opener))]
    outputs = ["--meta-out", str(meta_out), "--signer-out", str(signer_out)]
    expect_node_ok(node("open", *key, *pins, str(sealed), str(out), *outputs))
    if out.read_bytes() != case.data:
        raise Mismatch("plaintext differs")
    if json.loads(meta_out.read_text()) != case.metadata:
        raise Mismatch("metadata differs")
    if json.loads(signer_out.read_text()) != signer_json(signer):
        raise Mismatch(f"signer differs: {signer_out.read_text().strip()}")
    out.unlink()
    if signer is not None:
        result = node("check", "--signed-by", str(signer.public_pem), str(sealed))
        expect_node_ok(result)
        if json.loads(result.stdout) != signer_json(signer):
            raise Mismatch(f"keyless check reports {result.stdout.strip()}")
        expect_node_signer_error(node("open", *key, "--signed-by", str(decoy.public_pem), str(sealed), str(out)))
        if out.exists():
            raise Mismatch("a refused file left an output")


def node_to_python(work: Path, case: Case) -> None:
    plain, sealed = work / "node.in", work / "node.env"
    signer, decoy = case.signer, case.decoy
    plain.write_bytes(case.data)
    recipient_args = [a for n in case.recipients for a in ("--recipient", str(public_file(n)))]
    sign_args = [] if signer is None else ["--sign-with", str(signer.private_pem)]
    options = ["--chunk-size", str(case.chunk), "--meta-json", json.dumps(case.metadata), *sign_args]
    options += ["--work-factor", str(WORK_FACTOR)]
    expect_node_ok(node("seal", *recipient_args, *options, str(plain), str(sealed)))
    file = sealed.read_bytes()
    opener = python_opener(case.opener)
    signed_by = None if signer is None else [decoy.verifying_key, signer.verifying_key]
    opened = envelope.open_with_metadata(file, opener, signed_by=signed_by)
    if opened.plaintext != case.data:
        raise Mismatch("plaintext differs")
    if opened.metadata != case.metadata:
        raise Mismatch("metadata differs")
    got = None if opened.signer is None else {"algorithm": opened.signer.algorithm, "key_id": opened.signer.key_id}
    if got != signer_json(signer):
        raise Mismatch(f"signer differs: {got}")
    if signer is not None:
        info = envelope.check_signature(file, signed_by=[signer.verifying_key])
        if (info.algorithm, info.key_id) != (signer.algorithm, signer.key_id):
            raise Mismatch(f"keyless check reports {info}")
        try:
            envelope.open(file, opener, signed_by=[decoy.verifying_key])
        except envelope.SignerError:
            pass
        else:
            raise Mismatch("a decoy pin did not fail with SignerError")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="random cases per direction (default 20)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one, printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    print(f"crosscheck seed {seed}")
    names = ["rsa2048-a", "rsa3072-a", "rsa4096-a", "rsa2048-b", "x25519-a", "ssh-ed25519-a", "mlkem768x25519-a"]
    names += ["fernet-a", "fernet-b"]
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="envelope-crosscheck-") as tmp:
        work = Path(tmp)
        # Signing keys are drawn fresh each run (the seed fixes sizes and choices, not keys).
        signers = {a: make_signer(a, work, f"signer-{a}") for a in ALGORITHMS}
        decoys = {a: make_signer(a, work, f"decoy-{a}") for a in ALGORITHMS}
        kinds: list[str | None] = [None, *ALGORITHMS]
        for round_ in range(args.rounds):
            kind = kinds[round_ % len(kinds)]  # every kind of file, in turn
            chunk = rng.choice([16, 17, 100, 4096, 65536, 1 << 20])
            size = rng.choice([0, 1, chunk - 1, chunk, chunk + 1, rng.randint(0, 3 * chunk), rng.randint(0, 3 << 20)])
            recipients = rng.sample(names, rng.randint(1, 3)) if round_ % 5 != 4 else [rng.choice(PASSPHRASES)]
            case = Case(
                data=rng.randbytes(size),
                metadata=random_metadata(rng),
                chunk=chunk,
                recipients=recipients,
                opener=rng.choice(recipients),
                signer=None if kind is None else signers[kind],
                decoy=decoys[kind or rng.choice(ALGORITHMS)],
            )
            label = f"size={size} chunk={chunk} recipients={recipients} signer={kind}"
            for direction, check in (("python->node", python_to_node), ("node->python", node_to_python)):
                try:
                    check(work, case)
                    passed += 1
                except (Mismatch, envelope.EnvelopeError) as exc:
                    failed += 1
                    print(f"FAIL {direction} {label}: {type(exc).__name__}: {exc}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
