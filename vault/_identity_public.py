"""The public parts of an identity: ``FILE.pub`` (docs/DESIGN.md §2).

``vault identity new`` writes it beside the identity file: an age
recipients file (``age -R FILE.pub`` encrypts to it) whose comment lines
name the user and give the signing key and its fingerprint. It holds no
secret, so reading it needs no passphrase; it is what a user sends the
officer, who copies it into the policy (``vault identity show``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vault.errors import IdentityFileError, UsageError, VaultError

__all__ = ["PUBLIC_SUFFIX", "PublicIdentity", "load_public_identity", "public_path"]

PUBLIC_SUFFIX = ".pub"
_MAX_FILE = 64 * 1024


@dataclass(frozen=True)
class PublicIdentity:
    """The public parts of an identity: what the officer copies into the
    policy's ``users``."""

    name: str
    recipient: str
    signing_public: str

    @property
    def fingerprint(self) -> str:
        from vault._primitives import parse_signing_key
        from vault.audit import fingerprint

        return str(fingerprint(parse_signing_key(self.signing_public)))

    @property
    def post_quantum(self) -> bool:
        return self.recipient.startswith("age1pq1")

    def to_text(self) -> str:
        """``FILE.pub``: an age recipients file whose comments carry the rest."""
        return (f"# name: {self.name}\n"
                f"# signing key: {self.signing_public}\n"
                f"# fingerprint: {self.fingerprint}\n"
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
    it holds no secret). :class:`IdentityFileError` if it is not one."""
    from vault._inputs import holds_secret, open_input
    from vault._primitives import parse_signing_key
    from vault.age import parse_recipient
    from vault.identity import check_name

    path = os.fspath(path)
    try:
        with open_input(path) as f:  # never stalled by a FIFO another user planted
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if holds_secret(data):  # given by mistake: said so, never quoted (docs/THREAT-MODEL.md §15)
        raise IdentityFileError(
            f"{path} is a secret key, not shown",
            hint="give the public part instead: FILE.pub, beside the identity file "
                 "('vault identity new NAME -o FILE' wrote both)")
    fields: dict[str, str] = {}
    recipients = []
    for line in data[:_MAX_FILE].decode("utf-8", "replace").splitlines():
        line = line.strip()
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
    return PublicIdentity(name, recipients[0], fields["signing key"])
