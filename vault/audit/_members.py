"""Checking record members (docs/AUDIT.md §2), for lines read and fields given.

Written for speed: these run for every record appended and every line
read, so the common types are tested with ``type() is`` first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault._primitives import INT_BOUND, MAX_INT_DIGITS

__all__ = [
    "FP_RE",
    "HEX64_RE",
    "MAX_NAME",
    "OUTCOMES",
    "REQUEST_RE",
    "Invalid",
    "actor_name",
    "caller_members",
    "check_state",
    "count",
    "label_parts",
    "strings",
    "text",
]

OUTCOMES = ("allowed", "denied", "error", "done", "failed")
MAX_NAME = 64
FP_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}\Z")
HEX64_RE = re.compile(r"[0-9a-f]{64}\Z")
REQUEST_RE = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_LABEL_KEYS = frozenset({"level", "compartments", "caveats"})


class Invalid(ValueError):
    """A record member breaks a rule of docs/AUDIT.md §2."""


def text(d: Mapping[str, Any], key: str, *, optional: bool = False, empty: bool = False) -> Any:
    value = d.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not empty):
        raise Invalid(f"{key!r} must be a {'' if empty else 'non-empty '}string")
    return value


def count(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Invalid(f"{key!r} must be a non-negative integer")
    return value


def strings(value: Any, what: str) -> tuple[str, ...]:
    # type() first: the common case, on the path of every record.
    if type(value) is not list and type(value) is not tuple and (
            isinstance(value, str | bytes)
            or not isinstance(value, list | tuple | set | frozenset)):
        raise Invalid(f"{what} must be a list of strings")
    for v in value:
        if (type(v) is not str and not isinstance(v, str)) or not v:
            raise Invalid(f"{what} must hold non-empty strings")
    return tuple(value)


def actor_name(value: Any) -> str | None:
    """``null`` (a key the policy does not know) or a short printable name."""
    if value is None:
        return None
    if type(value) is not str or not value or len(value) > MAX_NAME or not value.isprintable():
        raise Invalid(f"'actor.name' must be null or a printable string of 1 to {MAX_NAME} chars")
    return value


def check_state(value: Any) -> dict[str, Any] | None:
    """``null`` or an object with non-empty string keys and no floats inside."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise Invalid("'state' must be null or an object whose keys are non-empty strings")
    stack: list[Any] = [value]
    pop, push = stack.pop, stack.extend
    while stack:  # iterative: a deep state must not exhaust the Python stack
        item = pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue  # the common leaves, by exact type first
        if kind is int or (kind is not list and kind is not dict and isinstance(item, int)):
            if not -INT_BOUND < item < INT_BOUND:  # what every reader takes (§3)
                raise Invalid(f"'state' must hold no integer of more than {MAX_INT_DIGITS} "
                              "digits (§3)")
            continue
        if kind is dict or (kind is not list and isinstance(item, dict)):
            for k in item:
                if type(k) is not str and not isinstance(k, str):
                    raise Invalid("'state' objects must have string keys")
            push(item.values())
        elif kind is list or isinstance(item, list):
            push(item)
        elif isinstance(item, float):
            raise Invalid("'state' must hold no floating-point numbers (§3)")
        elif not isinstance(item, str):
            raise Invalid("'state' must hold only JSON values")
    return value


def label_parts(label: Any, *, strict: bool) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """(level, compartments, caveats) of a label member; ``strict``: as read
    from a line (sorted, unique, all three present), else as a caller gives it."""
    if label is None:
        return None, (), ()
    # Only the summary: a title or filename must never reach the log.
    if (type(label) is not dict and not isinstance(label, Mapping)) or "level" not in label \
            or not _LABEL_KEYS.issuperset(label):
        raise Invalid("'label' must hold level, compartments and caveats, nothing else")
    if strict and len(label) != 3:
        raise Invalid("'label' must hold level, compartments and caveats")
    level = label["level"]
    if type(level) is not str or not level:
        raise Invalid("'level' must be a non-empty string")
    sets = []
    for key in ("compartments", "caveats"):
        values = strings(label.get(key, ()), f"'label.{key}'")
        if not strict:
            values = tuple(sorted(set(values)))
        elif list(values) != sorted(set(values)):
            raise Invalid(f"'label.{key}' must be sorted and unique")
        sets.append(values)
    return level, sets[0], sets[1]


def caller_members(d: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Validate the members a caller supplies (docs/AUDIT.md §2). ``strict``
    is for lines read back; a caller may omit what has a default. (Written
    for speed: it runs for every record appended and every line read.)"""
    actor = d.get("actor")
    if (type(actor) is not dict and not isinstance(actor, Mapping)) or len(actor) != 2 \
            or "name" not in actor or "key" not in actor:
        raise Invalid("'actor' must be an object with name and key")
    key = actor["key"]
    if type(key) is not str or not FP_RE.match(key):
        raise Invalid("'actor.key' must be a key fingerprint SHA256:<base64>")
    level, compartments, caveats = label_parts(d.get("label"), strict=strict)
    outcome = d.get("outcome")
    if outcome not in OUTCOMES:
        raise Invalid(f"'outcome' must be one of {', '.join(OUTCOMES)}")
    policy = d.get("policy")
    if policy is not None and (type(policy) is not str or not HEX64_RE.match(policy)):
        raise Invalid("'policy' must be a SHA-256 in lowercase hex")
    request = d.get("request")
    if type(request) is not str or not REQUEST_RE.match(request):
        raise Invalid("'request' must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
    action, doc = d.get("action"), d.get("doc")
    if type(action) is not str or not action:
        raise Invalid("'action' must be a non-empty string")
    if doc is not None and (type(doc) is not str or not doc):
        raise Invalid("'doc' must be a non-empty string")
    reason = d.get("reason", None if strict else "")
    if type(reason) is not str:
        raise Invalid("'reason' must be a string")
    state = d.get("state")
    return {
        "actor": actor_name(actor["name"]),
        "actor_key": key,
        "action": action,
        "doc": doc,
        "level": level,
        "compartments": compartments,
        "caveats": caveats,
        "outcome": outcome,
        "rules": strings(d.get("rules", ()), "'rules'"),
        "reason": reason,
        "policy": policy,
        "request": request,
        "state": None if state is None else check_state(state),
    }
