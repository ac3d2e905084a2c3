"""Which vault each place held when this machine user last opened it
(docs/DESIGN.md §8.3).

The trusted state is kept per vault id (:func:`vault._trust.state.state_path`),
so on its own it cannot notice a vault *replaced* by another one: someone
who can write the vault folder moves it aside and makes a new vault there,
under a policy that looks the same but a recovery recipient of their own.
Every machine would take the new id for a vault it has never seen, and seal
the next documents to that recipient. So each place (a folder, or a
PostgreSQL location without its password) is pinned, in the same private
folder as the trusted states, to the id of the vault first opened there; a
place that later holds another vault is an alarm, until its user confirms
the new id (``--vault-id``, env ``VAULT_ID``), the same out-of-band check a
first opening asks for (THREAT-MODEL.md §2).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat

from vault._atomic import make_folders, write_atomic
from vault.errors import IntegrityError, StorageError, UsageError

__all__ = ["check_place"]

_ID = re.compile(r"\A[0-9a-f]{32}\Z")  # a vault id (FORMAT.md §13.4)


def check_place(base: str | None, kind: str, location: str, vault_id: str,
                confirmed: str | None) -> list[str]:
    """Hold ``vault_id``, found at ``location`` (of backend ``kind``), to the
    id pinned there in ``base`` (None: no private folder, nothing kept), and
    to ``confirmed`` when the user names one. The first opening pins; a
    confirmed id pins it anew. IntegrityError for another vault. Returns
    what the user must be told (a folder of theirs made private)."""
    if confirmed is not None and confirmed != vault_id:
        raise IntegrityError(
            f"this is vault {vault_id}, not vault {confirmed!r} as you said",
            hint="someone may have replaced the whole vault: treat it as an incident, or "
                 "check the vault id with its officer")
    if base is None:
        return []
    name = hashlib.sha256(f"{kind}\0{location}".encode()).hexdigest()[:32]
    folder = os.path.join(base, "places")
    path = os.path.join(folder, name)
    notices = []
    try:
        make_folders(os.path.join(folder, "ids"))  # each level 0700
        for sub in ("places", "places/ids"):
            notices += _private_folder(base, sub)
        pinned = _read(path)
        if pinned == vault_id:
            # Its id kept too: the run that pinned it may have stopped in
            # between (a full disk), and a pin without it makes the vault
            # look followed before places were kept, refusing the next new one.
            if not _kept(folder, vault_id):
                _keep_id(folder, vault_id, name)
            return notices
        unplaced = _unplaced(base) if pinned is None and confirmed is None else []
        if unplaced:
            raise UsageError(
                f"this machine followed {len(unplaced)} vault{'s' * (len(unplaced) != 1)} "
                f"({', '.join(sorted(unplaced)[:3])}{', …' if len(unplaced) > 3 else ''}) "
                f"before it kept their places, and this place, new to it, holds vault "
                f"{vault_id}",
                hint="check the id out of band (its officer and a second administrator) and "
                     "pass --vault-id ID (env VAULT_ID) once; if a vault was replaced here, "
                     "treat it as an incident; the replay of a vault no longer used may be "
                     "deleted from the state folder (docs/DEPLOYMENT.md §12)")
        if pinned is None or confirmed is not None:
            with contextlib.suppress(FileExistsError):  # a race with ourselves: read again
                write_atomic(path, f"{vault_id}\n".encode(), replace=confirmed is not None)
            pinned = _read(path)
        if pinned == vault_id:
            _keep_id(folder, vault_id, name)
    except OSError:
        return notices  # like the trusted state: no private folder, nothing pinned
    if pinned is not None and pinned != vault_id:
        raise IntegrityError(
            f"this place held vault {pinned} when this machine last opened it; it now holds "
            f"vault {vault_id}",
            hint="someone may have replaced the whole vault: treat it as an incident; if a new "
                 "vault was made here on purpose, check its id out of band (its officer and a "
                 "second administrator) and pass --vault-id ID (env VAULT_ID) once")
    return notices


def _private_folder(base: str, sub: str) -> list[str]:
    """Check folder ``sub`` of the state folder ``base`` (:func:`_check`),
    first making it private (0700) where it is the user's own, inside a
    private ``base``, but group- or other-writable: what an earlier version
    left under a umask such as 002 (``os.makedirs`` gave 0777 less the
    umask to every level but the last). Nobody else could reach it through
    ``base``, and a pin another user made in it is theirs, refused file by
    file; one of another user's, or a link, is still refused. Changed on
    the opened folder, never through its name again. The notice to give."""
    path = os.path.join(base, sub)
    info = os.lstat(path)
    if not (stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
            and info.st_mode & 0o022 and _private(base)):
        _check(sub, info, folder=True)
        return []
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        opened = os.fstat(fd)
        if stat.S_ISDIR(opened.st_mode) and opened.st_uid == os.geteuid():
            os.fchmod(fd, 0o700)
            opened = os.fstat(fd)
        _check(sub, opened, folder=True)
    finally:
        os.close(fd)
    return [f"this machine's record of the places of vaults: {sub} was writable by other "
            "users (as an earlier version left it under a umask such as 002); it is made "
            "private (0700)"]


def _private(base: str) -> bool:
    """Is the state folder the user's own and writable by nobody else?"""
    info = os.stat(base)
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _keep_id(folder: str, vault_id: str, name: str) -> None:
    """Note that the place of ``vault_id`` is kept (as ``name``)."""
    with contextlib.suppress(FileExistsError):
        write_atomic(os.path.join(folder, "ids", vault_id), f"{name}\n".encode())


