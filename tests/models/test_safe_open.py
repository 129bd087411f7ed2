# ruff: noqa: F811 - the fixtures imported from remote_fixtures are arguments of the tests
"""envelope.models.safetensors.safe_open: one tensor at a time, opening (and fetching from a URL)
only the chunks it spans, as safetensors.safe_open reads a plain file."""

from __future__ import annotations

import io

import pytest
from frameworks import need
from remote_fixtures import bucket, moto_server  # noqa: F401 - fixtures

import envelope
from envelope._layout import token_len
from envelope._stream import ChunkOpener

np = need("numpy")
need("safetensors")
torch = need("torch")
from envelope.models import safetensors as sealed_st  # noqa: E402

CHUNK = 64


def model():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    return {
        "embed": rng.normal(size=(40, 6)).astype("float32"),  # 960 bytes: 15 chunks
        "bias": rng.normal(size=(7,)).astype("float64"),
        "ids": np.arange(33, dtype="int16"),
        "scalar": np.array(4, dtype="int64"),
        "empty": np.zeros((0, 2), dtype="float32"),
    }


@pytest.fixture
def sealed(alice):  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    sealed_st.save(model(), out, alice.public_key(), tensor_metadata={"format": "np"}, chunk_size=CHUNK)
    return out.getvalue()


@pytest.fixture
def opened_chunks(monkeypatch):  # type: ignore[no-untyped-def]
    """The index of every chunk opened, whichever way."""
    seen: list[int] = []
    into, in_place = ChunkOpener.open_into, ChunkOpener.open_in_place

    def open_into(self, index, *args):  # type: ignore[no-untyped-def]
        seen.append(index)
        return into(self, index, *args)

    def open_in_place(self, index, *args):  # type: ignore[no-untyped-def]
        seen.append(index)
        return in_place(self, index, *args)

    monkeypatch.setattr(ChunkOpener, "open_into", open_into)
    monkeypatch.setattr(ChunkOpener, "open_in_place", open_in_place)
    return seen


def test_keys_metadata_and_tensors(alice, sealed):
    tensors = model()
    for framework in ("np", "numpy", "pt", "torch"):
        with sealed_st.safe_open(sealed, alice, framework=framework) as f:
            assert f.keys() == sorted(tensors) and list(f) == sorted(tensors)
            assert f.metadata() == {"format": "np"}
            for name, expected in tensors.items():
                got = f.get_tensor(name)
                assert tuple(got.shape) == expected.shape and np.array_equal(np.asarray(got), expected)
                if framework in ("pt", "torch"):
                    assert isinstance(got, torch.Tensor)
                else:
                    assert got.dtype == expected.dtype


def test_no_metadata_is_none_and_usage_errors(alice, sealed):
    out = io.BytesIO()
    sealed_st.save({"w": np.zeros(2, "float32")}, out, alice.public_key())
    with sealed_st.safe_open(out.getvalue(), alice) as f:
        assert f.metadata() is None
        with pytest.raises(envelope.UsageError, match="no tensor named 'nope'"):
            f.get_tensor("nope")
    with pytest.raises(envelope.UsageError, match="closed"):
        f.get_tensor("w")
    with pytest.raises(envelope.UsageError, match="framework must be"):
        sealed_st.safe_open(sealed, alice, framework="tf")


SLICES = [
    np.s_[:],
    np.s_[...],
    np.s_[3],
    np.s_[-1],
    np.s_[2:5],
    np.s_[5:2],
    np.s_[::7],
    np.s_[1:30:4, 2:4],
    np.s_[:, 1],
    np.s_[4, 1:3],
    np.s_[..., 0],
    np.s_[[1, 3]],
]


@pytest.mark.parametrize("index", SLICES, ids=repr)
@pytest.mark.parametrize("framework", ["np", "pt"])
def test_get_slice_is_indexing_the_tensor(alice, sealed, index, framework):
    expected = model()["embed"][index]
    with sealed_st.safe_open(sealed, alice, framework=framework) as f:
        part = f.get_slice("embed")
        assert part.get_shape() == [40, 6] and part.get_dtype() == "F32"
        got = part[index]
    assert np.array_equal(np.asarray(got), expected) and tuple(got.shape) == expected.shape


def test_get_slice_errors_are_typed(alice, sealed):
    with sealed_st.safe_open(sealed, alice, framework="pt") as f:
        with pytest.raises(envelope.UsageError, match="out of range"):
            f.get_slice("embed")[40]
        with pytest.raises(envelope.UsageError, match="cannot index"):
            f.get_slice("embed")[::-1]  # PyTorch takes no negative step
        with pytest.raises(envelope.UsageError, match="cannot index"):
            f.get_slice("embed")[:, 9]
    with sealed_st.safe_open(sealed, alice, framework="np") as f:
        assert np.array_equal(f.get_slice("embed")[::-3], model()["embed"][::-3])
        assert f.get_slice("scalar")[...] == 4


