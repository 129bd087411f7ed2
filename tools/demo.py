#!/usr/bin/env python3
"""The main job, end to end: protect a real Keras model for a consumer and get it back intact.

1. the consumer makes an RSA-3072 key pair, the producer an Ed25519 signing key
                                                   (envelope keygen, envelope keygen --type ed25519)
2. the producer trains a small Keras model, seals it to the consumer's public key and signs it,
   with plaintext metadata                         (envelope.models.keras.save, sign_with=)
3. anyone can inspect the sealed file without a key, and check who signed it
                                                   (envelope-info, envelope-info --signed-by)
4. the consumer loads the model in memory, only if the producer signed it, and its predictions
   match the original bit for bit                  (envelope.models.keras.load, signed_by=)
5. a stranger's key, a flipped bit, a truncated copy and an impostor's model sealed to the consumer
   are all refused

Writes into demo-out/ (or the folder given). Exits non-zero if any check fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def check(condition: bool, what: str) -> None:
    print(f"   {'ok  ' if condition else 'FAIL'} {what}", flush=True)
    if not condition:
        raise SystemExit(f"demo failed: {what}")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    print("   $ " + " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    for line in (result.stdout + result.stderr).rstrip().splitlines():
        print(f"   | {line}")
    return result


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    bin_dir = Path(sys.executable).parent

    step("1. the consumer makes a key pair; the producer makes a signing key")
    key_path = out / "consumer.key"
    check(run(str(bin_dir / "envelope"), "keygen", "-o", str(key_path)).returncode == 0, "envelope keygen")
    check(oct(key_path.stat().st_mode & 0o777) == "0o600", "private key is mode 0600")
    signer_path = out / "producer.sign.key"
    result = run(str(bin_dir / "envelope"), "keygen", "--type", "ed25519", "-o", str(signer_path))
    check(result.returncode == 0, "envelope keygen --type ed25519")

    step("2. the producer trains a Keras model and seals it to the consumer's public key")
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    import envelope
    from envelope.models import keras as sealed_keras

    print(
        f"   (keras {keras.__version__}, backend {keras.backend.backend()}, imported in "
        f"{time.perf_counter() - started:.1f} s)"
    )
    rng = np.random.default_rng(7)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, :4].sum(axis=1) > x[:, 4:].sum(axis=1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    accuracy = float(history.history["accuracy"][-1])
    print(f"   trained: {model.count_params()} parameters, training accuracy {accuracy:.3f}")
    sealed_path = out / "model.keras.env"
    public_key = envelope.load_public_key(Path(f"{key_path}.pub"))
    signing_key = envelope.load_signing_key(signer_path)
    metadata = {"name": "demo-classifier", "accuracy": accuracy}
    sealed_keras.save(model, sealed_path, public_key, metadata=metadata, sign_with=signing_key)
    check(sealed_path.exists(), f"sealed and signed {sealed_path} ({sealed_path.stat().st_size} bytes)")
    expected = ["consumer.key", "consumer.key.pub", "model.keras.env", "producer.sign.key", "producer.sign.key.pub"]
    check(sorted(p.name for p in out.iterdir()) == expected, "no plaintext model file was written")

    step("3. anyone can inspect it, without a key, and check who signed it")
    check(run(str(bin_dir / "envelope-info"), str(sealed_path)).returncode == 0, "envelope-info")
    result = run(str(bin_dir / "envelope-info"), "--signed-by", f"{signer_path}.pub", str(sealed_path))
    check(result.returncode == 0, "envelope-info --signed-by: the producer's signature verifies")

    step("4. the consumer loads it in memory, pinning the producer, and gets the same predictions")
    private_key = envelope.load_private_key(key_path)
    producer = envelope.load_verifying_key(Path(f"{signer_path}.pub"))
    loaded = sealed_keras.load(sealed_path, private_key, signed_by=producer)
    probe = rng.normal(size=(64, 8)).astype("float32")
    same = np.array_equal(model.predict(probe, verbose=0), loaded.predict(probe, verbose=0))
    check(same, "predictions match the original exactly (64 inputs)")

    step("5. what must fail, fails")
    stranger = envelope.generate_private_key(2048)
    try:
        sealed_keras.load(sealed_path, stranger)
        check(False, "a stranger's key is refused")
    except envelope.NoMatchingKeyError as exc:
        check(True, f"a stranger's key is refused: {exc}")
    data = bytearray(sealed_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    try:
        sealed_keras.load(bytes(data), private_key)
        check(False, "a one-bit change is detected")
    except envelope.AuthenticationError as exc:
        check(True, f"a one-bit change is detected: {exc}")
    truncated = out / "truncated.env"
    truncated.write_bytes(sealed_path.read_bytes()[:-100])
    result = run(str(bin_dir / "envelope"), "open", "-i", str(key_path), "-o", str(out / "never.keras"), str(truncated))
    check(result.returncode == 1 and not (out / "never.keras").exists(), "a truncated file is refused, nothing written")
    impostor = out / "impostor.keras.env"  # anyone with the consumer's public key can seal a model
    sealed_keras.save(model, impostor, public_key, sign_with=envelope.generate_signing_key())
    try:
        sealed_keras.load(impostor, private_key, signed_by=producer)
        check(False, "an impostor's model, sealed to the consumer, is refused")
    except envelope.SignerError as exc:
        check(True, f"an impostor's model, sealed to the consumer, is refused: {exc}")
    print(f"\ndemo complete: the sealed model is {sealed_path}")


if __name__ == "__main__":
    main()
