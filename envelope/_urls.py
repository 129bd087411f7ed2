"""Which path arguments are URLs: one rule (:func:`is_url`), read from the string alone.

The SDK's path functions, the model adapters and ``envelope.inspect`` take a URL where they take a
path. What a URL is never depends on what is installed or on what exists on disk, so a string is
always the same kind of thing: a local path never goes to the network, a URL never to a local file
of that name. Everything that needs fsspec lives in ``envelope._remote``, imported only once a URL
is seen, so local paths work (and import nothing more) without fsspec.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeGuard, Union

from .errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from ._remote import Remote

__all__ = [
    "LOCAL",
    "Location",
    "install_hint",
    "is_url",
    "locate",
    "on_s3",
    "refuse_options_without_url",
    "remote",
    "shown",
]

Location = Union[str, "os.PathLike[str]", "Remote"]
"""What a path argument names: a local path, or an object on another filesystem."""
LOCAL = (str, os.PathLike)
"""``isinstance(location, LOCAL)``: a local path; otherwise a :class:`~envelope._remote.Remote`."""

# RFC 3986 scheme characters, plus "_" (fsspec's "arrow_hdfs"); at least two, so that a drive letter
# ("C:\\x", "C://x") stays a path. Then "://" (s3://bucket/key) or "::" (a chain: envelope::s3://...).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-_]+(?:://|::)")


def is_url(value: object) -> TypeGuard[str]:
    """Whether ``value`` names a file through fsspec (a URL) rather than a local path.

    A URL is a ``str`` that starts with a protocol name followed by ``://`` (``s3://bucket/key``,
    ``file:///data/x``) or by ``::`` (a chain: ``envelope::s3://...``, ``simplecache::s3://...``);
    a protocol name is two or more letters, digits, ``+``, ``-``, ``.`` or ``_``, the first a
    letter. Everything else is a local path: ``bytes`` and ``os.PathLike`` objects, drive letters
    (``C:\\x``, ``C://x``), and colons anywhere else (``notes:v2``, ``/data/a::b``). A local file
    whose name starts like a URL is given as ``./s3://x``.
    """
    return isinstance(value, str) and _URL.match(value) is not None


def shown(url: str) -> str:
    """``url`` as error messages show it: without its user information (``user:secret@``) or its
    query (a presigned URL carries its signature there), in every link of a chain. The user
    information is found after leading slashes too (``memory:///user:secret@x/...``: a filesystem
    that keeps the URL's authority in its paths, as fsspec's memory filesystem does)."""
    links = []
    for link in url.split("::"):
        scheme, separator, rest = link.partition("://")
        if separator:
            lead = rest[: len(rest) - len(rest.lstrip("/"))]
            authority, slash, tail = rest[len(lead) :].partition("/")
            if "@" in authority:
                authority = "***@" + authority.rpartition("@")[2]
            rest = lead + authority + slash + tail
            if "?" in rest:
                rest = rest.partition("?")[0] + "?..."
        links.append(scheme + separator + rest)
    return "::".join(links)


def on_s3(url: str) -> bool:
    """Whether a protocol of ``url`` (of each link of a chain) is S3's, which the ``[s3]`` extra reaches."""
    return any(part.split("://", 1)[0] in ("s3", "s3a") for part in url.split("::"))


def install_hint(url: str) -> str:
    """The extra that reaches ``url``: ``[s3]`` for S3 (fsspec and s3fs), else ``[fsspec]``."""
    return f"pip install 'envelope-ml[{'s3' if on_s3(url) else 'fsspec'}]'"


def remote(url: str) -> ModuleType:
    """``envelope._remote``, which needs fsspec; without it, a :class:`MissingDependencyError` that
    names the extra to install."""
    try:
        return importlib.import_module("envelope._remote")
    except ImportError as exc:
        # envelope.fsspec turns a missing (or too old) fsspec into MissingDependencyError; _remote's
        # own import of fsspec fails first. Any other import error is a broken install: its own.
        if not isinstance(exc, MissingDependencyError) and (exc.name or "").split(".")[0] != "fsspec":
            raise
        raise MissingDependencyError(
            f"{shown(url)!r} is a URL, and reading or writing URLs needs fsspec 2025.10 or later: {install_hint(url)}"
        ) from exc


def refuse_options_without_url(storage_options: Mapping[str, Any] | None, *values: object) -> None:
    """``storage_options`` configure the filesystems of URL arguments: given with none, they would
    be silently ignored (pandas refuses the same)."""
    if storage_options is not None and not any(is_url(v) for v in values):
        raise UsageError("storage_options apply to URLs (s3://...), and no argument is a URL")


def locate(value: str | os.PathLike[str], storage_options: Mapping[str, Any] | None, *, sealed: bool) -> Location:
    """A local path as it was given, or what a URL names: its local path (``file://``) or a
    :class:`~envelope._remote.Remote`. ``sealed``: the argument is a sealed file, which may carry
    the ``envelope::`` prefix; a plaintext one may not."""
    if not is_url(value):
        return value
    located: Location = remote(value).locate(value, storage_options, sealed=sealed)
    return located