def spanned(sealed: bytes, alice, name: str, rows: slice = slice(None)) -> set[int]:  # type: ignore[no-untyped-def]
    """The chunks that hold ``name`` (or those rows of it)."""
    plain = envelope.open(sealed, alice)
    start = 8 + int.from_bytes(plain[:8], "little")
    with sealed_st.safe_open(sealed, alice, framework="np") as f:
        info = f._table.tensors[name]
    count = info.shape[0] if info.shape else 1
    row = info.nbytes // count
    first, stop, _ = rows.indices(count)
    begin, end = start + info.begin + first * row, start + info.begin + stop * row
    return set(range(begin // CHUNK, (end - 1) // CHUNK + 1))


def test_a_tensor_opens_only_the_chunks_it_spans(alice, sealed, opened_chunks):
    whole, rows = spanned(sealed, alice, "embed"), spanned(sealed, alice, "embed", slice(10, 12))
    assert len(whole) >= 15 and len(rows) <= 2
    with sealed_st.safe_open(sealed, alice) as f:
        opened_chunks.clear()
        f.get_tensor("embed")
        assert sorted(opened_chunks) == sorted(whole)
        opened_chunks.clear()
        f.get_slice("embed")[10:12]
        assert sorted(opened_chunks) == sorted(rows)


def test_opening_reads_the_final_chunk_and_the_header_chunks_only(alice, sealed, opened_chunks):
    count = envelope.inspect(sealed).chunk_count
    with sealed_st.safe_open(sealed, alice) as f:
        header_end = f._table.data_start
    assert len(set(opened_chunks)) < count // 2
    assert set(opened_chunks) == {count - 1, *range(header_end // CHUNK + 1)}


def test_a_flipped_byte_fails_the_tensors_that_span_it_only(alice, sealed):
    inspection = envelope.inspect(sealed)
    victim = sorted(spanned(sealed, alice, "embed"))[3]
    at = inspection.header_size + victim * token_len(CHUNK) + 40
    tampered = bytearray(sealed)
    tampered[at] ^= 1
    untouched = [n for n, t in model().items() if t.size and victim not in spanned(sealed, alice, n)]
    assert untouched
    with sealed_st.safe_open(bytes(tampered), alice) as f:
        with pytest.raises(envelope.AuthenticationError):
            f.get_tensor("embed")
        with pytest.raises(envelope.AuthenticationError):
            f.get_slice("embed")[:]
        for name in untouched:
            assert np.array_equal(np.asarray(f.get_tensor(name)), model()[name])
    with pytest.raises(envelope.AuthenticationError):
        sealed_st.load(bytes(tampered), alice)


def test_a_flipped_byte_in_the_final_chunk_fails_the_opening(alice, sealed):
    tampered = bytearray(sealed)
    tampered[-5] ^= 1
    with pytest.raises(envelope.AuthenticationError):
        sealed_st.safe_open(bytes(tampered), alice)


def test_signed_files_open_for_their_signer_only(alice, tmp_path):
    publisher, impostor = envelope.generate_signing_key(), envelope.generate_signing_key()
    path = tmp_path / "signed.env"
    sealed_st.save(model(), path, alice.public_key(), sign_with=publisher, chunk_size=CHUNK)
    with sealed_st.safe_open(path, alice, signed_by=publisher.public_key(), framework="np") as f:
        assert np.array_equal(f.get_tensor("bias"), model()["bias"])
    with pytest.raises(envelope.SignerError):
        sealed_st.safe_open(path, alice, signed_by=impostor.public_key())
    tampered = bytearray(path.read_bytes())
    tampered[-3] ^= 1  # the signature
    with pytest.raises(envelope.SignatureError):
        sealed_st.safe_open(bytes(tampered), alice, signed_by=publisher.public_key())


def test_devices(alice, sealed):
    with sealed_st.safe_open(sealed, alice, device="cpu") as f:
        assert f.get_tensor("bias").device.type == "cpu"
    with pytest.raises(envelope.UsageError, match="holds no data"):
        sealed_st.safe_open(sealed, alice, device="meta")
    with pytest.raises(envelope.UsageError, match="NumPy arrays live on the CPU"):
        sealed_st.safe_open(sealed, alice, framework="np", device="cuda:0")


# --- from a URL: ranged reads of the tokens a tensor spans ------------------------------------------


def test_a_remote_tensor_fetches_its_chunks_and_the_header_window(alice, moto_server, bucket):
    need("s3fs")
    from envelope.fsspec import HEADER_WINDOW

    chunk = 4096
    rng = np.random.default_rng(1)
    tensors = {f"layer{i}": rng.normal(size=(64, 64)).astype("float32") for i in range(8)}  # 16 KiB each
    url = f"s3://{bucket}/model.safetensors.env"
    options = moto_server.options()
    sealed_st.save(tensors, url, alice.public_key(), chunk_size=chunk, storage_options=options, overwrite=True)
    with sealed_st.safe_open(url, alice, framework="np", storage_options=options) as f:
        opened = f.fetched
        # the envelope header's window, the final token, the tokens of the safetensors header
        header_tokens = -(-f._table.data_start // chunk) + 1
        assert opened <= HEADER_WINDOW + (header_tokens + 1) * token_len(chunk)
        before = f.fetched
        assert np.array_equal(f.get_tensor("layer5"), tensors["layer5"])
        assert f.fetched - before <= (16384 // chunk + 1) * token_len(chunk)
        before = f.fetched
        assert np.array_equal(f.get_slice("layer2")[3], tensors["layer2"][3])
        assert f.fetched - before <= 2 * token_len(chunk)
    loaded = sealed_st.load(url, alice, storage_options=options)
    assert all(np.array_equal(loaded[k], tensors[k]) for k in tensors)
