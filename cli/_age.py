"""``vault age``: the low-level age v1 engine on the command line.

Standard age v1 files, no policy and no audit: ``keygen``, ``encrypt`` and
``decrypt`` behave like stock ``age-keygen``/``age`` (and interoperate with
them), including the post-quantum hybrid keys of ``age-keygen -pq``
(docs/FORMAT.md §5.3). Input and output default to stdin/stdout (``-`` too); output to a
path appears atomically, and a failed decryption leaves no file behind; a
device or FIFO named by ``-o`` is written in place, as by age.
``vault.age`` is imported inside the commands so that ``vault --help``
stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

import click

from vault._inputs import open_input
from vault.errors import IdentityFileError, UsageError

from ._common import binary_stream, info, read_passphrase

if TYPE_CHECKING:
    from vault.age import Header, Identity, Recipient

__all__ = ["age"]

_PATH = click.Path(dir_okay=False, allow_dash=True)


@click.group("age")
def age() -> None:
    """Low-level age v1 encryption (no policy, no audit).

    Files are standard age v1, readable and writable by stock age (age 1.3
    or later for post-quantum keys). As with age, -o FILE overwrites FILE,
    whole or not at all; a device or FIFO (/dev/stdout, a pipe) is written
    in place; a symbolic link is followed, never replaced, and refused if
    another user made it.
    """


@contextlib.contextmanager
def _input(path: str | None) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        yield binary_stream("stdin")
        return
    with open_input(path) as f:  # never blocks on a FIFO another user planted
        yield f


@contextlib.contextmanager
def _output(path: str | None, mode: int, *, binary_to_tty_ok: bool) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        stdout = binary_stream("stdout")
        if not binary_to_tty_ok and sys.stdout.isatty():
            raise UsageError(
                "refusing to write binary ciphertext to a terminal",
                hint="use -o FILE, redirect the output, or add -a for armored text",
            )
        yield stdout
        stdout.flush()
        return
    from vault._atomic import open_output

    # Like age, an existing file is overwritten; unlike a bare rename, a
    # device or FIFO is written in place and a symbolic link is never
    # replaced (docs/THREAT-MODEL.md §13.2).
    with open_output(path, mode=mode, replace=True) as f:
        yield f


@age.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the key to FILE (mode 0600)."
)
@click.option(
    "--pq",
    is_flag=True,
    help="Generate a post-quantum hybrid (mlkem768x25519) identity, AGE-SECRET-KEY-PQ-1….",
)
@click.option(
    "-y",
    "convert",
    metavar="IDENTITY_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Print the recipient (age1… or age1pq1…) of each identity in IDENTITY_FILE instead.",
)
def keygen(output: str | None, pq: bool, convert: str | None) -> None:
    """Generate a new identity (prints it, or writes it to -o FILE).

    X25519 (AGE-SECRET-KEY-1…, recipient age1…) by default; with --pq a
    post-quantum hybrid one (AGE-SECRET-KEY-PQ-1…, recipient age1pq1…).
    """
    from vault.age import MLKEM768X25519Identity, X25519Identity, load_identities
    from vault.age._files import atomic_output

    if convert is not None:
        if output is not None or pq:
            raise UsageError(
                "-y cannot be combined with -o or --pq",
                hint="-y prints the recipients of an existing identity file",
            )
        for key in load_identities(_identity_file(convert), _asker(convert)):
            if isinstance(key, X25519Identity | MLKEM768X25519Identity):
                click.echo(str(key.recipient))
        return
    identity = MLKEM768X25519Identity.generate() if pq else X25519Identity.generate()
    created = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"# created: {created}\n# public key: {identity.recipient}\n{identity}\n"
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    try:
        with atomic_output(output, 0o600, overwrite=False) as f:
            f.write(text.encode("ascii"))
    except FileExistsError:
        raise UsageError(
            f"{output} already exists", hint="choose another file name; keys are never overwritten"
        ) from None
    info(f"Public key: {identity.recipient}")


@age.command()
@click.option(
    "-r",
    "--recipient",
    "recipients",
    multiple=True,
    help="Encrypt to age1… or post-quantum age1pq1… (repeatable).",
)
@click.option(
    "-R",
    "--recipients-file",
    "recipient_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Encrypt to every recipient listed in FILE (repeatable).",
)
@click.option("-p", "--passphrase", is_flag=True, help="Encrypt to a passphrase instead.")
@click.option("-a", "--armor", is_flag=True, help="Write ASCII-armored (PEM) text.")
@click.option("-o", "--output", type=_PATH, help="Output file (default: stdout).")
@click.argument("input_path", metavar="[INPUT]", required=False, type=_PATH)
def encrypt(
    recipients: tuple[str, ...],
    recipient_files: tuple[str, ...],
    passphrase: bool,
    armor: bool,
    output: str | None,
    input_path: str | None,
) -> None:
    """Encrypt INPUT (default: stdin) to recipients or to a passphrase.

    Post-quantum (age1pq1…) and classical (age1…) recipients cannot be mixed
    in one file: the classical key would void the post-quantum protection.
    """
    import vault.age as agelib

    targets: list[Recipient] = [_recipient_option(r) for r in recipients]
    for path in recipient_files:
        with open_input(path) as f:
            data = f.read(_MAX_RECIPIENTS_FILE + 1)
        if len(data) > _MAX_RECIPIENTS_FILE:
            raise UsageError(f"recipients file {path} is too large to be one")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"recipients file {path} is not UTF-8 text",
                             hint="give a file of age1… recipients, one per line") from None
        targets += agelib.parse_recipients(text)
    if passphrase:
        if targets:
            raise UsageError("-p cannot be combined with -r or -R")
        targets = [agelib.ScryptRecipient(read_passphrase(confirm=True))]
    if not targets:
        raise UsageError("no recipients", hint="give -r age1…, -R FILE, or -p")
    _check_mix(targets)
    with _input(input_path) as src, _output(output, 0o666, binary_to_tty_ok=armor) as dst:
        agelib.encrypt(src, dst, targets, armor=armor)


# Thousands of post-quantum recipients (about 2 KB each): more is no list.
_MAX_RECIPIENTS_FILE = 16 << 20


def _recipient_option(text: str) -> Recipient:
    # A malformed -r is a bad argument (exit 2). The text is not repeated:
    # a secret key pasted by mistake must not end up in a terminal log.
    import vault.age as agelib

    try:
        return agelib.parse_recipient(text)
    except IdentityFileError as e:
        raise UsageError(
            f"-r: {e.message}",
            hint=e.hint or "vault age encrypts to age1… and post-quantum age1pq1… recipients",
        ) from None


def _check_mix(targets: list[Recipient]) -> None:
    # The engine refuses the same mix with a ValueError (docs/FORMAT.md §5.3);
    # checked here first so that the command line gets a usage error and a hint.
    import vault.age as agelib

    if any(isinstance(t, agelib.MLKEM768X25519Recipient) for t in targets) and any(
        isinstance(t, agelib.X25519Recipient) for t in targets
    ):
        raise UsageError(
            "post-quantum (age1pq1…) and classical (age1…) recipients cannot be mixed in one file",
            hint="encrypt to age1pq1… recipients only (vault age keygen --pq), "
            "or to age1… recipients only",
        )


@age.command()
@click.option(
    "-i",
    "--identity",
    "identity_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Identity file, X25519 or post-quantum (repeatable; may be passphrase-encrypted).",
)
@click.option("-o", "--output", type=_PATH, help="Output file (default: stdout).")
@click.argument("input_path", metavar="[INPUT]", required=False, type=_PATH)
def decrypt(identity_files: tuple[str, ...], output: str | None, input_path: str | None) -> None:
    """Decrypt INPUT (default: stdin), binary or armored."""
    import vault.age as agelib

    with _input(input_path) as raw:
        src = agelib.dearmor(raw)
        header = agelib.read_header(src)
        file_key = agelib.unwrap_file_key(header, _identities(header, identity_files))
        with _output(output, 0o600, binary_to_tty_ok=True) as dst:
            agelib.decrypt_payload(src, dst, file_key)


def _identities(header: Header, identity_files: tuple[str, ...]) -> list[Identity]:
    import vault.age as agelib

    if any(s.type == "scrypt" for s in header.stanzas):
        if identity_files:
            raise UsageError(
                "the file is passphrase-encrypted, but identity files were given",
                hint="drop -i; you will be asked for the passphrase",
            )
        return [agelib.ScryptIdentity(read_passphrase())]
    if not identity_files:
        raise UsageError("no identity given", hint="give -i IDENTITY_FILE")
    return identity_files_loaded(identity_files)


def identity_files_loaded(paths: Sequence[str]) -> list[Identity]:
    """The age identities in these files (``vault doctor --recovery-identity``
    too), each file refused if others may read it."""
    import vault.age as agelib

    identities: list[Identity] = []
    for path in paths:
        identities += agelib.load_identities(_identity_file(path), _asker(path))
    return identities


def _identity_file(path: str) -> bytes:
    """An identity file's bytes, refused if another user owns it or may read
    it (as ``vault --identity`` refuses it): it is a secret, a recovery
    identity most of all. A pipe of the user's own (``<(pass show …)``) is
    read as well."""
    from vault._inputs import open_private
    from vault.age._identities import MAX_IDENTITY_FILE
    from vault.errors import IdentityFileError

    with open_private(path, "identity file", regular=False) as f:
        data = f.read(MAX_IDENTITY_FILE + 1)
    if len(data) > MAX_IDENTITY_FILE:
        raise IdentityFileError("identity file is too large to be one")
    return data


def _asker(path: str) -> Callable[[], str]:
    """Ask for an identity file's passphrase only if the file turns out encrypted."""
    return lambda: read_passphrase(f"passphrase for {os.path.basename(path)}")
