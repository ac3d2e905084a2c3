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
import signal
import stat
from collections.abc import Iterator
from typing import BinaryIO

__all__ = [
    "TEMP_PREFIX",
    "NotRegularFile",
    "atomic_writer",
    "fsync_dir",
    "make_folders",
    "open_output",
    "open_regular",
    "output_target",
    "real_directory",
    "remove_stale_temps",
    "stale_temps",
    "write_atomic",
]

TEMP_PREFIX = ".vault-tmp-"
_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
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


def make_folders(path: str, mode: int = 0o700) -> None:
    """``path`` and every folder above it that is missing, each made with
    ``mode`` (less the umask); one that exists is left as it is.
    ``os.makedirs`` gives its mode to the last folder only: the others got
    0777 less the umask -- 0775, writable by the group, under the umask 002
    many systems give their users. FileExistsError where something that is
    not a folder (nor a link to one) holds a name of ``path``."""
    head, tail = os.path.split(path)
    if not tail:  # 'a/b/': the last name is the one before the slash
        head, tail = os.path.split(head)
    if head and tail and not os.path.exists(head):
        make_folders(head, mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


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
    if sweep and replace:
        _check_replaceable(path)
    if sweep:
        remove_stale_temps(directory, only_ours=True)
    fd = _open_anonymous(directory, mode) if _anonymous_supported(directory) else None
    temp: str | None = None
    held = None
    if fd is None:
        # A signal (Ctrl-C, SIGTERM) between the named file's creation and
        # the try below would leave it behind, holding plaintext: the
        # signals wait until the try is entered.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            fd, temp = _open_named(directory, mode)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            raise
    with os.fdopen(fd, "wb") as f:
        try:
            if held is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)  # delivered here, if any
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


def _check_replaceable(path: str) -> None:
    # A user's file (sweep: outside the vault) that is a symbolic link, a
    # device or a FIFO is never renamed over: as root that would turn
    # /dev/null into a file. open_output writes to such destinations.
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        from vault.errors import UsageError

        raise UsageError(f"{path} is not a regular file, and only a file is replaced",
                         hint="name a regular file, or pass an open file to write to")


def write_atomic(
    path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600, replace: bool = False,
    sweep: bool = False, sync_dir: bool = True,
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path, mode=mode, replace=replace, sweep=sweep, sync_dir=sync_dir) as f:
        f.write(data)


def output_target(path: str | os.PathLike[str], *, replace: bool) -> str | None:
    """Where output that a user sends to ``path`` goes (``-o FILE``), checked
    before anything is written (docs/THREAT-MODEL.md §13.2).

    ``None``: ``path`` is a character device or a FIFO (``/dev/null``, a
    terminal, a pipe), written in place as stdout would be; nothing is
    replaced. Otherwise the name of the regular file to create, or with
    ``replace`` to replace atomically: ``path`` itself, or where a symbolic
    link leads -- a link is never replaced by a file. Links and devices are
    used only when the user or root made them (``-o /dev/stdout`` is root's
    link): in a folder others can write, a planted link or FIFO would send
    the output where its maker can read it. UsageError for those, for a
    folder and for any other kind of file; FileExistsError for an existing
    file without ``replace``.
    """
    from vault._inputs import refuse_planted_links
    from vault.errors import UsageError

    path = os.fspath(path)
    me = os.geteuid()
    link = refuse_planted_links(path, "write to a path of your own, without that link",
                                new=True)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        target = os.path.realpath(path) if link else path  # created where the link points
        folder = os.path.dirname(os.path.abspath(target))
        if not os.path.isdir(folder):
            raise UsageError(f"cannot write {path}: its folder does not exist",
                             hint=f"create {folder} first, or choose another file") from None
        return target
    except NotADirectoryError:
        raise UsageError(f"cannot write {path}: a part of its folder is a file",
                         hint="choose another file") from None
    if stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode):
        if st.st_uid not in (me, 0):
            raise UsageError(f"{path} is a device or FIFO that another user made",
                             hint="write to a file or pipe of your own")
        return None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder", hint="give a file name inside it")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is neither a file, a character device nor a FIFO",
                         hint="write to a file, a pipe or stdout ('-')")
    target = os.path.realpath(path) if link else path
    try:  # /proc/self/fd/N of a deleted file resolves to a name that is not it
        same = not link or os.path.samestat(os.stat(target), st)
    except OSError:
        same = False
    if not same:
        raise UsageError(f"cannot tell which file {path} leads to",
                         hint="name the file itself")
    if not replace:  # named by where it is: '-o /dev/stdout' may lead to a file
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    return target


