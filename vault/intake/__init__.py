"""Classification at intake (docs/POLICY.md §11): what a file says about
itself before it is sealed.

    from vault.intake import inspect, classify_for_seal
    found = inspect("minutes.docx", rules=policy.intake.content_rules())
    outcome = classify_for_seal(policy, found, None, actor="clerk")
    outcome.label, outcome.floor, outcome.rule_ids, outcome.allowed

:func:`inspect` reads Office sensitivity labels (docx/xlsx/pptx and their
macro-enabled variants, PDF) and runs content rules (built-in detectors
with checksums, keyword phrases, vetted regular expressions) over the
text, within a :class:`Budget`; hostile files end as ``uninspectable``.
:func:`classify_for_seal` turns what was found into a floor and a label
under a policy. :func:`mark_office` writes a label back into an Office file.

Submodules are imported on first use, so that loading a policy (which
vets its patterns with :mod:`vault.intake._patterns`) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vault.intake._inspect import inspect
    from vault.intake._mark import mark_office, mark_pdf, office_label_for
    from vault.intake._model import Budget, Inspection, Match, OfficeLabel
    from vault.intake._scan import ContentRule, builtin_rules
    from vault.intake._seal import (
        SealClassification,
        classify_for_seal,
        dated_floor,
        floor_of,
        join,
    )

__all__ = ["Budget", "ContentRule", "Inspection", "Match", "OfficeLabel", "SealClassification",
           "builtin_rules", "classify_for_seal", "dated_floor", "floor_of", "inspect", "join",
           "mark_office", "mark_pdf", "office_label_for"]

_WHERE = {
    "inspect": "_inspect", "Budget": "_model", "Inspection": "_model", "Match": "_model",
    "OfficeLabel": "_model", "ContentRule": "_scan", "builtin_rules": "_scan",
    "SealClassification": "_seal", "classify_for_seal": "_seal", "floor_of": "_seal",
    "dated_floor": "_seal",
    "join": "_seal", "mark_office": "_mark", "mark_pdf": "_mark",
    "office_label_for": "_mark",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vault.intake' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vault.intake.{module}"), name)
