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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from vault.age._blockio import Prefixed
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.intake import ContentRule, Inspection
    from vault.policy import Label, Policy

__all__ = ["decide_label", "inspect_all", "seekable"]

Named = tuple[BinaryIO, str | None]


def seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False


# What intake read of a regular file, to hold the sealer's second read to:
# the file's inode, size and times (a change time no user can set), and for
# a file someone else may write, of up to GUARDED bytes, the SHA-256 of the
# bytes inspected (a write through a shared mapping changes no file time).
GUARDED = 256 * 1024


@dataclass(frozen=True)
class Seen:
    stamp: tuple[int, ...]
    digest: tuple[int, bytes] | None = None  # (bytes inspected, their SHA-256)


def stamp(stream: BinaryIO) -> tuple[int, ...] | None:
    """A regular file's inode, size, modification and change times; None
    for anything else (a pipe, a stream of the caller's)."""
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns,
            info.st_uid, info.st_mode)


def _others_may_write(seen: tuple[int, ...]) -> bool:
    uid, mode = seen[5], seen[6]
    return uid != os.geteuid() or bool(mode & 0o022)


def _inspect_one(policy: Policy, stream: BinaryIO, name: str | None,
                 rules: tuple[ContentRule, ...]) -> tuple[BinaryIO, Inspection, Seen | None]:
    from vault.intake import Budget, inspect

    budget = Budget()
    if seekable(stream):
        start = stream.tell()
        before = stamp(stream)  # before intake reads a byte
        if before is not None and _others_may_write(before):
            head = stream.read(GUARDED + 1)
            stream.seek(start)
            if len(head) <= GUARDED:
                found = inspect(io.BytesIO(head), filename=name, budget=budget, rules=rules)
                return stream, found, Seen(before, (len(head), hashlib.sha256(head).digest()))
        found = inspect(stream, filename=name, budget=budget, rules=rules)
        stream.seek(start)
        return stream, found, Seen(before) if before is not None else None
    # One byte more than is inspected: a stream longer than that is too
    # large (uninspectable), never inspected as if its head were all of it.
    head = stream.read(budget.max_input_bytes + 1)
    found = inspect(io.BytesIO(head), filename=name, budget=budget, rules=rules)
    replay = io.BufferedReader(Prefixed(head, stream), 1 << 20)
    return replay, found, None


def inspect_all(policy: Policy, sources: Sequence[Named]
                ) -> tuple[list[Named], list[Inspection], list[Seen | None]]:
    """Each source inspected, as it is to be read next, what was found, and
    what intake saw of each regular file (:class:`Seen`)."""
    out, found, seen = [], [], []
    rules = policy.intake.content_rules()  # compiled once for every file
    for stream, name in sources:
        new, inspection, saw = _inspect_one(policy, stream, name, rules)
        out.append((new, name))
        found.append(inspection)
        seen.append(saw)
    return out, found, seen


def decide_label(policy: Policy, found: Sequence[Inspection], proposed: Label | None,
                 fields: dict[str, Any]) -> tuple[Label, Label | None, str]:
    """The label to seal every file with, the joined floor, and the note
    the decision's record carries (rule ids, never content)."""
    from vault.intake import dated_floor, floor_of, join

    floors, ids = [], []
    for inspection in found:
        # Not inspected whole (uninspectable, or cut short by a budget: what
        # lies past it is unknown) is no inspection to seal on (POLICY.md §11.5).
        if (not inspection.whole and policy.intake.uninspectable == "require-label"
                and proposed is None):
            raise UsageError(f"a file could not be inspected whole ({inspection.reason}) and "
                             "the policy requires a label for it", hint="give --level (and "
                             "compartments) for it")
        floor, rule_ids, _ = floor_of(policy, inspection)
        if floor is not None:
            floors.append(floor)
        ids += [r for r in rule_ids if r not in ids]
    floor = dated_floor(policy, join(policy, floors), fields["created"]) if floors else None
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