@contextlib.contextmanager
def open_output(path: str | os.PathLike[str], *, mode: int = 0o600, replace: bool = False
                ) -> Iterator[BinaryIO]:
    """Yield a file for a user's output to ``path`` (see :func:`output_target`):
    a regular file appears atomically, whole or not at all, as with
    :func:`atomic_writer` (temporaries of killed writers swept first); a
    character device or FIFO is written in place, with no temporary file
    and no rename, as stock ``age -o`` does."""
    target = output_target(path, replace=replace)
    if target is not None:
        with atomic_writer(target, mode=mode, replace=replace, sweep=True) as f:
            yield f
        return
    # No O_CREAT, no O_TRUNC: nothing is made or cut short. O_NOCTTY: a
    # terminal named here must not become this process's controlling one.
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | _CLOEXEC)
    st = os.fstat(fd)
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)) or st.st_uid not in (
            os.geteuid(), 0):
        os.close(fd)  # replaced since it was looked at: write nothing into it
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
    with os.fdopen(fd, "wb") as f:
        yield f
        f.flush()


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


# -- reading files someone else may have replaced -------------------------------


class NotRegularFile(OSError):
    """A path that must name a regular file names something else: a
    symbolic link, a named pipe, a directory, a socket, a device. ``kind``
    says which (for messages: "a named pipe (FIFO)")."""

    def __init__(self, path: str, kind: str, expected: str = "a regular file") -> None:
        super().__init__(errno.EINVAL, f"{path} is {kind}, not {expected}")
        self.path, self.kind = path, kind


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY,
                 mode: int = 0o600, *, alone: bool = False) -> int:
    """Open ``path``, which must be a regular file (``flags`` may add
    ``O_CREAT`` and the like), and return the descriptor.

    ``alone``: the file must have no other name (a hard link planted at
    ``path`` is another file of the folder's -- the audit log, a document
    -- that writing through ``path`` would destroy); one that has raises
    :class:`NotRegularFile` too.

    Never through a symbolic link, and never blocking: opening a planted
    named pipe would wait forever for a writer. Anything but a regular file
    raises :class:`NotRegularFile` (an :class:`OSError`) naming it; absence
    is :class:`FileNotFoundError` as usual. The descriptor blocks again
    before it is returned (a no-op for regular files, which never block).
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotRegularFile(path, "a symbolic link") from None
        if e.errno not in (errno.ENXIO, errno.EISDIR):  # a pipe or socket to write; a folder
            raise
        try:
            kind = _kind(os.lstat(path).st_mode)
        except OSError:
            raise e from None
        raise NotRegularFile(path, kind) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path, _kind(st.st_mode))
        if alone and st.st_nlink != 1:
            raise NotRegularFile(path, f"a hard link ({st.st_nlink} names)",
                                 "a file with no other name")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def real_directory(path: str | os.PathLike[str]) -> bool:
    """Is ``path`` a directory (False when absent)? Anything else there --
    a symbolic link, even to a directory, a file, a pipe -- raises
    :class:`NotRegularFile`: nothing is read or written through it."""
    path = os.fspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        raise NotRegularFile(path, "a regular file" if stat.S_ISREG(st.st_mode)
                             else _kind(st.st_mode), "a directory")
    return True
