"""The header codec: prefix, header and metadata bytes to plain data and back (spec sections 2-5).

No cryptography lives here. Every check is a rule of ``spec/FORMAT.md`` section 8, named in the
code as ``Rn``; every failure is an :class:`~envelope.errors.EnvelopeError` subclass.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import msgpack

from .errors import EnvelopeError, LimitError, MalformedError, UnsupportedError, UsageError
from .limits import (
    MAX_CHUNK_SIZE,
    MAX_HEADER_DEPTH,
    MAX_HEADER_LEN,
    MAX_METADATA_DEPTH,
    MAX_METADATA_LEN,
    MAX_RECIPIENTS,
    MAX_TYPE_LEN,
    MIN_CHUNK_SIZE,
)

__all__ = [
    "FERNET",
    "HEADER_MAC_LEN",
    "MAGIC",
    "MAX_CHUNK_SIZE",
    "MAX_HEADER_LEN",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_LEN",
    "MAX_RECIPIENTS",
    "MIN_CHUNK_SIZE",
    "MLKEM768X25519",
    "PREFIX_LEN",
    "RSA_OAEP_SHA256",
    "SCRYPT",
    "SIGNATURE",
    "SIGNATURE_LENGTHS",
    "SSH_ED25519",
    "VERSION",
    "X25519",
    "Header",
    "RecipientEntry",
    "SignerEntry",
    "decode_header",
    "decode_metadata",
    "decode_prefix",
    "encode_header",
    "encode_metadata",
    "encode_prefix",
    "entry_for",
    "replace_recipients",
    "signed_header",
]

MAGIC = b"\x89ENV\r\n\x1a\n"
VERSION = 1
PREFIX_LEN = len(MAGIC) + 1 + 4  # magic, version byte, u32be header_len
HEADER_MAC_LEN = 32

KEY_ID_LEN = 32
COMMIT_LEN = 32  # the key commitment (section 6)

RSA_OAEP_SHA256 = "rsa-oaep-sha256"
SCRYPT = "scrypt"  # a passphrase (section 4.5)
FERNET = "fernet"  # a shared Fernet key (section 4.6)
SALT_LEN = 16  # of scrypt and fernet entries
SYMMETRIC_WRAP_LEN = 48  # ChaCha20-Poly1305 of a 32-byte data key: ciphertext and 16-byte tag
X25519 = "x25519"  # section 4.2
SSH_ED25519 = "ssh-ed25519"  # section 4.3
MLKEM768X25519 = "mlkem768x25519"  # section 4.4
# The byte length of each bin field of the kinds this reader implements (None: any length, R14
# checks it against the key); a kind's rule when one is missing, of another type or length.
_ENTRY_FIELDS: Mapping[str, tuple[Mapping[str, int | None], str]] = {
    RSA_OAEP_SHA256: ({"kid": KEY_ID_LEN, "key": None}, "a 32-byte 'kid' or a 'key'"),
    X25519: ({"kid": KEY_ID_LEN, "epk": 32, "key": 48}, "a 32-byte 'kid', a 32-byte 'epk' or a 48-byte 'key'"),
    SSH_ED25519: ({"kid": KEY_ID_LEN, "epk": 32, "key": 48}, "a 32-byte 'kid', a 32-byte 'epk' or a 48-byte 'key'"),
    MLKEM768X25519: (
        {"kid": KEY_ID_LEN, "enc": 1120, "key": 48},
        "a 32-byte 'kid', a 1120-byte 'enc' or a 48-byte 'key'",
    ),
}
# Types whose entries carry a key id that no two entries of the type may share (R10, R35, R39, R41, R45).
_KEY_ID_TYPES = (*_ENTRY_FIELDS, FERNET)
SIGNATURE = "signature"  # the sender-signature extension (section 8)
KNOWN_EXTENSIONS: frozenset[str] = frozenset({SIGNATURE})
# Signature algorithms (section 8.2) and the length of their signatures in the footer.
SIGNATURE_LENGTHS: Mapping[str, int] = {"ed25519": 64, "ecdsa-p256-sha256": 64, "ml-dsa-65": 3309}

_KNOWN_KEYS = frozenset({"chunk_size", "recipients", "meta", "commit", "critical", "signer"})
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 64) - 1


@dataclass(frozen=True)
class RecipientEntry:
    """One element of the header's ``recipients`` array (section 4).

    ``fields`` holds every key but ``type``, in file order. For ``rsa-oaep-sha256`` entries they are
    ``kid`` (32 bytes) and ``key`` (the wrapped data key).
    """

    type: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kid(self) -> bytes | None:
        """The key id, when the entry carries one as a byte string."""
        kid = self.fields.get("kid")
        return kid if isinstance(kid, bytes) else None


def entry_for(entries: Sequence[RecipientEntry], kind: str, kid: bytes) -> RecipientEntry | None:
    """The entry of this type and key id, found without trial decryption (section 4.1 rule 2)."""
    for entry in entries:
        if entry.type == kind and entry.kid is not None and hmac.compare_digest(entry.kid, kid):
            return entry
    return None


@dataclass(frozen=True)
class SignerEntry:
    """The header's ``signer`` map (section 8.1): the algorithm and the signer's public key."""

    alg: str
    kid: bytes  # SHA-256 of key
    key: bytes  # DER SubjectPublicKeyInfo

    @property
    def signature_len(self) -> int:
        return SIGNATURE_LENGTHS[self.alg]


@dataclass(frozen=True)
class Header:
    """The decoded header (section 3.2). ``meta`` is the raw metadata encoding, as authenticated."""

    chunk_size: int
    recipients: tuple[RecipientEntry, ...]
    meta: bytes = b"\x80"
    commit: bytes = b""  # the data key's commitment (section 6); 32 bytes in every encoded header
    critical: tuple[str, ...] = ()
    signer: SignerEntry | None = None
    # Top-level keys this reader does not know, in file order: ignorable extensions (section 3.2),
    # kept as they are when the header is rewritten (rewrap).
    extensions: Mapping[str, Any] = field(default_factory=dict)
    # The signed header H of section 8.3 (every entry but ``recipients``, as encoded); set by
    # decode_header, and so by every reader.
    signed: bytes = field(default=b"", repr=False)

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        """``meta`` decoded (R11), once."""
        return decode_metadata(self.meta)


# --- prefix (section 2) ---------------------------------------------------------------------


def encode_prefix(header_len: int) -> bytes:
    if not 1 <= header_len <= MAX_HEADER_LEN:
        raise LimitError(f"header of {header_len} bytes exceeds the limit of {MAX_HEADER_LEN}")
    return MAGIC + struct.pack(">BI", VERSION, header_len)


def decode_prefix(prefix: bytes) -> int:
    """Check the 13-byte prefix and return ``header_len`` (R1-R3), before anything is allocated."""
    if len(prefix) < PREFIX_LEN or prefix[: len(MAGIC)] != MAGIC:
        raise MalformedError("not an envelope file (bad magic bytes)")
    version, header_len = struct.unpack(">BI", prefix[len(MAGIC) : PREFIX_LEN])
    if version != VERSION:
        raise UnsupportedError(f"envelope format version {version} is not supported (this reader: {VERSION})")
    if header_len == 0:
        raise MalformedError("malformed header: zero length")
    if header_len > MAX_HEADER_LEN:
        raise LimitError(f"header of {header_len} bytes exceeds the limit of {MAX_HEADER_LEN}")
    return int(header_len)


# --- strict MessagePack (section 3.1) -------------------------------------------------------


def _pairs_to_dict(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            raise MalformedError("malformed header: map key is not a string")
        if key in result:
            raise MalformedError("malformed header: duplicate map key")
        result[key] = value
    return result


def _reject_ext(code: int, data: bytes) -> Any:
    raise MalformedError("malformed header: MessagePack extension types are not allowed")


def _unpack_strict(data: bytes, what: str) -> Any:
    """Decode exactly one MessagePack object that consumes all of ``data`` (R5)."""
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,  # checked, with a clear message, by _pairs_to_dict
            object_pairs_hook=_pairs_to_dict,
            ext_hook=_reject_ext,
            timestamp=0,
        )
    except MalformedError:
        raise
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as exc:
        # ExtraData, FormatError, StackError, OutOfData and invalid UTF-8 all land here.
        raise MalformedError(f"malformed {what}: not one valid MessagePack map") from exc


def _check_metadata(value: Any, depth: int, wrong_type: type[EnvelopeError]) -> None:
    """Allow only the value types of section 5, nested at most MAX_METADATA_DEPTH deep.

    ``wrong_type`` is the error for a value of another type: MalformedError when it came from a
    file (a msgpack timestamp), UsageError when a caller passed it (a set, an object).
    """
    if value is None or isinstance(value, (bool, str, bytes, float)):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:  # decoded integers always fit: a caller's mistake
            raise UsageError(f"metadata: integer {value} is outside the 64-bit range")
        return
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_METADATA_DEPTH:
            raise LimitError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels")
        if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
            raise UsageError("metadata: map keys must be strings")  # decoding rejects them earlier
        for child in value.values() if isinstance(value, dict) else value:
            _check_metadata(child, depth + 1, wrong_type)
        return
    prefix = "malformed metadata" if wrong_type is MalformedError else "metadata"
    raise wrong_type(f"{prefix}: values of type {type(value).__name__} are not allowed")


# --- metadata (section 5) -------------------------------------------------------------------


def encode_metadata(metadata: Mapping[str, Any] | None) -> bytes:
    """Encode user metadata canonically, checking types and limits (section 5)."""
    if metadata is None:
        return b"\x80"
    if not isinstance(metadata, Mapping):
        raise UsageError("metadata must be a mapping from str to values")
    as_dict = dict(metadata)
    _check_metadata(as_dict, 0, UsageError)
    encoded: bytes = msgpack.packb(_canonical_nans(as_dict), use_bin_type=True)
    if len(encoded) > MAX_METADATA_LEN:
        raise LimitError(f"metadata encodes to {len(encoded)} bytes; the limit is {MAX_METADATA_LEN}")
    return encoded


_CANONICAL_NAN = struct.unpack(">d", bytes.fromhex("7ff8000000000000"))[0]


def _canonical_nans(value: Any) -> Any:
    """``value`` with every NaN the quiet NaN without payload (section 3.1): msgpack writes a
    float's bits as they are, and -nan or a NaN with a payload has others."""
    if isinstance(value, float):
        return _CANONICAL_NAN if value != value else value
    if isinstance(value, dict):
        return {key: _canonical_nans(child) for key, child in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_nans(child) for child in value]
    return value


