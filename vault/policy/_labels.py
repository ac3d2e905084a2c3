"""Building labels from user input (docs/POLICY.md §5.2).

Input comes from people (command-line options, library callers), so every
problem is a :class:`~vault.errors.UsageError` that names what is wrong and
lists what would be accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from vault._text import says_something
from vault.errors import DeniedError, UsageError
from vault.policy._checks import MANDATORY_LABELLING
from vault.policy._fields import did_you_mean
from vault.policy._time import (
    DECLASSIFY_HINT,
    TIME_HINT,
    as_time,
    format_time,
    parse_declassify_on,
)
from vault.policy.model import Category, Label

if TYPE_CHECKING:
    from vault.policy.model import Policy


def make_label(
    policy: Policy, *, level: str | None = None, compartments: Iterable[str] = (),
    caveats: Iterable[str] = (), classified_by: str | None = None, reason: str | None = None,
    derived_from: str | None = None, created: datetime | date | str | None = None,
    declassify_on: datetime | date | str | None = None,
    embargo_until: datetime | date | str | None = None, actor: str | None = None,
) -> Label:
    comps, cavs = _listed(compartments, "compartments"), _listed(caveats, "caveats")
    if level is not None:
        # A level, or a whole label as the vault prints it (LEVEL//C/C//X).
        from vault.policy._banner import parse_banner

        level, in_comps, in_cavs = parse_banner(policy, level)
        comps |= in_comps
        cavs |= in_cavs
    if level is None:
        if policy.labelling_mandatory:
            raise _mandatory(policy, actor)
        level = policy.default_label.level
        if not comps and not cavs:
            comps, cavs = set(policy.default_label.compartments), set(policy.default_label.caveats)
    _known(comps, policy.compartments, "compartment")
    _known(cavs, policy.caveats, "caveat")
    times = {}
    for name, value in (("created", created), ("embargo_until", embargo_until)):
        if value is not None:
            try:
                times[name] = as_time(value, name)
            except ValueError as e:
                raise UsageError(f"{name.replace('_', ' ')}: {e}", hint=TIME_HINT) from None
    return Label(policy.canonical_level(level), frozenset(comps), frozenset(cavs),
                 classified_by=_text(classified_by, "classified_by"),
                 reason=_text(reason, "reason"), derived_from=_text(derived_from, "derived_from"),
                 declassify_on=_declassify_on(policy, declassify_on), **times)


def carried_declassify_on(label: Label) -> str | None:
    """The declassify-on a new label made from ``label`` carries when it is
    given none (POLICY.md §6.4): its own, but a duration as the instant it
    falls due. A duration counts from its label's ``created``, which every
    new label sets anew (the replay holds it to the time of its record):
    carried as written, it would put the release off by as long as the old
    label had stood, each relabelling again. A duration without ``created``
    is never due, and is carried as written, as is one due beyond the
    years a time may name (never, in effect)."""
    text = label.declassify_on
    due = label.declassify_at() if text is not None and text.startswith("P") else None
    if due is None:
        return text
    try:
        return parse_declassify_on(format_time(due)).text
    except ValueError:
        return text


def _listed(values: Iterable[str], what: str) -> set[str]:
    if isinstance(values, str):
        raise TypeError(f"{what} must be a collection of names, not a single string")
    return set(values)


def _known(names: set[str], defined: Mapping[str, Category], what: str) -> None:
    for name in sorted(names):
        if name not in defined:
            hint = did_you_mean(name, defined) or (
                f"{what}s: {', '.join(defined) or '(none defined)'}")
            raise UsageError(f"unknown {what} '{name}'", hint=hint)


def _text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not says_something(value):  # spaces and joiners alone are shown blank
        raise UsageError(f"{what.replace('_', ' ')} must be non-empty text")
    return value


def _declassify_on(policy: Policy, value: datetime | date | str | None) -> str | None:
    if value is None:
        return policy.declassification.default
    if isinstance(value, datetime):
        value = as_time(value, "declassify_on").isoformat().replace("+00:00", "Z")
    elif isinstance(value, date):
        value = value.isoformat()
    try:
        return parse_declassify_on(value).text
    except ValueError as e:
        raise UsageError(f"declassify-on: {e}", hint=DECLASSIFY_HINT) from None


def _mandatory(policy: Policy, actor: str | None) -> DeniedError:
    from vault.policy._decide import Decision

    reason = f"policy {policy.name} makes labelling mandatory: give a level"
    decision = Decision(policy, actor or "", "seal", None, datetime.now(UTC), {}, False,
                        [MANDATORY_LABELLING], [reason], [])
    levels = ", ".join(lvl.name for lvl in policy.levels)
    return DeniedError(reason, decision=decision, hint=f"choose one of: {levels}")
