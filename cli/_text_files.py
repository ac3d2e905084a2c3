"""Titles, stored file names and title searches given off the command line
(docs/DEPLOYMENT.md §15).

Every local user reads every process's command line (``ps``,
``/proc/PID/cmdline``): a title given as ``--title TEXT`` is theirs to read
for as long as the command runs, though the vault keeps it only inside the
document's encrypted metadata (docs/THREAT-MODEL.md §1). ``--title-file
FILE`` and its kin read the value from FILE's first line instead, or from
standard input for '-', as a passphrase file is read: a file of the user's
own that nobody else may read, or a pipe of theirs (``<(…)``), never through
a link another user made (vault/_inputs.py). The value is held to the rule
of the option it stands for (vault/_text.py), checked here so that the
message says what is wrong with it without quoting it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault._inputs import open_private
from vault._text import character_problem
from vault.errors import UsageError

from ._common import binary_stream

__all__ = ["FILE_NAME", "SEARCH", "TITLE", "Value", "given"]


@dataclass(frozen=True)
class Value:
    """What an option pair (``--OPTION TEXT``, ``--OPTION-file FILE``) gives."""

    option: str  # "--title"
    what: str  # "title": how messages name the value
    longest: int  # characters
    free: bool | None  # free text's rule, a name's, or none (a search)

    @property
    def file_option(self) -> str:
        return f"{self.option}-file"


# The bounds of docs/FORMAT.md §11.3 (vault/_sealed/meta.py: MAX_TITLE, MAX_NAME).
TITLE = Value("--title", "title", 1000, free=True)
FILE_NAME = Value("--filename", "file name", 255, free=False)
SEARCH = Value("--title", "title search", 1000, free=None)


def given(value: Value, text: str | None, path: str | None) -> str | None:
    """The value given as ``text`` on the command line or in the file
    ``path`` ('-': standard input), or None: UsageError for both, or for a
    file that cannot give one."""
    if path is None:
        return text
    if text is not None:
        raise UsageError(f"{value.option} and {value.file_option} both give the {value.what}",
                         hint=f"give one: {value.file_option} keeps it out of the process list")
    return _read(value, path)


def _read(value: Value, path: str) -> str:
    where = f"{value.file_option} {path}" + (" (standard input)" if path == "-" else "")
    bound = 4 * value.longest + 2  # bytes: the longest value in UTF-8, and "\r\n"
    try:
        if path == "-":
            line = binary_stream("stdin").readline(bound + 1)
        else:
            with open_private(path, value.file_option, regular=False) as f:
                line = f.readline(bound + 1)
    except OSError as e:
        raise UsageError(f"cannot read {where}: {e.strerror}",
                         hint=f"write the {value.what} on the first line of a file of "
                              "your own") from None
    hint = f"write the {value.what} alone on the first line"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        if len(line) <= bound:
            raise UsageError(f"{where}: its first line is not UTF-8 text", hint=hint) from None
        text = ""  # cut inside a character: too long all the same
    text = text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
    if len(line) > bound or len(text) > value.longest:
        raise UsageError(f"{where}: its first line is longer than a {value.what} may be "
                         f"({value.longest:,} characters)", hint=hint)
    if not text:
        raise UsageError(f"{where} holds no {value.what}: its first line is empty", hint=hint)
    problem = None if value.free is None else character_problem(text, free=value.free)
    if problem is not None:  # never the value itself: it may be the secret
        raise UsageError(f"{where}: the {value.what} {problem}",
                         hint=f"a {value.what} is one line of printable text")
    return text
