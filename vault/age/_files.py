"""Atomic file output: a destination appears whole or not at all.

docs/FORMAT.md §9. One mechanism serves the whole library
(:mod:`vault.store._atomic`): a temporary file next to the destination,
locked by its writer, fsynced, then renamed (or linked) into place and the
directory fsynced. A writer killed midway leaves a locked-then-orphaned
``.vault-tmp-…`` file that the next atomic write into that folder removes,
so interrupted decryption never leaves partial plaintext behind for long.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import BinaryIO

from vault._atomic import atomic_writer

__all__ = ["atomic_output"]


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: int = 0o600, *, overwrite: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` only if the block succeeds.

    ``mode`` is the permission of the new file (subject to the umask), set
    at creation, never afterwards. With ``overwrite=False`` an existing
    ``path`` is left alone and FileExistsError raised. Stale temporaries of
    killed writers in the destination's folder are swept first.
    """
    with atomic_writer(path, mode=mode, replace=overwrite, sweep=True) as f:
        yield f
