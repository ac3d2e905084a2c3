"""What the vault's operations return: documents and reports.

Each object is plain data with ``to_dict`` for ``--json`` output. Nothing
here holds key material; a :class:`DocumentInfo` carries the metadata of
the encrypted metadata stanza only when the caller could open it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Label

__all__ = ["ApplyReport", "DoctorReport", "DocumentInfo", "RotateReport"]


@dataclass(frozen=True)
class DocumentInfo:
    """One document. ``label`` and the first five fields are public (they
    are in the header in clear); the rest is ``None`` unless the caller
    holds the document's key."""

    id: str
    label: Label
    sealed_at: str
    sealed_by: str
    size: int  # bytes of the sealed (ciphertext) file
    title: str | None = None
    filename: str | None = None
    content_type: str | None = None
    plaintext_size: int | None = None
    sha256: str | None = None
    classified_by: str | None = None
    policy: str | None = None  # hash of the policy version the label was signed under

    @property
    def has_metadata(self) -> bool:
        return self.sha256 is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label.to_dict(),
            "sealed_at": self.sealed_at,
            "sealed_by": self.sealed_by,
            "size": self.size,
            "title": self.title,
            "filename": self.filename,
            "content_type": self.content_type,
            "plaintext_size": self.plaintext_size,
            "sha256": self.sha256,
            "classified_by": self.classified_by,
            "policy": self.policy,
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

    def to_dict(self) -> dict[str, Any]:
        return {"rotated": self.rotated, "rewrapped": self.rewrapped, "retired": self.retired,
                "granted": self.granted, "pending": self.pending}


@dataclass
class DoctorReport:
    """What ``Vault.doctor`` found. ``ok`` means no problem remains."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # harmless findings
    repaired: list[str] = field(default_factory=list)
    documents: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "documents": self.documents, "problems": self.problems,
                "notes": self.notes, "repaired": self.repaired}
