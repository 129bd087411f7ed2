"""Keys on PKCS#11 tokens (HSMs, smart cards, SoftHSM2): identities that unwrap and signers that
sign without the private key ever leaving the token. Needs the ``pkcs11`` extra
(``pip install envelope-ml[pkcs11]``, which brings python-pkcs11).

Keys are named by RFC 7512 URIs (``pkcs11:token=models;object=prod-key``). The module (the
vendor's ``.so``) comes from the URI's ``module-path`` or ``module-name``, else from ``module=``,
else from the environment variable ``ENVELOPE_PKCS11_MODULE``. The PIN comes from ``pin=`` (a value
or a function that returns one, such as a prompt), else the URI's ``pin-value`` or ``pin-source``
(``file:`` only). docs/SDK.md, "Keys held elsewhere", has the details.

RSA unwrap uses ``CKM_RSA_PKCS_OAEP`` (SHA-256, MGF1-SHA-256, no source data) when the token
takes those parameters, else ``CKM_RSA_X_509`` (the raw RSA operation) with the OAEP decoding done
here in constant form (``_oaep``). One token operation per open, once the mechanism is known.
Every PKCS#11 failure becomes :class:`~envelope.ExternalKeyError`, naming the key, never the PIN.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Union

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ._oaep import decode_or_random
from ._pkcs11uri import Pkcs11Uri, is_pkcs11_uri, parse_pkcs11_uri
from ._signerkeys import spki
from .errors import ExternalKeyError, MissingDependencyError, UsageError

__all__ = [
    "MODULE_ENV",
    "PinSource",
    "Pkcs11Identity",
    "Pkcs11Signer",
    "Pkcs11Uri",
    "generate_key_pair",
    "is_pkcs11_uri",
    "load_public_key",
    "parse_pkcs11_uri",
]

MODULE_ENV = "ENVELOPE_PKCS11_MODULE"
MECHANISMS = ("auto", "oaep", "x509")
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")  # DER OID prime256v1
_ED25519_PARAMS = (bytes.fromhex("06032b6570"), bytes.fromhex("130c656477617264733235353139"))  # OID, or "edwards25519"
# Where a module-name is looked for (RFC 7512 leaves it to the consumer): p11-kit's folders, and
# the folders Debian and Fedora install SoftHSM2 into.
_MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pkcs11", "/usr/lib/aarch64-linux-gnu/pkcs11", "/usr/lib64/pkcs11", "/usr/lib/pkcs11",
    "/usr/local/lib/pkcs11", "/usr/lib/softhsm", "/usr/lib/x86_64-linux-gnu/softhsm", "/usr/lib64/softhsm",
    "/usr/local/lib/softhsm", "/opt/homebrew/lib/softhsm",
)  # fmt: skip

PinSource = Union[str, bytes, Callable[[], Union[str, bytes]], None]  # noqa: UP007 - a runtime alias
"""A PIN, or a function that returns one when the token asks (a prompt)."""


def _library() -> Any:
    try:
        import pkcs11
    except ImportError as exc:
        raise MissingDependencyError(
            "keys on PKCS#11 tokens need python-pkcs11: pip install envelope-ml[pkcs11]"
        ) from exc
    return pkcs11


# What each PKCS#11 return value means to a user, by python-pkcs11's exception class name.
_REASONS = {
    "PinIncorrect": "the token refused the PIN",
    "PinLocked": "the token's user PIN is locked (too many wrong PINs): its security officer must unlock it",
    "PinExpired": "the token's user PIN has expired: set a new one",
    "PinInvalid": "the token does not accept a PIN of those characters",
    "PinLenRange": "the token does not accept a PIN of that length",
    "UserPinNotInitialized": "the token's user PIN is not set: initialise the token",
    "TokenNotPresent": "the token is not present",
    "TokenNotRecognised": "the token is not recognised by its module",
    "DeviceRemoved": "the token was removed",
    "DeviceError": "the token reported a device error",
    "DeviceMemory": "the token is out of memory",
    "KeyTypeInconsistent": "the key is of the wrong type for this operation",
    "KeyFunctionNotPermitted": "the key is not allowed this operation (its CKA_DECRYPT or CKA_SIGN is false)",
    "MechanismInvalid": "the token does not offer this mechanism",
    "MechanismParamInvalid": "the token refuses this mechanism's parameters",
    "ArgumentsBad": "the token refuses this mechanism's parameters",
    "TokenWriteProtected": "the token is write-protected",
    "SessionCount": "the token has no free session",
}


def _token_error(exc: BaseException, key: str) -> ExternalKeyError:
    name = type(exc).__name__
    reason = _REASONS.get(name, f"the PKCS#11 module failed ({name})")
    return ExternalKeyError(f"{key}: {reason}")


_MODULES: dict[str, Any] = {}
_MODULES_LOCK = threading.Lock()


def _module_path(uri: Pkcs11Uri, module: str | os.PathLike[str] | None) -> str:
    path = uri.module_path
    if path is not None and not os.path.isdir(path):
        return path
    if uri.module_name is not None:
        name = uri.module_name
        if "/" in name:
            raise UsageError("a PKCS#11 URI's module-name is a name, not a path: use module-path")
        folders = [path] if path is not None else list(_MODULE_DIRS)
        for folder in folders:
            for candidate in (f"lib{name}.so", f"{name}.so", f"lib{name}.dylib", name):
                if os.path.isfile(os.path.join(folder, candidate)):
                    return os.path.join(folder, candidate)
        raise ExternalKeyError(f"no PKCS#11 module named {name!r} in {', '.join(folders)}: give module-path")
    if module is not None:
        return os.fspath(module)
    from_env = os.environ.get(MODULE_ENV)
    if from_env:
        return from_env
    raise UsageError(
        f"which PKCS#11 module? Put module-path=... in the URI, pass module=, or set {MODULE_ENV} "
        "(for SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
    )


_DEEP_BOUND: list[Any] = []  # the modules loaded by _bind_to_its_own_libraries, kept loaded


def _bind_to_its_own_libraries(path: str) -> None:
    """Load the module first with RTLD_DEEPBIND (Linux), so that it and the libraries it links
    (SoftHSM2: the system's OpenSSL) resolve their symbols among themselves before the process's
    global ones. TensorFlow exports BoringSSL's symbols under OpenSSL's names: without this, a
    process that imported TensorFlow crashes (SIGSEGV) in SoftHSM2's C_Login. python-pkcs11 then
    opens the same, already loaded, module. Elsewhere (no RTLD_DEEPBIND) this does nothing."""
    deep = getattr(os, "RTLD_DEEPBIND", None)
    if deep is None:
        return
    import ctypes

    try:
        _DEEP_BOUND.append(ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL | deep))
    except OSError:
        pass  # python-pkcs11's own load reports what is wrong with the module


def _load_module(path: str) -> Any:
    pkcs11 = _library()
    with _MODULES_LOCK:
        lib = _MODULES.get(path)
        if lib is None:
            if not os.path.isfile(path):
                raise ExternalKeyError(f"the PKCS#11 module {path} does not exist")
            _bind_to_its_own_libraries(path)
            try:
                lib = pkcs11.lib(path)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise ExternalKeyError(f"the PKCS#11 module {path} cannot be loaded (not a PKCS#11 module?)") from exc
            _MODULES[path] = lib
        return lib


def _find_token(lib: Any, uri: Pkcs11Uri, key: str) -> Any:
    pkcs11 = _library()
    wanted: dict[str, Callable[[Any], Any]] = {
        "token": lambda t: t.label, "manufacturer": lambda t: t.manufacturer_id, "model": lambda t: t.model,
        "serial": lambda t: t.serial.decode() if isinstance(t.serial, bytes) else t.serial,
        "slot-id": lambda t: str(t.slot.slot_id), "slot-description": lambda t: t.slot.slot_description,
        "slot-manufacturer": lambda t: t.slot.manufacturer_id,
    }  # fmt: skip
    try:
        tokens = [slot.get_token() for slot in lib.get_slots(token_present=True)]
    except pkcs11.exceptions.PKCS11Error as exc:
        raise _token_error(exc, key) from exc
    found = [t for t in tokens if all(str(get(t)).strip() == uri.path[a] for a, get in wanted.items() if a in uri.path)]
    if not found:
        raise ExternalKeyError(
            f"{key}: no token matches (tokens present: {', '.join(repr(t.label) for t in tokens) or 'none'})"
        )
    if len(found) > 1:
        raise ExternalKeyError(f"{key}: {len(found)} tokens match: add token= or serial= to the URI")
    return found[0]


def _pin_text(pin: PinSource, uri: Pkcs11Uri, key: str) -> str | None:
    if pin is None:
        if uri.pin_value is not None:
            return uri.pin_value
        if uri.pin_source is not None:
            return _pin_from_source(uri.pin_source, key)
        return None
    value = pin() if callable(pin) else pin
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _pin_from_source(source: str, key: str) -> str:
    path = source[len("file:") :] if source.startswith("file:") else source
    if path.startswith("//"):  # file:///path
        path = path[2:]
    if not path.startswith("/"):
        raise UsageError(f"{key}: pin-source is a file (file:/path or /path); other sources are not supported")
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as exc:
        raise ExternalKeyError(f"{key}: the pin-source file {path} cannot be read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8").splitlines()[0] if data else ""  # the first line, as --pin-file reads it
    except UnicodeDecodeError:
        raise ExternalKeyError(f"{key}: the pin-source file {path} is not UTF-8 text") from None


class _Shared:
    """The logged-in session of one token, shared by every key of this process on it. PKCS#11 logs
    an application in per token, not per session, and closing the session that logged in logs
    every other one out (their key handles stop working): so one session per token holds the
    login, and it is closed (logging out) only when the last key that uses it is closed."""

    def __init__(self, session: Any, pin_text: str | None) -> None:
        self.session = session
        self.lock = threading.Lock()  # a PKCS#11 session is not thread-safe
        self.users = 0
        # A later key on this token is not logged in again (the token would answer "already logged
        # in" without checking its PIN), so its PIN is checked against the one that logged in, kept
        # only as a salted digest. None: the login was made outside envelope and cannot be checked.
        self._salt = os.urandom(16)
        self._pin = None if pin_text is None else self._digest(pin_text)

    def _digest(self, pin_text: str) -> bytes:
        return hashlib.sha256(self._salt + pin_text.encode("utf-8", "surrogatepass")).digest()

    def admits(self, pin_text: str) -> bool:
        """Whether ``pin_text`` is the PIN that logged this token in (True when that is unknown)."""
        return self._pin is None or hmac.compare_digest(self._pin, self._digest(pin_text))


_SHARED: dict[tuple[str, int], _Shared] = {}  # (module path, slot id) -> its logged-in session
_SHARED_LOCK = threading.Lock()


class _Session:
    """A key's access to its token: the token's shared logged-in session (or, for a public key
    read without a PIN, a session of its own that never logs in)."""

    def __init__(
        self,
        uri: str | Pkcs11Uri,
        module: str | os.PathLike[str] | None,
        pin: PinSource,
        *,
        need_pin: bool = True,
    ) -> None:
        self.uri = uri if isinstance(uri, Pkcs11Uri) else parse_pkcs11_uri(uri)
        self.name = str(self.uri)
        self.pkcs11 = _library()
        path = os.path.realpath(_module_path(self.uri, module))
        self.lib = _load_module(path)
        self.token = _find_token(self.lib, self.uri, self.name)
        pin_text = _pin_text(pin, self.uri, self.name)
        if pin_text is None and need_pin:
            raise ExternalKeyError(
                f"{self.name}: a private key on a token needs its PIN: pass pin=, or put pin-source=file:PATH in "
                "the URI"
            )
        errors = self.pkcs11.exceptions
        self._key: tuple[str, int] | None = None
        self._shared: _Shared | None = None
        try:
            if pin_text is None:
                self._shared = _Shared(self.token.open(), None)
            else:
                key = (path, int(self.token.slot.slot_id))
                with _SHARED_LOCK:
                    shared = _SHARED.get(key)
                    if shared is None:
                        shared = _SHARED[key] = self._login(pin_text)
                    elif not shared.admits(pin_text):
                        raise ExternalKeyError(f"{self.name}: {_REASONS['PinIncorrect']}")
                    shared.users += 1
                self._key = key
                self._shared = shared
        except errors.PKCS11Error as exc:
            raise _token_error(exc, self.name) from exc
        assert self._shared is not None
        self.lock = self._shared.lock
        self.session = self._shared.session

    def _login(self, pin_text: str) -> _Shared:
        errors = self.pkcs11.exceptions
        try:
            return _Shared(self.token.open(user_pin=pin_text, rw=True), pin_text)  # rw: keygen writes objects
        except errors.UserAlreadyLoggedIn:
            return _Shared(self.token.open(rw=True), None)  # logged in by code outside envelope: its login
        except errors.TokenWriteProtected:
            return _Shared(self.token.open(user_pin=pin_text), pin_text)

    @contextmanager
    def using(self) -> Iterator[Any]:
        with self.lock:
            try:
                yield self.session
            except self.pkcs11.exceptions.PKCS11Error as exc:
                raise _token_error(exc, self.name) from exc

    def find(self, object_class: Any, what: str) -> Any:
        pkcs11 = self.pkcs11
        template: dict[Any, Any] = {pkcs11.Attribute.CLASS: object_class}
        if self.uri.object is not None:
            template[pkcs11.Attribute.LABEL] = self.uri.object
        if self.uri.id is not None:
            template[pkcs11.Attribute.ID] = self.uri.id
        with self.using() as session:
            found = list(session.get_objects(template))
        if not found:
            raise ExternalKeyError(f"{self.name}: no {what} on the token matches (check object= and id=)")
        if len(found) > 1:
            raise ExternalKeyError(f"{self.name}: {len(found)} {what}s match: add object= or id= to the URI")
        return found[0]

    def close(self) -> None:
        shared = getattr(self, "_shared", None)
        if shared is None:
            return
        self._shared = None
        with _SHARED_LOCK:
            if self._key is not None:
                shared.users -= 1
                if shared.users > 0:
                    return
                del _SHARED[self._key]
        with shared.lock:
            try:
                shared.session.close()  # logs out when this session logged in
            except self.pkcs11.exceptions.PKCS11Error:
                pass  # closing a session on a removed token: nothing left to release

    def __del__(self) -> None:
        self.close()


def _refuse_type(uri: Pkcs11Uri, allowed: str, name: str) -> None:
    if uri.type is not None and uri.type != allowed:
        raise UsageError(f"{name}: the URI names a {uri.type!r} object; this needs type={allowed}")


# Failures of a decryption that say nothing about the ciphertext: the session, the login, the
# device, the key object or the host. Any other failure is taken as "this does not decrypt" (R15,
# reported as R16 is): tokens name a bad OAEP padding or a value out of range differently
# (EncryptedDataInvalid, DataLenRange, GeneralError, FunctionFailed...), and telling those apart
# from a success or from each other would hand out a padding oracle (Manger's attack).
_TOKEN_FAILURES = (
    "DeviceError", "DeviceMemory", "DeviceRemoved", "FunctionCancelled", "FunctionNotSupported", "HostMemory",
    "KeyFunctionNotPermitted", "KeyHandleInvalid", "KeySizeRange", "KeyTypeInconsistent", "ObjectHandleInvalid",
    "OperationActive", "PinExpired", "PinLocked", "SessionClosed", "SessionCount", "SessionHandleInvalid",
    "TokenNotPresent", "TokenNotRecognised", "UserNotLoggedIn",
)  # fmt: skip


def _about_the_token(exc: BaseException, errors: Any) -> bool:
    """Whether ``exc``, raised by a decryption, is a failure of the token rather than of the data."""
    return any(isinstance(exc, cls) for name in _TOKEN_FAILURES if (cls := getattr(errors, name, None)) is not None)


class Pkcs11Identity:
    """An RSA private key on a PKCS#11 token, as a :class:`~envelope.KeyUnwrapper`: pass it
    wherever a private key opens files.

    Opens a session and logs in when made (so a wrong PIN or a missing key fails here); reads the
    public half from the private key object. ``mechanism``: ``"auto"`` (OAEP on the token, else
    raw RSA with the decoding here; the choice is kept after the first unwrap), ``"oaep"`` or
    ``"x509"``. :meth:`close` ends the session (also done when the object is collected).
    """

    def __init__(
        self,
        uri: str | Pkcs11Uri,
        *,
        module: str | os.PathLike[str] | None = None,
        pin: PinSource = None,
        mechanism: str = "auto",
    ) -> None:
        if mechanism not in MECHANISMS:
            raise UsageError(f"mechanism is one of {', '.join(MECHANISMS)}, not {mechanism!r}")
        self._session = _Session(uri, module, pin)
        self.uri = self._session.uri
        _refuse_type(self.uri, "private", self._session.name)
        pkcs11 = self._session.pkcs11
        self._key = self._session.find(pkcs11.ObjectClass.PRIVATE_KEY, "private key")
        with self._session.using():
            key_type = self._key.key_type
            if key_type != pkcs11.KeyType.RSA:
                raise ExternalKeyError(
                    f"{self._session.name}: the key is {key_type.name}, not RSA: it cannot open files"
                )
            numbers = rsa.RSAPublicNumbers(
                int.from_bytes(self._key[pkcs11.Attribute.PUBLIC_EXPONENT], "big"),
                int.from_bytes(self._key[pkcs11.Attribute.MODULUS], "big"),
            )
        self.public_key: rsa.RSAPublicKey = numbers.public_key()
        self._modulus_len = (self.public_key.key_size + 7) // 8
        self.mechanism = "oaep" if mechanism == "auto" else mechanism
        self._auto = mechanism == "auto"

    def _decrypt(self, data: bytes, mechanism: Any, param: Any = None) -> bytes:
        """The one token operation of an unwrap (tests count these calls)."""
        return bytes(self._key.decrypt(data, mechanism=mechanism, mechanism_param=param))

    def unwrap_key(self, wrapped: bytes) -> bytes:
        pkcs11 = self._session.pkcs11
        errors = pkcs11.exceptions
        if self.mechanism == "oaep":
            params = (pkcs11.Mechanism.SHA256, pkcs11.MGF.SHA256, None)
            with self._session.lock:
                try:
                    return self._decrypt(wrapped, pkcs11.Mechanism.RSA_PKCS_OAEP, params)
                except (errors.ArgumentsBad, errors.MechanismInvalid, errors.MechanismParamInvalid) as exc:
                    if not self._auto:
                        raise _token_error(exc, self._session.name) from exc
                    self.mechanism = "x509"  # the parameters were refused, not this ciphertext
                except errors.PKCS11Error as exc:
                    if _about_the_token(exc, errors):
                        raise _token_error(exc, self._session.name) from exc
                    return b""  # does not decrypt: R15, which reads like R16 (see _about_the_token)
        with self._session.lock:
            try:
                encoded = self._decrypt(wrapped, pkcs11.Mechanism.RSA_X_509)
            except errors.PKCS11Error as exc:
                if _about_the_token(exc, errors):
                    raise _token_error(exc, self._session.name) from exc
                return b""  # out of range for the modulus (SoftHSM2: GeneralError): R15
        return decode_or_random(encoded, self._modulus_len)

    def close(self) -> None:
        self._session.close()

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Pkcs11Identity holds a logged-in session and cannot be pickled: make one in each process")

    def __repr__(self) -> str:
        return f"Pkcs11Identity({str(self.uri)!r}, mechanism={self.mechanism})"


class Pkcs11Signer:
    """An EC P-256 or Ed25519 private key on a PKCS#11 token, as a :class:`~envelope.Signer`.

    The public key is read from the token's public key object with the same ``object``/``id``.
    ECDSA signs the SHA-256 digest with ``CKM_ECDSA`` (low ``s``, as section 8.2 asks); Ed25519
    signs with ``CKM_EDDSA``. Every signature is checked against the public key before use."""

    def __init__(self, uri: str | Pkcs11Uri, *, module: str | os.PathLike[str] | None = None, pin: PinSource = None):
        self._session = _Session(uri, module, pin)
        self.uri = self._session.uri
        _refuse_type(self.uri, "private", self._session.name)
        pkcs11 = self._session.pkcs11
        self._key = self._session.find(pkcs11.ObjectClass.PRIVATE_KEY, "private key")
        public = _public_key_object(self._session, self._key)
        self.algorithm, verifying = _verifying_key(self._session, public)
        self.public_key_der = spki(verifying)

    def _sign(self, data: bytes, mechanism: Any) -> bytes:
        """The one token operation of a signature."""
        return bytes(self._key.sign(data, mechanism=mechanism))

    def sign(self, message: bytes) -> bytes:
        pkcs11 = self._session.pkcs11
        with self._session.using():
            if self.algorithm == "ed25519":
                return self._sign(message, pkcs11.Mechanism.EDDSA)
            raw = self._sign(hashlib.sha256(message).digest(), pkcs11.Mechanism.ECDSA)
        if len(raw) != 64:  # some tokens answer in DER
            try:
                r, s = decode_dss_signature(raw)
            except ValueError:
                raise ExternalKeyError(
                    f"{self._session.name}: the token's ECDSA signature is neither r || s nor DER"
                ) from None
        else:
            r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        s = min(s, _P256_ORDER - s)  # low s (section 8.2): the other valid signature of the same message
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def close(self) -> None:
        self._session.close()

    def __reduce__(self) -> str | tuple[Any, ...]:
        raise TypeError("a Pkcs11Signer holds a logged-in session and cannot be pickled")

    def __repr__(self) -> str:
        return f"Pkcs11Signer({str(self.uri)!r}, {self.algorithm})"


def _public_key_object(session: _Session, private: Any) -> Any:
    pkcs11 = session.pkcs11
    template = {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY}
    with session.using() as s:
        key_id = private[pkcs11.Attribute.ID]
        label = private[pkcs11.Attribute.LABEL]
        if key_id:
            template[pkcs11.Attribute.ID] = key_id
        else:
            template[pkcs11.Attribute.LABEL] = label
        found = list(s.get_objects(template))
    if len(found) != 1:
        raise ExternalKeyError(f"{session.name}: the token holds no single public key beside this private key")
    return found[0]


def _verifying_key(session: _Session, public: Any) -> tuple[str, Any]:
    """The signature algorithm and the public key object of a token's public EC or EdDSA key."""
    pkcs11 = session.pkcs11
    with session.using():
        key_type = public.key_type
        if key_type == pkcs11.KeyType.EC:
            if public[pkcs11.Attribute.EC_PARAMS] != _P256_PARAMS:
                raise ExternalKeyError(f"{session.name}: the EC key is not on P-256, the curve the format signs with")
            point = public[pkcs11.Attribute.EC_POINT]
            raw = point[2:] if len(point) == 67 and point[:2] == b"\x04\x41" else point  # DER OCTET STRING, or bare
            return "ecdsa-p256-sha256", ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        if key_type == pkcs11.KeyType.EC_EDWARDS:
            if public[pkcs11.Attribute.EC_PARAMS] not in _ED25519_PARAMS:
                raise ExternalKeyError(f"{session.name}: the EdDSA key is not Ed25519")
            point = public[pkcs11.Attribute.EC_POINT]
            raw = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point  # a DER OCTET STRING, or bare
            return "ed25519", ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if key_type == pkcs11.KeyType.RSA:
            raise ExternalKeyError(f"{session.name}: the key is RSA: RSA keys open files, they do not sign them")
        raise ExternalKeyError(f"{session.name}: the key is {key_type.name}: a signer is EC P-256 or Ed25519")


def load_public_key(
    uri: str | Pkcs11Uri, *, module: str | os.PathLike[str] | None = None, pin: PinSource = None
) -> Any:
    """The public key of a token key pair: an RSA public key (a recipient), or an Ed25519 or
    ECDSA P-256 one (a signer, for ``signed_by=``). Found by the URI's ``object``/``id`` among the
    token's public key objects; a PIN is needed only where the token hides them."""
    session = _Session(uri, module, pin, need_pin=False)
    try:
        _refuse_type(session.uri, "public", session.name)
        public = session.find(session.pkcs11.ObjectClass.PUBLIC_KEY, "public key")
        pkcs11 = session.pkcs11
        with session.using():
            if public.key_type == pkcs11.KeyType.RSA:
                return rsa.RSAPublicNumbers(
                    int.from_bytes(public[pkcs11.Attribute.PUBLIC_EXPONENT], "big"),
                    int.from_bytes(public[pkcs11.Attribute.MODULUS], "big"),
                ).public_key()
        return _verifying_key(session, public)[1]
    finally:
        session.close()


KINDS = ("rsa", "ecdsa-p256-sha256", "ed25519")


def generate_key_pair(
    uri: str | Pkcs11Uri,
    kind: str = "rsa",
    *,
    bits: int = 3072,
    module: str | os.PathLike[str] | None = None,
    pin: PinSource = None,
) -> Any:
    """Make a key pair on the token (the private key sensitive and not extractable) labelled with
    the URI's ``object`` and, if given, its ``id`` (else a random 16-byte id); return its public key.
    ``kind``: ``"rsa"`` (a recipient: decrypt only), ``"ecdsa-p256-sha256"`` or ``"ed25519"`` (a
    signer: sign only). Refuses a label or id already on the token."""
    if kind not in KINDS:
        raise UsageError(f"a token key is one of {', '.join(KINDS)}, not {kind!r}")
    session = _Session(uri, module, pin)
    try:
        label = session.uri.object
        if label is None:
            raise UsageError(f"{session.name}: name the new key with object=LABEL in the URI")
        pkcs11 = session.pkcs11
        attr, mech = pkcs11.Attribute, pkcs11.Mechanism
        key_id = session.uri.id or os.urandom(16)
        with session.using() as s:
            for template in ({attr.LABEL: label}, {attr.ID: key_id}):
                if list(s.get_objects(template)):
                    raise UsageError(f"{session.name}: the token already holds an object with that label or id")
        private = {attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.TOKEN: True, attr.PRIVATE: True}
        public = {attr.TOKEN: True, attr.PRIVATE: False}
        with session.using() as s:
            if kind == "rsa":
                private.update({attr.DECRYPT: True, attr.SIGN: False, attr.UNWRAP: False})
                public.update({attr.ENCRYPT: True, attr.VERIFY: False, attr.WRAP: False})
                s.generate_keypair(
                    pkcs11.KeyType.RSA, bits, store=True, label=label, id=key_id,
                    public_template=public, private_template=private,
                )  # fmt: skip
            else:
                private.update({attr.SIGN: True, attr.DECRYPT: False})
                public.update({attr.VERIFY: True})
                if kind == "ed25519":
                    params = s.create_domain_parameters(
                        pkcs11.KeyType.EC_EDWARDS, {attr.EC_PARAMS: _ED25519_PARAMS[0]}, local=True
                    )
                    params.generate_keypair(
                        store=True, label=label, id=key_id, mechanism=mech.EC_EDWARDS_KEY_PAIR_GEN,
                        public_template=public, private_template=private,
                    )  # fmt: skip
                else:
                    params = s.create_domain_parameters(pkcs11.KeyType.EC, {attr.EC_PARAMS: _P256_PARAMS}, local=True)
                    params.generate_keypair(
                        store=True, label=label, id=key_id, public_template=public, private_template=private
                    )
    finally:
        session.close()
    found = Pkcs11Uri({**{k: v for k, v in session.uri.path.items() if k != "type"}, "id": key_id}, session.uri.query)
    return load_public_key(found, module=module, pin=pin)
