"""Sender signatures through the model adapters (spec section 8): save(..., sign_with=) signs,
load(..., signed_by=) refuses an unsigned model or another signer before the framework sees a byte."""

from __future__ import annotations

import pytest
from frameworks import need

import envelope

np = need("numpy")
need("safetensors")
torch = need("torch")
onnx = need("onnx")
from envelope.models import onnx as sealed_onnx  # noqa: E402
from envelope.models import safetensors as sealed_st  # noqa: E402
from envelope.models import torch as sealed_torch  # noqa: E402


@pytest.fixture(scope="module")
def publisher():  # type: ignore[no-untyped-def]
    return envelope.generate_signing_key()


@pytest.fixture(scope="module")
def impostor():  # type: ignore[no-untyped-def]
    return envelope.generate_signing_key()


def tiny_onnx():  # type: ignore[no-untyped-def]
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    return helper.make_model(graph)


CASES = {
    "safetensors": (
        lambda: {"w": np.arange(6, dtype="float32").reshape(2, 3)},
        sealed_st.save,
        sealed_st.load,
        lambda a, b: np.array_equal(a["w"], b["w"]),
    ),
    "torch": (
        lambda: {"w": torch.arange(6.0)},
        sealed_torch.save,
        sealed_torch.load,
        lambda a, b: torch.equal(a["w"], b["w"]),
    ),
    "onnx": (
        tiny_onnx,
        sealed_onnx.save,
        sealed_onnx.load,
        lambda a, b: a.SerializeToString() == b.SerializeToString(),
    ),
}


@pytest.mark.parametrize("adapter", CASES)
def test_signed_models_load_only_from_the_pinned_signer(alice, publisher, impostor, tmp_path, adapter):
    make, save, load, same = CASES[adapter]
    model = make()
    signed, unsigned, forged = tmp_path / "signed.env", tmp_path / "unsigned.env", tmp_path / "forged.env"
    save(model, signed, alice.public_key(), sign_with=publisher)
    save(model, unsigned, alice.public_key())
    save(model, forged, alice.public_key(), sign_with=impostor)
    assert same(load(signed, alice, signed_by=publisher.public_key()), model)
    assert envelope.check_signature(signed, signed_by=publisher.public_key()).verified
    assert envelope.inspect(unsigned).signer is None
    with pytest.raises(envelope.SignerError, match="not signed"):
        load(unsigned, alice, signed_by=publisher.public_key())
    with pytest.raises(envelope.SignerError, match="not among"):
        load(forged, alice, signed_by=publisher.public_key())
    assert same(load(unsigned, alice), model)  # without a pin, as before
