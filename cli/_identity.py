"""``vault identity``: create and show personal identities.

An identity file is a standard age X25519 identity file (stock ``age -d -i
FILE`` accepts it); the user's Ed25519 signing key is derived from the same
secret, so one file serves both. By default the file is itself encrypted
with a passphrase, in the form stock age reads.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from vault.errors import UsageError

from ._common import echo_json, info, read_passphrase

if TYPE_CHECKING:  # pragma: no cover
    from vault import UserIdentity


def identity_summary(identity: UserIdentity) -> dict[str, str]:
    """What the officer copies into the policy: public parts only."""
    return {
        "name": identity.name,
        "recipient": identity.recipient,
        "signing_key": identity.signing_public,
        "fingerprint": identity.fingerprint,
    }


def load_identity_file(path: str, *, who: str = "your") -> UserIdentity:
    """Load an identity file, asking for its passphrase only if it is encrypted."""
    from vault import load_identity

    def ask() -> str:
        return read_passphrase(f"passphrase for {who} identity {path}")

    return load_identity(path, passphrase=ask)


@click.group()
def identity() -> None:
    """Create and show personal identities (age identity + signing key)."""


@identity.command("new")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the new identity file (created 0600, never overwritten).",
)
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="Write the key unencrypted (for automation; protect the file yourself).",
)
def new(name: str, output: str, no_passphrase: bool) -> None:
    """Create a new identity NAME in a new file.

    The passphrase is asked twice at the terminal, or read from the file
    named by VAULT_PASSPHRASE_FILE.
    """
    from vault import new_identity

    if os.path.lexists(output):
        raise UsageError(
            f"{output} already exists",
            hint="identity files are never overwritten; choose another file name",
        )
    passphrase = None if no_passphrase else read_passphrase("new passphrase", confirm=True)
    ident = new_identity(name)
    ident.to_file(output, passphrase)
    protection = "unencrypted" if passphrase is None else "passphrase-protected"
    info(f"wrote {protection} identity {name!r} to {output}")
    info(f"recipient: {ident.recipient}")
    info(f"signing_key: {ident.signing_public}")


@identity.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(file: str, as_json: bool) -> None:
    """Print the name, age recipient and signing public key of an identity.

    These are the public parts the officer copies into the policy's users.
    """
    summary = identity_summary(load_identity_file(file))
    if as_json:
        echo_json(summary)
        return
    for key in ("name", "recipient", "signing_key", "fingerprint"):
        click.echo(f"{key}: {summary[key]}")
