"""Where a vault keeps its files: the backend interface and its
implementations (docs/DESIGN.md §7).

:func:`open_backend` maps a vault location to a backend. Today that is a
folder (:class:`~vault.store.folder.FolderBackend`); the interface in
:mod:`vault.store.base` is what a database backend implements.
"""

from __future__ import annotations

import os

from vault.errors import UsageError
from vault.store.base import Backend, Index, IndexRow

__all__ = ["Backend", "Index", "IndexRow", "open_backend"]


def open_backend(location: str | os.PathLike[str] | Backend) -> Backend:
    """Return the backend for ``location`` (a folder path, or a backend)."""
    if isinstance(location, Backend):
        return location
    text = os.fspath(location)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UsageError(
            f"vault locations of the form {scheme}://... are not supported by this version",
            hint="give the path of a vault folder",
        )
    from vault.store.folder import FolderBackend

    return FolderBackend(text)
