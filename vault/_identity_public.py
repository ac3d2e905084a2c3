"""The public parts of an identity: ``FILE.pub`` (docs/DESIGN.md §2,
docs/FORMAT.md §12.4).

``vault identity new`` writes it beside the identity file: an age
recipients file (``age -R FILE.pub`` encrypts to it) whose comment lines
name the user and give the signing key, its fingerprint, and the signing
key's signature over the name, the recipient and the signing key. It holds
no secret, so reading it needs no passphrase; it is what a user sends the
officer, who copies it into the policy (``vault identity show``).

The signature is what ties the recipient to the signing key: both keys of
a user are public (the signing key is in every label they sign), so a file
pairing someone's signing key with another person's recipient took only a
text editor, and gave that person what the user is cleared for. Only the
holder of the signing key can sign such a pairing.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from vault.errors import IdentityFileError, UsageError, VaultError

__all__ = [
    "PUBLIC_IDENTITY_CONTEXT",
    "PUBLIC_SUFFIX",
    "PublicIdentity",
    "identity_fingerprint",
    "load_own_public_identity",
    "load_public_identity",
    "public_path",
    "public_statement",
]

PUBLIC_SUFFIX = ".pub"
# The context of the signature in a FILE.pub (docs/FORMAT.md §13.2).
PUBLIC_IDENTITY_CONTEXT = "public identity"
_FINGERPRINT_PREFIX = b"vault/v1 identity fingerprint\n"
_MAX_FILE = 64 * 1024
SIGNED_HINT = ("a FILE.pub written before they were signed: its owner writes a signed one "
               "with 'vault identity show FILE --public-out FILE.pub' (FILE: their identity "
               "file; asks its passphrase) and sends that")


def public_statement(name: str, recipient: str, signing_public: str) -> bytes:
    """What the signature of a FILE.pub covers: the canonical JSON of its
    three public parts (docs/FORMAT.md §12.4)."""
    from vault._primitives import canonical_json

    return canonical_json({"name": name, "recipient": recipient, "signing_key": signing_public})


def identity_fingerprint(recipient: str, signing_public: str) -> str:
    """``SHA256:…`` over both public keys of an identity: what a person and
    the officer compare. The signing key's own fingerprint names a person in
    audit records and labels, so anyone can quote it; this one changes with
    either key (docs/FORMAT.md §12.4)."""
    from vault._primitives import canonical_json

    digest = hashlib.sha256(_FINGERPRINT_PREFIX + canonical_json(
        {"recipient": recipient, "signing_key": signing_public})).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class PublicIdentity:
    """The public parts of an identity: what the officer copies into the
    policy's ``users``. ``signature`` is the signing key's over
    :func:`public_statement` -- checked when a file is read -- or ``None``
    for a FILE.pub written before they were signed."""

    name: str
    recipient: str
    signing_public: str
    signature: bytes | None = None

    @property
    def fingerprint(self) -> str:
        """``SHA256:…`` of the signing key alone, as audit records show it."""
        from vault._primitives import parse_signing_key
        from vault.audit import fingerprint

        return str(fingerprint(parse_signing_key(self.signing_public)))

    @property
    def identity_fingerprint(self) -> str:
        """:func:`identity_fingerprint`: over the recipient and the signing key."""
        return identity_fingerprint(self.recipient, self.signing_public)

    @property
    def signed(self) -> bool:
        return self.signature is not None

    @property
    def post_quantum(self) -> bool:
        return self.recipient.startswith("age1pq1")

    def signature_holds(self) -> bool:
        """True if :attr:`signature` is the signing key's over the other parts."""
        from vault._primitives import parse_signing_key, verify

        return self.signature is not None and len(self.signature) == 64 and verify(
            parse_signing_key(self.signing_public), PUBLIC_IDENTITY_CONTEXT,
            public_statement(self.name, self.recipient, self.signing_public), self.signature)

    def to_text(self) -> str:
        """``FILE.pub``: an age recipients file whose comments carry the rest."""
        from vault._primitives import b64

        signature = "" if self.signature is None else f"# signature: {b64(self.signature)}\n"
        return (f"# name: {self.name}\n"
                f"# signing key: {self.signing_public}\n"
                f"# fingerprint: {self.fingerprint}\n"
                f"{signature}"
                f"{self.recipient}\n")

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_text` (mode 0644: nothing secret), never over a file."""
        from vault._atomic import write_atomic

        try:
            write_atomic(path, self.to_text().encode("utf-8"), mode=0o644, replace=False)
        except FileExistsError:
            raise UsageError(f"{os.fspath(path)} already exists",
                             hint="choose another file name") from None


def public_path(path: str | os.PathLike[str]) -> str:
    """Where ``vault identity new`` keeps the public parts of ``path``."""
    return os.fspath(path) + PUBLIC_SUFFIX


def load_public_identity(path: str | os.PathLike[str]) -> PublicIdentity:
    """Read a ``FILE.pub`` written beside an identity file (no passphrase:
    it holds no secret). :class:`IdentityFileError` if it is not one, or if
    its signature is not its signing key's over its parts; one without a
    signature (written before they were signed) is read, ``signed`` False."""
    from vault._inputs import open_input

    path = os.fspath(path)
    try:
        with open_input(path) as f:  # never stalled by a FIFO another user planted
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return _parse(path, data)


def load_own_public_identity(path: str | os.PathLike[str]) -> PublicIdentity:
    """A ``FILE.pub`` read in place of the user's own identity file, which
    it then speaks for: believed only if nobody else can have put it there
    -- a regular file, no link, of the user's own (or root's) that nobody
    else may write, in a folder of the user's own (or root's) that nobody
    else may write unless it is sticky (``/tmp``: others cannot rename or
    remove what is not theirs). Any FILE.pub is signed by its own key, so
    one that another user made in a shared folder would give their keys
    under the user's name. :class:`InsecureFileError` otherwise, then as
    :func:`load_public_identity`."""
    from vault._inputs import check_own, open_own, refuse_planted_links

    path = os.fspath(path)
    hint = "read the identity file itself (it asks its passphrase)"
    refuse_planted_links(path, hint)
    folder = os.path.dirname(path) or "."
    try:
        check_own(f"the folder of {path}", os.stat(folder), hint=hint, folder=True,
                  sticky=True)
        with open_own(path, path, hint=hint) as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    return _parse(path, data)


def _parse(path: str, data: bytes) -> PublicIdentity:
    """The public identity ``data`` (read from ``path``) gives."""
    from vault._inputs import holds_secret
    from vault._primitives import parse_signing_key, unb64
    from vault.age import parse_recipient
    from vault.identity import check_name

    if holds_secret(data):  # given by mistake: said so, never quoted (docs/THREAT-MODEL.md §15)
        raise IdentityFileError(
            f"{path} is a secret key, not shown",
            hint="give the public part instead: FILE.pub, beside the identity file "
                 "('vault identity new NAME -o FILE' wrote both)")
    if len(data) > _MAX_FILE:  # what lies past the part read would go unseen
        raise IdentityFileError(f"{path} is longer than a FILE.pub ({_MAX_FILE} bytes at most)",
                                hint="ask its owner for the FILE.pub 'vault identity new' wrote")
    fields: dict[str, str] = {}
    recipients = []
    # Lines as age reads a recipients file (``age -R FILE.pub``): split at
    # LF alone, a CR before it dropped. str.splitlines() also split at
    # U+2028 or \x1c, and could see no recipient where age sees one.
    for line in data.decode("utf-8", "replace").split("\n"):
        line = line.removesuffix("\r").strip()
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        elif line:
            recipients.append(line)
    try:
        if len(recipients) != 1 or recipients[0].startswith("AGE-SECRET-KEY-"):
            raise ValueError("not one recipient")
        parse_recipient(recipients[0])
        parse_signing_key(fields.get("signing key"))
        name = check_name(fields.get("name", ""))
    except (ValueError, VaultError):
        raise IdentityFileError(
            f"{path} is not the public part of an identity",
            hint="'vault identity new NAME -o FILE' writes FILE and FILE.pub") from None
    if "signature" not in fields:
        return PublicIdentity(name, recipients[0], fields["signing key"])
    try:
        signature = unb64(fields["signature"], 64)
    except ValueError:
        signature = b""  # malformed: refused below, as a signature that does not hold
    public = PublicIdentity(name, recipients[0], fields["signing key"], signature)
    if not public.signature_holds():
        raise IdentityFileError(
            f"{path} is not signed by its signing key: its recipient may be anyone's",
            hint=f"ask {name} for the FILE.pub 'vault identity new' wrote, and compare the "
                 "identity fingerprint 'vault identity show' prints with theirs")
    return public
