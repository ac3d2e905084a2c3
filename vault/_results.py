"""What the vault's operations return: documents and reports.

Each object is plain data with ``to_dict`` for ``--json`` output. Nothing
here holds key material; a :class:`DocumentInfo` carries the metadata of
the encrypted metadata stanza only when the caller could open it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vault._sealed.meta import Metadata
    from vault.policy import Label

__all__ = ["ApplyReport", "DoctorReport", "DocumentInfo", "PolicyVersion", "RotateReport",
           "listing_entry"]

#: why a listing without titles shows none
LISTED_WITHOUT_TITLES = "not read: listed without titles"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def listing_entry(statement: Mapping[str, Any]) -> tuple[str, str]:
    """``(label JSON, entry JSON)`` of a document in ``vault ls --json``,
    from its verified label statement: the label as the statement holds it
    (for the policy's decision) and ``DocumentInfo.to_dict()`` of the
    document listed without titles, encoded as the listing encodes it.
    Raises ValueError, TypeError, KeyError or AttributeError on a statement
    that is not a document's. Made once per document when the verified log
    is replayed (vault/_trust/state.py), so that a listing of 100,000
    documents decodes and encodes no JSON per document. The entries are
    stored: a change to this encoding (or to ``Label.to_dict`` or
    ``DocumentInfo.to_dict``) needs a new state schema version whose
    migration remakes them."""
    from vault.policy import Label

    raw = statement["label"]
    content = statement.get("content") or {}
    entry = {"classified_by": raw.get("classified_by"), "content_type": None,
             "filename": None, "hidden": LISTED_WITHOUT_TITLES, "id": str(statement["doc"]),
             "label": Label.from_dict(raw).to_dict(), "payload_sha256": content.get("payload"),
             "plaintext_size": None, "policy": statement.get("policy"),
             "sealed_at": str(statement["sealed_at"]), "sealed_by": str(statement["sealed_by"]),
             "size": int(content.get("size", 0)), "title": None}
    return _json(raw), _json(entry)


@dataclass(frozen=True)
class DocumentInfo:
    """One document. ``label`` and the fields up to ``payload_sha256`` are
    public (the signed label in its header, in clear); the metadata fields
    are ``None`` unless the caller could open the document, and then
    ``hidden`` says why."""

    id: str
    label: Label
    sealed_at: str
    sealed_by: str
    size: int  # bytes of the sealed (ciphertext) file
    classified_by: str | None = None
    policy: str | None = None  # hash of the policy version the label was signed under
    payload_sha256: str | None = None  # what the label commits to (ciphertext)
    title: str | None = None
    filename: str | None = None
    content_type: str | None = None
    plaintext_size: int | None = None
    hidden: str | None = None  # why the metadata is not shown, if it is not
    previous: Label | None = None  # the label before this reclassification or declassification

    @classmethod
    def of(cls, statement: Mapping[str, Any], meta: Metadata | None = None, *,
           header_size: int = 0, hidden: str | None = None,
           previous: Label | None = None) -> DocumentInfo:
        """From a verified label statement and, for a reader, its metadata."""
        from vault.policy import Label

        content = statement.get("content") or {}
        return cls(
            id=str(statement["doc"]), label=Label.from_dict(statement["label"]),
            sealed_at=str(statement["sealed_at"]), sealed_by=str(statement["sealed_by"]),
            size=header_size + int(content.get("size", 0)),
            classified_by=statement["label"].get("classified_by"),
            policy=statement.get("policy"), payload_sha256=content.get("payload"),
            title=meta.title if meta else None, filename=meta.filename if meta else None,
            content_type=meta.content_type if meta else None,
            plaintext_size=meta.size if meta else None,
            hidden=None if meta is not None else hidden, previous=previous)

    def changes(self) -> dict[str, list[str]]:
        """What a relabelling added and removed: ``{"added_compartments":
        [...], "removed_compartments": [...], "added_caveats": [...],
        "removed_caveats": [...]}`` (empty lists when there is no previous
        label)."""
        old = self.previous
        out: dict[str, list[str]] = {}
        for kind in ("compartments", "caveats"):
            before = getattr(old, kind) if old is not None else getattr(self.label, kind)
            after = getattr(self.label, kind)
            out[f"added_{kind}"] = sorted(after - before)
            out[f"removed_{kind}"] = sorted(before - after)
        return out

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.previous is not None:  # only after a change: listings stay as they were
            extra = {"previous_label": self.previous.to_dict(), **self.changes()}
        return {
            **extra,
            "id": self.id,
            "label": self.label.to_dict(),
            "sealed_at": self.sealed_at,
            "sealed_by": self.sealed_by,
            "size": self.size,
            "classified_by": self.classified_by,
            "policy": self.policy,
            "payload_sha256": self.payload_sha256,
            "title": self.title,
            "filename": self.filename,
            "content_type": self.content_type,
            "plaintext_size": self.plaintext_size,
            "hidden": self.hidden,
        }


@dataclass
class ApplyReport:
    """What ``Vault.apply_policy`` did."""

    version: int
    policy: str  # SHA-256 of the installed policy file
    granted: list[str] = field(default_factory=list)  # "user: class"
    revoked: list[str] = field(default_factory=list)  # "user: class"
    rotated: list[str] = field(default_factory=list)  # classes given a new key
    rewrapped: list[str] = field(default_factory=list)  # document ids
    pending: list[str] = field(default_factory=list)  # work the applier could not do

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "policy": self.policy, "granted": self.granted,
                "revoked": self.revoked, "rotated": self.rotated, "rewrapped": self.rewrapped,
                "pending": self.pending}


@dataclass
class RotateReport:
    """What ``Vault.rotate`` did."""

    rotated: list[str] = field(default_factory=list)  # "class -> generation N"
    rewrapped: list[str] = field(default_factory=list)  # document ids
    retired: list[str] = field(default_factory=list)  # keyring entries removed
    granted: list[str] = field(default_factory=list)  # "user: class"
    pending: list[str] = field(default_factory=list)
    classical: list[str] = field(default_factory=list)  # what stays classical (PQ vaults)

    def to_dict(self) -> dict[str, Any]:
        return {"rotated": self.rotated, "rewrapped": self.rewrapped, "retired": self.retired,
                "granted": self.granted, "pending": self.pending, "classical": self.classical}


@dataclass
class DoctorReport:
    """What ``Vault.doctor`` found. ``ok`` means no problem remains;
    ``leftovers`` are what interrupted writes left (``--repair`` removes
    them), ``notes`` harmless findings."""

    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    documents: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "documents": self.documents, "problems": self.problems,
                "leftovers": self.leftovers, "notes": self.notes, "repaired": self.repaired}


@dataclass(frozen=True)
class PolicyVersion:
    """One policy version installed in a vault, as its audit log records it."""

    version: int  # 1 for the policy the vault was created under
    sha256: str  # of the exact policy file
    seq: int  # the audit record that installed it
    applied_by: str  # the administrator who signed that record
    applied_at: str  # RFC 3339, UTC

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "seq": self.seq,
                "applied_by": self.applied_by, "applied_at": self.applied_at}
