"""Marking on the way out (docs/POLICY.md §11.6): ``open --mark`` writes the
vault's current label into an Office or PDF file's sensitivity-label
properties, through the policy's Office label mapping, so that Office and
Purview-aware tools show it. Only the copy that leaves is marked: the
sealed bytes never change.

The plaintext is marked in memory (a zip's directory is at its end, and
pypdf rewrites a whole PDF), within a bound, and only a complete marked
copy is written out: a file that cannot be marked leaves nothing behind.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, BinaryIO

from vault.errors import BadDataError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Label, Policy
    from vault.policy._intake_model import OfficeLabelMapping

__all__ = ["MAX_MARKED_BYTES", "Plaintext", "mapping_for", "write_marked"]

MAX_MARKED_BYTES = 512 << 20  # held in memory while it is marked


def mapping_for(policy: Policy, label: Label) -> OfficeLabelMapping:
    """The Office label to write for ``label``, or a usage error: checked
    before anything is decrypted."""
    from vault.intake import office_label_for
    from vault.intake._mark import NAME_HINT, name_problem

    mapping = office_label_for(policy, label)
    if mapping is None:
        raise UsageError(f"the policy maps no Office label that covers "
                         f"{policy.format_label(label)}",
                         hint="a lower one would let the copy be sealed lower; the officer adds "
                              "one with an id under 'intake: office_labels' (docs/POLICY.md "
                              "§3.11), or open it without --mark")
    problem = name_problem(mapping)  # a version installed before the policy refused it
    if problem:
        raise BadDataError(problem, hint=NAME_HINT)
    return mapping


class Plaintext(io.BytesIO):
    """The decrypted document, refused past :data:`MAX_MARKED_BYTES`."""

    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        if self.tell() + len(data) > MAX_MARKED_BYTES:
            raise UsageError(f"too large to mark (more than {MAX_MARKED_BYTES >> 20} MiB)",
                             hint="open it without --mark")
        return super().write(data)


def write_marked(plaintext: bytes, out: BinaryIO, mapping: OfficeLabelMapping) -> None:
    """A marked copy of ``plaintext`` into ``out``, whole or not at all."""
    from vault.intake import mark_office, mark_pdf

    marked = io.BytesIO()
    if plaintext.startswith(b"%PDF-"):
        mark_pdf(io.BytesIO(plaintext), marked, mapping)
    elif plaintext.startswith(b"PK\x03\x04"):
        mark_office(io.BytesIO(plaintext), marked, mapping)
    else:
        raise UsageError("only Word, Excel, PowerPoint and PDF documents can be marked",
                         hint="open it without --mark")
    out.write(marked.getbuffer())
