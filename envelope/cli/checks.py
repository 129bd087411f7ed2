"""Authenticating whole files, shared by ``envelope verify`` and ``envelope-info --verify``, and
how a signer is named on the terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .render import printable
from .streams import is_stdio, plaintext_size

if TYPE_CHECKING:
    from envelope import Identity, SignerInfo


@dataclass(frozen=True)
class Verified:
    """What authenticating a whole file established."""

    metadata: dict[str, Any]
    plaintext_size: int
    signer: SignerInfo | None  # verified; None: the file is unsigned
    members: int | None = None  # a folder (spec/FORMAT.md 11): how many members its verified index lists


def authenticate(
    path: str | None,
    keys: Sequence[Identity],
    *,
    signed_by: Sequence[Any] | None,
    quiet: bool,
    stream: IO[bytes] | None = None,
    folder: bool | None = None,
) -> Verified:
    """Verify every byte of a file (and its signature) with the SDK's ``verify_file``, writing no
    plaintext; stdin (``-``) or ``stream`` are opened into nothing instead. ``signed_by``: the
    signers' public keys the file must be signed by (None: any signer, or none). A folder (its
    header says so; ``folder``, when the caller read the header already) is verified as one, index
    and padding included, when it can be read at random (a path, a URL, a seekable ``stream``)."""
    import sys

    from envelope import open_stream, verify_file

    from .progress import progress_bar

    pins = list(signed_by) if signed_by else None
    source = stream if stream is not None else None if is_stdio(path) else path
    if folder is None and source is not None and stream is None:
        from envelope import inspect, is_folder

        folder = is_folder(inspect(source).unverified_metadata)
    if folder and source is not None and (stream is None or _seekable(stream)):
        from envelope import verify_folder

        with progress_bar("verifying", lambda: plaintext_size(path), quiet=quiet) as bar:
            checked = verify_folder(source, keys, signed_by=pins, progress=bar)
        return Verified(checked.metadata, checked.plaintext_len, checked.signer, len(checked.members))
    if stream is None and not is_stdio(path):
        assert path is not None
        with progress_bar("verifying", lambda: plaintext_size(path), quiet=quiet) as bar:
            result = verify_file(path, keys, signed_by=pins, progress=bar)
    else:
        source = stream if stream is not None else sys.stdin.buffer
        with progress_bar("verifying", None, quiet=quiet) as bar, open(os.devnull, "wb") as nowhere:
            result = open_stream(source, nowhere, keys, signed_by=pins, progress=bar)
    return Verified(result.metadata, result.plaintext_len, result.signer)


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False


def signer_text(signer: SignerInfo) -> str:
    """``ed25519 key 3fa2...``: the algorithm and key id, as envelope keygen prints the key id."""
    return printable(f"{signer.algorithm} key {signer.key_id}")


def unpinned_note(signer: SignerInfo) -> str:
    """What to say about a signer nobody asked for (spec section 8.4: "signed by this key", never
    "trusted")."""
    return (
        f"signed by {signer_text(signer)}: the signature verified, but that key was not required "
        "(--signed-by PUBKEY pins the signers you trust)"
    )
