"""Personal identities: one age key that is also a signing key
(docs/FORMAT.md §12, docs/DESIGN.md §2).

An identity file is a standard age identity file -- stock ``age -d -i FILE``
reads it -- holding one ``AGE-SECRET-KEY-1…`` line and comment lines, the
first of which names the user::

    # name: alice
    # recipient: age1…
    # signing key: ed25519:…
    AGE-SECRET-KEY-1…

With a passphrase the whole text is itself an armored age file encrypted to
an scrypt stanza (age's "encrypted identity file", also read by stock age).

Beside it, ``vault identity new`` writes ``FILE.pub``: the public parts
only, as an age recipients file (stock ``age -R FILE.pub`` encrypts to it)
whose comment lines name the user, give the signing key and that key's
signature over the name and both keys. Showing them needs no passphrase
(:func:`load_public_identity`); one read in place of the user's own
identity must be a file nobody else can have put there
(:func:`load_own_public_identity`).

The user's Ed25519 signing key is derived from the same 32 secret bytes::

    signing seed = HKDF-SHA-256(ikm = X25519 secret, salt = empty,
                                info = "vault/v1 signing key")

so one file serves both purposes, and losing it loses both.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from typing import NoReturn, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault._identity_public import (
    PUBLIC_IDENTITY_CONTEXT,
    PublicIdentity,
    identity_fingerprint,
    load_own_public_identity,
    load_public_identity,
    public_path,
    public_statement,
)
from vault._primitives import format_signing_key, hkdf, sign
from vault._text import is_text
from vault.age import MLKEM768X25519Identity, X25519Identity
from vault.errors import (
    AgeError,
    HMACError,
    IdentityFileError,
    InsecureFileError,
    NoIdentityMatchError,
    NoKeyError,
    UsageError,
    VaultError,
)

__all__ = [
    "AgeKeyPair",
    "IdentityCache",
    "PublicIdentity",
    "UserIdentity",
    "load_identity",
    "load_own_public_identity",
    "load_public_identity",
    "new_identity",
    "public_path",
]

# A person's (or a label class's) age key: post-quantum hybrid, or X25519.
AgeKeyPair = X25519Identity | MLKEM768X25519Identity

SIGNING_KEY_INFO = b"vault/v1 signing key"
MAX_IDENTITY_FILE = 64 * 1024

# A name is written into a comment line and into audit records, and shown
# to the officer who pastes it into a policy: printable text as every name
# is (vault/_text.py: no C0 or C1 control, no bidi control, no line
# separator), 1 to 64 characters, no leading or trailing space.
MAX_NAME = 64
_ENCRYPTED_PREFIXES = (b"age-encryption.org/", b"-----BEGIN AGE ENCRYPTED FILE-----")
_SECRET_PREFIXES = ("AGE-SECRET-KEY-1", "AGE-SECRET-KEY-PQ-1")
_NAME_HINT = "use 1 to 64 printable characters, without line breaks or outer spaces"


def check_name(name: str) -> str:
    """``name`` if it can be a user's name; UsageError otherwise. A name
    holding a secret key (a key line pasted where the name goes) is none,
    and is never quoted: the message would show the key."""
    from vault._inputs import text_holds_secret

    if isinstance(name, str) and text_holds_secret(name):
        raise UsageError("invalid user name: it holds a secret key, not shown",
                         hint=f"a name is never a key: {_NAME_HINT}")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME \
            or not is_text(name) or name.strip(" ") != name:
        raise UsageError(f"invalid user name {name!r}", hint=_NAME_HINT)
    return name


class UserIdentity:
    """A person's keys: ``age_identity`` decrypts, ``signing_key`` signs."""

    def __init__(self, name: str, age_identity: AgeKeyPair) -> None:
        self.name = check_name(name)
        self.age_identity = age_identity
        self.recipient: str = str(age_identity.recipient)
        seed = hkdf(age_identity.to_bytes(), b"", SIGNING_KEY_INFO)
        self.signing_key = Ed25519PrivateKey.from_private_bytes(seed)
        self.signing_public: str = format_signing_key(self.signing_key.public_key())

    @property
    def post_quantum(self) -> bool:
        return isinstance(self.age_identity, MLKEM768X25519Identity)

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` of the signing public key, as audit records show it."""
        from vault.audit import fingerprint

        return str(fingerprint(self.signing_key.public_key()))

    @property
    def identity_fingerprint(self) -> str:
        """``SHA256:…`` over the recipient and the signing key together
        (:func:`vault._identity_public.identity_fingerprint`)."""
        return identity_fingerprint(self.recipient, self.signing_public)

    def __repr__(self) -> str:
        return f"UserIdentity(name={self.name!r}, recipient={self.recipient!r})"

    def to_text(self) -> str:
        """The plain identity file text (contains the secret key)."""
        return (
            f"# name: {self.name}\n"
            f"# recipient: {self.recipient}\n"
            f"# signing key: {self.signing_public}\n"
            f"{self.age_identity}\n"
        )

    def to_file(self, path: str | os.PathLike[str], passphrase: str | None) -> None:
        """Write the identity file, mode 0600, refusing to overwrite.

        With a ``passphrase`` the file is an armored age file encrypted to
        it (scrypt), which stock ``age -d -i FILE`` also accepts.
        """
        write_secret_file(path, self.to_text().encode("utf-8"), passphrase,
                          "choose another file name; an identity file is never overwritten")


    def public(self) -> PublicIdentity:
        """The public parts, signed by the signing key: the signature is
        what ties the recipient to it in a FILE.pub (docs/FORMAT.md §12.4)."""
        statement = public_statement(self.name, self.recipient, self.signing_public)
        return PublicIdentity(self.name, self.recipient, self.signing_public,
                              sign(self.signing_key, PUBLIC_IDENTITY_CONTEXT, statement))


def write_secret_file(path: str | os.PathLike[str], data: bytes, passphrase: str | None,
                      exists_hint: str) -> None:
    """A file holding a secret key: mode 0600, written whole or not at all,
    never over an existing file; with a ``passphrase``, an armored age file
    encrypted to it (scrypt) that stock ``age -d`` opens."""
    from vault._atomic import write_atomic

    if passphrase is not None:
        if not passphrase:
            raise UsageError("empty passphrase", hint="give a passphrase, or none at all")
        from vault.age import ScryptRecipient, encrypt

        out = io.BytesIO()
        encrypt(io.BytesIO(data), out, [ScryptRecipient(passphrase)], armor=True)
        data = out.getvalue()
    try:
        write_atomic(path, data, mode=0o600, replace=False, sweep=True)
    except FileExistsError:
        raise UsageError(f"{os.fspath(path)} already exists", hint=exists_hint) from None


def new_identity(name: str, *, post_quantum: bool = True) -> UserIdentity:
    """A fresh identity with a new random key: a post-quantum hybrid
    (ML-KEM-768 + X25519) one unless ``post_quantum`` is False."""
    kind = MLKEM768X25519Identity if post_quantum else X25519Identity
    return UserIdentity(name, kind.generate())


class IdentityCache(Protocol):
    """Somewhere the plain text of encrypted identity files may be kept for
    a while, so that each use does not cost the passphrase's scrypt again
    (the command line's passphrase agent). ``key`` is the SHA-256 (hex) of
    the encrypted file's bytes: a changed file is never served stale."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, text: str) -> None: ...


def load_identity(
    path: str | os.PathLike[str], passphrase: Callable[[], str] | None = None, *,
    cache: IdentityCache | None = None,
) -> UserIdentity:
    """Read an identity file written by :meth:`UserIdentity.to_file` (or by
    ``age-keygen``: the name then defaults to the file name's stem).

    ``passphrase`` is called only if the file is encrypted and ``cache``
    (if given) does not hold its text. Group- or world-readable files, and
    files of another user, are refused with :class:`InsecureFileError`
    before the key is read; a file that is no identity file, or a damaged
    passphrase-protected one, with :class:`IdentityFileError`; anything but
    a regular file (a FIFO is never waited on) with :class:`UsageError`.
    """
    path = os.fspath(path)
    data = _read_private_file(path)
    if data.lstrip().startswith(_ENCRYPTED_PREFIXES):
        import hashlib

        key = hashlib.sha256(data).hexdigest()
        cached = cache.get(key) if cache is not None else None
        if cached is not None:
            with contextlib.suppress(VaultError):
                return _parse(path, cached)
        data = _decrypt(path, data, passphrase)
        if cache is not None:
            with contextlib.suppress(UnicodeDecodeError):
                cache.put(key, data.decode("utf-8"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityFileError(f"{path} is not an identity file (not UTF-8 text)") from None
    return _parse(path, text)


def _read_private_file(path: str) -> bytes:
    from vault._inputs import check_private, open_input

    try:
        f = open_input(path, regular=True, what="identity file",
                       link_hint="give the identity file by a path of its own, without "
                                 "that link")
    except FileNotFoundError:
        raise UsageError(f"identity file {path} does not exist") from None
    except OSError as e:
        raise UsageError(f"cannot read identity file {path}: {e.strerror}") from None
    with f:
        # Owner and mode are checked before a byte of the key is read. What
        # the file is still decides the message -- "chmod 600" helps only
        # with an identity file, never with a document given by mistake --
        # so a file others may read is told apart by its head alone.
        try:
            check_private(path, "identity file", os.fstat(f.fileno()))
        except InsecureFileError:
            kind = _head_kind(f.fileno())
            if kind == "identity":
                raise
            _not_identity(path, public=kind == "public")
        data = f.read(MAX_IDENTITY_FILE + 1)
    if len(data) > MAX_IDENTITY_FILE or not _looks_like_identity(data):
        _not_identity(path, public=data[:MAX_IDENTITY_FILE].lstrip().startswith(
            (b"# name:", b"age1")))
    return data


def _not_identity(path: str, *, public: bool) -> NoReturn:
    raise IdentityFileError(
        f"{path} is not an identity file",
        hint=("it holds only public keys: give the identity file itself"
              if public else "give the file 'vault identity new NAME -o FILE' wrote"))


# How much of a line tells a key from a recipient: "AGE-SECRET-KEY-P" is the
# prefix every secret key shares, not yet a character of the key itself.
_HEAD = 16


def _head_kind(fd: int) -> str:
    """``identity``, ``public`` or ``other``: what a file is by the first
    characters of its first line that is no comment, read one byte at a time
    so that no character of a secret key is read."""
    budget = MAX_IDENTITY_FILE

    def byte() -> bytes:
        nonlocal budget
        budget -= 1
        return os.read(fd, 1) if budget >= 0 else b""

    b = byte()
    while True:
        while b in (b" ", b"\t", b"\r", b"\n"):
            b = byte()
        if b != b"#":
            break
        while b not in (b"", b"\n"):  # a comment line: names and public keys
            b = byte()
    head = b
    while b and len(head) < _HEAD:
        b = byte()
        head += b
    if head.startswith((b"AGE-SECRET-KEY-", b"-----BEGIN AGE", b"age-encryption.o")):
        return "identity"
    return "public" if head.startswith(b"age1") else "other"


def _looks_like_identity(data: bytes) -> bool:
    head = data.lstrip()
    if head.startswith(_ENCRYPTED_PREFIXES):
        return True
    return any(line.strip().startswith(b"AGE-SECRET-KEY-") for line in data.splitlines())


def _decrypt(path: str, data: bytes, passphrase: Callable[[], str] | None) -> bytes:
    from vault.age import (
        ScryptIdentity,
        dearmor,
        decrypt_payload,
        read_header,
        unwrap_file_key,
    )

    if passphrase is None:
        raise UsageError(
            f"identity file {path} is passphrase-protected",
            hint="pass passphrase=, a function returning it (called only for such files)",
        )
    # A damaged identity file is the caller's argument at fault (exit 2),
    # never taken for a damaged document of the vault: the armor, header and
    # payload are read step by step to tell which part failed.
    out = io.BytesIO()
    try:
        src = dearmor(io.BytesIO(data))
        header = read_header(src)
    except AgeError as e:
        raise _damaged(path, e) from None
    try:
        file_key = unwrap_file_key(header, [ScryptIdentity(passphrase())])
    except NoIdentityMatchError:
        raise NoKeyError(
            f"wrong passphrase for identity file {path}", hint="check the passphrase"
        ) from None
    except HMACError as e:  # the passphrase was right: a wrong one matches no stanza
        raise _damaged(path, e) from None
    # Any other refusal of the stanza itself -- an absurd scrypt work factor
    # -- stays hostile input refused before any work (docs/THREAT-MODEL.md §14).
    try:
        decrypt_payload(src, out, file_key)
    except AgeError as e:
        raise _damaged(path, e) from None
    return out.getvalue()


def _damaged(path: str, e: AgeError) -> IdentityFileError:
    return IdentityFileError(
        f"identity file {path} is damaged ({e.message})",
        hint="restore it from your backup copy; without one, make a new identity "
             "('vault identity new') and ask the officer to replace your keys")


def _parse(path: str, text: str) -> UserIdentity:
    name: str | None = None
    name_line = 0
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("#"):
            key, sep, value = line[1:].strip().partition(":")
            if sep and key.strip() == "name" and name is None:
                name, name_line = value.strip(), number
        elif line:
            keys.append(line)
    if len(keys) != 1 or not keys[0].startswith(_SECRET_PREFIXES):
        raise IdentityFileError(
            f"{path} must hold exactly one AGE-SECRET-KEY-… line",
            hint="create one with 'vault identity new NAME -o FILE'",
        )
    try:
        age_identity: AgeKeyPair = (MLKEM768X25519Identity.from_string(keys[0])
                                    if keys[0].startswith("AGE-SECRET-KEY-PQ-1")
                                    else X25519Identity.from_string(keys[0]))
    except ValueError:
        raise IdentityFileError(f"{path} holds a malformed AGE-SECRET-KEY line") from None
    if name is None:
        name = os.path.splitext(os.path.basename(path))[0]
    elif not _valid_name(name):
        # Said by its line, never quoted: the text of a line of an identity
        # file may be its secret key (a key line pasted as the name).
        raise IdentityFileError(
            f"identity file {path}: line {name_line} is not a valid user name",
            hint=f"correct its '# name:' line (a name, never a key): {_NAME_HINT}")
    return UserIdentity(name, age_identity)


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except UsageError:
        return False
    return True
