"""Where a vault keeps its files: the backend interface and its
implementations (docs/DESIGN.md §7).

:func:`open_backend` maps a vault location to a backend: a folder
(:class:`~vault.store.folder.FolderBackend`) or a PostgreSQL database
(:class:`~vault.store.postgres.PostgresBackend`), both implementing the
interface in :mod:`vault.store.base`.
"""

from __future__ import annotations

import os

from vault.errors import UsageError
from vault.store.base import Backend

__all__ = ["Backend", "open_backend"]


def open_backend(location: str | os.PathLike[str] | Backend) -> Backend:
    """Return the backend for ``location``: a folder path, a PostgreSQL
    connection URI ``postgresql://...`` (docs/DEPLOYMENT.md), or a backend."""
    if isinstance(location, Backend):
        return location
    text = os.fspath(location)
    if text.startswith(("postgresql://", "postgres://")):
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
