"""What a new policy version changes, in plain words, for the person asked
to approve it (docs/DESIGN.md §6.8).

A ``policy-apply`` request binds the SHA-256 of the new text and nothing
more: an approver shown only that approves blind, and an officer who may
not clear themselves alone would ask for "a typo in a description" and get
a clearance. So approving one needs the file itself: its digest must be the
one asked for, and the approver is shown, against the version in force,
every change that decides who can read -- people and their clearances,
keys, roles and groups, recovery recipients, rules, levels and categories --
then the text's own differences, line by line.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Policy

__all__ = ["check_policy_file", "policy_changes"]

_DIFF_LINES = 400  # of the text's differences shown; the summary above is complete


def policy_changes(old: Policy, old_text: str, new: Policy, new_text: str) -> list[str]:
    """Lines saying what ``new`` changes from ``old`` (the version in force)."""
    out: list[str] = []
    out += _users(old, new)
    out += _keyed("group", {n: g.to_dict() for n, g in old.groups.items()},
                  {n: g.to_dict() for n, g in new.groups.items()})
    added = sorted(set(new.recovery) - set(old.recovery))
    removed = sorted(set(old.recovery) - set(new.recovery))
    out += [f"recovery recipient added: {_short(r)} (opens every document sealed from now on)"
            for r in added]
    out += [f"recovery recipient removed: {_short(r)}" for r in removed]
    out += _keyed("rule", {r.id: r.to_dict() for r in old.rules},
                  {r.id: r.to_dict() for r in new.rules})
    if [lv.to_dict() for lv in old.levels] != [lv.to_dict() for lv in new.levels]:
        out.append("levels: " + " < ".join(lv.name for lv in old.levels) + "  ->  "
                   + " < ".join(lv.name for lv in new.levels))
    for what, a, b in (("compartment", old.compartments, new.compartments),
                       ("caveat", old.caveats, new.caveats), ("role", old.roles, new.roles)):
        out += _keyed(what, {n: c.to_dict() for n, c in a.items()},
                      {n: c.to_dict() for n, c in b.items()})
    if old.post_quantum != new.post_quantum:
        out.append(f"post_quantum: {old.post_quantum} -> {new.post_quantum}")
    if old.declassification.to_dict() != new.declassification.to_dict():
        out.append("declassification settings changed")
    if old.default_label.to_dict() != new.default_label.to_dict():
        out.append("default label changed")
    if not out and old_text != new_text:
        out.append("nothing that decides access (descriptions, comments or layout only)")
    diff = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                     "in force", "new", n=1, lineterm=""))
    if diff:
        out.append("the text, line by line:")
        # A key is a line of 1,900 characters: its ends tell it apart.
        out += [f"  {line if len(line) <= 120 else line[:80] + '…' + line[-30:]}"
                for line in diff[:_DIFF_LINES]]
        if len(diff) > _DIFF_LINES:
            out.append(f"  ... {len(diff) - _DIFF_LINES} more lines of differences")
    return out


def _users(old: Policy, new: Policy) -> list[str]:
    out = []
    for name in sorted(set(old.users) | set(new.users)):
        a, b = old.users.get(name), new.users.get(name)
        if a is None and b is not None:
            out.append(f"user added: {name}, cleared {_clearance(b.clearance.to_dict())}")
        elif b is None and a is not None:
            out.append(f"user removed: {name}")
        elif a is not None and b is not None:
            if a.clearance != b.clearance:
                out.append(f"clearance of {name}: {_clearance(a.clearance.to_dict())} -> "
                           f"{_clearance(b.clearance.to_dict())}")
            if (a.recipient, a.signing_key) != (b.recipient, b.signing_key):
                out.append(f"keys of {name} replaced (whoever holds the new ones acts as "
                           f"{name}): recipient {_short(b.recipient)}")
            if a.roles != b.roles:
                out.append(f"roles of {name}: {_names(a.roles)} -> {_names(b.roles)}")
            if a.groups != b.groups:
                out.append(f"groups of {name}: {_names(a.groups)} -> {_names(b.groups)}")
    return out


def _keyed(what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = [f"{what} added: {n}" for n in sorted(set(new) - set(old))]
    out += [f"{what} removed: {n}" for n in sorted(set(old) - set(new))]
    out += [f"{what} changed: {n}" for n in sorted(set(old) & set(new)) if old[n] != new[n]]
    return out


def _clearance(d: Mapping[str, Any]) -> str:
    return "//".join([str(d["level"]), *(["/".join(d["compartments"])]
                                         if d.get("compartments") else [])])


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _short(recipient: str) -> str:
    return recipient if len(recipient) <= 40 else f"{recipient[:20]}…{recipient[-12:]}"


def check_policy_file(s: Any, r: Any, policy_path: Any) -> list[str]:
    """For a ``policy-apply`` request: the file the approver was given must
    be the one asked for (its SHA-256); what it changes from the version
    in force. UsageError without it, or for another file."""
    from vault._ops.init import read_policy_file
    from vault.errors import UsageError

    asked = r.details.get("policy")
    if policy_path is None:
        raise UsageError("a new policy version is approved only once read: pass the file "
                         "asked to be installed",
                         hint=f"add --policy FILE (its sha256 must be {asked}); the requester "
                              "sends it with the request")
    raw, new = read_policy_file(policy_path)
    if new.hash != asked:
        raise UsageError(f"that policy file is not the one asked for (sha256 {new.hash}, "
                         f"asked {asked})", hint="ask the requester for the file they asked "
                                                 "to install")
    old = s.trusted.policy
    old_text = s.trusted.store.policy_text(old.hash) or ""
    return policy_changes(old, old_text, new, raw.decode("utf-8", "replace"))
