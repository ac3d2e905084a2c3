"""Atomic file output: a destination appears whole or not at all.

docs/FORMAT.md §9. Output goes to a temporary file created next to the
destination (same directory, so the final rename cannot cross file
systems), which is flushed and fsynced, renamed over the destination, and
followed by an fsync of the directory so the rename itself is durable. On
any error, or interruption, the temporary file is removed: a failed
decryption never leaves partial plaintext behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["atomic_output", "fsync_directory"]


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: int = 0o600, *, overwrite: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only if the block succeeds.

    ``mode`` is the permission of the new file (subject to the umask); it is
    set at creation, never afterwards, so secrets are never world-readable
    even for an instant. With ``overwrite=False`` an existing ``path`` is
    left alone and FileExistsError raised (the final step is then a hard
    link, which, unlike rename, refuses to replace).
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    temp = os.path.join(
        directory, f".{os.path.basename(target)}.{os.urandom(6).hex()}.tmp"
    )
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", buffering=0) as f:
            yield f
            os.fsync(f.fileno())
        if overwrite:
            os.replace(temp, target)
        else:
            os.link(temp, target)
            os.unlink(temp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(directory)
