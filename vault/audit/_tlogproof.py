"""Inclusion proofs as c2sp.org/tlog-proof@v1 text (docs/AUDIT.md §10).

    c2sp.org/tlog-proof@v1
    extra <base64 of the record line>
    index <seq>
    <base64 proof hash, leaf's sibling first>
    ...
    <empty line>
    <signed checkpoint, verbatim>

The extra data is the record's exact line, then what its signature covers
(§10): ``line || 0x0A || covering line || 0x0A || leaf(s-1) || ... ||
leaf(k'-1)``, the covering line empty for a signed record, else the signed
record k' whose run holds it. The format says extra data is not
authenticated, and it is not trusted here either: the line counts because
its leaf hash, with the proof, leads to the root of a checkpoint signed by
a trusted key; who wrote it, because its run's signature verifies over the
leaves carried with the key the caller trusts for the name it carries.

What that proves is bounded by the checkpoint: its key is readable by every
folder writer (THREAT-MODEL.md §1), so against insiders a checkpoint alone
vouches for no history; the auditor holds it to one kept outside the vault
(AUDIT.md §10).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from vault.audit._chain import KeyLookup, chain_digest, verify_record
from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._hashing import HASH_SIZE, leaf_hash
from vault.audit._proof import verify_inclusion
from vault.audit._record import AuditRecord, fingerprint
from vault.audit.note import NoteVerifier
from vault.errors import AuditIntegrityError, ProofError

__all__ = ["HEADER", "TlogProof", "VerifiedProof", "attested_extra", "verify_tlog_proof"]

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


def attested_extra(line: bytes, covering: bytes | None, leaves: Sequence[bytes]) -> bytes:
    """The extra data of a proof of ``line``: the line, the signed record
    covering it (None: the line is that record) and the leaves its chain
    hashes, leaf(s-1) first (§10)."""
    return line + b"\n" + (covering or b"") + b"\n" + b"".join(leaves)


@dataclass(frozen=True)
class VerifiedProof:
    checkpoint: Checkpoint
    index: int
    leaf: bytes  # the leaf data (a record line) that the proof covers
    #: the record, and the fingerprint of the key that signed its run, which
    #: the caller's ``key_lookup`` gave for the name it carries; None when the
    #: caller gave the line (``leaf``): only its inclusion was checked
    record: AuditRecord | None = None
    signer: str | None = None


def verify_tlog_proof(
    text: str,
    verifiers: Sequence[NoteVerifier],
    *,
    origin: str | None = None,
    leaf: bytes | None = None,
    key_lookup: KeyLookup | None = None,
) -> VerifiedProof:
    """Verify a proof: the checkpoint's signature, then the inclusion of
    ``leaf``, or of the record carried in ``extra`` -- and then that the
    record is its actor's: its run's signature verifies, over the leaves
    the proof carries, with the key ``key_lookup(name, fingerprint, s)``
    gives for the name it carries at its run's first line ``s`` (the keys
    the caller trusts; AUDIT.md §10). A proof of a record is refused without
    ``key_lookup``; given ``leaf``, only that line's inclusion is checked."""
    proof = TlogProof.from_text(text)
    checkpoint = open_checkpoint(proof.checkpoint, verifiers, origin=origin)
    if leaf is not None:
        verify_inclusion(proof.index, checkpoint.size, leaf_hash(leaf), proof.hashes,
                         checkpoint.root)
        return VerifiedProof(checkpoint, proof.index, leaf)
    if proof.extra is None:
        raise ProofError("the proof carries no record and none was given")
    line, _, attestation = proof.extra.partition(b"\n")
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(line), proof.hashes, checkpoint.root)
    record = _record(line, proof.index)
    if not attestation:
        raise ProofError(
            f"the proof of record {proof.index} carries nothing its signature covers, so "
            "who wrote it cannot be checked (a proof made before proofs carried it)",
            hint=f"ask for a new proof ('vault audit prove {proof.index}'), or pass the line "
                 "as leaf to check only that it is in the log")
    if key_lookup is None:
        raise ProofError(
            f"who wrote record {proof.index} can be checked only with the keys you trust",
            hint="pass key_lookup (the key the policy gives each name), or the line as leaf "
                 "to check only that it is in the log")
    signer = _attested_signer(record, proof.index, attestation, key_lookup)
    return VerifiedProof(checkpoint, proof.index, line, record, signer)


def _record(line: bytes, seq: int | None, what: str = "line") -> AuditRecord:
    try:
        record = AuditRecord.from_line(line, seq=seq)
    except AuditIntegrityError:
        raise ProofError(f"the proof's {what} is no audit record",
                         hint="pass the line as leaf to check only that it is in the log") \
            from None
    if seq is not None and record.seq != seq:
        raise ProofError(f"the proof's {what} is record {record.seq}, not record {seq}")
    return record


def _attested_signer(record: AuditRecord, index: int, attestation: bytes,
                     key_lookup: KeyLookup) -> str:
    """The fingerprint of the key that signs ``record``'s run (§4) over the
    leaves ``attestation`` carries -- the key ``key_lookup`` gives the name
    the record carries -- or ProofError."""
    covering, sep, packed = attestation.partition(b"\n")
    count, odd = divmod(len(packed), HASH_SIZE)
    if not sep or odd or count == 0:
        raise ProofError("malformed tlog-proof: bad extra data")
    leaves = [packed[i * HASH_SIZE : (i + 1) * HASH_SIZE] for i in range(count)]
    signed = record
    if covering:
        signed = _record(covering, None, "covering record")
    # Lines s..k' and leaf(s-1): the signed record k' and its run (§4).
    start = signed.seq - count + 1
    if signed.signature is None or start < 0 or (covering and (
            record.signature is not None or not start <= index < signed.seq
            or signed.actor_key != record.actor_key
            or leaves[index - start + 1] != leaf_hash(record.line))):
        raise ProofError(f"the proof's extra data does not cover record {index}")
    who = record.actor if record.actor is not None else record.actor_key
    # The record and the one signing its run must both be the name's, as
    # verification holds every record of a run (§11.1).
    key = key_lookup(record.actor, record.actor_key, start)
    if covering and key is not None:
        other = key_lookup(signed.actor, signed.actor_key, start)
        key = key if other is not None and fingerprint(other) == fingerprint(key) else None
    if key is None or not verify_record(signed, chain_digest(leaves[0], leaves[1:]), key):
        raise ProofError(f"record {index} ({who}) is not signed by the key you trust for "
                         "that name", hint="the record is a claim, not its actor's")
    return fingerprint(key)

