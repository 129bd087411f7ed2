"""Every limit and default of envelope, in one place.

The format's limits are those of ``spec/FORMAT.md`` section 3.3; the key policy is rule R23. The
SDK, the command-line tools and the model adapters all read them from here.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_KEY_BITS",
    "DEFAULT_SCRYPT_WORK_FACTOR",
    "FOOTER_TAG_BLOCK",
    "KEY_FILE_KDF_ITERATIONS",
    "MAX_CHUNK_SIZE",
    "MAX_FOLDER_INDEX_LEN",
    "MAX_FOLDER_MEMBERS",
    "MAX_HEADER_DEPTH",
    "MAX_HEADER_LEN",
    "MAX_KEY_BITS",
    "MAX_KEY_FILE_LEN",
    "MAX_MEMBER_NAME_LEN",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_LEN",
    "MAX_PASSPHRASE_FILE_LEN",
    "MAX_RECIPIENTS",
    "MAX_SCRYPT_WORK_FACTOR",
    "MAX_TYPE_LEN",
    "MIN_CHUNK_SIZE",
    "MIN_KEY_BITS",
    "SCRYPT_R",
    "SCRYPT_WORK_FACTOR_CEILING",
    "scrypt_memory",
]

# --- the format (spec/FORMAT.md section 3.3) ----------------------------------------------------
MAX_HEADER_LEN = 1 << 20  # bytes of header, checked from the prefix before anything is read (R3)
MAX_RECIPIENTS = 1024  # recipient entries in one header (R8)
MIN_CHUNK_SIZE = 16  # plaintext bytes per chunk (R7)
MAX_CHUNK_SIZE = 16 << 20
MAX_METADATA_LEN = 64 << 10  # bytes of encoded metadata (R11)
MAX_METADATA_DEPTH = 8  # nesting of metadata maps and arrays, the metadata map being depth 1 (R11)
MAX_HEADER_DEPTH = 16  # nesting anywhere in the header (R5)
MAX_TYPE_LEN = 64  # UTF-8 bytes of a recipient entry's type (R9)

# --- folder payloads (spec/FORMAT.md section 11.5) ------------------------------------------------
MAX_FOLDER_INDEX_LEN = 16 << 20  # bytes of the index, checked before it is read (R30)
MAX_FOLDER_MEMBERS = 100_000  # members of one folder (R31)
MAX_MEMBER_NAME_LEN = 4096  # UTF-8 bytes of a member's name (R32)

# --- keys (R23) ---------------------------------------------------------------------------------
MIN_KEY_BITS = 2048  # RSA modulus
MAX_KEY_BITS = 16384
DEFAULT_KEY_BITS = 3072
KEY_FILE_KDF_ITERATIONS = 600_000  # PBKDF2-HMAC-SHA256 of passphrase-protected key files (OWASP 2023)

# --- passphrase (scrypt) entries (spec/FORMAT.md 4.5, R48): N = 2**work factor, r = 8, p = 1 -------
# 128 * r * N bytes of memory: 2**18 is 256 MiB and about 1 s here, 2**20 is 1 GiB and about 4.5 s
# (tools/bench_passphrase.py).
DEFAULT_SCRYPT_WORK_FACTOR = 18  # what sealing uses, as age does
MAX_SCRYPT_WORK_FACTOR = 20  # what a reader accepts unless its caller raises it (R48)
SCRYPT_WORK_FACTOR_CEILING = 30  # no caller may raise it further (128 GiB)
SCRYPT_R = 8  # scrypt's block size parameter (section 4.5)


def scrypt_memory(work_factor: int) -> int:
    """Bytes of memory scrypt needs at this work factor: 128 * r * 2**work_factor."""
    return 128 * SCRYPT_R * (1 << work_factor)


# --- SDK defaults and input bounds ----------------------------------------------------------------
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: near the best throughput with under 64 MiB in flight (docs/PERFORMANCE.md)
MAX_KEY_FILE_LEN = 1 << 20  # a key file, certificate chains included, is far smaller
MAX_PASSPHRASE_FILE_LEN = 64 << 10
# Tags of a signed file's footer read, hashed and held at a time (32 bytes each: 128 KiB), so that
# checking a signature needs the same memory whatever the file's length (spec/FORMAT.md 8.3).
FOOTER_TAG_BLOCK = 4096
