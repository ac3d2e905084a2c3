"""The policy schema (docs/POLICY.md §3 and §4): Node tree -> model objects.

Sections are read in dependency order (levels and categories, then users,
groups, rules, labels) so that every reference can be checked against what
is defined; every problem is collected with its position.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from vault.errors import PolicyLoadError, PolicyProblem
from vault.policy import _keys
from vault.policy._fields import MARKING_HINT, MARKING_NAME, Refs, from_data
from vault.policy._intake_model import NO_INTAKE
from vault.policy._schema_intake import read_intake
from vault.policy._schema_rules import RuleFields
from vault.policy._time import DECLASSIFY_HINT, Duration, parse_declassify_on, parse_duration
from vault.policy._yaml import Node, Problems
from vault.policy.model import (
    Category,
    Clearance,
    Declassification,
    Group,
    Label,
    Level,
    Policy,
    User,
)

_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
TOP_REQUIRED = ("version", "name", "levels", "users", "rules")
TOP_OPTIONAL = ("description", "compartments", "caveats", "roles", "groups", "recovery",
                "default_label", "labelling", "label_requires", "declassification",
                "post_quantum", "intake")


class Schema(RuleFields):
    """Readers for the policy's definitions; rules come from RuleFields."""

    # -- definitions ---------------------------------------------------------

    def levels(self, node: Node) -> list[Level]:
        out: list[Level] = []
        seen: dict[str, Node] = {}
        self.section(node, "levels", "seq")
        for item in self.seq(node, "levels", nonempty=True) or []:
            fields = self._entry(item, "level", ("marking", "aliases", "description"))
            if fields is None:
                continue
            name, extra = fields
            if not self._unique(name, item, seen, "level name or alias"):
                continue
            aliases = [a for a, where in self.name_list(
                extra["aliases"], f"aliases of level {name}", MARKING_NAME, MARKING_HINT)
                if self._unique(a, where, seen, "level name or alias")] \
                if "aliases" in extra else []
            out.append(Level(name, len(out), self._opt_text(extra, "marking"), tuple(aliases),
                             self._opt_text(extra, "description")))
        if self.refs is not None:
            for lvl in out:
                self.refs.rank[lvl.name] = lvl.rank
                for word in (lvl.name, *lvl.aliases):
                    self.refs.levels[word] = lvl.name
        return out

    def categories(self, node: Node, kind: str, seen: dict[str, Node]) -> dict[str, Category]:
        out: dict[str, Category] = {}
        what = kind[:-1]
        self.section(node, kind, "seq")
        for item in self.seq(node, kind) or []:
            fields = self._entry(item, what, ("description", "marking"), *self._pattern(kind))
            if fields is None:
                continue
            name, extra = fields
            if self._unique(name, item, seen, "compartment or caveat name" if kind != "roles"
                            else "role name"):
                out[name] = Category(name, self._opt_text(extra, "description"),
                                     self._opt_text(extra, "marking"))
        if self.refs is not None:
            getattr(self.refs, kind).update({n: n for n in out})
        return out

    def _entry(self, item: Node, what: str, optional: tuple[str, ...],
               pattern: re.Pattern[str] = MARKING_NAME,
               hint: str = MARKING_HINT) -> tuple[str, dict[str, Node]] | None:
        """An entry written as a bare name or as {name: ..., <optional>}."""
        if item.kind == "scalar":
            name = self.name(item, what, pattern, hint)
            return None if name is None else (name, {})
        fields = self.mapping(item, what, ("name",), optional)
        if fields is None or "name" not in fields:
            return None
        name = self.name(fields["name"], f"{what} name", pattern, hint)
        return None if name is None else (name, fields)

    def _unique(self, word: str, node: Node, seen: dict[str, Node], what: str) -> bool:
        first = seen.get(word.casefold())
        if first is not None:
            self.err(node, f"{what} '{word}' is already defined (line {first.line}); "
                     "expected unique names", "names are compared ignoring case")
            return False
        seen[word.casefold()] = node
        return True

    def clearance(self, node: Node, what: str) -> Clearance | None:
        if node.kind == "scalar":
            level = self.level_ref(node, f"{what} level")
            return None if level is None else Clearance(level)
        fields = self.mapping(node, what, ("level",), ("compartments",))
        if fields is None or "level" not in fields:
            return None
        level = self.level_ref(fields["level"], f"{what} level")
        comps = self.refs_list(fields["compartments"], f"{what} compartments",
                               "compartments") if "compartments" in fields else frozenset()
        return None if level is None else Clearance(level, comps)

    def users(self, node: Node) -> dict[str, User]:
        out: dict[str, User] = {}
        self.section(node, "users", "map")
        if not self.is_mapping(node, "users"):
            return out
        seen_keys: dict[tuple[str, str], str] = {}
        for key, entry in node.pairs:
            name = self.name(key, "user name")
            if name is None:
                continue
            if self.refs is not None:  # defined, even if the entry has problems
                self.refs.users[name] = name
            user = self.user(name, entry, seen_keys)
            if user is not None:
                out[user.name] = user
        return out

    def user(self, name: str, node: Node, seen: dict[tuple[str, str], str]) -> User | None:
        what = f"user {name}"
        f = self.mapping(node, what, ("recipient", "signing_key", "clearance"),
                         ("roles", "description"))
        if f is None:
            return None
        keys: dict[str, str | None] = {}
        for key, check in (("recipient", _keys.recipient_problem),
                           ("signing_key", _keys.signing_key_problem)):
            value = self.text(f[key], f"{what} {key}") if key in f else None
            if value is not None and _keys.STAND_INS.get() and _keys.placeholder_problem(value):
                value = _keys.stand_in(key)
            problem = None if value is None else check(value)
            if problem:
                self.err(f[key], f"{what} {key}: {problem}",
                         _keys.PLACEHOLDER_HINT if _keys.placeholder_problem(value or "")
                         else "copy it from 'vault identity show' for this user")
                value = None
            elif value is not None and (key, value) in seen:
                self.err(f[key], f"{what} {key} is the same as user {seen[key, value]}'s; "
                         "expected one key per person", "each person needs their own identity")
            elif value is not None:
                seen[key, value] = name
            keys[key] = value
        clearance = self.clearance(f["clearance"], f"{what} clearance") \
            if "clearance" in f else None
        roles = self.refs_list(f["roles"], f"{what} roles", "roles") if "roles" in f \
            else frozenset()
        recipient, signing_key = keys["recipient"], keys["signing_key"]
        if recipient is None or signing_key is None or clearance is None:
            return None
        return User(name, recipient, signing_key, clearance, roles,
                    description=self._opt_text(f, "description"))

    def groups(self, node: Node) -> dict[str, Group]:
        out: dict[str, Group] = {}
        self.section(node, "groups", "map")
        if not self.is_mapping(node, "groups"):
            return out
        for key, entry in node.pairs:
            name = self.name(key, "group name")
            f = self.mapping(entry, f"group {key.text}", ("members",), ("description",))
            if name is None or f is None or "members" not in f:
                continue
            members = self.name_list(f["members"], f"members of group {name}")
            for m, where in members:
                self.reference(m, where, "user", self._known("users"), "users")
            out[name] = Group(name, tuple(m for m, _ in members), self._opt_text(f, "description"))
        if self.refs is not None:
            self.refs.groups.update({n: n for n in out})
        return out

    # -- labels and the rest -------------------------------------------------

    def label(self, node: Node, what: str, *, full: bool = False) -> Label | None:
        """A label: {level, compartments, caveats} (plus every field when ``full``)."""
        if node.kind == "scalar":
            level = self.level_ref(node, f"{what} level")
            return None if level is None else Label(level)
        extra = ("classified_by", "reason", "derived_from", "created", "declassify_on",
                 "embargo_until") if full else ()
        f = self.mapping(node, what, ("level",), ("compartments", "caveats", *extra))
        if f is None or "level" not in f:
            return None
        level = self.level_ref(f["level"], f"{what} level")
        values: dict[str, Any] = {
            k: self.refs_list(f[k], f"{what} {k}", k) for k in ("compartments", "caveats")
            if k in f}
        for k in ("classified_by", "reason", "derived_from"):
            if k in f:  # a reason is free text; who classified it, a name
                values[k] = self.text(f[k], f"{what} {k}", free=k != "classified_by")
        for k in ("created", "embargo_until"):
            if k in f:
                values[k] = self.time(f[k], f"{what} {k}")
        if "declassify_on" in f:
            values["declassify_on"] = self.declassify_on(f["declassify_on"], what)
        if level is None or any(v is None for v in values.values()):
            return None
        return Label(level, **values)

    def declassify_on(self, node: Node, what: str) -> str | None:
        value = self.text(node, f"{what} declassify_on")
        if value is None:
            return None
        try:
            return parse_declassify_on(value).text
        except ValueError as e:
            self.err(node, f"{what} declassify_on: {e}", DECLASSIFY_HINT)
            return None

    def declassification(self, node: Node, levels: list[Level]) -> Declassification | None:
        f = self.mapping(node, "declassification", (), ("to", "default", "limit", "exemptions"))
        if f is None:
            return None
        to = self.level_ref(f["to"], "declassification to") if "to" in f \
            else (levels[0].name if levels else None)
        default = self.declassify_on(f["default"], "declassification default") \
            if "default" in f else None
        limit = self.text(f["limit"], "declassification limit") if "limit" in f else None
        if limit is not None:
            try:
                longest = parse_duration(limit)
            except ValueError as e:
                self.err(f["limit"], f"declassification limit: {e}")
            else:
                self._default_within(f, default, longest)
        codes = frozenset(c for c, _ in self.name_list(
            f["exemptions"], "declassification exemptions", _CODE,
            "exemption codes are letters, digits and . _ -")) if "exemptions" in f else frozenset()
        return None if to is None else Declassification(to, default, limit, codes)


    def _default_within(self, f: dict[str, Node], default: str | None, longest: Duration) -> None:
        parsed = parse_declassify_on(default) if default else None
        if parsed is not None and parsed.duration is not None:
            start = datetime(2000, 1, 1, tzinfo=UTC)
            if parsed.duration.after(start) > longest.after(start):
                self.err(f["default"], f"declassification default {default} is longer than "
                         "the limit; expected at most the limit",
                         "every label given the default would be refused")


