"""The envelope:: fsspec filesystem over local files: reads, writes, options, keys, pass-through.

S3 (a real server on loopback) is tests/test_s3.py; Dask is tests/test_dask.py.
"""

from __future__ import annotations

import os
import pickle
import random
import subprocess
import sys

import pytest
from remote_fixtures import need

import envelope
from envelope.errors import AuthenticationError, NoMatchingKeyError, UsageError

fsspec = need("fsspec")
from envelope.fsspec import HEADER_WINDOW, EnvelopeFileSystem, is_url, open_url  # noqa: E402

CHUNK = 4096
TOKEN = 57 + 16 * ((9 + CHUNK) // 16 + 1)  # spec/FORMAT.md 7.3: the token of a full chunk


@pytest.fixture
def key_path(alice, tmp_path):
    path = tmp_path / "alice.pem"
    path.write_bytes(envelope.private_key_pem(alice))
    return path


@pytest.fixture
def payload() -> bytes:
    return random.Random(14).randbytes(50 * CHUNK + 123)


@pytest.fixture
def sealed_path(alice, payload, tmp_path):
    path = tmp_path / "data.bin.env"
    path.write_bytes(envelope.seal(payload, alice.public_key(), metadata={"name": "data"}, chunk_size=CHUNK))
    return path


def local(**options):
    return EnvelopeFileSystem(target_protocol="file", skip_instance_cache=True, **options)


def test_the_protocol_is_registered_by_the_entry_point():
    code = "import fsspec; print(fsspec.get_filesystem_class('envelope').__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "envelope.fsspec"


def test_chained_url_round_trip(alice, key_path, payload, tmp_path):
    url = f"envelope::file://{tmp_path}/out.env"
    with fsspec.open(url, "wb", envelope={"recipients": [alice.public_key()], "metadata": {"k": 1}}) as f:
        f.write(payload[:1000])
        f.write(payload[1000:])
    assert envelope.open(open(tmp_path / "out.env", "rb").read(), alice) == payload  # a plain envelope file
    with fsspec.open(url, "rb", envelope={"identity": str(key_path)}) as f:
        assert f.metadata == {"k": 1}
        assert f.size == len(payload)
        assert f.read() == payload
        f.seek(123_456)
        assert f.read(10_000) == payload[123_456:133_456]
    with fsspec.open(url, "rt", encoding="latin-1", envelope={"identity": alice}) as text:
        assert text.read(5) == payload[:5].decode("latin-1")


def test_a_random_read_fetches_the_header_the_final_chunk_and_the_chunks_it_touches(alice, sealed_path, payload):
    with local(identity=alice).open(str(sealed_path), "rb") as f:
        opened = f.fetched
        final_token = os.path.getsize(sealed_path) - envelope.inspect(str(sealed_path)).header_size - 50 * TOKEN
        assert opened == HEADER_WINDOW + final_token
        f.seek(20 * CHUNK + 100)
        assert f.read(CHUNK) == payload[20 * CHUNK + 100 : 21 * CHUNK + 100]
        assert f.fetched - opened == 2 * TOKEN  # chunks 20 and 21, nothing around them


def test_sequential_reads_fetch_ahead_without_fetching_twice(alice, sealed_path, payload):
    size = os.path.getsize(sealed_path)
    final_token = size - envelope.inspect(str(sealed_path)).header_size - 50 * TOKEN
    with local(identity=alice, read_ahead=8 * CHUNK).open(str(sealed_path), "rb") as f:
        parts = []
        while piece := f.read(1000):
            parts.append(piece)
        assert b"".join(parts) == payload
        # What opening read (the header window, the final chunk) is read again; nothing else is.
        assert f.fetched <= size + HEADER_WINDOW + final_token


@pytest.mark.parametrize("seed", range(4))
def test_any_mix_of_seeks_and_reads_returns_the_plaintext(alice, sealed_path, payload, seed):
    rng = random.Random(seed)
    with local(identity=alice, read_ahead=3 * CHUNK + 7).open(str(sealed_path), "rb") as f:
        for _ in range(60):
            if rng.random() < 0.3:
                f.seek(rng.randrange(len(payload) + 10))
            position = f.tell()
            count = rng.choice([1, 100, CHUNK - 1, CHUNK, 3 * CHUNK + 5, 20 * CHUNK])
            if rng.random() < 0.5:
                assert f.read(count) == payload[position : position + count]
            else:
                buffer = bytearray(count)
                got = f.readinto(buffer)
                assert bytes(buffer[:got]) == payload[position : position + count]


class Replaying:
    """A local filesystem whose files log each ranged read (start, length) and, after the first
    read of the start of the object, serve ``then`` instead: a store that answers a second read
    with other bytes (issue 17 item 4)."""

    def __init__(self, then: bytes) -> None:
        self.fs = fsspec.filesystem("file")
        self.then = then
        self.reads: list[tuple[int, int]] = []

    def __getattr__(self, name):
        return getattr(self.fs, name)

    def open(self, path, mode="rb", **kwargs):
        first = self.fs.cat_file(path)
        store, position, served = self, 0, []

        class File:
            size = len(first)
            closed = False

            def seek(self, offset, whence=0):
                nonlocal position
                position = offset if whence == 0 else len(first) + offset
                return position

            def read(self, length=-1):
                nonlocal position
                data = store.then if served and position == 0 else first
                served.append(position)
                store.reads.append((position, length))
                piece = data[position : position + length]
                position += len(piece)
                return piece

            def close(self):
                self.closed = True

        return File()


def test_the_header_is_read_once_and_what_is_shown_is_what_verified(alice, tmp_path, payload):
    """A header larger than the first ranged read: opening fetches its bytes once (the layout and
    the verified reader parse the same bytes), so another header served on a second read is never
    used; chunk_size, metadata and signer are those that verified."""
    metadata = {"pad": "x" * (2 * HEADER_WINDOW)}
    path = tmp_path / "big-header.env"
    path.write_bytes(envelope.seal(payload, alice.public_key(), metadata=metadata, chunk_size=CHUNK))
    other = envelope.seal(
        payload, alice.public_key(), metadata={**metadata, "pad": "y" * (2 * HEADER_WINDOW)}, chunk_size=2 * CHUNK
    )
    header_size = envelope.inspect(str(path)).header_size
    assert header_size > HEADER_WINDOW
    store = Replaying(then=other)
    with EnvelopeFileSystem(fs=store, identity=alice, skip_instance_cache=True).open(str(path), "rb") as f:
        in_header = [(start, min(start + length, header_size)) for start, length in store.reads if start < header_size]
        assert sum(end - start for start, end in in_header) == header_size  # each header byte read once
        assert f.metadata == metadata and f.chunk_size == CHUNK
        assert f.read() == payload


def test_a_modified_chunk_fails_and_returns_nothing_of_it(alice, sealed_path, payload):
    data = bytearray(sealed_path.read_bytes())
    header = envelope.inspect(bytes(data)).header_size
    data[header + 10 * TOKEN + 50] ^= 1
    sealed_path.write_bytes(bytes(data))
    with local(identity=alice).open(str(sealed_path), "rb") as f:
        assert f.read(CHUNK) == payload[:CHUNK]  # chunk 0 is intact
        f.seek(9 * CHUNK)
        with pytest.raises(AuthenticationError):
            f.read(2 * CHUNK)  # touches chunk 10: nothing of chunk 9 is returned either


def test_truncated_missing_and_wrong_key(alice, stranger, sealed_path):
    fs = local(identity=alice)
    with pytest.raises(FileNotFoundError):
        fs.open(str(sealed_path.parent / "absent.env"), "rb")
    with pytest.raises(NoMatchingKeyError):
        local(identity=stranger).open(str(sealed_path), "rb")
    sealed_path.write_bytes(sealed_path.read_bytes()[:-100])
    with pytest.raises(AuthenticationError):
        fs.open(str(sealed_path), "rb")


def test_listing_and_info_pass_through_and_speak_of_sealed_objects(alice, sealed_path):
    fs = local(identity=alice)
    folder = str(sealed_path.parent)
    assert fs.exists(str(sealed_path)) and fs.isfile(str(sealed_path)) and fs.isdir(folder)
    assert fs.info(str(sealed_path))["size"] == os.path.getsize(sealed_path)  # the sealed size
    assert [os.path.basename(p) for p in fs.glob(folder + "/*.env")] == ["data.bin.env"]
    assert fs.ls(folder, detail=False) == fs.fs.ls(folder, detail=False)
    fs.cp_file(str(sealed_path), folder + "/copy.env")  # a sealed copy: same bytes, same keys
    assert (sealed_path.parent / "copy.env").read_bytes() == sealed_path.read_bytes()
    fs.rm(folder + "/copy.env")
    assert not fs.exists(folder + "/copy.env")
    assert fs.unstrip_protocol("/x/y.env") == "envelope::file:///x/y.env"


def test_an_exception_in_the_block_leaves_no_file(alice, tmp_path):
    fs = local(recipients=alice.public_key())
    with pytest.raises(KeyError), fs.open(str(tmp_path / "out.env"), "wb") as f:
        f.write(b"x" * 10_000)
        raise KeyError("interrupted")
    assert os.listdir(tmp_path) == []
    with fs.open(str(tmp_path / "out.env"), "wb") as f:
        f.write(b"complete")
    assert envelope.open((tmp_path / "out.env").read_bytes(), alice) == b"complete"


def test_fsspec_open_commits_even_after_an_exception(alice, tmp_path):
    """fsspec's OpenFile closes (so seals) whatever was written, as docs/REMOTE.md warns."""
    with (
        pytest.raises(KeyError),
        fsspec.open(f"envelope::file://{tmp_path}/out.env", "wb", envelope={"recipients": alice.public_key()}) as f,
    ):
        f.write(b"partial")
        raise KeyError("interrupted")
    assert envelope.open((tmp_path / "out.env").read_bytes(), alice) == b"partial"


def test_a_transaction_makes_files_appear_at_its_end(alice, tmp_path):
    fs = local(recipients=alice.public_key())
    with fs.transaction:
        with fs.open(str(tmp_path / "a.env"), "wb") as f:
            f.write(b"a")
        assert not (tmp_path / "a.env").exists()
    assert envelope.open((tmp_path / "a.env").read_bytes(), alice) == b"a"


def test_options_reach_the_sdk_reader_and_writer(alice, tmp_path):
    fs = local(recipients=alice.public_key(), identity=alice, metadata={"all": True})
    with fs.open(str(tmp_path / "a.env"), "wb", chunk_size=1024, metadata={"one": 1}) as f:
        f.write(b"z" * 5000)
    assert envelope.inspect(str(tmp_path / "a.env")).chunk_size == 1024
    with fs.open(str(tmp_path / "a.env"), "rb") as f:
        assert f.metadata == {"one": 1}
    with pytest.raises(UsageError, match="unknown envelope option"):
        local(identity=alice, chunksize=1024)
    with pytest.raises(UsageError, match="'rb' or 'wb'"):
        fs.open(str(tmp_path / "a.env"), "ab")
    with pytest.raises(UsageError, match="recipients"):
        local(identity=alice).open(str(tmp_path / "b.env"), "wb")
    with pytest.raises(UsageError, match="private key"):
        local(recipients=alice.public_key()).open(str(tmp_path / "a.env"), "rb")


def test_private_keys_are_never_pickled(alice, key_path, sealed_path, payload, monkeypatch):
    pem = envelope.private_key_pem(alice)
    for identity in (alice, envelope.RsaIdentity(alice), pem, pem.decode(), [str(key_path), alice]):
        with pytest.raises(UsageError, match="never pickled"):
            pickle.dumps(local(identity=identity))
    by_path = pickle.loads(pickle.dumps(local(identity=str(key_path), recipients=alice.public_key())))
    assert by_path.storage_options["identity"] == str(key_path)
    assert by_path.storage_options["recipients"] == [envelope.public_key_pem(alice)]  # public keys travel
    assert by_path.cat_file(str(sealed_path)) == payload
    monkeypatch.setenv("ENVELOPE_TEST_IDENTITY", pem.decode())  # the key itself, as CI secrets are
    by_env = pickle.loads(pickle.dumps(local(identity_env="ENVELOPE_TEST_IDENTITY")))
    assert by_env.cat_file(str(sealed_path), start=5, end=10) == payload[5:10]
    monkeypatch.setenv("ENVELOPE_TEST_IDENTITY", str(key_path))  # a path is not guessed at: identity= takes it
    with pytest.raises(envelope.InvalidKeyError):
        local(identity_env="ENVELOPE_TEST_IDENTITY").cat_file(str(sealed_path))
    monkeypatch.delenv("ENVELOPE_TEST_IDENTITY")
    with pytest.raises(UsageError, match="ENVELOPE_TEST_IDENTITY"):
        local(identity_env="ENVELOPE_TEST_IDENTITY").open(str(sealed_path), "rb")


def test_open_url_returns_the_file_itself(alice, sealed_path, payload, tmp_path):
    with open_url(str(sealed_path), identity=alice) as f:
        assert f.read() == payload
    with open_url(f"envelope::file://{sealed_path}", identity=alice) as f:
        assert f.read(3) == payload[:3]
    with pytest.raises(KeyError), open_url(f"file://{tmp_path}/new.env", "wb", recipients=alice.public_key()) as f:
        f.write(b"abc")
        raise KeyError("interrupted")
    assert not (tmp_path / "new.env").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key", True),
        ("envelope::s3://bucket/key", True),
        ("simplecache::https://host/x", True),
        ("file:///tmp/x", True),
        ("/tmp/model.env", False),
        ("model.env", False),
        ("C://x", False),
        ("weird:name", False),
        (b"s3://bucket/key", False),
    ],
)
def test_is_url(value, expected):
    assert is_url(value) is expected


