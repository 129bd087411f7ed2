"""Recipients (section 4): several entries, several reader keys, entries of unknown types."""

from __future__ import annotations

import functools

from .kit import TEXT, TestFile, vector


def three(f: TestFile, key: str) -> None:
    f.header.update(chunk_size=64, recipients=["rsa2048-a", "rsa3072-a", "rsa4096-a"])
    f.keys = [key]
    f.seal(TEXT[:500])


for _key in ("rsa2048-a", "rsa3072-a", "rsa4096-a"):
    vector(
        functools.partial(three, key=_key),
        name=f"three-recipients-opened-by-{_key}",
        description="sealed to 2048, 3072 and 4096-bit keys; opened by one of them",
    )


@vector
def holder_has_several_keys(f: TestFile) -> None:
    """the reader holds a stranger's key and a recipient's, in that order"""
    f.header["recipients"] = ["rsa2048-b"]
    f.keys = ["rsa2048-stranger", "rsa2048-b"]
    f.seal(TEXT[:50])


@vector
def forward_compatible_header(f: TestFile) -> None:
    """an unknown recipient type before ours, an unknown top-level key, an empty critical array"""
    f.header["recipients"] = [{"type": "pq-kem-2031", "blob": b"\x01" * 40}, "rsa2048-a"]
    f.header.update(future={"hint": [1, 2]}, critical=[])
    f.seal(TEXT[:20])
