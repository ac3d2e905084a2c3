"""Inclusion proofs as c2sp.org/tlog-proof@v1 text (docs/AUDIT.md §10).

    c2sp.org/tlog-proof@v1
    extra <base64 of the record line>
    index <seq>
    <base64 proof hash, leaf's sibling first>
    ...
    <empty line>
    <signed checkpoint, verbatim>

The extra data is the record's exact line, then what its signature covers,
shown to be the log's (§10)::

    line k || 0x0A || "run " s " " k' || 0x0A
           || line a || 0x0A || ... || line k' || 0x0A || range proof

with k' the signed record whose run s..k' holds line k, a = max(s-1, 0),
and the range proof the hashes that lead from the leaves of lines a..k' to
the checkpoint's root. The format says extra data is not authenticated, and
nothing in it is believed for being there: the line counts because its leaf
hash, with the proof, leads to the root of a checkpoint signed by a trusted
key; the run, because its lines lead to that root at their indices and are,
by §4, the run the signature covers -- so the line at which the caller's
keys are asked is the log's, not the prover's choice; who wrote it, because
that signature verifies with the key the caller trusts there for the name
it carries.

What that proves is bounded by the checkpoint: its key is readable by every
folder writer (THREAT-MODEL.md §1), so against insiders a checkpoint alone
vouches for no history; the auditor holds it to one kept outside the vault
(AUDIT.md §10).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from vault.audit._chain import ZERO_LEAF, KeyLookup, chain_digest, verify_record
from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._hashing import HASH_SIZE, leaf_hash
from vault.audit._proof import root_from_range, verify_inclusion
from vault.audit._record import TORN_ACTION, AuditRecord, fingerprint
from vault.audit._walk import MAX_FRAGMENTS, MAX_RUN_BYTES, parse
from vault.audit.note import NoteVerifier
from vault.errors import AuditIntegrityError, ProofError

__all__ = ["HEADER", "TlogProof", "VerifiedProof", "attested_extra", "verify_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX_DIGITS = len(str(2**64 - 1))  # the most digits of a uint64
_RUN = b"run "  # what the extra data's second line starts with (§10)


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
        index = _uint64(lines.pop(0)[len("index ") :])
        if index is None:
            raise ProofError("malformed tlog-proof: bad index")
        if any(not line for line in lines):
            raise ProofError("malformed tlog-proof: empty proof line")
        return cls(index, tuple(_b64(line) for line in lines), checkpoint.encode(), extra)


def _uint64(number: str) -> int | None:
    """A decimal uint64 as tlog-proof writes it, or None: its length bounded
    before int() reads it, whose own limit depends on the interpreter's
    settings."""
    if not (number.isascii() and number.isdigit()) or (number != "0" and number[0] == "0") \
            or len(number) > _INDEX_DIGITS or int(number) >= 1 << 64:
        return None
    return int(number)


def attested_extra(line: bytes, start: int, end: int, lines: Sequence[bytes],
                   proof: Sequence[bytes]) -> bytes:
    """The extra data of a proof of ``line`` (§10): the line, then its run
    ``start..end`` (``end`` the signed record), the lines ``max(start-1,
    0)..end`` and their range proof against the checkpoint."""
    return b"".join([line, b"\n", _RUN, b"%d %d\n" % (start, end),
                     *(x + b"\n" for x in lines), *proof])


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
    record is its actor's: the run's lines the proof carries are the tree's
    at their indices (a range proof against the same root) and, by §4, the
    run its signature covers, and that signature verifies with the key
    ``key_lookup(name, fingerprint, s)`` gives for the name it carries at
    the run's first line ``s`` (the keys the caller trusts; AUDIT.md §10).
    A proof of a record is refused without ``key_lookup``; given ``leaf``,
    only that line's inclusion is checked."""
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
            "who wrote it cannot be checked (a proof made before proofs carried it, or of "
            "a record whose run holds or follows a line an incident sealed off)",
            hint=f"ask for a new proof ('vault audit prove {proof.index}'), or pass the line "
                 "as leaf to check only that it is in the log")
    if key_lookup is None:
        raise ProofError(
            f"who wrote record {proof.index} can be checked only with the keys you trust",
            hint="pass key_lookup (the key the policy gives each name), or the line as leaf "
                 "to check only that it is in the log")
    if not attestation.startswith(_RUN):
        raise ProofError(
            f"the proof of record {proof.index} does not show that what it carries for its "
            "signature is the log's (a proof made before proofs carried their run's lines)",
            hint=f"ask for a new proof ('vault audit prove {proof.index}')")
    signer = _attested_signer(record, proof.index, attestation[len(_RUN):], checkpoint,
                              key_lookup)
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


