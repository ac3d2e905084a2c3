"""Where a vault keeps its files: the backend interface and its
implementations (docs/DESIGN.md §7).

:func:`open_backend` maps a vault location to a backend: a folder
(:class:`~vault.store.folder.FolderBackend`) or a PostgreSQL database
(:class:`~vault.store.postgres.PostgresBackend`), both implementing the
interface in :mod:`vault.store.base`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from vault.errors import UsageError
from vault.store.base import Backend

__all__ = ["Backend", "migrate_schema", "open_backend"]

_POSTGRES = ("postgresql://", "postgres://")


def open_backend(location: str | os.PathLike[str] | Backend) -> Backend:
    """Return the backend for ``location``: a folder path, a PostgreSQL
    connection URI ``postgresql://...`` (docs/DEPLOYMENT.md), or a backend."""
    if isinstance(location, Backend):
        return location
    text = os.fspath(location)
    if text.startswith(_POSTGRES):
        try:
            from vault.store.postgres import PostgresBackend
        except ImportError:
            raise UsageError("PostgreSQL vaults need the psycopg driver",
                             hint="install it: pip install 'vault[postgres]'") from None
        return PostgresBackend(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UsageError(
            f"vault locations of the form {scheme}://... are not supported by this version",
            hint="give the path of a vault folder or a postgresql:// URI",
        )
    from vault.store.folder import FolderBackend

    return FolderBackend(text)


def migrate_schema(location: str, *, grant: Sequence[str] = (),
                   checkpoint_key: bool | None = None) -> tuple[int, int]:
    """Bring a PostgreSQL vault's schema up to date and grant roles
    (:func:`vault.store.postgres.migrate_schema`); a folder vault has no
    schema to migrate (UsageError)."""
    if not os.fspath(location).startswith(_POSTGRES):
        raise UsageError("only PostgreSQL vaults have a schema to migrate",
                         hint="give a postgresql:// location (a folder vault needs no migration)")
    open_backend(location)  # the driver is installed, or a clear error
    from vault.store.postgres import migrate_schema as migrate

    return migrate(location, grant=grant, checkpoint_key=checkpoint_key)
