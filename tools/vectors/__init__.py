"""The test vectors of spec/vectors/, one short generator per vector, grouped by family. Each
generator builds its file from parts with :class:`kit.TestFile`, so that a negative vector breaks
exactly one rule of spec/FORMAT.md. ``tools/make_vectors.py`` runs them."""

from __future__ import annotations

from . import (
    folders,
    header,
    hybrid,
    keys,
    limits,
    metadata,
    passphrase,
    payload,
    recipients,
    signatures,
    sizes,
    sshkeys,
    timestamps,
    unwrap,
    x25519,
)
from .kit import GENERATORS, Kit

FAMILIES = (
    sizes,
    keys,
    recipients,
    metadata,
    header,
    unwrap,
    payload,
    timestamps,
    signatures,
    limits,
    folders,
    x25519,
    sshkeys,
    hybrid,
    passphrase,
)

__all__ = ["FAMILIES", "GENERATORS", "Kit"]
