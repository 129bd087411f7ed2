"""Byte structures of key files: DER elements, PEM blocks and OpenSSH's private key header, read
without cryptography; encrypted PKCS#8 private keys, written with its primitives."""

from __future__ import annotations

import base64
import re
import struct
from typing import Any

from .errors import InvalidKeyError, UsageError

# PBES2 (RFC 8018) with PBKDF2-HMAC-SHA256 and AES-256-CBC: what OpenSSL writes for
# ``openssl pkcs8 -topk8 -v2 aes-256-cbc`` and reads back.
_OID_PBES2 = bytes.fromhex("2a864886f70d01050d")
_OID_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_OID_HMAC_SHA256 = bytes.fromhex("2a864886f70d0209")
_OID_AES256_CBC = bytes.fromhex("60864801650304012a")


def private_key_pem(key: Any, password: bytes | None, iterations: int) -> bytes:
    """PKCS#8 PEM of a private key object of cryptography (RSA or a signing key); with a password,
    an ``ENCRYPTED PRIVATE KEY`` (:func:`encrypted_private_key_info`)."""
    from cryptography.hazmat.primitives import serialization

    if password is None:
        pem: bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return pem
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem_encode(b"ENCRYPTED PRIVATE KEY", encrypted_private_key_info(der, password, iterations))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def encrypted_private_key_info(private_key_info: bytes, password: bytes, iterations: int) -> bytes:
    """A PKCS#8 PrivateKeyInfo (DER) encrypted into an EncryptedPrivateKeyInfo (DER): PBES2 with
    PBKDF2-HMAC-SHA256 (``iterations``, a random 16-byte salt) and AES-256-CBC (RFC 8018 6.2, A.2,
    B.2.5). cryptography's PKCS#8 writer fixes the iteration count at 2048, and its PKCS#12
    writer, which takes a count, refuses ML-DSA keys: this one takes any key."""
    import os

    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    salt, iv = os.urandom(16), os.urandom(16)
    key = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(password)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(private_key_info) + padder.finalize()) + encryptor.finalize()
    count = iterations.to_bytes(iterations.bit_length() // 8 + 1, "big")  # DER INTEGER: positive, minimal
    prf = _der(0x30, _der(0x06, _OID_HMAC_SHA256) + b"\x05\x00")
    kdf = _der(0x30, _der(0x06, _OID_PBKDF2) + _der(0x30, _der(0x04, salt) + _der(0x02, count) + prf))
    cipher = _der(0x30, _der(0x06, _OID_AES256_CBC) + _der(0x04, iv))
    scheme = _der(0x30, _der(0x06, _OID_PBES2) + _der(0x30, kdf + cipher))
    return _der(0x30, scheme + _der(0x04, ciphertext))


def pem_encode(label: bytes, der: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN " + label + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label + b"-----\n"


def der_element(data: bytes, position: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``position``; ValueError if cut."""
    if position + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[position], data[position + 1]
    start = position + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated DER")
    return tag, start, start + length


def der_shape(der: bytes) -> str | None:
    """What a DER structure is, from the tags of its top-level SEQUENCE's elements: "private"
    (PKCS#8 PrivateKeyInfo or PKCS#1 RSAPrivateKey: an INTEGER first), "encrypted"
    (EncryptedPrivateKeyInfo: AlgorithmIdentifier, OCTET STRING), "public" (SubjectPublicKeyInfo:
    AlgorithmIdentifier, BIT STRING; or PKCS#1 RSAPublicKey: two INTEGERs), "certificate"
    (SEQUENCE, SEQUENCE, BIT STRING), or None."""
    try:
        tag, position, end = der_element(der, 0)
        if tag != 0x30 or end != len(der):
            return None
        tags = []
        while position < end:
            element_tag, _, position = der_element(der, position)
            tags.append(element_tag)
    except ValueError:
        return None
    shapes = {
        (0x02, 0x02): "public",
        (0x30, 0x03): "public",
        (0x30, 0x04): "encrypted",
        (0x30, 0x30, 0x03): "certificate",
    }
    if tuple(tags) in shapes:
        return shapes[tuple(tags)]
    return "private" if tags[:1] == [0x02] else None


def algorithm_oid(der: bytes, *, skip_version: bool) -> bytes | None:
    """The algorithm OID of a SubjectPublicKeyInfo (or, skipping the version, a PKCS#8
    PrivateKeyInfo): SEQUENCE { [INTEGER version,] SEQUENCE { OID, ... }, ... }. None if the bytes
    are not shaped like one."""
    try:
        tag, position, _ = der_element(der, 0)
        if tag != 0x30:
            return None
        if skip_version:
            tag, _, position = der_element(der, position)
            if tag != 0x02:
                return None
        tag, position, _ = der_element(der, position)
        if tag != 0x30:
            return None
        tag, start, end = der_element(der, position)
        return der[start:end] if tag == 0x06 else None
    except ValueError:
        return None


_PEM_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]{1,64})-----")


def pem_label(data: bytes) -> bytes:
    """The label of the first PEM block (``PUBLIC KEY`` for ``-----BEGIN PUBLIC KEY-----``), or b""."""
    match = _PEM_BEGIN.search(data)
    return match.group(1) if match else b""


def pem_body(data: bytes, label: bytes) -> bytes | None:
    """The DER inside the first PEM block with this label, if any."""
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    if begin not in data or end not in data:
        return None
    body = data.split(begin, 1)[1].split(end, 1)[0]
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except ValueError:
        return None


_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def openssh_header(data: bytes) -> tuple[str, bytes]:
    """The cipher name and the public key blob of an OpenSSH private key, both in the clear
    (OpenSSH's PROTOCOL.key: magic, cipher, KDF, KDF options, key count, public keys, ...)."""
    try:
        body = data.split(b"-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split(b"-----END", 1)[0]
        raw = base64.b64decode(b"".join(body.split()), validate=True)
        if not raw.startswith(_OPENSSH_MAGIC):
            raise ValueError("no magic")
        position = len(_OPENSSH_MAGIC)
        cipher, position = ssh_string(raw, position)
        _kdf, position = ssh_string(raw, position)
        _kdf_options, position = ssh_string(raw, position)
        if position + 4 > len(raw) or struct.unpack_from(">I", raw, position)[0] != 1:
            raise ValueError("not one key")
        public_blob, _ = ssh_string(raw, position + 4)
    except (ValueError, IndexError) as exc:
        raise InvalidKeyError("not a valid OpenSSH private key") from exc
    return cipher.decode("ascii", "replace"), public_blob


def ssh_string(raw: bytes, position: int) -> tuple[bytes, int]:
    if position + 4 > len(raw):
        raise ValueError("truncated")
    (length,) = struct.unpack_from(">I", raw, position)
    start = position + 4
    if start + length > len(raw):
        raise ValueError("truncated")
    return raw[start : start + length], start + length


def ssh_field(blob: bytes, index: int) -> bytes:
    """The ``index``-th string of an SSH wire-format blob (0: the key type)."""
    position = 0
    try:
        for _ in range(index):
            _, position = ssh_string(blob, position)
        return ssh_string(blob, position)[0]
    except ValueError as exc:
        raise InvalidKeyError("not a valid OpenSSH private key") from exc


# How a key's text begins (PEM, OpenSSH lines, age) or what it holds (an age identity file).
_TEXT_STARTS = (b"ssh-", b"ecdsa-sha2-", b"sk-", b"age1")


def key_text(data: bytes) -> bytes:
    """Key text (PEM, OpenSSH, age) without surrounding white space; DER unchanged: its last byte
    is a key byte, and may be 0x20 or 0x0a-0x0d (stripping it broke about one EC key in 40)."""
    text = data.strip()
    textual = b"-----BEGIN" in text or text.startswith(_TEXT_STARTS) or b"AGE-SECRET-KEY-" in text
    return text if textual else data


def passphrase_bytes(passphrase: object) -> bytes | None:
    """A passphrase as bytes (UTF-8 for text); None stays None; an empty one is refused."""
    if passphrase is None:
        return None
    if isinstance(passphrase, str):
        passphrase = passphrase.encode("utf-8")
    if not isinstance(passphrase, bytes):
        raise UsageError(f"a passphrase is str or bytes, not {type(passphrase).__name__}")
    if not passphrase:
        raise UsageError("the passphrase is empty")
    return passphrase