def _unplaced(base: str) -> list[str]:
    """The vaults this machine holds a replay of whose place it never kept
    (made before places were kept). One of them may have been at a place
    new to the pins, so no vault found at such a place is taken on trust --
    not even one with a replay here: having followed a vault somewhere says
    nothing of this place (a copy of another followed vault, put here)."""
    from vault._trust.state import check_own_files

    folder = os.path.join(base, "places")
    ids = [entry.removesuffix(".sqlite") for entry in os.listdir(base)
           if entry.endswith(".sqlite") and _ID.match(entry.removesuffix(".sqlite"))]
    for vault_id in ids:  # one another user planted follows nothing: refused, not counted
        check_own_files(os.path.join(base, f"{vault_id}.sqlite"))
    return [vault_id for vault_id in ids if not _kept(folder, vault_id)]


# Pins are this machine's own memory: no log can rebuild them, so one that
# another user may have written (planted while the state folder was open to
# them, and believed once the user closed it) is refused, never replaced --
# it would choose which vault a place holds, or hide that one was replaced.
_PLANTED_HINT = ("another user may have written it while the state folder was open to them: "
                 "treat it as an incident; once looked into, remove it (the places folder of "
                 "the state folder) and give each vault's id, checked out of band, with "
                 "--vault-id ID (env VAULT_ID) once")


def _check(name: str, info: os.stat_result, *, folder: bool = False) -> None:
    """StorageError unless ``name`` (in the state folder) is the user's own
    and writable by nobody else (:func:`vault._inputs.check_own`)."""
    from vault._inputs import check_own

    check_own(f"cannot use this machine's record of the places of vaults: {name}", info,
              StorageError, _PLANTED_HINT, folder=folder)


def _kept(folder: str, vault_id: str) -> bool:
    """Whether the place of ``vault_id`` is noted as kept (``ids/<id>``)."""
    try:
        info = os.lstat(os.path.join(folder, "ids", vault_id))
    except FileNotFoundError:
        return False
    _check(f"places/ids/{vault_id}", info)
    return True


def _read(path: str) -> str | None:
    """The id pinned at ``path``; None if none (or unreadable: rewritten)."""
    from vault._inputs import open_own

    name = "places/" + os.path.basename(path)
    try:
        with open_own(path, f"cannot use this machine's record of the places of vaults: "
                            f"{name}", StorageError, _PLANTED_HINT) as f:
            text = f.read(80).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
    return text if _ID.match(text) else None


def confirmed_id(value: str | None) -> str | None:
    """A vault id a user typed (``--vault-id``), checked for shape."""
    if value is None or value == "":
        return None
    value = value.strip().lower()
    if not _ID.match(value):
        raise UsageError("not a vault id", hint="a vault id is 32 lowercase hex digits: "
                                                "'vault init' prints it, 'vault status' shows it")
    return value
