"""The dates of a request's labels, as its approver is shown them
(docs/FORMAT.md §16.2).

A label's banner (``Policy.format_label``) shows its level, compartments
and caveats; its embargo and declassify-on, bound by the request as well,
decide *when* it may be read (POLICY.md §6.2, §6.4). An approver shown
banners alone approved "SECRET//BOARD -> CONFIDENTIAL//BOARD" whose new
label lifted a 2030 embargo at once: so every label a request carries is
shown with both dates, and a change of either is said in words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

__all__ = ["date_changes", "dating_lines"]

_LOWERS = "which lowers the label"
_LABEL_DATE = "the label's date"


def dating_lines(label: dict[str, Any] | None, new_label: dict[str, Any] | None,
                 at: datetime, *, sealing: bool = False) -> list[str]:
    """The approver's lines for the embargo and declassify-on of a
    request's ``label`` and (for a change) ``new_label``, each a bound
    label (FORMAT.md §16.2); ``at`` is when the request was made (what is
    already over is said so); ``sealing``: ``label`` is the one a seal
    makes, whose duration counts from the seal."""
    if label is None:
        return []
    if new_label is None:
        made = "the seal" if sealing else ""
        return [f"  {'embargo':<14} {_embargo_alone(label, at)}",
                f"  {'declassify on':<14} {_declassify_alone(label, at, made)}"]
    _, embargo = _embargo_change(label, new_label, at)
    _, declassify = _declassify_change(label, new_label, at)
    return [f"  {'embargo':<14} {embargo}", f"  {'declassify on':<14} {declassify}"]


def date_changes(label: dict[str, Any] | None, new_label: dict[str, Any] | None,
                 at: datetime) -> list[str]:
    """What a change does to the dates, in a few words each (for a
    listing), or nothing when it keeps both."""
    if label is None or new_label is None:
        return []
    return [short for short, _ in (_embargo_change(label, new_label, at),
                                   _declassify_change(label, new_label, at)) if short]


# -- embargo ---------------------------------------------------------------------


def _until(d: dict[str, Any]) -> datetime | None:
    from vault.policy._time import parse_time

    text = d.get("embargo_until")
    return None if text is None else parse_time(text)


def _embargo(d: dict[str, Any]) -> str:
    return "none" if d.get("embargo_until") is None else f"until {d['embargo_until']}"


def _embargo_alone(d: dict[str, Any], at: datetime) -> str:
    until = _until(d)
    return _embargo(d) + (" (over already)" if until is not None and until <= at else "")


def _embargo_change(old: dict[str, Any], new: dict[str, Any],
                    at: datetime) -> tuple[str, str]:
    o, n = _until(old), _until(new)
    if o == n:
        return "", _embargo_alone(old, at) + ("" if o is None else ", unchanged")
    shown = f"{_embargo(old)} -> {_embargo(new)}"
    if o is None:
        short, notes = "embargo added", ["added"]
    elif n is not None and n > o:
        short, notes = "embargo put off", ["put off"]
    elif o <= at:  # removed or brought forward: lowering all the same (POLICY.md §6.4)
        short, notes = "embargo removed", [f"removed, {_LOWERS}", "it had ended"]
    else:
        short, notes = "embargo lifted early", [f"lifted early, {_LOWERS}"]
    if n is not None and n <= at:
        notes.append("the new date has passed")
    return short, f"{shown} ({'; '.join(notes)})"


# -- declassify-on ---------------------------------------------------------------


def _declassify(d: dict[str, Any], counted_from: str) -> str:
    """A declassify-on as the approver reads it: a duration counts from its
    label's date, which the request does not carry (FORMAT.md §16.2): a
    seal's or a change's is when it is done."""
    from vault.policy._time import parse_declassify_on

    text = d.get("declassify_on")
    if text is None:
        return "none"
    if parse_declassify_on(text).duration is not None:
        return f"{text} after {counted_from or _LABEL_DATE}"
    return str(text)


def _due(d: dict[str, Any]) -> tuple[bool, datetime | None]:
    """(whether the moment is known, the moment or None for never due)."""
    from vault.policy._time import parse_declassify_on

    text = d.get("declassify_on")
    if text is None:
        return True, None
    parsed = parse_declassify_on(text)
    return parsed.duration is None, parsed.when


def _declassify_alone(d: dict[str, Any], at: datetime, counted_from: str) -> str:
    _, due = _due(d)
    return _declassify(d, counted_from) + (" (due already)" if due is not None and due <= at
                                           else "")


def _declassify_change(old: dict[str, Any], new: dict[str, Any],
                       at: datetime) -> tuple[str, str]:
    was, now = old.get("declassify_on"), new.get("declassify_on")
    (o_known, o), (n_known, n) = _due(old), _due(new)
    shown = f"{_declassify(old, '')} -> {_declassify(new, 'the change')}"
    if was == now and not o_known:  # the same duration, from a later date
        return "", f"{shown} (put off)"
    if was == now:
        return "", _declassify_alone(old, at, "") + ("" if was is None else ", unchanged")
    never_before = o_known and o is None  # none, an event, a bare exemption
    if now is None:  # never due: not lowering (POLICY.md §6.4)
        short, notes = "declassify-on removed", ["removed"]
    elif n_known and n is None:
        short, notes = ("declassify-on changed", ["changed; neither is ever due"]) \
            if never_before else ("declassify-on put off", ["put off: it is never due"])
    elif never_before:  # a new label's duration counts from the change: it comes due
        short, notes = "declassify-on brought forward", [f"brought forward, {_LOWERS}"]
    elif not (o_known and n_known) or o is None or n is None:
        # A duration's moment depends on its label's date: the policy
        # judges it when the change is made (POLICY.md §6.4).
        short, notes = "declassify-on changed", ["changed"]
    elif n < o:
        short, notes = "declassify-on brought forward", [f"brought forward, {_LOWERS}"]
    elif n == o:
        short, notes = "", ["the same moment"]
    else:
        short, notes = "declassify-on put off", ["put off"]
    if n_known and n is not None and n <= at:
        notes.append("due already")
    return short, f"{shown} ({'; '.join(notes)})"
