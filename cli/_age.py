"""``vault age``: the low-level age v1 engine on the command line.

Standard age v1 files, no policy and no audit: ``keygen``, ``encrypt`` and
``decrypt`` behave like stock ``age-keygen``/``age`` (and interoperate with
them). Input and output default to stdin/stdout (``-`` too); output to a
path appears atomically, and a failed decryption leaves no file behind.
``vault.age`` is imported inside the commands so that ``vault --help``
stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

import click

from vault.errors import UsageError

from ._common import info, read_passphrase

if TYPE_CHECKING:
    from vault.age import Header, Identity, Recipient

__all__ = ["age"]

_PATH = click.Path(dir_okay=False, allow_dash=True)


@click.group("age")
def age() -> None:
    """Low-level age v1 encryption (no policy, no audit).

    Files are standard age v1, readable and writable by stock age.
    """


@contextlib.contextmanager
def _input(path: str | None) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as f:
        yield f


@contextlib.contextmanager
def _output(path: str | None, mode: int, *, binary_to_tty_ok: bool) -> Iterator[BinaryIO]:
    if path is None or path == "-":
        stdout = sys.stdout.buffer
        if not binary_to_tty_ok and sys.stdout.isatty():
            raise UsageError(
                "refusing to write binary ciphertext to a terminal",
                hint="use -o FILE, redirect the output, or add -a for armored text",
            )
        yield stdout
        stdout.flush()
        return
    from vault.age._files import atomic_output

    with atomic_output(path, mode) as f:
        yield f


@age.command()
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write the key to FILE (mode 0600)."
)
@click.option(
    "-y",
    "convert",
    metavar="IDENTITY_FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Print the recipient (age1…) of each identity in IDENTITY_FILE instead.",
)
def keygen(output: str | None, convert: str | None) -> None:
    """Generate a new X25519 identity (prints it, or writes it to -o FILE)."""
    from vault.age import X25519Identity, load_identities
    from vault.age._files import atomic_output

    if convert is not None:
        if output is not None:
            raise UsageError("-y cannot be combined with -o")
        for identity in load_identities(convert, _asker(convert)):
            if isinstance(identity, X25519Identity):
                click.echo(str(identity.recipient))
        return
    identity = X25519Identity.generate()
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
    "-r", "--recipient", "recipients", multiple=True, help="Encrypt to age1… (repeatable)."
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
    """Encrypt INPUT (default: stdin) to recipients or to a passphrase."""
    import vault.age as agelib

    targets: list[Recipient] = [agelib.parse_recipient(r) for r in recipients]
    for path in recipient_files:
        with open(path, encoding="utf-8") as f:
            targets += agelib.parse_recipients(f.read())
    if passphrase:
        if targets:
            raise UsageError("-p cannot be combined with -r or -R")
        targets = [agelib.ScryptRecipient(read_passphrase(confirm=True))]
    if not targets:
        raise UsageError("no recipients", hint="give -r age1…, -R FILE, or -p")
    with _input(input_path) as src, _output(output, 0o666, binary_to_tty_ok=armor) as dst:
        agelib.encrypt(src, dst, targets, armor=armor)


@age.command()
@click.option(
    "-i",
    "--identity",
    "identity_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Identity file (repeatable; may be passphrase-encrypted).",
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
    identities: list[Identity] = []
    for path in identity_files:
        identities += agelib.load_identities(path, _asker(path))
    return identities


def _asker(path: str) -> Callable[[], str]:
    """Ask for an identity file's passphrase only if the file turns out encrypted."""
    return lambda: read_passphrase(f"passphrase for {os.path.basename(path)}")
