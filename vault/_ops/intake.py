"""Classification at intake, as sealing applies it (docs/POLICY.md §11,
docs/DESIGN.md §6.2).

Before the decision, every file is inspected (:func:`vault.intake.inspect`:
Office sensitivity labels, content rules) and the policy turns what was
found into a *floor*: the least upper bound of the labels its mappings and
floor rules name. The label sealed with is the sealer's own, or -- when
they gave none -- the floor joined with the default label. Sealing below
the floor is for the policy to allow (``builtin:floor``, ``below_floor``
rules); the record names the rules that matched, never what they matched.

Plaintext never touches the disk: a stream that cannot be read twice is
kept in memory up to the inspection budget and then sealed from there on;
what is longer is inspected only as far as the budget goes (the inspection
says so).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from vault.age._blockio import Prefixed
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.intake import ContentRule, Inspection
    from vault.policy import Label, Policy

__all__ = ["decide_label", "inspect_all"]

Named = tuple[BinaryIO, str | None]


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# A file someone else may write is read whole into memory, up to this size,
# inspected from there, and the bytes the sealer reads again are held to
# their SHA-256 (a write through a shared mapping changes no file time).
GUARDED = 256 * 1024
Guard = tuple[int, bytes]  # (bytes inspected, their SHA-256)


def _others_may_write(stream: BinaryIO) -> bool:
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and (info.st_uid != os.geteuid()
                                           or bool(info.st_mode & 0o022))


def _inspect_one(policy: Policy, stream: BinaryIO, name: str | None,
                 rules: tuple[ContentRule, ...]) -> tuple[BinaryIO, Inspection, Guard | None]:
    from vault.intake import Budget, inspect

    budget = Budget()
    if _seekable(stream):
        start = stream.tell()
        if _others_may_write(stream):
            head = stream.read(GUARDED + 1)
            stream.seek(start)
            if len(head) <= GUARDED:
                found = inspect(io.BytesIO(head), filename=name, budget=budget, rules=rules)
                return stream, found, (len(head), hashlib.sha256(head).digest())
        found = inspect(stream, filename=name, budget=budget, rules=rules)
        stream.seek(start)
        return stream, found, None
    head = stream.read(budget.max_input_bytes)
    found = inspect(io.BytesIO(head), filename=name, budget=budget, rules=rules)
    replay = io.BufferedReader(Prefixed(head, stream), 1 << 20)
    return replay, found, None


def inspect_all(policy: Policy, sources: Sequence[Named]
                ) -> tuple[list[Named], list[Inspection], list[Guard | None]]:
    """Each source inspected, as it is to be read next, what was found, and
    for a file someone else may write, what its bytes must hash to."""
    out, found, guards = [], [], []
    rules = policy.intake.content_rules()  # compiled once for every file
    for stream, name in sources:
        new, inspection, guard = _inspect_one(policy, stream, name, rules)
        out.append((new, name))
        found.append(inspection)
        guards.append(guard)
    return out, found, guards


def decide_label(policy: Policy, found: Sequence[Inspection], proposed: Label | None,
                 fields: dict[str, Any]) -> tuple[Label, Label | None, str]:
    """The label to seal every file with, the joined floor, and the note
    the decision's record carries (rule ids, never content)."""
    from vault.intake import floor_of, join

    floors, ids = [], []
    for inspection in found:
        if (not inspection.inspectable and policy.intake.uninspectable == "require-label"
                and proposed is None):
            raise UsageError(f"a file could not be inspected ({inspection.reason}) and the "
                             "policy requires a label for it", hint="give --level (and "
                             "compartments) for it")
        floor, rule_ids, _ = floor_of(policy, inspection)
        if floor is not None:
            floors.append(floor)
        ids += [r for r in rule_ids if r not in ids]
    floor = join(policy, floors) if floors else None
    label = proposed
    if label is None:
        default = policy.make_label(**fields)
        joined = join(policy, [default, floor]) if floor is not None else default
        label = policy.make_label(level=joined.level, compartments=joined.compartments,
                                  caveats=joined.caveats, **fields)
    note = ""
    if ids:
        note = f"intake: {', '.join(ids)}; floor {policy.format_label(floor)}" if floor \
            else f"intake: {', '.join(ids)}"
    return label, floor, note
