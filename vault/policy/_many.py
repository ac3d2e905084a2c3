"""One action decided for many documents at one moment (``vault ls``).

A listing asks the same question -- may this user ``list`` it, now? -- for
every document of the vault. The answer depends on the actor, the action,
the moment, and only these label fields (docs/POLICY.md §6): level,
compartments, caveats, embargo (is it active at that moment) and
declassify-on (is it due: with a relative date, from the label's creation
time). Who classified the document and why never change a decision, and
many documents share the same deciding fields, so each distinct
combination is decided once, with :meth:`Policy.decide` on a label made of
exactly those fields, and remembered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from vault.policy.model import Label

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy.model import Policy

__all__ = ["Decider"]

# Actions whose decision needs no inputs and reads no other label field.
ACTIONS = frozenset({"list", "open", "export"})
_DECIDING = ("level", "compartments", "caveats", "embargo_until", "declassify_on")


class Decider:
    """``decider(label_dict) -> bool``: the verdict of ``policy.decide(actor,
    action, label, at=at)`` for a label given as its ``Label.to_dict()``
    form, computed once per distinct set of deciding fields. A label that
    does not make a valid :class:`Label` is never allowed."""

    def __init__(self, policy: Policy, actor: str, action: str,
                 at: datetime | None = None) -> None:
        if action not in ACTIONS:
            raise ValueError(f"a decider decides one of {', '.join(sorted(ACTIONS))}")
        self._policy = policy
        self._actor = actor
        self._action = action
        self._at = at or datetime.now(UTC)
        self._memo: dict[tuple[Any, ...], bool] = {}

    def __call__(self, label: Mapping[str, Any]) -> bool:
        get = label.get
        compartments, caveats = get("compartments", []), get("caveats", [])
        if type(compartments) is not list or type(caveats) is not list:
            return False
        declassify_on = get("declassify_on")
        # With a relative declassify-on date, the creation time decides too.
        created = None if declassify_on is None else get("created")
        key = (get("level"), tuple(compartments), tuple(caveats), get("embargo_until"),
               declassify_on, created)
        try:
            verdict = self._memo.get(key)
        except TypeError:  # unhashable values: not a label the vault wrote
            return False
        if verdict is None:
            verdict = self._memo[key] = self._decide(label, declassify_on is not None)
        return verdict

    def _decide(self, label: Mapping[str, Any], declassify: bool) -> bool:
        deciding = {name: label[name] for name in _DECIDING if label.get(name) is not None}
        if declassify and label.get("created") is not None:
            deciding["created"] = label["created"]
        try:
            made = Label.from_dict(deciding)
        except (ValueError, TypeError, KeyError):
            return False
        return self._policy.decide(self._actor, self._action, made, at=self._at).allowed
