"""envelope.models.safetensors: named tensors, NumPy or torch, round-trip exactly."""

from __future__ import annotations

import sys

import pytest
from frameworks import need

import envelope

np = need("numpy")
need("safetensors")
from envelope.models import safetensors as sealed_st  # noqa: E402

SAFETENSORS_METADATA = {
    "envelope.framework": "safetensors",
    "envelope.framework_version": "0",
    "envelope.model_format": "safetensors",
}


def test_numpy_tensors_round_trip(alice, tmp_path):
    rng = np.random.default_rng(3)
    tensors = {"embed": rng.normal(size=(50, 8)).astype("float32"), "ids": np.arange(10, dtype="int64")}
    path = tmp_path / "w.safetensors.env"
    sealed_st.save(tensors, path, alice.public_key(), tensor_metadata={"source": "unit test"})
    loaded = sealed_st.load(path, alice)
    assert loaded.keys() == tensors.keys()
    assert all(np.array_equal(loaded[k], tensors[k]) and loaded[k].dtype == tensors[k].dtype for k in tensors)
    metadata = envelope.open_with_metadata(path.read_bytes(), alice).metadata
    assert metadata["envelope.framework"] == "safetensors" and metadata["envelope.tensor_library"] == "numpy"


def test_torch_tensors_round_trip_as_torch_or_numpy(alice, tmp_path):
    torch = need("torch")
    tensors = {"w": torch.randn(4, 4), "b": torch.zeros(4, dtype=torch.float16)}
    path = tmp_path / "t.env"
    sealed_st.save(tensors, path, alice.public_key())
    as_torch = sealed_st.load(path, alice)
    assert all(torch.equal(as_torch[k], tensors[k]) for k in tensors)
    as_numpy = sealed_st.load(path, alice, library="numpy")
    assert np.array_equal(as_numpy["w"], tensors["w"].numpy())


def test_mixed_tensor_kinds_are_refused(alice, tmp_path):
    torch = need("torch")
    with pytest.raises(envelope.UsageError, match="all be NumPy arrays or all PyTorch tensors"):
        sealed_st.save({"a": np.zeros(1), "b": torch.zeros(1)}, tmp_path / "x.env", alice.public_key())
    assert list(tmp_path.iterdir()) == []


def test_wrong_framework(alice):
    with pytest.raises(envelope.UsageError, match="not a safetensors file"):
        sealed_st.load(envelope.seal(b"x", alice.public_key()), alice)


def test_torch_tensors_without_pytorch_name_pytorch_and_its_extra(alice, monkeypatch):
    sealed = envelope.seal(b"x", alice.public_key(), metadata=SAFETENSORS_METADATA)
    monkeypatch.setitem(sys.modules, "torch", None)  # PyTorch is not installed
    monkeypatch.delitem(sys.modules, "safetensors.torch", raising=False)  # nor imported by an earlier test
    with pytest.raises(envelope.MissingDependencyError) as info:
        sealed_st.load(sealed, alice, library="torch")
    assert str(info.value) == "this needs PyTorch, which is not installed: pip install 'envelope-ml[torch]'"