def test_a_key_named_by_path_or_environment_is_loaded_once_until_it_changes(
    alice, stranger, key_path, sealed_path, payload, monkeypatch
):
    """Many files opened with one key file (a Dask worker's shards) load and check it once; a
    replaced key file, or another key in the variable, is loaded again."""
    import envelope._workerkeys as module

    loads = []
    real_load, real_parse = module.load_private_key, module.parse_private_key
    monkeypatch.setattr(module, "load_private_key", lambda *a: loads.append("file") or real_load(*a))
    monkeypatch.setattr(module, "parse_private_key", lambda *a: loads.append("env") or real_parse(*a))
    monkeypatch.setattr(module, "_LOADED_KEYS", {})
    monkeypatch.setenv("ENVELOPE_TEST_IDENTITY", envelope.private_key_pem(alice).decode())
    for _ in range(3):
        for options in ({"identity": str(key_path)}, {"identity_env": "ENVELOPE_TEST_IDENTITY"}):
            with local(**options).open(str(sealed_path), "rb") as f:
                assert f.read() == payload
    assert loads == ["file", "env"]

    key_path.write_bytes(envelope.private_key_pem(stranger))  # another key under the same name
    os.utime(key_path, ns=(0, 1))  # a different version, even within one timestamp tick
    monkeypatch.setenv("ENVELOPE_TEST_IDENTITY", envelope.private_key_pem(stranger).decode())
    for options in ({"identity": str(key_path)}, {"identity_env": "ENVELOPE_TEST_IDENTITY"}):
        with pytest.raises(envelope.NoMatchingKeyError):
            local(**options).open(str(sealed_path), "rb")
    assert loads == ["file", "env", "file", "env"]
