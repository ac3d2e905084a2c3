"""Checkpoint bodies, c2sp.org/tlog-checkpoint (docs/AUDIT.md §7).

    <origin>\\n
    <tree size, decimal, no leading zeros>\\n
    <base64 root hash>\\n
    [<extension line>\\n ...]

The body is the text of a signed note (:mod:`vault.audit.note`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from vault.audit._hashing import HASH_SIZE
from vault.audit.note import NoteSigner, NoteVerifier, open_note, sign_note
from vault.errors import CheckpointError

__all__ = ["Checkpoint", "open_checkpoint"]


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or any(c.isspace() for c in self.origin) or "+" in self.origin:
            raise ValueError("origin must be non-empty, without spaces or '+'")
        if self.size < 0 or len(self.root) != HASH_SIZE:
            raise ValueError("checkpoint needs a size >= 0 and a 32-byte root")
        for line in self.extensions:
            if not line or any(ord(c) < 0x20 for c in line):
                raise ValueError("extension lines must be non-empty single lines")

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (raises :class:`CheckpointError`)."""
        if not text.endswith("\n"):
            raise CheckpointError("malformed checkpoint: no final newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3 or any(not line for line in lines):
            raise CheckpointError("malformed checkpoint: needs origin, size and root lines")
        origin, size_text, root_text, *extensions = lines
        if (
            not size_text.isascii()
            or not size_text.isdigit()
            or (size_text != "0" and size_text.startswith("0"))
        ):
            raise CheckpointError("malformed checkpoint: bad tree size")
        try:
            root = base64.b64decode(root_text.encode("ascii"), validate=True)
            return cls(origin, int(size_text), root, tuple(extensions))
        except (ValueError, UnicodeError, binascii.Error):
            raise CheckpointError("malformed checkpoint: bad origin or root hash") from None

    def sign(self, signers: Sequence[NoteSigner]) -> bytes:
        return sign_note(self.to_text(), signers)


def open_checkpoint(
    data: bytes, verifiers: Sequence[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse its body.

    ``origin`` (when given) must match the checkpoint's origin line: a
    checkpoint from another log never vouches for this one.
    """
    note = open_note(data, verifiers)
    checkpoint = Checkpoint.from_text(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint
