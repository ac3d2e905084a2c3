"""Validated, frozen policy objects (docs/POLICY.md §3 and §4).

Objects here are built by the schema (``_schema.py``) from a checked policy
file, or by ``from_dict`` from the JSON-safe dictionaries ``to_dict``
returns. Sub-objects (:class:`Level`, :class:`User`, :class:`Rule`, ...)
check their own shape; only :meth:`Policy.from_dict` checks references
between them (a rule naming an unknown group, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from vault.errors import UsageError
from vault.policy._intake_model import NO_INTAKE, IntakePolicy
from vault.policy._time import (
    DeclassifyOn,
    Duration,
    as_time,
    format_time,
    parse_declassify_on,
    parse_duration,
)

if TYPE_CHECKING:
    from vault.policy._decide import Decision, Engine

__all__ = [
    "ACTIONS",
    "Category",
    "Clearance",
    "Declassification",
    "Group",
    "Label",
    "LabelCondition",
    "Level",
    "Policy",
    "Rule",
    "SetCondition",
    "User",
    "When",
    "Who",
]

# docs/POLICY.md §4.1. Order is only for display.
ACTIONS = ("seal", "open", "list", "export", "reclassify", "declassify", "shred", "administer")


def _names(value: Iterable[str], what: str) -> frozenset[str]:
    if type(value) is frozenset and all(type(v) is str and v for v in value):
        return value
    if isinstance(value, str):
        raise TypeError(f"{what} must be a collection of names, not a single string")
    out = frozenset(value)
    if not all(isinstance(v, str) and v for v in out):
        raise TypeError(f"{what} must contain non-empty strings")
    return out


def _from_dict(section: str, data: Any) -> Any:
    from vault.policy import _schema  # the schema builds model objects

    return _schema.parse_section(section, data)


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Drop empty optional entries so that to_dict output stays small."""
    return {k: v for k, v in d.items() if v not in (None, [], False)}


@dataclass(frozen=True, slots=True)
class Level:
    """A classification level; ``rank`` 0 is the lowest."""

    name: str
    rank: int
    marking: str | None = None
    aliases: tuple[str, ...] = ()
    description: str | None = None

    @property
    def display(self) -> str:
        return self.marking or self.name

    def to_dict(self) -> dict[str, Any]:
        return _clean({"name": self.name, "marking": self.marking,
                       "aliases": list(self.aliases), "description": self.description})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, rank: int = 0) -> Level:
        level: Level = _from_dict("level", data)
        return Level(level.name, rank, level.marking, level.aliases, level.description)


@dataclass(frozen=True, slots=True)
class Category:
    """A compartment, caveat or role: a name with optional documentation."""

    name: str
    description: str | None = None
    marking: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean({"name": self.name, "description": self.description,
                       "marking": self.marking})


@dataclass(frozen=True, slots=True)
class Clearance:
    """The most a user may see: a level and the compartments they need to know."""

    level: str
    compartments: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "compartments", _names(self.compartments, "compartments"))

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "compartments": sorted(self.compartments)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Clearance:
        result: Clearance = _from_dict("clearance", data)
        return result


@dataclass(frozen=True, slots=True)
class User:
    """A principal: public keys only (``recipient`` is ``age1…``,
    ``signing_key`` is ``ed25519:<base64>``). ``groups`` is derived from the
    policy's groups and is not part of :meth:`to_dict`."""

    name: str
    recipient: str
    signing_key: str
    clearance: Clearance
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    description: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", _names(self.roles, "roles"))
        object.__setattr__(self, "groups", _names(self.groups, "groups"))

    def to_dict(self) -> dict[str, Any]:
        return _clean({"recipient": self.recipient, "signing_key": self.signing_key,
                       "clearance": self.clearance.to_dict(), "roles": sorted(self.roles),
                       "description": self.description})

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> User:
        result: User = _from_dict("user", {name: data})
        return result


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    members: tuple[str, ...]
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"members": list(self.members),
                **_clean({"description": self.description})}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Group:
        result: Group = _from_dict("group", {name: data})
        return result


_LABEL_TEXT = ("classified_by", "reason", "derived_from")
_LABEL_KEYS = frozenset(("level", "compartments", "caveats", *_LABEL_TEXT,
                         "created", "declassify_on", "embargo_until"))


@dataclass(frozen=True, slots=True)
class Label:
    """A document's classification (docs/POLICY.md §3.8).

    Times are aware UTC datetimes; ``declassify_on`` keeps its canonical text
    (a date, a duration after ``created`` like ``P10Y``, ``event:…`` or
    ``exempt:CODE``). A label does not know its policy: use
    :meth:`Policy.make_label` to build one from user input.
    """

    level: str
    compartments: frozenset[str] = frozenset()
    caveats: frozenset[str] = frozenset()
    classified_by: str | None = None
    reason: str | None = None
    derived_from: str | None = None
    created: datetime | None = None
    declassify_on: str | None = None
    embargo_until: datetime | None = None
    _declassify: DeclassifyOn | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.level, str) or not self.level:
            raise TypeError("Label.level must be a non-empty string")
        object.__setattr__(self, "compartments", _names(self.compartments, "compartments"))
        object.__setattr__(self, "caveats", _names(self.caveats, "caveats"))
        for name in _LABEL_TEXT:
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise TypeError(f"Label.{name} must be non-empty text or None")
        for name in ("created", "embargo_until"):
            v = getattr(self, name)
            if v is not None:
                object.__setattr__(self, name, as_time(v, f"Label.{name}"))
        if self.declassify_on is not None:
            if not isinstance(self.declassify_on, str):
                raise TypeError("Label.declassify_on must be text, e.g. '2035-01-01' or 'P10Y'")
            parsed = parse_declassify_on(self.declassify_on)
            object.__setattr__(self, "declassify_on", parsed.text)
            object.__setattr__(self, "_declassify", parsed)

    def declassify_at(self) -> datetime | None:
        """When the document becomes due for declassification, if known."""
        d = self._declassify
        return None if d is None else d.resolve(self.created)

    def embargoed(self, at: datetime) -> bool:
        return self.embargo_until is not None and at < self.embargo_until

    def replace(self, **changes: Any) -> Label:
        fields = {k: getattr(self, k) for k in _LABEL_KEYS}
        fields.update(changes)
        return Label(**fields)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"level": self.level, "compartments": sorted(self.compartments),
                               "caveats": sorted(self.caveats)}
        for name in _LABEL_TEXT:
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for name in ("created", "embargo_until"):
            v = getattr(self, name)
            if v is not None:
                out[name] = format_time(v)
        if self.declassify_on is not None:
            out["declassify_on"] = self.declassify_on
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Label:
        """Strict inverse of :meth:`to_dict`; ValueError/TypeError on bad data."""
        if not isinstance(data, Mapping):
            raise TypeError("a label must be a mapping")
        unknown = set(data) - _LABEL_KEYS
        if unknown:
            raise ValueError(f"unknown label field(s): {', '.join(sorted(map(str, unknown)))}")
        if "level" not in data:
            raise ValueError("a label needs a level")
        for name in ("compartments", "caveats"):
            if not isinstance(data.get(name, []), list):
                raise TypeError(f"label {name} must be a list of names")
        for name in ("created", "embargo_until"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise TypeError(f"label {name} must be RFC 3339 text")
        fields: dict[str, Any] = {k: (frozenset(v) if k in ("compartments", "caveats") else v)
                                  for k, v in data.items()}
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class Who:
    """Actor condition: matches a user named, in a group, or holding a role."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    anyone: bool = False

    def matches(self, user: User) -> bool:
        return (self.anyone or user.name in self.users
                or not self.groups.isdisjoint(user.groups)
                or not self.roles.isdisjoint(user.roles))

    def describe(self) -> str:
        if self.anyone:
            return "anyone"
        parts = [f"{kind if len(names) > 1 else kind[:-1]} {', '.join(sorted(names))}"
                 for kind in ("users", "groups", "roles") if (names := getattr(self, kind))]
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        if self.anyone:
            return {"anyone": True}
        return _clean({k: sorted(getattr(self, k)) for k in ("users", "groups", "roles")})


@dataclass(frozen=True, slots=True)
class SetCondition:
    """Condition on a label's compartments or caveats (docs/POLICY.md §4.3)."""

    any: frozenset[str] = frozenset()
    all: frozenset[str] = frozenset()
    none: frozenset[str] = frozenset()
    empty: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _clean({k: sorted(getattr(self, k)) for k in ("any", "all", "none")})
        if self.empty is not None:
            out["empty"] = self.empty
        return out


@dataclass(frozen=True, slots=True)
class LabelCondition:
    min: str | None = None
    max: str | None = None
    compartments: SetCondition | None = None
    caveats: SetCondition | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _clean({"min": self.min, "max": self.max})
        for k in ("compartments", "caveats"):
            cond = getattr(self, k)
            if cond is not None:
                out[k] = cond.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class When:
    """Time conditions (docs/POLICY.md §4.4); ``start``/``until`` are the
    YAML keys ``from``/``until``."""

    embargo: str | None = None  # "active" | "lifted"
    declassify_on: str | None = None  # "due" | "pending"
    start: datetime | None = None
    until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return _clean({"embargo": self.embargo, "declassify_on": self.declassify_on,
                       "from": self.start and format_time(self.start),
                       "until": self.until and format_time(self.until)})


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule (docs/POLICY.md §4). ``id`` is stable and appears in decisions."""

    id: str
    effect: str  # "allow" | "deny"
    actions: tuple[str, ...]
    who: Who
    label: LabelCondition | None = None
    new_label: LabelCondition | None = None
    when: When | None = None
    require: frozenset[str] = frozenset()
    approvers: Who | None = None
    approvals: int = 1  # distinct approvers needed when require has approver (§4.5)
    may_lower: bool = False
    description: str | None = None
    line: int | None = field(default=None, compare=False)
    below_floor: bool | None = None  # seal only: holds when the label is (not) below the floor

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.description is not None:
            out["description"] = self.description
        out.update(effect=self.effect, actions=list(self.actions), who=self.who.to_dict())
        for k in ("label", "new_label", "when", "approvers"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v.to_dict()
        if self.require:
            out["require"] = sorted(self.require)
        if "approver" in self.require:
            out["approvals"] = self.approvals
        if self.may_lower:
            out["may_lower"] = True
        if self.below_floor is not None:
            out["below_floor"] = self.below_floor
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        result: Rule = _from_dict("rule", data)
        return result


@dataclass(frozen=True, slots=True)
class Declassification:
    """docs/POLICY.md §3.10: where declassified documents go, the default
    declassify-on, its longest allowed span and the permitted exemptions."""

    to: str
    default: str | None = None
    limit: str | None = None
    exemptions: frozenset[str] = frozenset()

    def limit_duration(self) -> Duration | None:
        return None if self.limit is None else parse_duration(self.limit)

    def to_dict(self) -> dict[str, Any]:
        return _clean({"to": self.to, "default": self.default, "limit": self.limit,
                       "exemptions": sorted(self.exemptions)})


@dataclass(frozen=True, eq=False, kw_only=True)
class Policy:
    """A checked, compiled classification policy (docs/POLICY.md).

    Build one with :func:`vault.policy.load_policy` or :meth:`from_dict`.
    ``hash`` is the hex SHA-256 of the exact file bytes it was loaded from.
    """

    name: str
    levels: tuple[Level, ...]
    users: Mapping[str, User]
    rules: tuple[Rule, ...]
    default_label: Label
    declassification: Declassification
    hash: str
    description: str | None = None
    compartments: Mapping[str, Category] = field(default_factory=dict)
    caveats: Mapping[str, Category] = field(default_factory=dict)
    roles: Mapping[str, Category] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    recovery: tuple[str, ...] = ()
    labelling_mandatory: bool = False
    label_requires: frozenset[str] = frozenset()
    post_quantum: str = "required"  # required | preferred | off (docs/POLICY.md §3.12)
    intake: IntakePolicy = NO_INTAKE  # docs/POLICY.md §3.11
    _lookup: dict[str, Level] = field(init=False, repr=False)
    _folded: dict[str, Level] = field(init=False, repr=False)
    _engine: Engine = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from vault.policy._decide import Engine  # the engine reads model objects

        for name in ("users", "compartments", "caveats", "roles", "groups"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        lookup = {w: lvl for lvl in self.levels for w in (lvl.name, *lvl.aliases)}
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_folded", {w.casefold(): lvl for w, lvl in lookup.items()})
        object.__setattr__(self, "_engine", Engine(self))

    @property
    def post_quantum_keys(self) -> bool:
        """Are the vault's class keys hybrid (mlkem768x25519) under this
        policy? A header may not mix hybrid and classical recipients
        (FORMAT.md §5.3), and every header carries the class key beside the
        recovery recipients: so the recovery recipients decide when there
        are any (the schema refuses a mixed set), else the setting does
        (docs/POLICY.md §3.12)."""
        if self.recovery:
            return all(r.startswith("age1pq1") for r in self.recovery)
        return self.post_quantum != "off"

    # -- levels and dominance ---------------------------------------------

    def level(self, name_or_alias: str) -> Level:
        """The level called ``name_or_alias`` (name or alias, any case)."""
        lvl = self._lookup.get(name_or_alias) or self._folded.get(str(name_or_alias).casefold())
        if lvl is None:
            from vault.policy._fields import did_you_mean

            names = [lv.name for lv in self.levels]
            close = did_you_mean(str(name_or_alias), names)
            raise UsageError(f"unknown level '{name_or_alias}'",
                             hint=(f"{close} " if close else "") + "levels: " + ", ".join(names))
        return lvl

    def canonical_level(self, name_or_alias: str) -> str:
        return self.level(name_or_alias).name

    def level_rank(self, name: str) -> int:
        return self.level(name).rank

    def dominates(self, clearance: Clearance, label: Label) -> bool:
        """True when ``clearance`` may read ``label``: level at least as high and
        every compartment held (docs/POLICY.md §6.1). Unknown levels never dominate."""
        rank = self._engine.rank  # level names only: labels and clearances are canonical
        mine, theirs = rank.get(clearance.level), rank.get(label.level)
        return (mine is not None and theirs is not None and theirs <= mine
                and label.compartments <= clearance.compartments)

    def cleared_users(self, label: Label) -> list[str]:
        """Users whose clearance dominates ``label`` (they may hold its key)."""
        return sorted(n for n, u in self.users.items() if self.dominates(u.clearance, label))

    def administrators(self, *, at: datetime | None = None) -> list[str]:
        """Users the rules allow to ``administer`` (officers), approvals and
        a justification aside (:meth:`may_administer`)."""
        return sorted(n for n in self.users if self.may_administer(n, at=at))

    def may_administer(self, name: str, *, at: datetime | None = None) -> bool:
        """Do the rules let ``name`` administer, with the approvals and the
        justification a rule may require for it (which each decision then
        asks for)? A two-person rule on ``administer`` still has an officer:
        the one who makes the vault, and whose requests others approve."""
        from vault.policy._checks import APPROVER, JUSTIFICATION

        decision = self.decide(name, "administer", None, at=at)
        return decision.allowed or set(decision.rule_ids) <= {APPROVER, JUSTIFICATION}

    # -- decisions and labels ----------------------------------------------

    def decide(self, actor: str, action: str, label: Label | None, *,
               at: datetime | None = None, inputs: Mapping[str, Any] | None = None) -> Decision:
        """Decide whether ``actor`` may ``action`` a document labelled ``label``
        (docs/POLICY.md §6). ``label`` may be None only for ``administer``."""
        return self._engine.decide(actor, action, label, at=at, inputs=inputs)

    def approval_rules(self, actor: str, action: str, label: Label | None, *,
                       at: datetime | None = None,
                       inputs: Mapping[str, Any] | None = None) -> list[Rule]:
        """The allow rules that make this request need approval (§4.5)."""
        from vault.policy._approvers import approval_rules

        return approval_rules(self, actor, action, label, at=at, inputs=inputs)

    def approver_problem(self, actor: str, action: str, label: Label | None, approver: str, *,
                         at: datetime | None = None,
                         inputs: Mapping[str, Any] | None = None) -> str | None:
        """Why ``approver``'s approval of ``actor``'s request would not count
        (docs/POLICY.md §4.5), or None when it would."""
        from vault.policy._approvers import approver_problem

        return approver_problem(self, actor, action, label, approver, at=at, inputs=inputs)

    def unknown_in(self, label: Label | None, new: Label | None = None) -> str | None:
        """What in ``label`` (or a change's ``new`` label) this policy does
        not define -- a level by name, a compartment, a caveat -- said as
        a decision says it before any rule (``builtin:unknown-label``,
        docs/POLICY.md §6.2), or None when it defines all of it."""
        return self._engine.unknown_labels(label, new)

    def below_floor(self, label: Label, floor: Label | None) -> bool:
        """Whether sealing ``label`` would be below the intake ``floor``
        (docs/POLICY.md §6.6): a lower level, or a floor compartment or
        caveat missing."""
        return self._engine.below_floor("seal", label, {"floor": floor})

    def decider(self, actor: str, action: str, *,
                at: datetime | None = None) -> Callable[[Mapping[str, Any]], bool]:
        """``allowed(label_dict)`` for many documents at the moment ``at``
        (default now): the verdict of :meth:`decide` for each label, given
        in its ``to_dict()`` form, decided once per distinct combination of
        the fields a decision reads. Actions: list, open, export."""
        from vault.policy._many import Decider

        return Decider(self, actor, action, at)

    def make_label(self, **fields: Any) -> Label:
        """Build a canonical label from user input (docs/POLICY.md §5.2).

        Applies the default label when no level is given (or raises DeniedError
        under mandatory labelling) and the default declassify-on; raises
        UsageError naming what is unknown or malformed."""
        from vault.policy._labels import make_label

        return make_label(self, **fields)

    def declassified_label(self, label: Label) -> Label:
        """What ``label`` becomes when declassified (docs/POLICY.md §5.3)."""
        return Label(self.declassification.to, classified_by=label.classified_by,
                     reason=label.reason, derived_from=label.derived_from, created=label.created)

    def parse_label(self, text: str) -> Label:
        """The label written ``text`` (as :meth:`format_label` writes it, or
        just a level): level, compartments and caveats only."""
        from vault.policy._banner import parse_banner

        level, compartments, caveats = parse_banner(self, text)
        return Label(level, compartments, caveats)

    def format_label(self, label: Label) -> str:
        """The one way the vault writes a label: a banner such as
        ``TOP SECRET//SI/TK//NOFORN`` (level, compartments, caveats, each in
        its policy marking if it has one); :meth:`parse_label` reads it."""
        lvl = self._lookup.get(label.level)
        parts = [lvl.display if lvl else label.level]
        for names, cats in ((label.compartments, self.compartments),
                            (label.caveats, self.caveats)):
            if names:
                parts.append("/".join(sorted((c.marking or c.name) if (c := cats.get(n)) else n
                                             for n in names)))
        return "//".join(parts)

    # -- serialisation -------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The policy in the file schema, as JSON-safe data (without ``hash``)."""
        out: dict[str, Any] = {"version": 1, "name": self.name}
        if self.description is not None:
            out["description"] = self.description
        out["levels"] = [lvl.to_dict() for lvl in self.levels]
        for key in ("compartments", "caveats", "roles"):
            out[key] = [c.to_dict() for c in getattr(self, key).values()]
        out["groups"] = {n: g.to_dict() for n, g in self.groups.items()}
        out["users"] = {n: u.to_dict() for n, u in self.users.items()}
        out["recovery"] = list(self.recovery)
        out["default_label"] = {k: v for k, v in self.default_label.to_dict().items()
                                if k in ("level", "compartments", "caveats")}
        out["labelling"] = "mandatory" if self.labelling_mandatory else "optional"
        out["label_requires"] = sorted(self.label_requires)
        out["declassification"] = self.declassification.to_dict()
        out["post_quantum"] = self.post_quantum
        out["rules"] = [r.to_dict() for r in self.rules]
        if self.intake.configured:
            out["intake"] = self.intake.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, filename: str = "<dict>") -> Policy:
        """Check and compile plain data in the file schema. ``hash`` is the
        SHA-256 of its canonical JSON (sorted keys, no spaces)."""
        from vault.policy import _loader

        return _loader.policy_from_data(data, filename)
