"""envelope.models.onnx: an ONNX graph built with onnx.helper round-trips byte for byte."""

from __future__ import annotations

import pytest
from frameworks import need

import envelope

onnx = need("onnx")
np = need("numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from envelope.models import onnx as sealed_onnx  # noqa: E402


def linear_model():  # type: ignore[no-untyped-def]
    weights = numpy_helper.from_array(np.arange(12, dtype="float32").reshape(4, 3), name="W")
    bias = numpy_helper.from_array(np.ones(3, dtype="float32"), name="B")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["XW"]), helper.make_node("Add", ["XW", "B"], ["Y"])],
        "linear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 3])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


def test_onnx_model_round_trips(alice, tmp_path):
    model = linear_model()
    path = tmp_path / "m.onnx.env"
    sealed_onnx.save(model, path, alice.public_key(), metadata={"task": "regression"})
    loaded = sealed_onnx.load(path, alice)
    assert loaded.SerializeToString() == model.SerializeToString()
    onnx.checker.check_model(loaded)
    weights = numpy_helper.to_array(next(t for t in loaded.graph.initializer if t.name == "W"))
    assert np.array_equal(weights, np.arange(12, dtype="float32").reshape(4, 3))
    assert sealed_onnx.load_bytes(path, alice) == model.SerializeToString()
    metadata = envelope.open_with_metadata(path.read_bytes(), alice).metadata
    assert metadata["envelope.framework"] == "onnx" and metadata["envelope.opset"] == 17


def test_external_data_is_refused(alice, tmp_path):
    model = linear_model()
    model.graph.initializer[0].data_location = TensorProto.EXTERNAL
    with pytest.raises(envelope.UsageError, match="external data"):
        sealed_onnx.save(model, tmp_path / "x.env", alice.public_key())
    assert list(tmp_path.iterdir()) == []


def test_wrong_key_and_wrong_framework(alice, stranger, tmp_path):
    path = tmp_path / "m.env"
    sealed_onnx.save(linear_model(), path, alice.public_key())
    with pytest.raises(envelope.NoMatchingKeyError):
        sealed_onnx.load(path, stranger)
    with pytest.raises(envelope.UsageError, match=r"not an ONNX model \(format 'onnx-protobuf'\)$"):
        sealed_onnx.load(envelope.seal(b"x", alice.public_key(), metadata={"envelope.framework": "keras"}), alice)