def parse_section(section: str, data: Any) -> Any:
    """Read one section from plain data (``X.from_dict``); ValueError lists problems."""
    problems = Problems("<dict>")
    node = from_data(data, section, problems)
    s = Schema(problems, None)
    result: Any = None
    if section == "level":
        levels = s.levels(Node("seq", [node], path=section))
        result = levels[0] if levels else None
    elif section == "clearance":
        result = s.clearance(node, "clearance")
    elif section == "user":
        users = s.users(node)
        result = next(iter(users.values()), None)
    elif section == "group":
        result = next(iter(s.groups(node).values()), None)
    elif section == "rule":
        result = s.rule(node)
    found = problems.finish()
    if found or result is None:
        raise ValueError("; ".join(p.message for p in found) or f"invalid {section}")
    return result


def build_policy(root: Node | None, problems: Problems, digest: str) -> Policy:
    """Validate a whole policy tree; raise PolicyLoadError listing every problem."""
    policy = None if root is None else _build(root, problems, digest)
    found = problems.finish()
    if found or policy is None:
        found = found or [PolicyProblem(problems.file, None, None, "invalid policy")]
        raise PolicyLoadError(found, hint=f"run 'vault policy check {problems.file}' to list "
                              "every problem")
    return policy


def _build(root: Node, problems: Problems, digest: str) -> Policy | None:
    s = Schema(problems, Refs())
    if {k.text for k, _ in root.pairs} >= {"policy", "cases"}:
        s.err(root, "this is a policy test-case file; expected a policy",
              f"run 'vault policy test {problems.file}' instead")
        return None
    f = s.mapping(root, "the policy", TOP_REQUIRED, TOP_OPTIONAL)
    if f is None:
        return None
    for key in ("levels", "users"):
        if key not in f:
            s.section(None, key, "")
    version = s.integer(f["version"], "version") if "version" in f else None
    if version is not None and version != 1:
        s.err(f["version"], f"unsupported policy version {version}; expected 1")
    name = s.text(f["name"], "name") if "name" in f else None
    levels = s.levels(f["levels"]) if "levels" in f else []
    seen: dict[str, Node] = {}
    comps = s.categories(f["compartments"], "compartments", seen) if "compartments" in f else {}
    cavs = s.categories(f["caveats"], "caveats", seen) if "caveats" in f else {}
    roles = s.categories(f["roles"], "roles", {}) if "roles" in f else {}
    users = s.users(f["users"]) if "users" in f else {}
    groups = s.groups(f["groups"]) if "groups" in f else {}
    users = {n: _with_groups(u, groups) for n, u in users.items()}
    recovery = [_keys.stand_in("recipient")
                if _keys.STAND_INS.get() and _keys.placeholder_problem(r) else r
                for r, item in s.name_list(f["recovery"], "recovery", re.compile(r"\S+"), "")
                if (_keys.STAND_INS.get() and _keys.placeholder_problem(r))
                or not _bad_recipient(s, item, r)] if "recovery" in f else []
    rules = s.rules(f["rules"]) if "rules" in f else []
    # Who could approve is counted only over a complete list of users: a user
    # refused above (a template's placeholder key) must not look absent.
    if "users" in f and f["users"].kind == "map" and len(users) == len(f["users"].pairs):
        s.check_approvals(rules, users)
    default = s.label(f["default_label"], "default_label") if "default_label" in f \
        else (Label(levels[0].name) if levels else None)
    labelling = s.choice(f["labelling"], "labelling", ("mandatory", "optional")) \
        if "labelling" in f else "optional"
    requires = frozenset(v for v, item in s.name_list(f["label_requires"], "label_requires")
                         if s.choice(item, "label_requires entry", ("classified_by", "reason"))) \
        if "label_requires" in f else frozenset()
    declass = s.declassification(f["declassification"], levels) if "declassification" in f \
        else (Declassification(levels[0].name) if levels else None)
    pq = s.choice(f["post_quantum"], "post_quantum", PQ_SETTINGS) if "post_quantum" in f \
        else "required"
    if pq == "required":
        _require_pq(s, f, users, recovery)
    if len({r.startswith("age1pq1") for r in recovery}) > 1:
        s.err(f["recovery"], "recovery recipients mix post-quantum (age1pq1…) and classical "
              "(age1…) keys, which one file cannot hold together",
              "make every recovery recipient post-quantum ('vault age keygen --pq')")
    intake = read_intake(s, f["intake"], rules) if "intake" in f else NO_INTAKE  # §3.11
    if (problems.items or name is None or default is None or declass is None or pq is None
            or intake is None):
        return None
    return Policy(name=name, description=s._opt_text(f, "description"), levels=tuple(levels),
                  compartments=comps, caveats=cavs, roles=roles, groups=groups, users=users,
                  recovery=tuple(recovery), rules=tuple(rules), default_label=default,
                  labelling_mandatory=labelling == "mandatory", label_requires=requires,
                  declassification=declass, post_quantum=pq, hash=digest,
                  intake=intake)