def decode_metadata(meta: bytes) -> dict[str, Any]:
    """Decode a ``meta`` field (R11)."""
    if len(meta) > MAX_METADATA_LEN:
        raise LimitError(f"metadata of {len(meta)} bytes exceeds the limit of {MAX_METADATA_LEN}")
    value = _unpack_strict(meta, "metadata")
    if not isinstance(value, dict):
        raise MalformedError("malformed metadata: not a map")
    _check_metadata(value, 0, MalformedError)
    return value


# --- header (sections 3 and 4) --------------------------------------------------------------


def encode_header(header: Header) -> bytes:
    """Encode ``header`` in canonical form (section 3.1)."""
    if not MIN_CHUNK_SIZE <= header.chunk_size <= MAX_CHUNK_SIZE:
        raise LimitError(f"chunk size must be {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE} bytes, not {header.chunk_size}")
    _check_recipients(header.recipients)
    if len(header.commit) != COMMIT_LEN:
        raise UsageError("a header needs the data key's 32-byte commitment")  # an SDK bug
    fields: dict[str, Any] = {
        "chunk_size": header.chunk_size,
        "recipients": _recipient_maps(header.recipients),
        "meta": header.meta,
        "commit": header.commit,
    }
    if header.critical:
        fields["critical"] = list(header.critical)
    if header.signer is not None:
        fields["signer"] = {"alg": header.signer.alg, "kid": header.signer.kid, "key": header.signer.key}
    for key, value in header.extensions.items():
        if key in fields or key in _KNOWN_KEYS:
            raise UsageError(f"header extension key {key!r} is a key of the format")  # an SDK bug
        fields[key] = value
    encoded: bytes = msgpack.packb(fields, use_bin_type=True)
    return _within_limit(encoded)


