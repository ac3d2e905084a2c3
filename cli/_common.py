"""Helpers shared by the CLI command modules: settings, output, passphrases.

Diagnostics go to stderr, data to stdout. Nothing here imports the heavy
parts of the library.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

import click

from vault._inputs import read_passphrase_file
from vault._text import free_characters
from vault._text import printable as printable  # re-exported: every command escapes with it
from vault.errors import UsageError


@dataclass
class Settings:
    """Global options, stored on the root context as ``ctx.obj``."""

    vault_dir: str | None = None
    identity_path: str | None = None
    vault_id: str | None = None  # the id the user knows the vault by (--vault-id)


def _lower_first(message: str) -> str:
    # Lowercase the first letter unless it starts an acronym ("HMAC", "SQLite").
    if len(message) >= 2 and message[0].isupper() and not message[1].isupper():
        return message[0].lower() + message[1:]
    return message


# An error line quotes what it was given (a name, a label, a path): a value
# of 100,000 characters must not become a 100 KB line on the terminal.
_LONGEST = 2000


def bounded(line: str) -> str:
    """``line`` cut to at most 2,000 characters, saying how many were left out."""
    if len(line) <= _LONGEST:
        return line
    cut = len(line) - _LONGEST + 200
    return f"{line[:_LONGEST - 400]} ... ({cut:,} characters left out) ... {line[-200:]}"


def report_error(message: str, hint: str | None = None) -> None:
    """Print ``vault: <message>`` and ``hint: <hint>`` to stderr, one line
    each. Messages and hints quote names, markings and labels as given:
    escaped here, whole, so that a line break in one shows as ``\\n`` and
    never prints a line of its writer's; each line bounded."""
    click.echo(f"vault: {bounded(printable(_lower_first(message)))}", err=True)
    if hint:
        click.echo(f"hint: {bounded(printable(hint))}", err=True)


def warn(message: str) -> None:
    click.echo(f"vault: warning: {bounded(printable(message))}", err=True)


def info(message: str | Sequence[str]) -> None:
    """Status lines for people (stderr, never parsed): a string is one
    line, a sequence one line per item. Each is escaped whole, never split
    on the line breaks it holds: those of a value it quotes (a policy's
    description, a label, a name) show as ``\\n``."""
    for line in [message] if isinstance(message, str) else message:
        click.echo(printable(line), err=True)


def json_text(text: str) -> str:
    """JSON ``text`` with every character that is not printable written as
    a ``\\u`` escape: the C0 and C1 controls, the bidi controls, U+2028
    and U+2029, lone surrogates (vault/_text.py). JSON's encoder leaves all
    but C0 raw, and a terminal acts on U+009B or U+202E, a line-based reader
    (a SIEM, ``splitlines``) breaks at U+0085 or U+2028: a record's text
    would forge lines or send escapes. The values a parser reads are the
    same; only printable text, and escapes, are written -- free text's no-break
    spaces and joiners as they are, as :func:`printable` shows them, but a
    joiner that joins nothing (beside a string's quote too) escaped."""
    if text.isprintable():
        return text
    return "".join(c if ok else _json_escape(c) for c, ok in free_characters(text, ends='"'))


def _json_escape(c: str) -> str:
    n = ord(c)
    if n < 0x10000:
        return f"\\u{n:04x}"
    n -= 0x10000  # beyond the BMP: a UTF-16 surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}"


def echo_json(obj: Any) -> None:
    """Write one JSON document to stdout (sorted keys, one line, only
    printable text: :func:`echo_json_text`)."""
    echo_json_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def echo_json_text(text: str, *, nl: bool = True) -> None:
    """Write JSON ``text`` to stdout through :func:`json_text`: the one way
    the command line prints JSON, whoever made the text (the library's
    listing, a record's stored line, :func:`echo_json`). JSON printed any
    other way would carry a record's U+0085 or U+202E raw
    (tests/test_cli_output_safety.py holds every command to it)."""
    click.echo(json_text(text), nl=nl)


def binary_stream(name: Literal["stdin", "stdout"]) -> BinaryIO:
    """The byte stream under ``sys.stdin`` or ``sys.stdout`` (documents and
    age files are bytes, never text)."""
    stream = getattr(sys, name)
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # replaced by a text-only stream (an embedding program)
        raise UsageError(f"{name} takes no bytes here", hint="use -o FILE instead of -")
    return cast(BinaryIO, buffer)


def settings(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


# Below this many characters a new passphrase gets a warning: the file can be
# copied and guessed at offline, scrypt only slows each guess down.
SHORT_PASSPHRASE = 12
_TRIES = 3


def read_passphrase(prompt: str = "passphrase", *, confirm: bool = False,
                    env: str = "VAULT_PASSPHRASE_FILE", empty_hint: str = "") -> str:
    """Read a passphrase from the file named by ``env`` or the terminal.

    Passphrases are never taken from the command line, where other users can
    read them in the process list. ``confirm``: a new passphrase, asked twice
    and warned about when short. An empty answer is explained, then asked
    again (``empty_hint`` says what else the user can do).
    """
    path = os.environ.get(env)
    if path:
        value = read_passphrase_file(path, env)  # private, regular or a pipe, UTF-8
        if confirm:
            _warn_if_short(value)
        return value
    if not sys.stdin.isatty():
        raise UsageError(
            "a passphrase is needed but there is no terminal to ask for it",
            hint=f"set {env} to a file holding the passphrase",
        )
    for _ in range(_TRIES):
        value = _ask(prompt.capitalize())
        if not value:
            info("an empty passphrase protects nothing: type one"
                 + (f" ({empty_hint})" if empty_hint else ""))
            continue
        if not confirm:
            return value
        _warn_if_short(value)
        if _ask("Repeat for confirmation") == value:
            return value
        info("the two passphrases differ: type it again")
    raise UsageError("no passphrase given", hint=empty_hint or None)


def _ask(prompt: str) -> str:
    # default="" lets an empty answer through, to be explained, where
    # click.prompt would silently ask again.
    return str(click.prompt(prompt, hide_input=True, default="", show_default=False, err=True))


def _warn_if_short(value: str) -> None:
    if len(value) < SHORT_PASSPHRASE:
        warn(f"this passphrase is short ({len(value)} characters): anyone who copies the "
             f"file can guess at it offline; {SHORT_PASSPHRASE} or more characters, or a few "
             "words, hold out far longer")
