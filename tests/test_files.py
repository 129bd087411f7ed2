"""Path helpers: atomic outputs, nothing partial or plaintext left behind, the source untouched."""

from __future__ import annotations

import os
import stat

import pytest

import envelope


def listing(path) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(os.listdir(path))


def test_seal_and_open_files(alice, tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_000))
    before = src.read_bytes()
    sealed = envelope.seal_file(src, tmp_path / "model.env", alice.public_key(), metadata={"m": 1}, chunk_size=65536)
    assert sealed == (300_000, {"m": 1}, None)
    assert src.read_bytes() == before
    seen: list[int] = []
    opened = envelope.open_file(tmp_path / "model.env", tmp_path / "out.bin", alice, progress=seen.append)
    assert opened == (300_000, {"m": 1}, None)
    assert (tmp_path / "out.bin").read_bytes() == before
    assert sum(seen) == 300_000
    assert stat.S_IMODE((tmp_path / "out.bin").stat().st_mode) == 0o600  # plaintext stays private
    assert envelope.verify_file(tmp_path / "model.env", alice) == (300_000, {"m": 1}, None)
    assert listing(tmp_path) == ["model.bin", "model.env", "out.bin"]


def test_failed_open_leaves_nothing(alice, stranger, tmp_path):
    sealed = envelope.seal(os.urandom(10_000), alice.public_key(), chunk_size=1024)
    (tmp_path / "truncated.env").write_bytes(sealed[:-100])
    tampered = bytearray(sealed)
    tampered[-500] ^= 1
    (tmp_path / "tampered.env").write_bytes(bytes(tampered))
    (tmp_path / "good.env").write_bytes(sealed)
    cases = [
        ("truncated.env", alice, envelope.AuthenticationError),
        ("tampered.env", alice, envelope.AuthenticationError),
        ("good.env", stranger, envelope.NoMatchingKeyError),
    ]
    for name, key, error in cases:
        with pytest.raises(error):
            envelope.open_file(tmp_path / name, tmp_path / "out.bin", key)
        assert listing(tmp_path) == ["good.env", "tampered.env", "truncated.env"], name


def test_overwrite_is_refused_unless_asked(alice, tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"data")
    dst.write_bytes(b"precious")
    with pytest.raises(envelope.OutputExistsError) as refused:
        envelope.seal_file(src, dst, alice.public_key())
    assert refused.value.path == str(dst) and isinstance(refused.value, FileExistsError)
    assert dst.read_bytes() == b"precious"
    envelope.seal_file(src, dst, alice.public_key(), overwrite=True)
    assert envelope.open(dst.read_bytes(), alice) == b"data"
    with pytest.raises(envelope.UsageError, match="input file"):
        envelope.seal_file(src, src, alice.public_key(), overwrite=True)


def test_failure_while_sealing_leaves_nothing(alice, tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(b"x" * 100_000)

    def explode(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        envelope.seal_file(src, tmp_path / "model.env", alice.public_key(), chunk_size=1024, progress=explode)
    assert listing(tmp_path) == ["model.bin"]


def test_rewrap_in_place(alice, bob, tmp_path):
    path = tmp_path / "m.env"
    path.write_bytes(envelope.seal(b"weights", alice.public_key()))
    envelope.rewrap_file(path, path, alice, add=bob.public_key(), overwrite=True)
    assert envelope.open(path.read_bytes(), bob) == b"weights"
    assert listing(tmp_path) == ["m.env"]


def test_output_modes(alice, tmp_path):
    src = tmp_path / "m.bin"
    src.write_bytes(b"model")
    envelope.seal_file(src, tmp_path / "m.env", alice.public_key())
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "m.env").stat().st_mode) == 0o666 & ~umask
    os.chmod(tmp_path / "m.env", 0o640)
    envelope.rewrap_file(tmp_path / "m.env", tmp_path / "m.env", alice, add=[], overwrite=True)
    assert stat.S_IMODE((tmp_path / "m.env").stat().st_mode) == 0o640  # rewrap keeps the mode
