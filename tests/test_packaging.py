"""What pyproject.toml declares about dependencies is what is tested: the core floors that
tools/floors.sh installs are the ones users are promised (issue 17 item 14)."""

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
