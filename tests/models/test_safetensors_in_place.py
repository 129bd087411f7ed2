"""envelope.models.safetensors, issue 20: the bytes saved are safetensors' own, a load decrypts into
the tensors' memory (one buffer, no second copy), and every header rule safetensors checks is
checked here before a tensor is made."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc

import pytest
from frameworks import need

import envelope

np = need("numpy")
need("safetensors")
torch = need("torch")
import safetensors.numpy as st_numpy  # noqa: E402
import safetensors.torch as st_torch  # noqa: E402

from envelope.models import safetensors as sealed_st  # noqa: E402

META = {
    "envelope.framework": "safetensors",
    "envelope.framework_version": "0",
    "envelope.model_format": "safetensors",
}
NAMES = ["w", "é-ünïcode", 'quote"and\\back', "ctrl\x01\n\t", "z" * 40]


def numpy_model():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(20)
    dtypes = ["float64", "float32", "float16", "int64", "uint64", "int32", "uint32", "int16", "uint16", "int8"]
    tensors = {f"t_{dtype}": (rng.normal(size=(3, 5, 7)) * 100).astype(dtype) for dtype in dtypes}
    tensors.update(
        {
            "scalar": np.array(2.5, dtype="float32"),
            "empty": np.zeros((0, 4), dtype="float64"),
            "empty_u8": np.zeros((5, 0), dtype="uint8"),
            "bools": rng.integers(0, 2, size=(13,)).astype(bool),
            "u8_odd": rng.integers(0, 255, size=(33,)).astype("uint8"),
            "complex": (rng.normal(size=4) + 1j * rng.normal(size=4)).astype("complex64"),
            "big": rng.normal(size=(517,)).astype("float32"),
        }
    )
    tensors.update({name: np.full((2,), i, dtype="int16") for i, name in enumerate(NAMES)})
    return tensors


def torch_model():  # type: ignore[no-untyped-def]
    torch.manual_seed(20)
    base = torch.randn(4, 9)
    tensors = {
        "f32": base,
        "bf16": base.to(torch.bfloat16),
        "f16": base.to(torch.float16),
        "f64": base.double(),
        "i64": torch.arange(7),
        "u16": torch.arange(5, dtype=torch.int32).to(torch.uint16),
        "u32": torch.arange(5, dtype=torch.int32).to(torch.uint32),
        "u64": torch.arange(5, dtype=torch.int32).to(torch.uint64),
        "bool": base > 0,
        "c64": torch.complex(base, base)[:2].contiguous(),
        "scalar": torch.tensor(3, dtype=torch.int8),
        "empty": torch.zeros(0, 3),
    }
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"):
        tensors[name] = base[:3].to(getattr(torch, name))
    return tensors


def plaintext_of(sealed: bytes, key) -> bytes:  # type: ignore[no-untyped-def]
    return envelope.open(sealed, key)


def sealed_bytes(tensors, key, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    out = io.BytesIO()
    sealed_st.save(tensors, out, key.public_key(), **kwargs)
    return out.getvalue()


def same_numpy(a, b) -> bool:  # type: ignore[no-untyped-def]
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and np.array_equal(a[k], b[k]) for k in a
    )


def same_torch(a, b) -> bool:  # type: ignore[no-untyped-def]
    """Same names, dtypes, shapes and bytes (float8 has no equality of its own)."""

    def raw(t):  # type: ignore[no-untyped-def]
        return t.reshape(-1).view(torch.uint8)

    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(raw(a[k]), raw(b[k])) for k in a
    )


# --- save: safetensors' bytes, streamed ---------------------------------------------------------


@pytest.mark.parametrize("metadata", [None, {}, {"format": "np"}])
def test_numpy_save_writes_safetensors_own_bytes(alice, metadata):
    tensors = numpy_model()
    sealed = sealed_bytes(tensors, alice, tensor_metadata=metadata, chunk_size=64)
    assert plaintext_of(sealed, alice) == st_numpy.save(tensors, metadata=metadata)


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
def test_torch_save_writes_safetensors_own_bytes(alice, metadata):
    tensors = torch_model()
    sealed = sealed_bytes(tensors, alice, tensor_metadata=metadata)
    assert plaintext_of(sealed, alice) == st_torch.save(tensors, metadata=metadata)


def test_metadata_of_several_keys_reads_back_as_safetensors_reads_it(alice):
    """safetensors writes __metadata__ in hash-map order (it changes from run to run); the keys and
    values are what matter."""
    metadata = {"z": "1", "a": "2", "m": "é\n"}
    plain = plaintext_of(sealed_bytes({"x": np.ones(3, "float32")}, alice, tensor_metadata=metadata), alice)
    (length,) = struct.unpack("<Q", plain[:8])
    assert json.loads(plain[8 : 8 + length])["__metadata__"] == metadata
    assert np.array_equal(st_numpy.load(plain)["x"], np.ones(3, "float32"))


def test_non_contiguous_and_big_endian_numpy_arrays_are_saved_as_their_values(alice):
    tensors = {"t": np.arange(12, dtype="float32").reshape(3, 4).T, "be": np.arange(4, dtype=">i4")}
    loaded = sealed_st.load(sealed_bytes(tensors, alice), alice)
    assert np.array_equal(loaded["t"], tensors["t"]) and np.array_equal(loaded["be"], tensors["be"])
    assert loaded["be"].dtype == np.dtype("<i4")


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"a": torch.arange(4.0).view(2, 2).t()}, "not contiguous"),
        ({"a": torch.zeros(4), "b": None}, "all be NumPy arrays or all PyTorch tensors"),
        ({"__metadata__": torch.zeros(1)}, "cannot be named"),
        ({"a": torch.zeros(2, dtype=torch.complex128)}, "no dtype"),
    ],
)
def test_what_safetensors_cannot_store_is_refused_before_anything_is_written(alice, tmp_path, tensors, message):
    with pytest.raises(envelope.UsageError, match=message):
        sealed_st.save(tensors, tmp_path / "x.env", alice.public_key())
    assert list(tmp_path.iterdir()) == []


def test_tensors_sharing_memory_are_refused(alice, tmp_path):
    base = torch.arange(10.0)
    with pytest.raises(envelope.UsageError, match="share memory"):
        sealed_st.save({"a": base, "b": base[2:5]}, tmp_path / "x.env", alice.public_key())


def test_saving_holds_the_tensors_and_a_few_chunks_not_the_file(alice, tmp_path):
    tensors = {f"w{i}": np.ones((1 << 20,), dtype="float32") for i in range(8)}  # 32 MiB
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sealed_st.save(tensors, tmp_path / "m.env", alice.public_key())
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 12 << 20  # the old save held the serialized 32 MiB file, then sealed a copy


# --- load: into the tensors' own memory -----------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [16, 64, 1000, 1 << 20])
def test_numpy_load_is_safetensors_load(alice, chunk_size):
    tensors = numpy_model()
    sealed = sealed_bytes(tensors, alice, chunk_size=chunk_size)
    reference = st_numpy.load(plaintext_of(sealed, alice))
    loaded = sealed_st.load(sealed, alice, threads=2)
    assert same_numpy(loaded, reference) and same_numpy(loaded, tensors)
    offsets = json.loads(_header(plaintext_of(sealed, alice)))
    assert list(loaded) == sorted(tensors, key=lambda k: offsets[k]["data_offsets"])  # the file's order


@pytest.mark.parametrize("chunk_size", [16, 64, 4096])
def test_torch_load_is_safetensors_load(alice, chunk_size):
    tensors = torch_model()
    sealed = sealed_bytes(tensors, alice, chunk_size=chunk_size)
    reference = st_torch.load(plaintext_of(sealed, alice))
    loaded = sealed_st.load(sealed, alice, threads=2, device="cpu")
    assert same_torch(loaded, reference) and same_torch(loaded, tensors)
    st_torch.save(loaded)  # views of one buffer that do not overlap: safetensors saves them again


def test_every_source_kind_loads(alice, tmp_path):
    tensors = numpy_model()
    sealed = sealed_bytes(tensors, alice, chunk_size=64)
    (tmp_path / "m.env").write_bytes(sealed)

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(sealed)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            return self._data.readinto(buffer)

    for source in (sealed, bytearray(sealed), tmp_path / "m.env", str(tmp_path / "m.env"), io.BytesIO(sealed), Pipe()):
        assert same_numpy(sealed_st.load(source, alice), tensors)


def _header(plain: bytes) -> bytes:
    (length,) = struct.unpack("<Q", plain[:8])
    return plain[8 : 8 + length]


def handmade(header: dict | bytes, data: bytes, *, length: int | None = None) -> bytes:  # type: ignore[type-arg]
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def test_a_tensor_spanning_exactly_one_chunk_and_unaligned_offsets(alice):
    """The header is padded to 64 bytes here and the chunks are 64 bytes: "a" is chunk 1 exactly.
    "b" starts at data offset 65, unaligned for float32: it is copied, and still right."""
    a, b = np.arange(16, dtype="float32"), np.arange(3, dtype="float32") + 0.5
    header = {
        "a": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]},
        "pad": {"dtype": "U8", "shape": [1], "data_offsets": [64, 65]},
        "b": {"dtype": "F32", "shape": [3], "data_offsets": [65, 77]},
    }
    raw = json.dumps(header).encode()
    raw += b" " * (56 - len(raw) % 64 if len(raw) % 64 <= 56 else 120 - len(raw) % 64)
    plain = handmade(raw, a.tobytes() + b"\x07" + b.tobytes())
    assert len(raw) + 8 == 64 * ((len(raw) + 8) // 64)
    sealed = envelope.seal(plain, alice.public_key(), metadata=META, chunk_size=64)
    for library in ("numpy", "torch"):
        loaded = sealed_st.load(sealed, alice, library=library)
        assert np.array_equal(np.asarray(loaded["a"]), a) and np.array_equal(np.asarray(loaded["b"]), b)
    assert np.array_equal(st_numpy.load(plain)["b"], b)


def test_a_load_holds_the_model_and_a_few_chunks(alice, tmp_path):
    """tracemalloc sees Python's and NumPy's allocations (not PyTorch's): the buffer the tensors
    live in, the header, and the workers' chunk buffers. The old load held the plaintext and then
    safetensors' copy of every tensor: twice the model."""
    model = 32 << 20
    tensors = {f"w{i}": np.full((1 << 20,), i, dtype="float32") for i in range(8)}
    sealed_st.save(tensors, tmp_path / "m.env", alice.public_key())
    del tensors
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        loaded = sealed_st.load(tmp_path / "m.env", alice, threads=2)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert float(loaded["w7"][0]) == 7.0
    assert peak <= model + (6 << 20), peak / 2**20


# --- the header is checked as safetensors checks it ---------------------------------------------

F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
BAD_HEADERS = {
    "overlapping offsets": ({"a": F32x2, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, 12),
    "a gap": ({"a": F32x2, "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}}, 16),
    "past the data": ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, 8),
    "short of the data": ({"a": F32x2}, 12),
    "an unknown dtype": ({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 8]}}, 8),
    "a shape that does not fill its bytes": ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8),
    "a negative size": ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, 8),
    "reversed offsets": ({"a": {"dtype": "U8", "shape": [0], "data_offsets": [8, 0]}}, 8),
    "a missing field": ({"a": {"dtype": "F32", "shape": [2]}}, 8),
    "an extra field": ({"a": {**F32x2, "extra": 1}}, 8),
    "boolean offsets": ({"a": {"dtype": "U8", "shape": [1], "data_offsets": [False, True]}}, 1),
    "metadata that is not strings": ({"__metadata__": {"a": 1}, "a": F32x2}, 8),
    "not an object": (b"[1, 2]", 0),
    "not JSON": (b"{nope", 0),
    "not UTF-8": (b'{"\xff": 1}', 0),
    "a duplicate name": (b'{"a": ' + json.dumps(F32x2).encode() + b', "a": ' + json.dumps(F32x2).encode() + b"}", 8),
    "NaN": (b'{"__metadata__": {"a": NaN}}', 0),
    "deep nesting": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 0),
}


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_a_malformed_header_is_refused(alice, case):
    header, data_len = BAD_HEADERS[case]
    sealed = envelope.seal(handmade(header, bytes(data_len)), alice.public_key(), metadata=META, chunk_size=64)
    for library in ("numpy", "torch"):
        with pytest.raises(envelope.UnsafeModelError, match="not a valid safetensors file"):
            sealed_st.load(sealed, alice, library=library)
    with pytest.raises(envelope.UnsafeModelError, match="not a valid safetensors file"):
        sealed_st.safe_open(sealed, alice)


