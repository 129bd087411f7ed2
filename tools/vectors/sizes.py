"""Sizes and chunk sizes (section 7.1): plaintexts at and around chunk boundaries."""

from __future__ import annotations

import functools

from .kit import TEXT, TestFile, vector

SIZES = [(0, 16), (1, 16), (15, 16), (16, 16), (17, 16), (64, 16), (100, 1000), (999, 1000), (1000, 1000),
         (2500, 1000), (70_000, 65536), (131_072, 65536), (200_000, 65536)]  # fmt: skip


def sized(f: TestFile, size: int, chunk_size: int) -> None:
    f.header["chunk_size"] = chunk_size
    f.seal(TEXT[:size])


for _size, _chunk in SIZES:
    vector(
        functools.partial(sized, size=_size, chunk_size=_chunk),
        name=f"size-{_size}-chunk-{_chunk}",
        description=f"{_size} plaintext bytes in chunks of {_chunk}",
    )


@vector
def final_token_as_long_as_full(f: TestFile) -> None:
    """a final chunk of chunk_size-1 bytes whose token is as long as a full one"""
    f.seal(TEXT[:31])
