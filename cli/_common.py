"""Helpers shared by the CLI command modules: settings, output, passphrases.

Diagnostics go to stderr, data to stdout. Nothing here imports the heavy
parts of the library.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import click

from vault.errors import UsageError


@dataclass
class Settings:
    """Global options, stored on the root context as ``ctx.obj``."""

    vault_dir: str | None = None
    identity_path: str | None = None


def _lower_first(message: str) -> str:
    # Lowercase the first letter unless it starts an acronym ("HMAC", "SQLite").
    if len(message) >= 2 and message[0].isupper() and not message[1].isupper():
        return message[0].lower() + message[1:]
    return message


def report_error(message: str, hint: str | None = None) -> None:
    """Print ``vault: <message>`` and one ``hint:`` line per hint line to stderr."""
    click.echo(f"vault: {_lower_first(message)}", err=True)
    if hint:
        for line in hint.splitlines():
            click.echo(f"hint: {line}", err=True)


def warn(message: str) -> None:
    click.echo(f"vault: warning: {message}", err=True)


def info(message: str) -> None:
    """A progress or status line for people (stderr, never parsed)."""
    click.echo(message, err=True)


def echo_json(obj: Any) -> None:
    """Write one JSON document to stdout (sorted keys, one line)."""
    click.echo(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def read_passphrase(prompt: str = "passphrase", *, confirm: bool = False) -> str:
    """Read a passphrase from ``VAULT_PASSPHRASE_FILE`` or the terminal.

    Passphrases are never taken from the command line, where other users can
    read them in the process list.
    """
    path = os.environ.get("VAULT_PASSPHRASE_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.readline().rstrip("\r\n")
        except OSError as e:
            raise UsageError(
                f"cannot read VAULT_PASSPHRASE_FILE: {e.strerror}",
                hint="point VAULT_PASSPHRASE_FILE at a readable file holding the passphrase",
            ) from None
        if not value:
            raise UsageError("VAULT_PASSPHRASE_FILE holds an empty passphrase")
        return value
    if not sys.stdin.isatty():
        raise UsageError(
            "a passphrase is needed but there is no terminal to ask for it",
            hint="set VAULT_PASSPHRASE_FILE to a file holding the passphrase",
        )
    value = click.prompt(
        prompt.capitalize(), hide_input=True, confirmation_prompt=confirm, err=True
    )
    if not value:
        raise UsageError("empty passphrase")
    return str(value)


def binary_stdin() -> BinaryIO:
    """The process's standard input as bytes (Click's runner replaces it in tests)."""
    return sys.stdin.buffer


def binary_stdout() -> BinaryIO:
    """The process's standard output as bytes."""
    return sys.stdout.buffer
