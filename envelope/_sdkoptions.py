"""Which keyword options the SDK's reader and writer take, read from their signatures: the
``envelope::`` filesystem, its ranged reader and uploader, and the Dask helpers pass these through,
so a new SDK option reaches remote files without a change there."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

__all__ = ["keyword_options", "options_for"]


def keyword_options(cls: type) -> frozenset[str] | None:
    """Keyword options of an SDK reader or writer class, after its two positional arguments (the
    file and the keys) and without ``close_*``, which this module manages. None: it takes any."""
    parameters = list(inspect.signature(cls).parameters.values())[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return frozenset(p.name for p in parameters if p.kind in named and not p.name.startswith("close_"))


def options_for(cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    accepted = keyword_options(cls)
    return {k: v for k, v in options.items() if accepted is None or k in accepted}
