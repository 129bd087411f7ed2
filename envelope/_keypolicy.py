"""The key policy (spec section 3.3, rule R23): which keys envelope encrypts to and opens with.

One place decides: RSA keys of 2048 to 16384 bits with sound numbers (an odd, composite modulus
without small factors; a sane public exponent; private components bounded by the modulus), not
RSA-PSS-restricted, and, for certificates, valid now and allowed to encipher keys. Every other kind of
key gets one refusal (:func:`refuse_kind`).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import math
import secrets
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from . import _keyformat
from .errors import InvalidKeyError
from .limits import MAX_KEY_BITS, MIN_KEY_BITS

if TYPE_CHECKING:
    from cryptography import x509


def check_key_policy(key: object) -> None:
    """Refuse anything but a sound RSA key of 2048 to 16384 bits (R23).

    Beyond its size, an RSA key must have an odd modulus without small prime factors that is not
    prime (a Fermat round with a random base, up to MAX_PRIMALITY_BITS; a prime modulus would let
    anyone compute the private key) and an odd public exponent from 3 to below 2**256. A private key's components must
    also be bounded by the modulus, with ``p * q == n``: a key with oversized CRT values would make
    every private operation slow. Results for a public key are cached per key, so a key used many
    times is checked once per process.
    """
    if not isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        refuse_kind(key_kind(key))
    if not MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS:
        raise InvalidKeyError(
            f"RSA key of {key.key_size} bits refused: keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits"
        )
    if isinstance(key, rsa.RSAPrivateKey):
        problem = private_numbers_problem(key.private_numbers())
    else:
        numbers = key.public_numbers()
        problem = public_numbers_problem(numbers.n, numbers.e)
    if problem:
        raise InvalidKeyError(f"RSA key refused: {problem}")


def refuse_kind(kind: str) -> NoReturn:
    """The one refusal of every key that is not RSA, whatever its format. When other kinds become
    usable (signing keys, say), this is where the policy changes."""
    signs = kind in _SIGNING_KINDS
    raise InvalidKeyError(
        f"{kind} keys cannot be recipients: envelope encrypts to RSA keys ({MIN_KEY_BITS} to {MAX_KEY_BITS} bits) "
        "and age keys (age1..., ssh-ed25519 lines)"
        + ("; this one signs: seal --sign, open --signed-by (load_signing_key, load_verifying_key)" if signs else "")
    )


_SIGNING_KINDS = frozenset({"Ed25519", "ECDSA P-256", "ML-DSA-65"})  # spec/FORMAT.md 8.2


_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_SSH_KINDS = {
    b"ssh-ed25519": "Ed25519",
    b"ssh-ed448": "Ed448",
    b"ssh-dss": "DSA",
    b"ecdsa-sha2-nistp256": "ECDSA P-256",
    b"ecdsa-sha2-nistp384": "ECDSA P-384",
    b"ecdsa-sha2-nistp521": "ECDSA P-521",
    b"sk-ssh-ed25519@openssh.com": "Ed25519 security-key",
    b"sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA P-256 security-key",
}


def key_kind(key: object) -> str:
    """The kind of a non-RSA key object, in plain words ("Ed25519", "ECDSA P-256", "DSA")."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return f"ECDSA {_CURVES.get(key.curve.name, key.curve.name)}"
    for kinds, name in (
        ((ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey), "Ed25519"),
        ((ed448.Ed448PublicKey, ed448.Ed448PrivateKey), "Ed448"),
        ((x25519.X25519PublicKey, x25519.X25519PrivateKey), "X25519"),
        ((x448.X448PublicKey, x448.X448PrivateKey), "X448"),
    ):
        if isinstance(key, kinds):
            return name
    # Other kinds by their class name: cryptography deprecates its DSA and DH names (touching
    # dsa.DSAPublicKey warns from cryptography 51 on), and ML-DSA and ML-KEM are recent.
    # DSAPublicKey -> DSA, DHPublicKey -> Diffie-Hellman, MLDSA65PublicKey -> ML-DSA-65.
    name = type(key).__name__.lstrip("_").removesuffix("PublicKey").removesuffix("PrivateKey")
    if name == "DH":
        return "Diffie-Hellman"
    for family in ("DSA", "KEM"):
        if name.startswith(f"ML{family}"):
            return f"ML-{family}-{name[2 + len(family) :]}"
    return name or type(key).__name__


