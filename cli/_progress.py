"""Progress bars on stderr for large files, only when stderr is a terminal.

A bar would corrupt nothing (data goes to stdout or files), but in logs and
pipes it is noise, so it is shown only to a person watching.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

import click

# Below this size an operation finishes before a bar would be worth drawing.
LARGE_FILE = 32 * 1024 * 1024


def wanted(size: int | None) -> bool:
    return size is not None and size >= LARGE_FILE and sys.stderr.isatty()


class _ProgressReader:
    """A read-only binary file that advances a progress bar as it is read."""

    def __init__(self, raw: BinaryIO, bar: Any) -> None:
        self._raw = raw
        self._bar = bar

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._bar.update(len(data))
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        # Everything else (name, seekable, close, ...) is the wrapped file's.
        return getattr(self._raw, name)


@contextmanager
def reading(raw: BinaryIO, size: int | None, label: str) -> Iterator[BinaryIO]:
    """Yield ``raw``, wrapped to show a bar on stderr when the file is large."""
    if not wanted(size):
        yield raw
        return
    bar: Any
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        yield cast(BinaryIO, _ProgressReader(raw, bar))
