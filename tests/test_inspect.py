"""envelope.inspect: the header without a key, clearly unverified, sizes that add up."""

from __future__ import annotations

import io

import envelope


def test_inspect_reports_header_and_sizes(alice, bob, tmp_path):
    data = b"w" * 1000
    sealed = envelope.seal(
        data, [alice.public_key(), bob.public_key()], metadata={"framework": "keras"}, chunk_size=256
    )
    path = tmp_path / "m.env"
    path.write_bytes(sealed)
    for source in (sealed, path, str(path), io.BytesIO(sealed)):
        info = envelope.inspect(source)
        assert info.version == 1 and info.chunk_size == 256 and not info.verified
        assert [r.type for r in info.recipients] == ["rsa-oaep-sha256"] * 2
        assert [r.key_id for r in info.recipients] == [envelope.key_id(alice), envelope.key_id(bob)]
        assert info.unverified_metadata == {"framework": "keras"}
        assert info.chunk_count == 4 and info.complete
        assert info.header_size + info.payload_size == info.file_size == len(sealed)
        assert info.plaintext_size_min <= len(data) <= info.plaintext_size_max


def test_inspect_flags_a_truncated_payload(alice):
    sealed = envelope.seal(b"w" * 1000, alice.public_key(), chunk_size=256)
    assert envelope.inspect(sealed[:-5]).complete is False


def test_inspect_of_a_pipe_has_no_sizes(alice):
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            return self.inner.readinto(b)

    info = envelope.inspect(Pipe(envelope.seal(b"x", alice.public_key())))
    assert info.file_size is None and info.chunk_count is None and info.chunk_size > 0
