"""What all adapters share: a missing framework names its extra; importing adapters is free."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import envelope
from envelope.models import _common


def test_a_missing_framework_names_the_extra_to_install():
    with pytest.raises(envelope.MissingDependencyError) as info:
        _common.require("a_framework_that_does_not_exist", "keras")
    assert str(info.value) == (
        "this needs a_framework_that_does_not_exist, which is not installed: pip install 'envelope-ml[keras]'"
    )
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize(
    ("module", "name"),
    [("torch", "PyTorch"), ("tensorflow", "TensorFlow"), ("keras", "Keras"), ("onnx", "ONNX"), ("numpy", "NumPy")],
)
def test_frameworks_are_named_as_their_users_know_them(monkeypatch, module, name):
    monkeypatch.setitem(sys.modules, module, None)  # what an import of a missing package meets
    with pytest.raises(envelope.MissingDependencyError, match=rf"^this needs {name}, which is not installed: "):
        _common.require(module, "all")


def test_the_missing_dependency_is_named_not_the_module_that_needs_it(monkeypatch):
    def import_module(name, package=None):  # type: ignore[no-untyped-def]
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(envelope.MissingDependencyError, match=r"^this needs PyTorch, "):
        _common.require("safetensors.torch", "torch")


def test_a_broken_install_is_not_called_missing(monkeypatch):
    def import_module(name, package=None):  # type: ignore[no-untyped-def]
        raise ImportError("cannot import name 'x' from 'onnx'")

    monkeypatch.setattr(importlib, "import_module", import_module)
    with pytest.raises(envelope.MissingDependencyError, match=r"^ONNX is installed but cannot be imported"):
        _common.require("onnx", "onnx")


def test_the_wrong_framework_is_named_and_file_text_is_escaped():
    metadata = {"envelope.framework": "onnx", "envelope.model_format": "onnx-protobuf"}
    with pytest.raises(envelope.UsageError) as info:
        _common.check_framework(metadata, "torch", ["torch-save"])
    assert str(info.value) == (
        "this file holds an ONNX model (format 'onnx-protobuf'), not a PyTorch model (format 'torch-save')"
    )
    forged = {"envelope.framework": "\x1b[2Jtorch\u202e", "envelope.model_format": ["\x07"]}
    with pytest.raises(envelope.UsageError) as info:
        _common.check_framework(forged, "keras", ["keras-v3"])
    assert not any(c in str(info.value) for c in "\x1b\u202e\x07")
    assert str(info.value).startswith("this file holds '\\x1b[2Jtorch\\u202e' (format ['\\x07']), not a Keras model")


FRAMEWORKS = {"tensorflow", "keras", "torch", "onnx", "safetensors", "numpy", "transformers", "tokenizers"}


def test_importing_the_adapters_imports_no_framework():
    code = (
        "import sys; import envelope.models.keras, envelope.models.torch, envelope.models.onnx,"
        " envelope.models.safetensors, envelope.models.transformers;"
        f"print(sorted({FRAMEWORKS!r} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_envelope_info_imports_no_framework(alice, tmp_path):
    path = tmp_path / "m.env"
    path.write_bytes(envelope.seal(b"x", alice.public_key(), metadata={"envelope.framework": "keras"}))
    code = (
        "import sys; from envelope.cli import info; rc = info.main([sys.argv[1]]);"
        f"print(sorted({FRAMEWORKS!r} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_extras_keras_alone_tensorflow_apart_and_all_of_them():
    """Keras runs on PyTorch and JAX too, so the keras extra does not force TensorFlow (tools/demo.sh
    installs it with JAX alone); all still has it, which tools/test.sh relies on."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    names = {extra: {re.match(r"[A-Za-z0-9_.-]+", r)[0] for r in reqs} for extra, reqs in extras.items()}
    assert names["keras"] == {"keras"}
    assert names["tensorflow"] == {"keras", "tensorflow", "tensorflow-cpu"}
    (everything,) = extras["all"]
    assert set(re.fullmatch(r"[\w-]+\[(.*)\]", everything)[1].split(",")) == {
        "keras",
        "tensorflow",
        "torch",
        "safetensors",
        "onnx",
        "transformers",
        "fsspec",
        "s3",
        "dask",
        "pkcs11",
        "kms",
    }
