"""Crash-safe file writes: nothing is ever half-written (docs/DESIGN.md §7).

Every file appears under its final name only once its whole content is on
disk: the data goes to a temporary file in the same directory, which is
fsynced, then linked or renamed into place, and the directory is fsynced so
that the new name survives a crash too.

Where the kernel allows it the temporary file is anonymous (``O_TMPFILE``):
a crash then leaves nothing behind at all. Elsewhere it is a dot-file named
``.tmp-<random>``, created with ``O_EXCL`` and the final mode (never
``chmod`` after the fact), which :func:`remove_stale_temps` clears.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "TEMP_PREFIX",
    "atomic_writer",
    "fsync_dir",
    "remove_stale_temps",
    "write_atomic",
]

TEMP_PREFIX = ".tmp-"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the directory entries of ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# st_dev -> whether anonymous temporary files can be linked there.
_ANONYMOUS_OK: dict[int, bool] = {}


def _anonymous_supported(directory: str) -> bool:
    # linkat(2) through /proc names an open, nameless file. Some kernels,
    # file systems and sandboxes refuse; probe once per file system.
    dev = os.stat(directory).st_dev
    if dev not in _ANONYMOUS_OK:
        ok = False
        fd = _open_anonymous(directory, 0o600)
        if fd is not None:
            name = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
            try:
                os.link(f"/proc/self/fd/{fd}", name)
                os.unlink(name)
                ok = True
            except OSError:
                ok = False
            finally:
                os.close(fd)
        _ANONYMOUS_OK[dev] = ok
    return _ANONYMOUS_OK[dev]


def _open_anonymous(directory: str, mode: int) -> int | None:
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY | _CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


def _open_named(directory: str, mode: int) -> tuple[int, str]:
    while True:
        name = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
            return os.open(name, flags, mode), name
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue


def _commit(fd: int, temp: str | None, path: str, directory: str, replace: bool) -> None:
    if temp is None:
        # Anonymous file: an exclusive create links it straight into place;
        # a replacement needs a name first, which rename(2) then moves.
        if not replace:
            os.link(f"/proc/self/fd/{fd}", path)
            return
        temp = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
        os.link(f"/proc/self/fd/{fd}", temp)
    try:
        if replace:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # fails if ``path`` exists: an exclusive create
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], *, mode: int = 0o600, replace: bool = False
) -> Iterator[BinaryIO]:
    """Yield a writable file that appears at ``path`` only if the block ends
    without an exception.

    With ``replace=False`` the final step fails with :class:`FileExistsError`
    when ``path`` already exists (an exclusive create, safe between
    processes); with ``replace=True`` an existing file is atomically replaced.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    fd = _open_anonymous(directory, mode) if _anonymous_supported(directory) else None
    temp: str | None = None
    if fd is None:
        fd, temp = _open_named(directory, mode)
    with os.fdopen(fd, "wb") as f:
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
            _commit(f.fileno(), temp, path, directory, replace)
        except BaseException:
            if temp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            raise
    fsync_dir(directory)


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, replace: bool = False
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, replace=replace) as f:
        f.write(data)


def remove_stale_temps(directory: str | os.PathLike[str]) -> list[str]:
    """Delete temporary files left in ``directory`` by a crashed writer.

    Only call this while holding the vault's write lock: a live writer's
    temporary file looks exactly like a stale one.
    """
    removed = []
    with os.scandir(directory) as it:
        for entry in it:
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed.append(entry.name)
    if removed:
        fsync_dir(directory)
    return removed