def refuse_ssh_kind(kind: bytes) -> NoReturn:
    """Refuse an OpenSSH key type other than ``ssh-rsa``, by its name (no need to parse the key)."""
    if kind in _SSH_KINDS:
        refuse_kind(_SSH_KINDS[kind])
    if kind.endswith(b"-cert-v01@openssh.com"):
        raise InvalidKeyError("OpenSSH certificates are not supported: give the plain ssh-rsa public key")
    raise InvalidKeyError(f"unknown OpenSSH key type {kind.decode('ascii', 'replace')!r}")


_CONFIRM_ROUNDS = 2  # after a first "probably prime": only chooses between two refusal messages


MAX_PRIMALITY_BITS = 4096  # above, the primality round is skipped: it takes seconds (see below)


@functools.lru_cache(maxsize=256)
def public_numbers_problem(n: int, e: int) -> str | None:
    """What is wrong with an RSA public key (n, e), or None.

    Telling a prime modulus from an RSA one costs one modular exponentiation of the modulus's size.
    Up to 3072 bits OpenSSL computes it (about 4 / 10 ms for 2048 / 3072 bits); above, Python
    integers do (about 200 ms for 4096 bits, and 1.5 / 12 s for 8192 / 16384, which is why moduli
    over MAX_PRIMALITY_BITS get only the other checks). Cached per key."""
    if n % 2 == 0:
        return "its modulus is even"
    problem = exponent_problem(n, e)
    if problem:
        return problem
    if math.gcd(n, small_primes_product()) != 1:
        return "its modulus has a small prime factor"
    if n.bit_length() > MAX_PRIMALITY_BITS:
        return None
    composite = composite_by_openssl(n)
    if composite is None:
        composite = not is_probable_prime(n, rounds=1)  # an RSA modulus fails this round (error < 2**-100)
    if not composite:
        if is_probable_prime(n, rounds=_CONFIRM_ROUNDS):
            return "its modulus is a prime number, so anyone can compute the private key"
        return "its modulus is a strong pseudoprime, not a product of two large primes"
    return None


def composite_by_openssl(n: int) -> bool | None:
    """A Fermat test to a random base whose large exponentiation OpenSSL computes: True proves
    ``n`` composite; False means it passed (prime, or a rare pseudoprime); None when OpenSSL will
    not compute it (public exponents over 64 bits are refused for moduli over 3072 bits).

    With ``n - 1 = 2**s * d`` (d odd), the RSA public operation of the key (n, e = d) on an OAEP
    block ``a`` (random: OAEP draws a fresh seed) gives ``a**d mod n``; ``s`` squarings in Python
    then give ``a**(n-1) mod n``, which is 1 for a prime n and, for an RSA modulus, 1 only with
    negligible probability. Nothing is encrypted or kept: OAEP is only the way in to OpenSSL's
    modular exponentiation, which cryptography does not otherwise expose."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    s = ((n - 1) & -(n - 1)).bit_length() - 1
    d = (n - 1) >> s
    try:
        block = rsa.RSAPublicNumbers(d, n).public_key()
        x = int.from_bytes(
            block.encrypt(b"", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)), "big"
        )
    except ValueError:
        return None
    for _ in range(s):
        x = x * x % n
    return x != 1


def exponent_problem(n: int, e: int) -> str | None:
    if e % 2 == 0 or not 3 <= e < n or e.bit_length() > 256:
        return "its public exponent must be odd, at least 3, and below 2**256 and the modulus"
    return None


def private_numbers_problem(numbers: rsa.RSAPrivateNumbers) -> str | None:
    """Cheap integer checks of a private key's components: each bounded by the modulus (or by its
    prime), ``p * q == n``. The factors make the modulus composite, so no primality round is needed."""
    n, e = numbers.public_numbers.n, numbers.public_numbers.e
    p, q = numbers.p, numbers.q
    if n % 2 == 0:
        return "its modulus is even"
    problem = exponent_problem(n, e)
    if problem:
        return problem
    if not (1 < p < n and 1 < q < n and p != q and p * q == n):
        return "its prime factors do not multiply to its modulus"
    if not (0 < numbers.d < n and 0 < numbers.dmp1 < p and 0 < numbers.dmq1 < q and 0 < numbers.iqmp < p):
        return "its private exponent or CRT values are out of range (corrupted or crafted)"
    if math.gcd(n, small_primes_product()) != 1:
        return "its modulus has a small prime factor"
    return None


@functools.cache
def small_primes_product() -> int:
    """The product of the primes below 10 000 (a 14 000-bit number: one gcd, under 1 ms)."""
    limit = 10_000
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\0\0"
    for i in range(2, math.isqrt(limit) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit, i)))
    return math.prod(i for i, is_prime in enumerate(sieve) if is_prime)


def random_base(n: int) -> int:
    return 2 + secrets.randbelow(n - 3)


def is_probable_prime(n: int, rounds: int) -> bool:
    """Miller-Rabin with random bases (odd n > 3): False proves n composite; True means n passed
    ``rounds`` rounds. Random bases, so no crafted composite passes reliably."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(random_base(n), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


