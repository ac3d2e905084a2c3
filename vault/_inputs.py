"""Opening the files a user names as input (docs/THREAT-MODEL.md §10, §15).

Two things can stall or mislead a plain ``open()``: a FIFO, whose opening
waits for a writer (forever, if nobody ever writes), and a symbolic link
another user planted in a folder they can write, which makes the reader
read a file of the reader's own that the link's maker chose. So every
input is opened with ``O_NONBLOCK`` and looked at (``fstat``) before a byte
is read; the links and FIFOs of the user's own -- or the system's (root's)
-- are honoured, so that ``-R <(…)`` and a checkpoint piped in still work.

Files holding a secret (identity files, passphrase files) must be regular
files of the user's own that nobody else can read: :func:`open_private`.
Files the user's trust rests on without holding a secret (the trusted
state, the place pins, a FILE.pub read in place of the user's own identity)
must be the user's own and writable by nobody else: :func:`open_own`.
"""

from __future__ import annotations

import errno
import os
import re
import select
import stat
from typing import BinaryIO

from vault.errors import InsecureFileError, UsageError, VaultError

__all__ = ["SECRET_PREFIXES", "check_own", "check_private", "holds_secret", "open_input",
           "open_own", "open_private", "quoted_name", "read_passphrase_file",
           "refuse_foreign_folders", "refuse_planted_links", "text_holds_secret"]

# A passphrase is the first line of its file; a longer file is none.
MAX_PASSPHRASE_FILE = 64 * 1024
# Text that must never be echoed back: what a secret key begins with. A
# file given by mistake as a policy, or a name, may hold an identity file's
# key line (docs/POLICY.md §2.4). Here, not in the policy package: a user
# name is checked by every command, most of which never load a policy.
SECRET_PREFIXES = ("AGE-SECRET-KEY-", "AGE-PLUGIN-", "PRIVATE+KEY+")
_SECRET = re.compile("|".join(re.escape(p) for p in SECRET_PREFIXES).encode("ascii"),
                     re.IGNORECASE)


def refuse_planted_links(path: str, hint: str | None, *, new: bool = False) -> bool:
    """Look at every component of ``path`` as given (``lstat``): UsageError
    if one is a symbolic link another user (neither this one nor root)
    made. Returns whether the last one looked at is a link. With ``new``
    the path may not exist yet: the look stops at the first missing part.
    """
    me = os.geteuid()
    parts = path.split("/")
    link = False
    for i in range(1, len(parts) + 1):
        if not parts[i - 1] or parts[i - 1] in (".", ".."):
            continue  # "/", "a//b", ".", "..": nothing a user can plant
        try:
            info = os.lstat("/".join(parts[:i]))
        except (FileNotFoundError, NotADirectoryError):
            if not new:
                raise
            break  # a new file (or a missing folder, which the write reports)
        link = stat.S_ISLNK(info.st_mode)
        if link and info.st_uid not in (me, 0):
            raise UsageError(f"{path} goes through a symbolic link that another user made",
                             hint=hint)
    return link


def refuse_foreign_folders(folder: str, hint: str | None) -> None:
    """UsageError if ``folder``, or a folder it lies in (where it really
    is: past the links on the way, which :func:`refuse_planted_links` let
    pass, and the working folder's for a relative one), is another user's
    (neither this one's nor root's): its owner sees the names and sizes of
    what is put in it, and can rename or remove it -- and can move a folder
    of the user's own out of it, putting one of theirs in its place."""
    me = os.geteuid()
    if os.stat(folder).st_uid not in (me, 0):
        raise UsageError(f"{folder} is a folder that another user made", hint=hint)
    above = os.path.dirname(os.path.realpath(folder))
    while True:
        if os.stat(above).st_uid not in (me, 0):
            raise UsageError(f"{folder} lies in {above}, a folder that another user made",
                             hint=hint)
        if above == os.path.dirname(above):  # "/"
            return
        above = os.path.dirname(above)


