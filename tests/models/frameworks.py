"""Model adapter tests need the frameworks. tools/test.sh installs them all and sets
ENVELOPE_REQUIRE_FRAMEWORKS=1, so there a missing framework fails instead of skipping."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def need(module: str) -> ModuleType:
    if os.environ.get("ENVELOPE_REQUIRE_FRAMEWORKS"):
        return importlib.import_module(module)
    return pytest.importorskip(module)
