"""envelope.models.onnx: an ONNX graph built with onnx.helper round-trips byte for byte."""

from __future__ import annotations

import io

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


# --- external data on load (issue 17 item 8): a sealed model must not make anything read local files ---

ONNX_METADATA = {
    "envelope.framework": "onnx",
    "envelope.framework_version": onnx.__version__,
    "envelope.model_format": "onnx-protobuf",
}


def point_outside(tensor, location: str = "../secret.bin") -> None:  # type: ignore[no-untyped-def]
    """Make ``tensor`` read its data from ``location`` (as onnx's external data helper writes it)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in {"location": location, "offset": "0", "length": "48"}.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value


def with_external_initializer():  # type: ignore[no-untyped-def]
    model = linear_model()
    point_outside(model.graph.initializer[0])
    return model


def with_external_constant():  # type: ignore[no-untyped-def]
    model = linear_model()
    constant = helper.make_node("Constant", [], ["C"], value=numpy_helper.from_array(np.ones(3, dtype="float32")))
    point_outside(constant.attribute[0].t)
    model.graph.node.insert(0, constant)
    return model


def with_external_tensor_in_a_subgraph():  # type: ignore[no-untyped-def]
    model = linear_model()
    branch_tensor = numpy_helper.from_array(np.ones(3, dtype="float32"), name="Z")
    point_outside(branch_tensor)
    branch = helper.make_graph(
        [helper.make_node("Identity", ["Z"], ["Z_out"])],
        "branch",
        [],
        [helper.make_tensor_value_info("Z_out", TensorProto.FLOAT, [3])],
        initializer=[branch_tensor],
    )
    model.graph.node.append(helper.make_node("If", ["cond"], ["out"], then_branch=branch, else_branch=branch))
    return model


def with_external_tensor_in_a_function():  # type: ignore[no-untyped-def]
    model = linear_model()
    constant = helper.make_node("Constant", [], ["C"], value=numpy_helper.from_array(np.ones(3, dtype="float32")))
    point_outside(constant.attribute[0].t)
    model.functions.append(helper.make_function("local", "f", [], ["C"], [constant], [helper.make_opsetid("", 17)]))
    return model


def with_external_sparse_initializer():  # type: ignore[no-untyped-def]
    model = linear_model()
    values = numpy_helper.from_array(np.ones(2, dtype="float32"), name="S")
    indices = numpy_helper.from_array(np.array([0, 5], dtype="int64"), name="S_indices")
    point_outside(values)
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4, 3]))
    return model


def with_external_data_entries_only():  # type: ignore[no-untyped-def]
    """A location without data_location = EXTERNAL: refused too, whatever a runtime would make of it."""
    model = linear_model()
    point_outside(model.graph.initializer[0])
    model.graph.initializer[0].data_location = TensorProto.DEFAULT
    return model


CRAFTED = [
    with_external_initializer,
    with_external_constant,
    with_external_tensor_in_a_subgraph,
    with_external_tensor_in_a_function,
    with_external_sparse_initializer,
    with_external_data_entries_only,
]


def test_the_crafted_model_really_reads_a_local_file(tmp_path):
    """What a loader does with the crafted model: reads the file it names, from the loading machine's
    disk (onnx confines it to the base folder; older onnx and other runtimes may not)."""
    from onnx.external_data_helper import load_external_data_for_model

    (tmp_path / "secret.bin").write_bytes(bytes(range(48)))
    model = linear_model()
    point_outside(model.graph.initializer[0], "secret.bin")
    load_external_data_for_model(model, str(tmp_path))
    assert model.graph.initializer[0].raw_data == bytes(range(48))


@pytest.mark.parametrize("make", CRAFTED, ids=lambda make: make.__name__)
@pytest.mark.parametrize("location", ["../secret.bin", "../../etc/passwd", "/etc/passwd", "weights.bin"])
def test_a_sealed_model_with_external_data_is_refused_on_load(alice, make, location):
    model = make()
    for tensor in sealed_onnx._tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    sealed = envelope.seal(model.SerializeToString(), alice.public_key(), metadata=ONNX_METADATA)
    with pytest.raises(envelope.UnsafeModelError, match="refers to external data files") as info:
        sealed_onnx.load(sealed, alice)
    assert repr(location) in str(info.value)
    with pytest.raises(envelope.UnsafeModelError, match="refers to external data files"):
        sealed_onnx.load_bytes(sealed, alice)
    with pytest.raises(envelope.UsageError, match="external data"):  # and save refuses every such form
        sealed_onnx.save(model, io.BytesIO(), alice.public_key())
