"""Inclusion proofs as c2sp.org/tlog-proof@v1 text (docs/AUDIT.md §10).

    c2sp.org/tlog-proof@v1
    extra <base64 of the record line>
    index <seq>
    <base64 proof hash, leaf's sibling first>
    ...
    <empty line>
    <signed checkpoint, verbatim>

The log puts the record's exact line in ``extra`` so the proof stands alone.
The format says extra data is not authenticated, and it is not trusted
here either: it only counts because its leaf hash, with the proof, leads to
the root of a checkpoint signed by a trusted key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._hashing import leaf_hash
from vault.audit._proof import verify_inclusion
from vault.audit.note import NoteVerifier
from vault.errors import ProofError

__all__ = ["HEADER", "TlogProof", "VerifiedProof", "verify_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX_DIGITS = len(str(2**64 - 1))  # the most digits of a uint64


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError):
        raise ProofError("malformed tlog-proof: bad base64") from None


@dataclass(frozen=True)
class TlogProof:
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: bytes  # the signed note, verbatim
    extra: bytes | None = None

    def to_text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode())
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint.decode("utf-8")

    @classmethod
    def from_text(cls, text: str) -> TlogProof:
        """Parse (not verify) a proof; raises :class:`ProofError`."""
        head, sep, checkpoint = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or lines[0] != HEADER:
            raise ProofError(f"not a {HEADER} proof")
        lines.pop(0)
        extra = None
        if lines and lines[0].startswith("extra "):
            extra = _b64(lines.pop(0)[len("extra ") :])
        if not lines or not lines[0].startswith("index "):
            raise ProofError("malformed tlog-proof: no index line")
        number = lines.pop(0)[len("index ") :]
        # A decimal uint64 (tlog-proof): its length bounded before int() reads
        # it, whose own limit depends on the interpreter's settings.
        if not (number.isascii() and number.isdigit()) or (number != "0" and number[0] == "0") \
                or len(number) > _INDEX_DIGITS or int(number) >= 1 << 64:
            raise ProofError("malformed tlog-proof: bad index")
        if any(not line for line in lines):
            raise ProofError("malformed tlog-proof: empty proof line")
        return cls(int(number), tuple(_b64(line) for line in lines), checkpoint.encode(), extra)


@dataclass(frozen=True)
class VerifiedProof:
    checkpoint: Checkpoint
    index: int
    leaf: bytes  # the leaf data (a record line) that the proof covers


def verify_tlog_proof(
    text: str,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    leaf: bytes | None = None,
) -> VerifiedProof:
    """Verify a proof: the checkpoint's signature, then the inclusion of
    ``leaf`` (or, when not given, of the record carried in ``extra``)."""
    proof = TlogProof.from_text(text)
    checkpoint = open_checkpoint(proof.checkpoint, verifiers, origin=origin)
    data = leaf if leaf is not None else proof.extra
    if data is None:
        raise ProofError("the proof carries no record and none was given")
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(data), proof.hashes, checkpoint.root)
    return VerifiedProof(checkpoint, proof.index, data)
