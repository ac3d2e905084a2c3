"""Identity and recipient strings and files (docs/FORMAT.md §6).

An identity file holds one identity per line; blank lines and lines
starting with ``#`` are ignored. It may itself be an age file (binary or
armored) encrypted to a passphrase, as ``age -p`` writes it; stock age reads
such files with ``age -d -i FILE`` and so do we. Error messages name line
numbers, never the text of a line: it may be a secret key.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from vault._inputs import open_input
from vault.age._mlkem import MLKEM768X25519Identity, MLKEM768X25519Recipient
from vault.age._x25519 import X25519Identity, X25519Recipient
from vault.errors import IdentityFileError, NoIdentityMatchError, UsageError

if TYPE_CHECKING:
    from vault.age._core import Identity, Recipient

__all__ = ["load_identities", "parse_identities", "parse_recipient", "parse_recipients"]

# Identity files are tiny; refuse to slurp something that is obviously not one.
MAX_IDENTITY_FILE = 1 << 20

_PQ_IDENTITY_PREFIX = "AGE-SECRET-KEY-PQ-1"
_PQ_RECIPIENT_PREFIX = "age1pq1"
_UNSUPPORTED_IDENTITIES = (
    ("AGE-PLUGIN-", "plugin identities are not supported"),
    ("-----BEGIN OPENSSH PRIVATE KEY", "SSH identities are not supported"),
)
# Prefixes include the Bech32 separator "1": the data part of an ordinary
# X25519 recipient may itself begin with "tag" or "pq" (docs/FORMAT.md §6),
# but never with "1", which is not a Bech32 data character.
_UNSUPPORTED_RECIPIENTS = (
    ("age1tag1", "tagged (hardware) recipients are not supported"),
    ("age1tagpq1", "tagged (hardware) recipients are not supported"),
    ("ssh-", "SSH recipients are not supported"),
)


def _lines(text: str) -> list[tuple[int, str]]:
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _parse_identity_line(line: str, where: str) -> Identity:
    for prefix, message in _UNSUPPORTED_IDENTITIES:
        if line.upper().startswith(prefix):
            raise IdentityFileError(f"{where}: {message}")
    try:
        if line.upper().startswith(_PQ_IDENTITY_PREFIX):
            return MLKEM768X25519Identity.from_string(line)
        return X25519Identity.from_string(line)
    except ValueError:
        raise IdentityFileError(
            f"{where}: not a valid age identity",
            hint="identities look like AGE-SECRET-KEY-1… or AGE-SECRET-KEY-PQ-1… "
            "(one per line, # starts a comment)",
        ) from None


def parse_identities(text: str) -> list[Identity]:
    """Parse an identity file: ``AGE-SECRET-KEY-1…`` or ``AGE-SECRET-KEY-PQ-1…`` lines."""
    identities = [_parse_identity_line(line, f"line {n}") for n, line in _lines(text)]
    if not identities:
        raise IdentityFileError("no identities found")
    return identities


def parse_recipient(text: str) -> Recipient:
    """Parse one recipient string (``age1…`` or post-quantum ``age1pq1…``)."""
    line = text.strip()
    for prefix, message in _UNSUPPORTED_RECIPIENTS:
        if line.lower().startswith(prefix):
            raise IdentityFileError(message)
    try:
        if line.lower().startswith(_PQ_RECIPIENT_PREFIX):
            return MLKEM768X25519Recipient.from_string(line)
        return X25519Recipient.from_string(line)
    except ValueError:
        raise IdentityFileError(
            "not a valid age recipient",
            hint="recipients look like age1… or age1pq1… (lowercase)",
        ) from None


def parse_recipients(text: str) -> list[Recipient]:
    """Parse a recipients file: one ``age1…`` or ``age1pq1…`` per line, ``#`` comments."""
    recipients: list[Recipient] = []
    for number, line in _lines(text):
        try:
            recipients.append(parse_recipient(line))
        except IdentityFileError as e:
            raise IdentityFileError(f"line {number}: {e.message}", hint=e.hint) from None
    if not recipients:
        raise IdentityFileError("no recipients found")
    return recipients


def _is_age_file(data: bytes) -> bool:
    # docs/FORMAT.md §6: binary from the first byte, or armored (§7).
    armored = data.lstrip(b" \t\r\n").startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")
    return armored or data.startswith(b"age-encryption.org/")


def load_identities(
    path_or_bytes: str | os.PathLike[str] | bytes,
    passphrase: Callable[[], str] | None = None,
) -> list[Identity]:
    """Read an identity file, decrypting it first if it is passphrase-encrypted.

    ``passphrase`` is called only when the file is encrypted; without it an
    encrypted file is a UsageError.
    """
    if isinstance(path_or_bytes, bytes | bytearray):
        data = bytes(path_or_bytes)
    else:
        # Never blocks on a FIFO; one another user planted is refused.
        with open_input(os.fspath(path_or_bytes), what="identity file") as f:
            data = f.read(MAX_IDENTITY_FILE + 1)
        if len(data) > MAX_IDENTITY_FILE:
            raise IdentityFileError("identity file is too large to be one")
    if _is_age_file(data):
        data = _decrypt_identity_file(data, passphrase)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IdentityFileError("identity file is not UTF-8 text") from None
    return parse_identities(text)


def _decrypt_identity_file(data: bytes, passphrase: Callable[[], str] | None) -> bytes:
    from vault.age._core import decrypt
    from vault.age._scrypt import ScryptIdentity

    if passphrase is None:
        raise UsageError(
            "the identity file is passphrase-protected",
            hint="give a passphrase to unlock it",
        )
    out = io.BytesIO()
    try:
        decrypt(io.BytesIO(data), out, [ScryptIdentity(passphrase())])
    except NoIdentityMatchError as e:
        raise NoIdentityMatchError(
            "wrong passphrase for the identity file", reasons=e.reasons
        ) from None
    return out.getvalue()
