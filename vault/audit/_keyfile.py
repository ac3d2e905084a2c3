"""The checkpoint key of a standalone log: ``<dir>/log.key`` (docs/AUDIT.md §7).

One line, the signed-note private key ``PRIVATE+KEY+<name>+<id>+<base64>``
(the form Go's golang.org/x/mod/sumdb/note reads), in a file created 0600
and refused when group or others can read it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from vault._atomic import fsync_dir, open_regular
from vault.audit.note import NoteSigner
from vault.errors import CheckpointError, InsecureFileError

__all__ = ["load_key_file", "write_key_file"]


def write_key_file(path: Path, signer: NoteSigner) -> None:
    # Created with its final mode (never chmod after): no window where it is readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (signer.private_key() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def load_key_file(path: Path) -> NoteSigner:
    fd = open_regular(path)  # never a planted link or named pipe
    with os.fdopen(fd, "r", encoding="utf-8") as f:
        if stat.S_IMODE(os.fstat(f.fileno()).st_mode) & 0o077:
            raise InsecureFileError(f"{path} is readable by others", hint=f"chmod 600 {path}")
        text = f.read().strip()
    try:
        return NoteSigner.from_private_key(text)
    except ValueError:
        raise CheckpointError(f"{path} does not hold a signed-note private key") from None
