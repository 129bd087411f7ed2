"""``envelope keygen``: a new key pair, the private key at mode 0600, the public key beside it. RSA
keys are for recipients; Ed25519, ECDSA P-256 and ML-DSA-65 keys sign (spec section 8). A shared
Fernet key (spec section 4.6) is one secret file, with no public part."""

from __future__ import annotations

import argparse
import os

from envelope.limits import DEFAULT_KEY_BITS, MAX_KEY_BITS, MIN_KEY_BITS

from .errors import EXIT_IO, EXIT_USAGE, CliError
from .parsing import Subcommands, add_force, add_passphrase_sources, add_quiet, add_subcommand, key_bits

DEFAULT_PATH = "envelope.key"
PUBLIC_SUFFIX = ".pub"
RSA = "rsa"
# --type names -> the format's signature algorithm names (spec section 8.2)
SIGNING_TYPES = {"ed25519": "ed25519", "ecdsa-p256": "ecdsa-p256-sha256", "ml-dsa-65": "ml-dsa-65"}
# age's key kinds (spec section 4.2): an identity file as age-keygen writes it, the recipient beside it
AGE_TYPES = ("x25519", "mlkem768x25519")
# a shared secret (spec section 4.6): one file, as Fernet.generate_key() returns the key
FERNET = "fernet"
TYPES = (RSA, *AGE_TYPES, FERNET, *SIGNING_TYPES)

EXAMPLES = """\
  envelope keygen -o alice.key                      # alice.key (0600) and alice.key.pub
  envelope keygen -o alice.key --passphrase-prompt  # encrypt the private key with a passphrase
  PASS=... envelope keygen -o ci.key --passphrase-env PASS --bits 4096
  envelope keygen --type x25519 -o alice.age        # an age key: seal -r "$(cat alice.age.pub)",
                                                    # open -i alice.age (age and rage read it too)
  envelope keygen --type mlkem768x25519 -o pq.age   # post-quantum hybrid, as age-keygen -pq
  envelope keygen --type fernet -o team.fernet      # a shared key (no .pub): seal and open
                                                    # with --fernet-key-file team.fernet
  envelope keygen --type ed25519 -o builder.key     # a signing key: seal --sign builder.key,
                                                    # open --signed-by builder.key.pub
  envelope keygen --pkcs11 'pkcs11:token=models;object=prod-key?module-path=/usr/lib/softhsm/libsofthsm2.so' \\
      --pin-env PIN -o prod-key.pub                 # on the token; only the public key is written
  envelope keygen --pkcs11 'pkcs11:token=models;object=builder' --type ecdsa-p256 \\
      --pkcs11-module /usr/lib/softhsm/libsofthsm2.so -o builder.pub   # PIN asked on the terminal"""