@dataclass(frozen=True)
class _Run:
    """What a proof's extra data carries after its line (§10)."""

    start: int  # s, the run's first line
    end: int  # k', the signed record
    lines: list[bytes]  # lines max(s-1, 0)..k'
    proof: list[bytes]  # their range proof

    def line(self, i: int) -> bytes:
        return self.lines[i - max(self.start - 1, 0)]


def _run(packed: bytes, index: int, size: int) -> _Run:
    """Parse the run the extra data carries, bounded as a reader bounds it
    (§5, §8): at most MAX_FRAGMENTS unsigned records before k'."""
    bad = ProofError("malformed tlog-proof: bad extra data")
    head, sep, rest = packed.partition(b"\n")
    words = head.split(b" ")
    if not sep or len(words) != 2 or not all(w.isascii() for w in words):
        raise bad
    start, end = (_uint64(w.decode("ascii")) for w in words)
    if start is None or end is None or not start <= index <= end < size:
        raise bad
    if end - start > MAX_FRAGMENTS:
        raise ProofError(f"the proof's run of record {index} is longer than any a reader "
                         f"takes ({MAX_FRAGMENTS:,} unsigned records)")
    lines: list[bytes] = []
    at = 0
    for _ in range(end + 1 - max(start - 1, 0)):
        stop = rest.find(b"\n", at)
        if stop < 0:
            raise bad
        lines.append(rest[at:stop])
        at = stop + 1
    hashes, odd = divmod(len(rest) - at, HASH_SIZE)
    if odd:
        raise bad
    proof = [rest[at + i * HASH_SIZE : at + (i + 1) * HASH_SIZE] for i in range(hashes)]
    return _Run(start, end, lines, proof)


def _unsigned_of(line: bytes, seq: int, actor_key: str) -> bool:
    """Is ``line`` an unsigned record of ``actor_key`` in its place ``seq``?"""
    record = parse(line, seq)
    return record is not None and record.signature is None and record.seq == seq \
        and record.actor_key == actor_key


def _attested_signer(record: AuditRecord, index: int, packed: bytes, checkpoint: Checkpoint,
                     key_lookup: KeyLookup) -> str:
    """The fingerprint of the key that signs ``record``'s run (§4) -- the
    key ``key_lookup`` gives the name the record carries at the run's first
    line -- once the run the proof carries is shown to be the log's: its
    lines are the tree's at their indices, and they are, by §4, the run the
    signature covers. Or ProofError."""
    run = _run(packed, index, checkpoint.size)
    first = max(run.start - 1, 0)
    leaves = [leaf_hash(x) for x in run.lines]
    try:
        root = root_from_range(first, checkpoint.size, leaves, run.proof)
    except ProofError:
        root = b""
    if not hmac.compare_digest(root, checkpoint.root):
        raise ProofError(f"the lines the proof of record {index} carries for its signature "
                         "are not the log's", hint="the record is a claim, not its actor's")
    not_covered = ProofError(f"the proof's extra data does not cover record {index}")
    if run.line(index) != record.line:
        raise not_covered
    signed = _record(run.line(run.end), run.end, "signed record")
    key_of = signed.actor_key
    # The run by §4, from the lines themselves: k' signed, s..k'-1 unsigned
    # records of its key, and line s-1 none (else the run starts earlier, and
    # the keys in force there are the ones that count). An unsigned record a
    # torn record covers is set aside (§8), no record of its actor.
    if signed.signature is None or (index < run.end and signed.action == TORN_ACTION) \
            or not all(_unsigned_of(run.line(i), i, key_of)
                       for i in range(run.start, run.end)) \
            or (run.start > 0 and _unsigned_of(run.line(run.start - 1), run.start - 1, key_of)):
        raise not_covered
    if signed.action != TORN_ACTION and sum(
            len(run.line(i)) + 1 for i in range(run.start, run.end)) > MAX_RUN_BYTES:
        raise ProofError(f"the run of record {index} is larger than one signature covers "
                         f"({MAX_RUN_BYTES // 2**20} MiB)")
    who = record.actor if record.actor is not None else record.actor_key
    # The record and the one signing its run must both be the name's, as
    # verification holds every record of a run (§11.1).
    key = key_lookup(record.actor, record.actor_key, run.start)
    if index < run.end and key is not None:
        other = key_lookup(signed.actor, signed.actor_key, run.start)
        key = key if other is not None and fingerprint(other) == fingerprint(key) else None
    chain = chain_digest(leaves[0] if run.start else ZERO_LEAF, leaves[run.start - first:-1])
    if key is None or not verify_record(signed, chain, key):
        raise ProofError(f"record {index} ({who}) is not signed by the key you trust for "
                         "that name", hint="the record is a claim, not its actor's")
    return fingerprint(key)