@pytest.mark.parametrize(("length", "message"), [(1 << 40, "over the limit"), (200, "past the end"), (None, "shorter")])
def test_a_header_length_the_file_cannot_hold_is_refused_before_allocation(alice, length, message):
    plain = bytes(4) if length is None else struct.pack("<Q", length) + b"{}"
    sealed = envelope.seal(plain, alice.public_key(), metadata=META)
    with pytest.raises(envelope.UnsafeModelError, match=message):
        sealed_st.load(sealed, alice)


def test_names_from_the_file_are_escaped_in_messages(alice):
    header = {"\x1b[2J\u202eevil": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    sealed = envelope.seal(handmade(header, bytes(8)), alice.public_key(), metadata=META)
    with pytest.raises(envelope.UnsafeModelError) as info:
        sealed_st.load(sealed, alice)
    assert "\x1b" not in str(info.value) and "\u202e" not in str(info.value) and "\\x1b[2J" in str(info.value)


def test_bfloat16_for_numpy_is_refused_with_a_hint(alice):
    sealed = sealed_bytes({"b": torch.zeros(2, dtype=torch.bfloat16)}, alice)
    with pytest.raises(envelope.UsageError, match=r"NumPy has no dtype for \['BF16'\].*library='torch'"):
        sealed_st.load(sealed, alice, library="numpy")


# --- device= ------------------------------------------------------------------------------------


def test_devices(alice):
    sealed = sealed_bytes({"w": torch.arange(6.0)}, alice)
    assert sealed_st.load(sealed, alice, device="cpu")["w"].device.type == "cpu"
    assert sealed_st.load(sealed, alice, device=torch.device("cpu"))["w"].device.type == "cpu"
    for device, message in [("meta", "holds no data"), ("nonsense", "not a PyTorch device"), (3.5, "not a PyTorch")]:
        with pytest.raises(envelope.UsageError, match=message):
            sealed_st.load(sealed, alice, device=device)
    if not torch.cuda.is_available():
        with pytest.raises(envelope.UsageError, match="no CUDA device"):
            sealed_st.load(sealed, alice, device="cuda")
    with pytest.raises(envelope.UsageError, match="NumPy arrays live on the CPU"):
        sealed_st.load(sealed, alice, library="numpy", device="cuda")
