"""What a new policy version changes, in plain words, for the person asked
to approve it (docs/DESIGN.md §6.8).

A ``policy-apply`` request binds the SHA-256 of the new text and nothing
more: an approver shown only that approves blind, and an officer who may
not clear themselves alone would ask for "a typo in a description" and get
a clearance. So approving one needs the file itself: its digest must be the
one asked for, and the approver is shown, against the version in force,
every difference of the parsed policies but descriptions -- people and their
clearances and keys, member by member for the rest: rules, levels and their
aliases, categories, groups, recovery recipients, intake floors and
mappings, labelling -- then the text's own differences, line by line, all
of them (a version padded with comments must not push a change off screen).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Policy, User

__all__ = ["check_policy_file", "policy_changes"]


def policy_changes(old: Policy, old_text: str, new: Policy, new_text: str) -> list[str]:
    """Lines saying what ``new`` changes from ``old`` (the version in force):
    every difference of the parsed policies but descriptions, member by
    member -- complete by construction, whatever the text's layout hides --
    then the whole text's differences, line by line."""
    out = _users(old, new)
    a, b = _comparable(old), _comparable(new)
    if a["level order"] != b["level order"]:
        out.append("levels, lowest first: " + " < ".join(a["level order"]) + "  ->  "
                   + " < ".join(b["level order"]))
    out += [line for line in _differences("", a, b) if not line.startswith("level order")]
    added = sorted(set(new.recovery) - set(old.recovery))
    out += [f"  (recovery recipient {_short(r)} opens every document sealed from now on)"
            for r in added]
    if not out and old_text != new_text:
        out.append("nothing but descriptions, comments or layout")
    diff = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                     "in force", "new", n=1, lineterm=""))
    if diff:
        out.append("the text, line by line:")
        # Whole lines, however long: a change hides in what is cut.
        out += [f"  {line}" for line in diff]
    return out


def _comparable(policy: Policy) -> dict[str, Any]:
    """The parsed policy as nested dicts, lists of named things keyed by
    ``id X`` or ``name X``, without descriptions; users apart
    (:func:`_users`). Descriptions go before the keying: a rule whose id is
    "description" is a rule."""
    d = policy.to_dict()
    d.pop("users", None)
    d["level order"] = [lv["name"] for lv in d["levels"]]
    out: dict[str, Any] = _keyed_lists(_strip(d))
    return out


def _keyed_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _keyed_lists(v) for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
        keys = [f"id {x['id']}" if isinstance(x.get("id"), str) else
                f"name {x['name']}" if isinstance(x.get("name"), str) else None for x in value]
        if None not in keys and len(set(keys)) == len(keys):
            return {str(k): _keyed_lists(x) for k, x in zip(keys, value, strict=True)}
        # Not keyable (two of one name): entry by entry, in order.
        return {f"entry {i + 1}": _keyed_lists(x) for i, x in enumerate(value)}
    if isinstance(value, list):
        return [_keyed_lists(x) for x in value]
    return value


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [_strip(x) for x in value]
    return value


def _differences(path: str, a: Any, b: Any) -> list[str]:
    if a == b:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path} {key}".strip() if path else key
            if key not in b:
                out.append(f"{where}: removed (was {_show(a[key])})")
            elif key not in a:
                out.append(f"{where}: added, {_show(b[key])}")
            else:
                out += _differences(where, a[key], b[key])
        return out
    return [f"{path}: {_show(a)} -> {_show(b)}"]


def _show(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True)  # whole: nothing hides


def _users(old: Policy, new: Policy) -> list[str]:
    out = []
    for name in sorted(set(old.users) | set(new.users)):
        a, b = old.users.get(name), new.users.get(name)
        if a is None and b is not None:
            out.append(f"user added: {name}, cleared {_clearance(b.clearance.to_dict())}, "
                       f"identity fingerprint {_identity(b)} (compare it with {name}'s own)")
        elif b is None and a is not None:
            out.append(f"user removed: {name}")
        elif a is not None and b is not None:
            if a.clearance != b.clearance:
                out.append(f"clearance of {name}: {_clearance(a.clearance.to_dict())} -> "
                           f"{_clearance(b.clearance.to_dict())}")
            if (a.recipient, a.signing_key) != (b.recipient, b.signing_key):
                out.append(_keys_replaced(name, a, b))
            if a.roles != b.roles:
                out.append(f"roles of {name}: {_names(a.roles)} -> {_names(b.roles)}")
            if a.groups != b.groups:
                out.append(f"groups of {name}: {_names(a.groups)} -> {_names(b.groups)}")
    return out


def _keys_replaced(name: str, a: User, b: User) -> str:
    """What a change of ``name``'s keys gives whom. The recipient decides
    who reads -- keyring entries are encrypted to it, and stock age opens
    them -- the pair decides who acts; so a recipient changed alone gives
    its holder what ``name`` is cleared for, acting as nobody. (``policy
    apply`` refuses such a pairing for a user it knew: one identity gives
    both keys.)"""
    if a.signing_key == b.signing_key:
        return (f"recipient of {name} replaced, signing key kept (whoever holds the new "
                f"recipient reads what {name} is cleared for; nobody holds both keys, so "
                f"nobody acts as {name}): recipient {_short(b.recipient)}")
    if a.recipient == b.recipient:
        return (f"signing key of {name} replaced, recipient kept (whoever holds the old "
                f"recipient still reads what {name} is cleared for; nobody holds both keys, so "
                f"nobody acts as {name}): signing key {_fingerprint(b.signing_key)}")
    return (f"keys of {name} replaced (whoever holds the new ones acts as {name} and reads "
            f"what {name} is cleared for): identity fingerprint {_identity(b)} (compare it "
            f"with {name}'s own), recipient {_short(b.recipient)}")


def _identity(user: User) -> str:
    from vault._identity_public import identity_fingerprint

    return identity_fingerprint(user.recipient, user.signing_key)


def _fingerprint(signing_key: str) -> str:
    from vault._primitives import parse_signing_key
    from vault.audit import fingerprint

    return str(fingerprint(parse_signing_key(signing_key)))


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
