"""PKCS#11 URIs (RFC 7512): which module, token and object a key is, and where its PIN comes from.

Parsing only: no PKCS#11 library is loaded here, so the CLI can check a URI (and refuse a PIN
written into it) before anything touches a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote_to_bytes

from .errors import UsageError

__all__ = ["OBJECT_TYPES", "PATH_ATTRIBUTES", "QUERY_ATTRIBUTES", "Pkcs11Uri", "is_pkcs11_uri", "parse_pkcs11_uri"]

SCHEME = "pkcs11:"
# RFC 7512 section 2.3: the path names the library, slot, token and object; the query says how to
# reach them. "x-" attributes are vendor-specific; any other name is refused rather than ignored,
# so that a misspelt attribute never widens a match to another key.
PATH_ATTRIBUTES = frozenset(
    {
        "id", "library-description", "library-manufacturer", "library-version", "manufacturer", "model",
        "object", "serial", "slot-description", "slot-id", "slot-manufacturer", "token", "type",
    }
)  # fmt: skip
QUERY_ATTRIBUTES = frozenset({"module-name", "module-path", "pin-source", "pin-value"})
OBJECT_TYPES = frozenset({"cert", "data", "private", "public", "secret-key"})
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f\"<>\\^`{}#]")


def is_pkcs11_uri(value: object) -> bool:
    """Whether a command-line value names a token key (``pkcs11:...``) rather than a file."""
    return isinstance(value, str) and value[: len(SCHEME)].lower() == SCHEME


@dataclass(frozen=True)
class Pkcs11Uri:
    """A parsed ``pkcs11:`` URI. ``path`` holds the decoded path attributes (``id`` as bytes, the
    others as text), ``query`` the query attributes. ``str()`` never shows a ``pin-value``."""

    path: dict[str, str | bytes] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict, repr=False)

    def text(self, name: str) -> str | None:
        value = self.path.get(name)
        return value if isinstance(value, str) else None

    @property
    def token(self) -> str | None:
        return self.text("token")

    @property
    def object(self) -> str | None:
        return self.text("object")

    @property
    def id(self) -> bytes | None:
        value = self.path.get("id")
        return value if isinstance(value, bytes) else None

    @property
    def type(self) -> str | None:
        return self.text("type")

    @property
    def pin_value(self) -> str | None:
        return self.query.get("pin-value")

    @property
    def pin_source(self) -> str | None:
        return self.query.get("pin-source")

    @property
    def module_path(self) -> str | None:
        return self.query.get("module-path")

    @property
    def module_name(self) -> str | None:
        return self.query.get("module-name")

    def __str__(self) -> str:
        def enc(value: str | bytes) -> str:
            return quote(value, safe="") if isinstance(value, str) else "".join(f"%{b:02x}" for b in value)

        path = ";".join(f"{name}={enc(value)}" for name, value in self.path.items())
        query = "&".join(
            f"{name}={'REDACTED' if name == 'pin-value' else enc(value)}" for name, value in self.query.items()
        )
        return f"{SCHEME}{path}" + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"Pkcs11Uri({str(self)!r})"


def _attributes(part: str, separator: str, allowed: frozenset[str], where: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    # The query may hold a pin-value, and an unescaped '&' in it splits the PIN into "attributes":
    # errors about the query quote none of its text.
    hint = " (an unescaped '&' in a value? write it %26)" if where == "query" else ""
    for item in part.split(separator) if part else []:
        name, equals, value = item.partition("=")
        name = name.lower()
        shown = f" {name!r}" if where == "path" else ""
        if not equals or not name:
            raise UsageError(f"a PKCS#11 URI {where} attribute is NAME=VALUE" + (f", not {item!r}" if shown else hint))
        if name not in allowed and not name.startswith("x-"):
            raise UsageError(
                f"unknown PKCS#11 URI {where} attribute{shown} (RFC 7512 knows {', '.join(sorted(allowed))}){hint}"
            )
        if name in found:
            raise UsageError(f"the PKCS#11 URI attribute {name!r} appears twice")
        found[name] = unquote_to_bytes(value)
    return found


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parse an RFC 7512 URI: ``pkcs11:token=models;object=prod-key?module-path=/usr/lib/x.so``.

    Raises :class:`~envelope.UsageError` for what is not a well-formed one."""
    if not is_pkcs11_uri(uri):
        raise UsageError("a PKCS#11 URI starts with 'pkcs11:'")
    if _NOT_IN_URI.search(uri) or _BAD_PERCENT.search(uri):
        raise UsageError("a PKCS#11 URI has a space, a control character or a bad %-escape: percent-encode them")
    path_part, _, query_part = uri[len(SCHEME) :].partition("?")
    raw_path = _attributes(path_part, ";", PATH_ATTRIBUTES, "path")
    raw_query = _attributes(query_part, "&", QUERY_ATTRIBUTES, "query")
    path: dict[str, str | bytes] = {}
    for name, value in raw_path.items():
        path[name] = value if name == "id" else _text(name, value)
    query = {name: _text(name, value) for name, value in raw_query.items()}
    if "type" in path and path["type"] not in OBJECT_TYPES:
        raise UsageError(f"a PKCS#11 URI's type is one of {', '.join(sorted(OBJECT_TYPES))}, not {path['type']!r}")
    if "slot-id" in path and not str(path["slot-id"]).isdigit():
        raise UsageError("a PKCS#11 URI's slot-id is a decimal number")
    if "pin-source" in query and "pin-value" in query:
        raise UsageError("a PKCS#11 URI has a pin-source or a pin-value, not both")
    return Pkcs11Uri(path, query)


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the PKCS#11 URI attribute {name!r} is not UTF-8 text") from None
