"""What all adapters share: a missing framework names its extra; importing adapters is free."""

from __future__ import annotations

import subprocess
import sys

import pytest

import envelope
from envelope.models import _common


def test_a_missing_framework_names_the_extra_to_install():
    with pytest.raises(envelope.MissingDependencyError, match=r"pip install 'envelope\[keras\]'") as info:
        _common.require("a_framework_that_does_not_exist", "keras")
    assert isinstance(info.value, ImportError)


def test_importing_the_adapters_imports_no_framework():
    code = (
        "import sys; import envelope.models.keras, envelope.models.torch, envelope.models.onnx,"
        " envelope.models.safetensors;"
        "print(sorted({'tensorflow', 'keras', 'torch', 'onnx', 'safetensors', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_envelope_info_imports_no_framework(alice, tmp_path):
    path = tmp_path / "m.env"
    path.write_bytes(envelope.seal(b"x", alice.public_key(), metadata={"envelope.framework": "keras"}))
    code = (
        "import sys; from envelope.cli import info; rc = info.main([sys.argv[1]]);"
        "print(sorted({'tensorflow', 'keras', 'torch', 'onnx', 'safetensors', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
