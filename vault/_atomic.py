"""Crash-safe file writes: nothing is ever half-written (docs/DESIGN.md §7).

Every file appears under its final name only once its whole content is on
disk: the data goes to a temporary file in the same directory, which is
fsynced, then linked or renamed into place, and the directory is fsynced so
that the new name survives a crash too.

Where the kernel allows it the temporary file is anonymous (``O_TMPFILE``):
a crash then leaves nothing behind at all. Elsewhere (file systems or
sandboxes that refuse to link it, other systems) it is a dot-file named
``.vault-tmp-<16 hex digits>``, created with ``O_EXCL`` and the final mode
(never ``chmod`` after the fact). Its writer holds an exclusive ``flock``
on it until the file is in place, and the kernel drops that lock when the
writer dies, however it dies: so a temporary whose lock can be taken was
left by a killed writer, and :func:`remove_stale_temps` deletes exactly
those, never a live writer's (docs/THREAT-MODEL.md, "Temporary files").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "TEMP_PREFIX",
    "atomic_writer",
    "fsync_dir",
    "remove_stale_temps",
    "stale_temps",
    "write_atomic",
]

TEMP_PREFIX = ".vault-tmp-"
# What remove_stale_temps may delete: our temporaries, and in the vault's own
# folders (which only the vault writes) the shorter ``.tmp-`` form as well.
_OURS = re.compile(r"\A\.vault-tmp-[0-9a-f]{16}\Z")
_OURS_OR_SHORT = re.compile(r"\A\.(?:vault-)?tmp-[0-9a-f]{16}\Z")

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
        fd = os.open(directory, flag | os.O_WRONLY | _CLOEXEC, mode)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise
    # Locked before it can get a name (a replacement links it to a temporary
    # name first): a sweeper must never take it for a dead writer's.
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _same_file(fd: int, name: str) -> bool:
    try:
        st = os.lstat(name)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _open_named(directory: str, mode: int) -> tuple[int, str]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    while True:
        name = os.path.join(directory, TEMP_PREFIX + secrets.token_hex(8))
        try:
            fd = os.open(name, flags, mode)
        except FileExistsError:  # pragma: no cover - 64 random bits collided
            continue
        # Between the create and the lock a sweeper may have found the file
        # unlocked and deleted it: then start again under a new name.
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _same_file(fd, name):
            return fd, name
        os.close(fd)  # pragma: no cover - lost that race


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
    path: str | os.PathLike[str], *, mode: int = 0o600, replace: bool = False,
    sweep: bool = False, sync_dir: bool = True,
) -> Iterator[BinaryIO]:
    """Yield a writable file that appears at ``path`` only if the block ends
    without an exception.

    With ``replace=False`` the final step fails with :class:`FileExistsError`
    when ``path`` already exists (an exclusive create, safe between
    processes); with ``replace=True`` an existing file is atomically replaced.
    ``sweep`` first deletes the temporaries that killed writers left in the
    destination's folder (for files written outside the vault: plaintext,
    identities). ``sync_dir=False`` leaves the final directory fsync to the
    caller (several files written together share one).
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    if sweep:
        remove_stale_temps(directory, only_ours=True)
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
    if sync_dir:
        fsync_dir(directory)


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, replace: bool = False,
    sweep: bool = False, sync_dir: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, replace=replace, sweep=sweep, sync_dir=sync_dir) as f:
        f.write(data)


def remove_stale_temps(directory: str | os.PathLike[str], *, only_ours: bool = False
                       ) -> list[str]:
    """Delete the temporary files that killed writers left in ``directory``.

    A temporary is stale when nobody holds its lock: a live writer keeps it
    locked until its file is in place, and the kernel releases the lock of
    a dead one. Only regular files owned by this user with a temporary's
    exact name are considered (``only_ours``: the ``.vault-tmp-`` form only,
    for folders that are not the vault's). Safe to call at any time.
    """
    pattern = _OURS if only_ours else _OURS_OR_SHORT
    removed = []
    with os.scandir(directory) as it:
        names = [e.name for e in it if pattern.match(e.name)]
    for name in names:
        if _remove_if_stale(os.path.join(directory, name)):
            removed.append(name)
    if removed:
        fsync_dir(directory)
    return removed


def stale_temps(directory: str | os.PathLike[str]) -> list[tuple[str, int]]:
    """``(name, size)`` of the temporaries killed writers left in
    ``directory`` (what :func:`remove_stale_temps` would delete), without
    deleting anything."""
    found = []
    try:
        with os.scandir(directory) as it:
            names = [e.name for e in it if _OURS_OR_SHORT.match(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in names:
        size = _stale_size(os.path.join(directory, name))
        if size is not None:
            found.append((name, size))
    return found


def _stale_size(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # a live writer's
        return st.st_size
    finally:
        os.close(fd)


def _remove_if_stale(path: str) -> bool:
    try:  # O_NONBLOCK: a planted FIFO must not hang us
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC)
    except OSError:
        return False  # gone, a symbolic link, or not ours to read
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live writer's
        if not _same_file(fd, path):
            return False
        os.unlink(path)  # while we hold its lock: nobody else decides meanwhile
        return True
    finally:
        os.close(fd)