def add_parser(subparsers: Subcommands) -> None:
    parser = add_subcommand(
        subparsers,
        "keygen",
        summary="generate a key: RSA or age keys for recipients, a shared fernet key, or a signing key",
        description="Generate a key pair. The private key is written as PKCS#8 PEM with mode 0600\n"
        "(encrypted when a passphrase is given), the public key as PEM beside it, named\n"
        f"PRIVATE_PATH{PUBLIC_SUFFIX}. Prints the key id (SHA-256 of the public key), as envelope-info\n"
        "shows it. A passphrase is never taken from a command-line value.\n\n"
        "RSA keys (the default) receive files: seal -r PUBKEY, open -i PRIVATEKEY. An x25519 key is\n"
        "written as age-keygen writes it (an identity file AGE-SECRET-KEY-1..., not encrypted, with\n"
        "'# created:' and '# public key:' comments; the age1... recipient in PRIVATE_PATH.pub and\n"
        "printed), so age, rage and pyrage use it too; an mlkem768x25519 key (post-quantum hybrid) as\n"
        "age-keygen -pq writes it (AGE-SECRET-KEY-PQ-1..., age1pq1...). A fernet key is one shared\n"
        "secret, written as Fernet.generate_key() returns it, with no public part: whoever holds it\n"
        "seals (--fernet-key-file) and opens (--fernet-key-file) alike. Signing keys\n"
        "(--type ed25519, ecdsa-p256, ml-dsa-65) say who sealed a file: seal --sign PRIVATEKEY,\n"
        "open/verify --signed-by PUBKEY.\n\n"
        "--pkcs11 URI makes the key pair on a PKCS#11 token instead (an RSA, ecdsa-p256 or ed25519\n"
        "key, labelled with the URI's object=, its private key never extractable) and writes only\n"
        "the public key: to -o PATH, else to stdout. The key is then used by its URI: open -i URI,\n"
        "seal --sign URI, --signed-by URI.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="PRIVATE_PATH",
        default=None,
        help=f"private key file (default: {DEFAULT_PATH}); with --pkcs11, the public key file (default: stdout)",
    )
    parser.add_argument(
        "--pkcs11",
        metavar="URI",
        help="make the key pair on this PKCS#11 token ('pkcs11:token=...;object=LABEL'), export its public key",
    )
    parser.add_argument(
        "-t",
        "--type",
        choices=TYPES,
        default=RSA,
        help="the kind of key: rsa (for recipients, the default), x25519 or mlkem768x25519 (age keys, for "
        "recipients; the second post-quantum), fernet (a shared secret key, no public part) or a signing key, "
        "ed25519, ecdsa-p256 or ml-dsa-65 (post-quantum)",
    )
    parser.add_argument(
        "--bits",
        type=key_bits,
        default=None,
        help=f"RSA modulus size, {MIN_KEY_BITS} to {MAX_KEY_BITS} (default: {DEFAULT_KEY_BITS})",
    )
    add_passphrase_sources(parser, prompt_flag=True)
    from .tokens import add_token_options

    add_token_options(parser)
    add_force(parser)
    add_quiet(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from envelope import atomic_output

    if args.pkcs11 is not None:
        return _on_token(args)
    private_path: str = args.output or DEFAULT_PATH
    public_path = private_path + PUBLIC_SUFFIX
    if private_path == "-":
        raise CliError("keygen writes files: give a path with -o", EXIT_USAGE)
    if args.bits is not None and args.type != RSA:
        raise CliError(f"--bits is for RSA keys; {args.type} keys have a fixed size", EXIT_USAGE)
    from .parsing import passphrase_option

    if args.type in (*AGE_TYPES, FERNET) and (passphrase_option(args) or args.passphrase_prompt):
        how = "written as age-keygen writes them" if args.type in AGE_TYPES else "as Fernet.generate_key() returns them"
        raise CliError(f"{args.type} keys are not encrypted: {how}; keep the file private (mode 0600)", EXIT_USAGE)
    if args.type == FERNET:
        return _new_fernet_key(args, private_path)
    for path in (private_path, public_path):
        _check_new(path, args.force)
    secret = _new_passphrase(args)
    if args.type in AGE_TYPES:
        private_pem, public_pem, kid = _new_age_key(args.type)
    else:
        private_pem, public_pem, kid = _new_key(args.type, args.bits or DEFAULT_KEY_BITS, secret)
    # atomic_output(private=True) creates its file with mode 0600 (unnamed with O_TMPFILE, else
    # by mkstemp) and names it only once complete, failing if the name appeared meanwhile: the key
    # is never readable by others, never half-written.
    with atomic_output(private_path, overwrite=args.force, private=True) as out:
        out.write(private_pem)
    with atomic_output(public_path, overwrite=args.force) as out:
        out.write(public_pem)
    if args.quiet:
        print(kid)
    elif args.type in AGE_TYPES:
        from .render import printable

        print(printable(f"private key: {private_path} (mode 0600, an age identity file, not encrypted)"))
        print(printable(f"public key:  {public_path}"))
        print(f"key type:    {args.type} (recipient)")
        print(f"key id:      {kid}")
        print(f"Public key: {public_pem.decode().strip()}")  # as age-keygen prints it
    else:
        from .render import printable

        state = "encrypted with a passphrase" if secret else "not encrypted"
        use = "recipient" if args.type == RSA else "signing"
        print(printable(f"private key: {private_path} (mode 0600, {state})"))
        print(printable(f"public key:  {public_path}"))
        print(f"key type:    {args.type} ({use})")
        print(f"key id:      {kid}")
    return 0


def _check_new(path: str, force: bool) -> None:
    """A key file may be written at ``path``: not a folder (--force would not help), and not an
    existing file unless --force."""
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory: give the key file's path with -o", EXIT_IO)
    if not force and os.path.lexists(path):
        raise CliError(f"{path} exists (use --force to replace it)", EXIT_IO)


def _new_fernet_key(args: argparse.Namespace, path: str) -> int:
    """``--type fernet``: one secret file (mode 0600), the key's text and a newline."""
    import envelope
    from envelope import atomic_output

    from .render import printable

    _check_new(path, args.force)
    key = envelope.FernetKey.generate()
    with atomic_output(path, overwrite=args.force, private=True) as out:
        out.write(key.text() + b"\n")
    if args.quiet:
        print(key.key_id)
    else:
        print(printable(f"shared key:  {path} (mode 0600, not encrypted; no public part)"))
        print(f"key type:    {FERNET} (shared: seals and opens)")
        print(f"key id:      {key.key_id}")
    return 0


def _on_token(args: argparse.Namespace) -> int:
    """``--pkcs11 URI``: the key pair is made on the token; only its public key comes out."""
    import envelope
    from envelope import atomic_output

    from . import tokens
    from .keyfiles import signing_key_id
    from .parsing import passphrase_option, refuse_idle

    refuse_idle(passphrase_option(args) or ("--passphrase-prompt" if args.passphrase_prompt else None),
                "a key on a token is protected by the token's PIN (--pin-env, --pin-file)")  # fmt: skip
    if args.type not in (RSA, "ecdsa-p256", "ed25519"):
        raise CliError(f"PKCS#11 tokens make rsa, ecdsa-p256 or ed25519 keys, not {args.type}", EXIT_USAGE)
    if args.bits is not None and args.type != RSA:
        raise CliError(f"--bits is for RSA keys; {args.type} keys have a fixed size", EXIT_USAGE)
    if args.output is not None:
        _check_new(args.output, args.force)
    kind = RSA if args.type == RSA else SIGNING_TYPES[args.type]
    public = tokens.generate(args.pkcs11, kind, args.bits or DEFAULT_KEY_BITS)
    if kind == RSA:
        pem, kid = envelope.public_key_pem(public), envelope.key_id(public)
    else:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        pem, kid = envelope.verifying_key_pem(public), signing_key_id(der)
    if args.output is None:
        import sys

        sys.stdout.write(pem.decode("ascii"))
        return 0
    with atomic_output(args.output, overwrite=args.force) as out:
        out.write(pem)
    if args.quiet:
        print(kid)
    else:
        from .render import printable

        print(printable(f"public key:  {args.output} (the private key stays on the token)"))
        print(f"key type:    {args.type} ({'recipient' if kind == RSA else 'signing'})")
        print(f"key id:      {kid}")
    return 0


def _new_key(kind: str, bits: int, secret: bytes | None) -> tuple[bytes, bytes, str]:
    """The private key's PEM, the public key's PEM and the key id of a new key of ``kind``."""
    import envelope

    if kind == RSA:
        key = envelope.generate_private_key(bits)
        return envelope.private_key_pem(key, secret), envelope.public_key_pem(key), envelope.key_id(key)
    from .keyfiles import signing_key_id

    signing_key = envelope.generate_signing_key(SIGNING_TYPES[kind])
    kid = signing_key_id(envelope.KeySigner(signing_key).public_key_der)
    return envelope.signing_key_pem(signing_key, secret), envelope.verifying_key_pem(signing_key), kid


def _new_age_key(kind: str) -> tuple[bytes, bytes, str]:
    """An age identity file, its recipient line and the key id of a new key of ``kind``."""
    import datetime

    from envelope import MlKem768X25519Identity, X25519Identity

    identity = X25519Identity.generate() if kind == "x25519" else MlKem768X25519Identity.generate()
    public = identity.recipient().to_age()
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {created}\n# public key: {public}\n{identity.to_age()}\n"  # as age-keygen writes it
    return text.encode(), (public + "\n").encode(), identity.key_id


def _new_passphrase(args: argparse.Namespace) -> bytes | None:
    from . import keyfiles, passphrase

    given = keyfiles.explicit_passphrase(args.passphrase_env, args.passphrase_file)
    if given is None and args.passphrase_prompt:
        return passphrase.from_terminal("New passphrase for the private key: ", confirm=True)
    return given
