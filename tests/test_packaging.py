"""What the project installs, and where: the core floors that tools/floors.sh tests are the ones
pyproject.toml promises (issue 17 item 14), and the demo installs only what it needs (item 19)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _release(version: str) -> tuple[int, ...]:
    """Versions "48" and "48.0.0" are the same release."""
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def test_floors_txt_pins_every_core_dependency_at_its_declared_floor():
    tomllib = pytest.importorskip("tomllib")
    declared = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"([a-z0-9-]+)>=([0-9.]+)", requirement)
        assert match, f"a core dependency without a plain NAME>=FLOOR: {requirement!r}"
        declared[match[1]] = _release(match[2])
    lines = (ROOT / "tools" / "floors.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert {name: _release(version) for name, version in pins.items()} == declared
    floors_sh = (ROOT / "tools" / "floors.sh").read_text()
    assert f"CORE_DEPS=({' '.join(sorted(declared))})" in floors_sh  # the newest end upgrades the same set


def test_the_demo_installs_keras_and_jax_only_in_its_own_environment():
    """Issue 17 item 19: the demo installed every extra (TensorFlow and PyTorch among them, 3.2 GB)
    into the test suite's .venv. It needs envelope, Keras and one backend; .ci/run checks the size."""
    demo = (ROOT / "tools" / "demo.sh").read_text()
    assert re.findall(r"^source tools/_venv\.sh (.*)$", demo, re.MULTILINE) == ['"keras" "jax[cpu]"']
    assert 'ENVELOPE_VENV="${ENVELOPE_VENV:-$PWD/.venv-demo}"' in demo
    assert "export KERAS_BACKEND=jax" in demo
    test = (ROOT / "tools" / "test.sh").read_text()
    assert "ENVELOPE_VENV" not in test  # the suite keeps .venv, with every extra