def _check_recipients(entries: tuple[RecipientEntry, ...]) -> None:
    if not entries:
        raise UsageError("at least one recipient is needed")
    if len(entries) > MAX_RECIPIENTS:
        raise LimitError(f"{len(entries)} recipients exceed the limit of {MAX_RECIPIENTS}")
    if _duplicate_key_ids(entries):
        raise UsageError("the same recipient key is listed twice")
    if len(entries) > 1 and any(e.type == SCRYPT for e in entries):  # section 4.5
        raise UsageError("a passphrase must be the only recipient of its file (on a rewrap: remove every other one)")


def _duplicate_key_ids(entries: tuple[RecipientEntry, ...]) -> bool:
    kids = [(e.type, e.kid) for e in entries if e.type in _KEY_ID_TYPES]
    return len(set(kids)) != len(kids)


def _recipient_maps(entries: tuple[RecipientEntry, ...]) -> list[dict[str, Any]]:
    return [{"type": e.type, **e.fields} for e in entries]


def _within_limit(encoded: bytes) -> bytes:
    if len(encoded) > MAX_HEADER_LEN:
        raise LimitError(f"header encodes to {len(encoded)} bytes; the limit is {MAX_HEADER_LEN}")
    return encoded


def _entries(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The top-level map of a header that decoded (R5): its length prefix, and each entry's key with
    the entry's bytes (key and value, as encoded), in file order."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    count = unpacker.read_map_header()
    entries = []
    start = map_end = unpacker.tell()
    for _ in range(count):
        key = unpacker.unpack()
        unpacker.skip()
        end = unpacker.tell()
        entries.append((key, data[start:end]))
        start = end
    return data[:map_end], entries


def signed_header(data: bytes) -> bytes:
    """H of section 8.3: every top-level entry but ``recipients``, exactly as encoded, in order."""
    return b"".join(raw for key, raw in _entries(data)[1] if key != "recipients")


def replace_recipients(data: bytes, recipients: tuple[RecipientEntry, ...]) -> bytes:
    """The header ``data`` with another recipient list; every other entry is kept byte for byte, in
    its place (section 10), so that a signature over H stays valid."""
    _check_recipients(recipients)
    prefix, entries = _entries(data)
    value: bytes = msgpack.packb(_recipient_maps(recipients), use_bin_type=True)
    key: bytes = msgpack.packb("recipients")
    return _within_limit(prefix + b"".join(key + value if k == "recipients" else raw for k, raw in entries))


def decode_header(data: bytes) -> Header:
    """Decode and validate the header bytes (R5-R12). Authenticity is checked elsewhere."""
    top = _unpack_strict(data, "header")
    if not isinstance(top, dict):
        raise MalformedError("malformed header: not a map")
    _check_header_values(top, 0)

    chunk_size = _require(top, "chunk_size", int)
    if isinstance(chunk_size, bool):
        raise MalformedError("malformed header: 'chunk_size' is not an integer")
    if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
        raise LimitError(f"chunk size {chunk_size} is outside {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}")

    raw_recipients = _require(top, "recipients", list)
    if not raw_recipients:
        raise MalformedError("malformed header: no recipients")
    if len(raw_recipients) > MAX_RECIPIENTS:
        raise LimitError(f"{len(raw_recipients)} recipients exceed the limit of {MAX_RECIPIENTS}")
    recipients = tuple(_decode_recipient(r) for r in raw_recipients)
    if _duplicate_key_ids(recipients):  # R10, R35, R39, R41, R45
        raise MalformedError("malformed header: two recipient entries have the same key id")
    if len(recipients) > 1 and any(e.type == SCRYPT for e in recipients):  # R49
        raise MalformedError("malformed header: a scrypt (passphrase) entry is not the only recipient")

    meta = _require(top, "meta", bytes)
    metadata = decode_metadata(meta)  # R11: a header whose metadata is invalid is invalid
    commit = _require(top, "commit", bytes)
    if len(commit) != COMMIT_LEN:
        raise MalformedError("malformed header: 'commit' is not 32 bytes")  # R6

    critical: tuple[str, ...] = ()
    if "critical" in top:
        raw_critical = top["critical"]
        if not isinstance(raw_critical, list) or not all(isinstance(c, str) for c in raw_critical):
            raise MalformedError("malformed header: 'critical' is not an array of strings")
        critical = tuple(raw_critical)
        if len(set(critical)) != len(critical):
            raise MalformedError("malformed header: 'critical' names an extension twice")
        unknown = [c for c in critical if c not in KNOWN_EXTENSIONS]
        if unknown:
            # The names are the file's: repr() escapes what a terminal would interpret.
            names = ", ".join(map(repr, unknown))
            raise UnsupportedError(f"the file needs extensions this reader does not implement: {names}")
    signer = _decode_signer(top.get("signer"), SIGNATURE in critical)
    extensions = {k: v for k, v in top.items() if k not in _KNOWN_KEYS}
    header = Header(
        chunk_size=chunk_size,
        recipients=recipients,
        meta=meta,
        commit=commit,
        critical=critical,
        signer=signer,
        extensions=extensions,
        signed=signed_header(data),
    )
    header.__dict__["metadata"] = metadata  # fill the cached_property: decoded once, here
    return header


def _decode_signer(raw: Any, announced: bool) -> SignerEntry | None:
    """The ``signer`` map (R24, R25). ``announced``: ``critical`` names the signature extension."""
    if raw is None and not announced:
        return None
    if raw is None:
        raise MalformedError("malformed header: 'critical' names 'signature' but there is no 'signer'")
    if not announced:
        raise MalformedError("malformed header: a 'signer' without 'signature' in 'critical'")
    if not isinstance(raw, dict):
        raise MalformedError("malformed header: 'signer' is not a map")
    alg, kid, key = raw.get("alg"), raw.get("kid"), raw.get("key")
    if not isinstance(alg, str) or not isinstance(kid, bytes) or len(kid) != KEY_ID_LEN or not isinstance(key, bytes):
        raise MalformedError("malformed header: 'signer' lacks a str 'alg', a 32-byte 'kid' or a bin 'key'")
    if not hmac.compare_digest(hashlib.sha256(key).digest(), kid):
        raise MalformedError("malformed header: the signer's key id is not the SHA-256 of its key")
    if alg not in SIGNATURE_LENGTHS:
        raise UnsupportedError(f"the file is signed with an algorithm this reader does not implement: {alg!r}")
    return SignerEntry(alg, kid, key)


def _check_header_values(value: Any, depth: int) -> None:
    """Reject anything the header may not contain (timestamps, runaway nesting) (R5)."""
    if isinstance(value, (dict, list)):
        if depth >= MAX_HEADER_DEPTH:
            raise MalformedError(f"malformed header: nested deeper than {MAX_HEADER_DEPTH} levels")
        for child in value.values() if isinstance(value, dict) else value:
            _check_header_values(child, depth + 1)
    elif not (value is None or isinstance(value, (bool, int, float, str, bytes))):
        raise MalformedError("malformed header: MessagePack extension types are not allowed")


def _require(fields: dict[str, Any], key: str, kind: type) -> Any:
    if key not in fields:
        raise MalformedError(f"malformed header: '{key}' is missing")
    value = fields[key]
    if not isinstance(value, kind):
        raise MalformedError(f"malformed header: '{key}' has the wrong type")
    return value


def _decode_recipient(raw: Any) -> RecipientEntry:
    if not isinstance(raw, dict):
        raise MalformedError("malformed header: a recipient entry is not a map")
    kind = raw.get("type")
    if not isinstance(kind, str) or not 1 <= len(kind.encode()) <= MAX_TYPE_LEN:
        raise MalformedError("malformed header: a recipient entry has no valid 'type'")
    fields = {k: v for k, v in raw.items() if k != "type"}
    shape = _ENTRY_FIELDS.get(kind)
    if shape is not None:  # R10 (rsa-oaep-sha256), R35 (x25519), R39 (ssh-ed25519), R41 (mlkem768x25519)
        lengths, needs = shape
        for name, length in lengths.items():
            value = fields.get(name)
            if not isinstance(value, bytes) or (length is not None and len(value) != length):
                raise MalformedError(f"malformed header: an {kind} entry lacks {needs}")
    elif kind == FERNET:  # R45
        if not (_bin(fields, "kid", KEY_ID_LEN) and _bin(fields, "salt", SALT_LEN) and _wrapped(fields)):
            raise MalformedError("malformed header: a fernet entry has no valid 'kid', 'salt' or 'key'")
    elif kind == SCRYPT:  # R47
        ln = fields.get("ln")
        valid_ln = isinstance(ln, int) and not isinstance(ln, bool) and ln >= 1
        if not (valid_ln and _bin(fields, "salt", SALT_LEN) and _wrapped(fields)):
            raise MalformedError("malformed header: a scrypt entry has no valid 'salt', 'ln' or 'key'")
    return RecipientEntry(type=kind, fields=fields)


def _wrapped(fields: Mapping[str, Any]) -> bool:
    return _bin(fields, "key", SYMMETRIC_WRAP_LEN)


def _bin(fields: Mapping[str, Any], key: str, length: int) -> bool:
    value = fields.get(key)
    return isinstance(value, bytes) and len(value) == length


# --- reading from a stream -----------------------------------------------------------------


def read_header(src: IO[bytes]) -> tuple[bytes, Header, bytes]:
    """Read and decode the prefix, header and MAC from ``src`` (R1-R12): unauthenticated."""
    prefix = _read_exact(src, PREFIX_LEN, allow_short_magic=True)
    header_len = decode_prefix(prefix)
    header_bytes = _read_exact(src, header_len)
    header = decode_header(header_bytes)
    mac = _read_exact(src, HEADER_MAC_LEN)
    return prefix + header_bytes, header, mac


def _read_exact(src: IO[bytes], size: int, *, allow_short_magic: bool = False) -> bytes:
    data = src.read(size)
    got = len(data)
    while got < size and (more := src.read(size - got)):  # sources may return short reads
        data += more
        got = len(data)
    if got < size:
        if allow_short_magic:
            raise MalformedError("not an envelope file (too short)" if got else "not an envelope file (empty)")
        raise MalformedError("malformed file: it ends inside the header (truncated?)")
    return bytes(data)