PQ_SETTINGS = ("required", "preferred", "off")
_PQ_HINT = ("make post-quantum identities with 'vault identity new NAME' (the default), or "
            "set 'post_quantum: preferred' while users move to them (docs/POLICY.md §3.12)")


def _require_pq(s: Schema, f: Mapping[str, Node], users: Mapping[str, User],
                recovery: list[str]) -> None:
    """Under ``post_quantum: required`` every key the vault wraps to is hybrid."""
    for name, user in users.items():
        if not user.recipient.startswith("age1pq1"):
            node = f["users"]
            s.err(node, f"user {name}: post_quantum is required but the recipient is a "
                  "classical X25519 key (age1…)", _PQ_HINT)
    for r in recovery:
        if not r.startswith("age1pq1"):
            s.err(f["recovery"], "post_quantum is required but a recovery recipient is a "
                  "classical X25519 key (age1…)",
                  "make one with 'vault age keygen --pq', or let 'vault init --recovery-out' "
                  "make it")


def _bad_recipient(s: Schema, node: Node, value: str) -> bool:
    problem = _keys.recipient_problem(value)
    if problem:
        s.err(node, f"recovery recipient: {problem}",
              "use the public key printed by 'age-keygen' for the recovery identity")
    return problem is not None


def _with_groups(user: User, groups: Mapping[str, Group]) -> User:
    mine = frozenset(g.name for g in groups.values() if user.name in g.members)
    return User(user.name, user.recipient, user.signing_key, user.clearance, user.roles, mine,
                user.description)