def open_input(path: str, *, regular: bool = False, what: str = "",
               link_hint: str | None = None, foreign_hint: str | None = None) -> BinaryIO:
    """Open ``path`` for reading without ever blocking on a FIFO.

    A path through a symbolic link another user made is refused (UsageError,
    ``link_hint``); the user's own links and root's are followed. With
    ``regular`` anything but a regular file is refused ("``what`` PATH is
    not a regular file"); otherwise a FIFO or device another user made is
    refused (``foreign_hint``), and reading the user's own FIFO waits for
    its writer, as age does. OSError is left to the caller, who knows
    what the file is for.
    """
    me = os.geteuid()
    link = refuse_planted_links(path, link_hint)
    # The last component was no link when looked at: it must not become one.
    flags = os.O_RDONLY | os.O_CLOEXEC | (0 if link else os.O_NOFOLLOW)
    fd = os.open(path, flags | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            if regular:
                raise UsageError(f"{what} {path} is not a regular file".lstrip(),
                                 hint="give the file itself, not a device, FIFO or folder")
            if info.st_uid not in (me, 0):
                raise UsageError(f"{path} is not a regular file, and another user made it",
                                 hint=foreign_hint)
        if stat.S_ISFIFO(info.st_mode):
            # The user's own: wait for its writer, as age does -- on this
            # descriptor. Reopening would lose what a writer that came and
            # went meanwhile left in it, and wait for another forever. Until
            # a writer came, a read would end at once; poll waits for data,
            # or for the hang-up of a writer that was there.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll()
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_private(path: str, what: str, info: os.stat_result,
                  error: type[UsageError] = InsecureFileError) -> None:
    """Refuse a file holding a secret that another user owns or may read:
    they could read the secret, or change it under the user."""
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        # A device (/dev/null) holds no secret; 'chmod 600' it would break the system.
        raise error(f"{what} {path} is not a regular file",
                    hint="give the file itself, not a device or folder")
    if info.st_uid not in (os.geteuid(), 0):
        raise error(f"{what} {path} belongs to another user",
                    hint="use a file of your own: copy it, then chmod 600 the copy")
    if info.st_mode & 0o077:
        raise error(f"{what} {path} is readable by other users", hint=f"chmod 600 {path}")


def open_private(path: str, what: str, *, regular: bool = True) -> BinaryIO:
    """A file holding a secret, opened and checked (:func:`check_private`)
    before a byte of it is read: a regular file, unless ``regular`` is false
    (then also a pipe of the user's own, such as ``<(pass show …)``)."""
    f = open_input(path, regular=regular, what=what,
                   link_hint="give the file by a path of its own, without that link")
    try:
        check_private(path, what, os.fstat(f.fileno()))
    except BaseException:
        f.close()
        raise
    return f


def check_own(what: str, info: os.stat_result, error: type[VaultError] = InsecureFileError,
              hint: str | None = None, *, folder: bool = False, sticky: bool = False) -> None:
    """Refuse a file (a folder, with ``folder``) that the user's trust rests
    on when someone else may have written it: anything but a regular file
    (or folder), one another user (neither this one nor root) owns, and one
    group or others may write -- but for a sticky folder, with ``sticky``
    (``/tmp``: others add names there, but cannot rename or remove the
    user's). Its owner alone can change its mode, so a file of the user's
    own passes for as long as it is kept."""
    if stat.S_ISLNK(info.st_mode):  # looked at with lstat: it leads where its maker chose
        raise error(f"{what} is a symbolic link", hint=hint)
    if not (stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)):
        raise error(f"{what} is not a {'folder' if folder else 'regular file'}", hint=hint)
    if info.st_uid not in (os.geteuid(), 0):
        raise error(f"{what} belongs to another user", hint=hint)
    if info.st_mode & 0o022 and not (sticky and info.st_mode & stat.S_ISVTX):
        raise error(f"{what} is writable by other users", hint=hint)


def open_own(path: str, what: str, error: type[VaultError] = InsecureFileError,
             hint: str | None = None) -> BinaryIO:
    """A file the user's trust rests on, opened without following a link
    (a link is refused: it would lead wherever its maker chose) nor waiting
    on a FIFO, and checked on that descriptor (:func:`check_own`) before a
    byte of it is read. OSError is left to the caller (FileNotFoundError:
    there is none)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(f"{what} is a symbolic link", hint=hint) from None
        raise
    try:
        check_own(what, os.fstat(fd), error, hint)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_passphrase_file(path: str, env: str) -> str:
    """The passphrase on the first line of the file ``env`` names: a regular
    file of the user's own, readable by nobody else, in UTF-8 (UsageError
    otherwise, exit 2). An empty first line is refused too."""
    what = f"{env} file {path}:"
    try:
        with open_private(path, f"{env} file", regular=False) as f:
            line = f.readline(MAX_PASSPHRASE_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read {env}: {e.strerror}",
                         hint=f"point {env} at a readable file holding the passphrase") from None
    if len(line) > MAX_PASSPHRASE_FILE:
        raise UsageError(f"{what} its first line is too long to be a passphrase",
                         hint="write the passphrase alone on the file's first line")
    try:
        value = line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise UsageError(f"{what} its first line is not UTF-8 text",
                         hint="write the passphrase on the file's first line, as UTF-8 "
                              "text (as a terminal would type it)") from None
    if not value:
        raise UsageError(f"{env} holds an empty passphrase",
                         hint="write the passphrase on the file's first line")
    return value


def holds_secret(data: bytes) -> bool:
    """Whether ``data`` holds a secret key anywhere (the prefixes a policy
    problem never quotes, docs/POLICY.md §2.4) or is an age file -- such as
    a passphrase-protected identity file -- rather than public text."""
    if _SECRET.search(data):
        return True
    head = data.lstrip(b" \t\r\n")
    return head.startswith((b"-----BEGIN AGE ENCRYPTED FILE-----", b"age-encryption.org/"))


def text_holds_secret(text: str) -> bool:
    """:func:`holds_secret` for text (a name from the command line may
    carry lone surrogates: bytes of argv that are not UTF-8)."""
    return holds_secret(text.encode("utf-8", "surrogatepass"))


def quoted_name(name: str, quote: str = "'") -> str:
    """``name`` between ``quote`` marks for a message -- or, where it holds a
    secret key (a key line pasted where a name goes), a phrase saying so:
    a message never shows a key (docs/THREAT-MODEL.md §15)."""
    if text_holds_secret(name):
        return "(a name holding a secret key, not shown)"
    return f"{quote}{name}{quote}"