_RSA_PSS_OID = "1.2.840.113549.1.1.10"
_RSA_PSS_OID_DER = bytes.fromhex("2a864886f70d01010a")  # the OID's content octets
_PSS_REFUSED = "RSA-PSS keys are for signatures only; use an RSA (rsaEncryption) key"
# DSA keys are refused by their algorithm identifier before cryptography loads them: from its
# release 51 on, loading one warns (CryptographyDeprecationWarning), which would put lines of its own
# before the CLI's one-line error.
_DSA_OID = "1.2.840.10040.4.1"
_DSA_OID_DER = bytes.fromhex("2a8648ce380401")


@contextlib.contextmanager
def loading_keys() -> Iterator[None]:
    """Around cryptography's key loaders: a DSA key hidden where its algorithm identifier cannot be
    read first (an encrypted PKCS#8 file, an OpenSSH file) still makes cryptography 51 warn, and
    envelope refuses that key right after with its own one-line error."""
    from cryptography.utils import CryptographyDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


def certificate_key(certificate: x509.Certificate) -> object:
    """The key of a certificate that may serve as a recipient: RSA (not RSA-PSS), valid now, and
    allowed to encipher keys when it says what it may do."""
    algorithm = certificate.public_key_algorithm_oid.dotted_string
    if algorithm == _RSA_PSS_OID:
        raise InvalidKeyError(_PSS_REFUSED)
    if algorithm == _DSA_OID:
        refuse_kind("DSA")
    try:
        key = certificate.public_key()
    except UnsupportedAlgorithm as exc:
        raise InvalidKeyError("the certificate's key is of an algorithm envelope cannot read") from exc
    except ValueError as exc:
        raise InvalidKeyError("the certificate's public key is damaged") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        refuse_kind(key_kind(key))
    check_certificate(certificate)
    return key


_EXTRACT_HINT = "to use its key anyway, extract it: openssl x509 -pubkey -noout -in CERT > KEY.pub"


def check_certificate(certificate: x509.Certificate) -> None:
    from cryptography import x509

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now > end:
        raise InvalidKeyError(f"the certificate expired on {end:%Y-%m-%d %H:%M} UTC; {_EXTRACT_HINT}")
    if now < start:
        raise InvalidKeyError(f"the certificate is not valid before {start:%Y-%m-%d %H:%M} UTC; {_EXTRACT_HINT}")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:  # a duplicated or malformed extension
        raise InvalidKeyError("the certificate's extensions cannot be parsed") from exc
    if not usage.key_encipherment:
        raise InvalidKeyError(
            f"the certificate's KeyUsage does not allow keyEncipherment (it is not meant to receive "
            f"encrypted keys); {_EXTRACT_HINT}"
        )


def refuse_rsa_pss(data: bytes, *, private: bool) -> None:
    """RSA-PSS-restricted keys are signing keys; using them to encrypt breaks their contract (R23).

    cryptography loads them as plain RSA keys, so read the algorithm identifier of the
    SubjectPublicKeyInfo or PKCS#8 structure. (An encrypted PKCS#8 file hides it; such a private key
    could only open files sealed to the rsaEncryption form of the same public key.) DSA keys are
    refused here too, from the same identifier, so that cryptography never loads one (see _DSA_OID).
    """
    label = b"PRIVATE KEY" if private else b"PUBLIC KEY"
    der = _keyformat.pem_body(data, label) if b"-----BEGIN" in data else data
    algorithm = None if der is None else _keyformat.algorithm_oid(der, skip_version=private)
    if algorithm == _RSA_PSS_OID_DER:
        raise InvalidKeyError(_PSS_REFUSED)
    if algorithm == _DSA_OID_DER:
        refuse_kind("DSA")
