"""The rule schema (docs/POLICY.md §4): actor, label and time conditions,
required inputs, and the checks that make a rule meaningful."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vault.policy._fields import Fields
from vault.policy._yaml import Node
from vault.policy.model import ACTIONS, LabelCondition, Rule, SetCondition, User, When, Who

RULE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LOWERING = frozenset(("declassify",))
_LABEL_FREE = frozenset(("administer",))
MAX_APPROVALS = 16  # a use carries at most this many approvals (docs/FORMAT.md §16)


class RuleFields(Fields):
    """Readers for rules and their conditions."""

    def who(self, node: Node, what: str) -> Who | None:
        f = self.mapping(node, what, (), ("users", "groups", "roles", "anyone"))
        if f is None:
            return None
        if not f:
            self.err(node, f"{what} names nobody; expected users, groups, roles or anyone")
            return None
        if "anyone" in f:
            if self.boolean(f["anyone"], f"{what} anyone") is False:
                self.err(f["anyone"], f"{what} anyone is false; expected true",
                         "to match nobody, remove the rule")
            if len(f) > 1:
                self.err(node, f"{what} has 'anyone' and other entries; expected one or the other",
                         "anyone: true already matches every user")
            return Who(anyone=True)
        sets = {k: self.refs_list(f[k], f"{what} {k}", k) if k in f else frozenset()
                for k in ("users", "groups", "roles")}
        return Who(sets["users"], sets["groups"], sets["roles"])

    def set_condition(self, node: Node, what: str, kind: str) -> SetCondition | None:
        f = self.mapping(node, what, (), ("any", "all", "none", "empty"))
        if f is None:
            return None
        if not f:
            self.err(node, f"{what} is empty; expected any, all, none or empty")
        sets = {k: self.refs_list(f[k], f"{what} {k}", kind) if k in f else frozenset()
                for k in ("any", "all", "none")}
        clash = sets["none"] & (sets["any"] | sets["all"])
        if clash:
            self.err(node, f"{what} both requires and forbids {', '.join(sorted(clash))}; "
                     "the rule could never match")
        empty = self.boolean(f["empty"], f"{what} empty") if "empty" in f else None
        return SetCondition(sets["any"], sets["all"], sets["none"], empty)

    def label_condition(self, node: Node, what: str) -> LabelCondition | None:
        f = self.mapping(node, what, (), ("min", "max", "compartments", "caveats"))
        if f is None:
            return None
        lo = self.level_ref(f["min"], f"{what} min") if "min" in f else None
        hi = self.level_ref(f["max"], f"{what} max") if "max" in f else None
        rank = {} if self.refs is None else self.refs.rank
        if lo in rank and hi in rank and rank[lo] > rank[hi]:
            self.err(f["max"], f"{what} max {hi} is below min {lo}; the rule could never match")
        comp = self.set_condition(f["compartments"], f"{what} compartments",
                                  "compartments") if "compartments" in f else None
        cav = self.set_condition(f["caveats"], f"{what} caveats", "caveats") \
            if "caveats" in f else None
        return LabelCondition(lo, hi, comp, cav)

    def when(self, node: Node, what: str) -> When | None:
        f = self.mapping(node, what, (), ("embargo", "declassify_on", "from", "until"))
        if f is None:
            return None
        emb = self.choice(f["embargo"], f"{what} embargo", ("active", "lifted")) \
            if "embargo" in f else None
        dec = self.choice(f["declassify_on"], f"{what} declassify_on", ("due", "pending")) \
            if "declassify_on" in f else None
        start = self.time(f["from"], f"{what} from") if "from" in f else None
        until = self.time(f["until"], f"{what} until") if "until" in f else None
        if start and until and start >= until:
            self.err(f["until"], f"{what} until is not after from; the rule could never match")
        return When(emb, dec, start, until)

    def rule(self, node: Node) -> Rule | None:
        given_id = next((v.text for k, v in node.pairs if k.text == "id"), "")
        f = self.mapping(node, f"rule {given_id}".strip(), ("id", "effect", "actions", "who"),
                         ("description", "label", "new_label", "when", "require", "approvers",
                          "approvals", "may_lower", "below_floor"))
        if f is None:
            return None
        rid = self.name(f["id"], "rule id", RULE_ID,
                        "rule ids are lowercase letters, digits and . _ -") if "id" in f else None
        if rid is not None and rid.startswith("builtin"):
            self.err(f["id"], f"rule id '{rid}' is reserved; expected an id not starting "
                     "with 'builtin'")
        what = f"rule {rid or given_id}".strip()
        effect = self.choice(f["effect"], f"{what} effect", ("allow", "deny")) \
            if "effect" in f else None
        actions = [a for a, item in self.name_list(f["actions"], f"{what} actions")
                   if self.choice(item, f"{what} action", ACTIONS)] if "actions" in f else []
        if "actions" in f and not actions and f["actions"].kind == "seq":
            self.err(f["actions"], f"{what} actions is empty; expected at least one action")
        who = self.who(f["who"], f"{what} who") if "who" in f else None
        parts = self._rule_parts(f, what, effect, set(actions), who)
        if rid is None or effect is None or not actions or who is None:
            return None
        return Rule(rid, effect, tuple(actions), who, line=node.line,
                    description=self._opt_text(f, "description"), **parts)

    def _rule_parts(self, f: dict[str, Node], what: str, effect: str | None,
                    actions: set[str], who: Who | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "label" in f:
            out["label"] = self.label_condition(f["label"], f"{what} label")
        if "new_label" in f:
            if not actions <= {"reclassify", "declassify"}:
                self.err(f["new_label"], f"{what} has new_label; expected it only on rules for "
                         "reclassify or declassify")
            out["new_label"] = self.label_condition(f["new_label"], f"{what} new_label")
        if "when" in f:
            out["when"] = when = self.when(f["when"], f"{what} when")
            if when and (when.embargo or when.declassify_on) and actions & _LABEL_FREE:
                self.err(f["when"], f"{what} tests a label's embargo or declassify-on but "
                         "administer has no label", "move administer into a rule of its own")
            elif when and actions & _LABEL_FREE:
                # A policy version's record carries the time its writer's
                # client gives it (docs/THREAT-MODEL.md §7): an administrator
                # dating it into the window, or a holder of the rule dating
                # it ahead, would change who administers -- and so who is
                # cleared -- at will.
                self.err(f["when"], f"{what} limits administer in time, but a policy "
                         "version's time is its writer's to give",
                         "begin or end an administrator's powers with a new policy version; "
                         "move administer into a rule of its own, without 'when'")
        if "label" in f and actions & _LABEL_FREE:
            self.err(f["label"], f"{what} has a label condition; administer has no label",
                     "move administer into a rule of its own")
        for key in ("require", "approvers", "approvals", "may_lower"):
            if key in f and effect == "deny":
                self.err(f[key], f"{what} is a deny rule; '{key}' only makes sense on allow rules")
        if "require" in f:
            out["require"] = frozenset(
                v for v, item in self.name_list(f["require"], f"{what} require")
                if self.choice(item, f"{what} require", ("justification", "approver")))
        if "approvers" in f:
            if "approver" not in out.get("require", ()):
                self.err(f["approvers"], f"{what} names approvers but does not require one",
                         "add 'approver' to require")
            out["approvers"] = self.who(f["approvers"], f"{what} approvers")
        if "approvals" in f and effect != "deny":
            n = self._approvals(f, what, out.get("require", frozenset()))
            if n is not None:
                out["approvals"] = n
        carried = out.get("require", frozenset()) & {"justification", "approver"}
        if carried and "list" in actions:
            # docs/POLICY.md §4.7: 'vault ls' lists many documents at once and
            # carries neither a justification nor approvals.
            self.err(f["require"], f"{what} requires {' and '.join(sorted(carried))} for list, "
                     "which can carry neither", "move list into a rule of its own")
        if "may_lower" in f:
            out["may_lower"] = bool(self.boolean(f["may_lower"], f"{what} may_lower"))
            if "reclassify" not in actions:
                self.err(f["may_lower"], f"{what} has may_lower; expected it only on reclassify "
                         "rules")
        if "below_floor" in f:  # docs/POLICY.md §4.8: sealing below an intake floor
            out["below_floor"] = self.boolean(f["below_floor"], f"{what} below_floor")
            if not actions <= {"seal"}:
                self.err(f["below_floor"], f"{what} has below_floor; expected it only on rules "
                         "for seal", "move the other actions into a rule of their own")
        lowering = effect == "allow" and (actions & _LOWERING or out.get("may_lower"))
        if lowering and who is not None and who.anyone:
            self.err(f["who"], f"{what} lets anyone lower a label; expected named users, "
                     "groups or roles", "lowering (reclassify down, declassify) must name "
                     "who may do it")
        return out

    def _approvals(self, f: dict[str, Node], what: str,
                   require: frozenset[str]) -> int | None:
        if "approver" not in require:
            self.err(f["approvals"], f"{what} counts approvals but does not require an approver",
                     "add 'approver' to require")
        n = self.integer(f["approvals"], f"{what} approvals")
        if n is not None and not 1 <= n <= MAX_APPROVALS:
            self.err(f["approvals"], f"{what} approvals is {n}; expected 1 to {MAX_APPROVALS}")
            return None
        return n

    def rules(self, node: Node) -> list[Rule]:
        out: list[Rule] = []
        self.rule_nodes: dict[str, dict[str, Node]] = {}
        seen: dict[str, Node] = {}
        for item in self.seq(node, "rules") or []:
            rule = self.rule(item)
            if rule is None:
                continue
            if rule.id in seen:
                self.err(item, f"rule id '{rule.id}' is already used (line {seen[rule.id].line}); "
                         "expected unique ids", "rule ids appear in decisions and audit records")
                continue
            seen[rule.id] = item
            self.rule_nodes[rule.id] = {k.text: v for k, v in item.pairs}
            out.append(rule)
        return out

    def check_approvals(self, rules: list[Rule], users: Mapping[str, User]) -> None:
        """docs/POLICY.md §4.7: refuse a two-person rule nobody could ever
        satisfy -- approvers who name no user, or fewer possible approvers
        besides some requester than the approvals it counts."""
        for rule in rules:
            if "approver" not in rule.require or rule.effect != "allow":
                continue
            nodes = getattr(self, "rule_nodes", {}).get(rule.id, {})
            pool = [u.name for u in users.values()
                    if rule.approvers is None or rule.approvers.matches(u)]
            if rule.approvers is not None and not pool and "approvers" in nodes:
                self.err(nodes["approvers"], f"rule {rule.id} approvers "
                         f"({rule.approvers.describe()}) name no user of the policy",
                         "name users, or groups and roles that someone has")
                continue
            worst = min(((len([p for p in pool if p != u.name]), u.name)
                         for u in users.values() if rule.who.matches(u)), default=None)
            if worst is not None and worst[0] < rule.approvals:
                n, requester = worst
                where = nodes.get("approvals") or nodes.get("approvers") or nodes.get("require")
                if where is None:
                    continue
                others = ", ".join(p for p in pool if p != requester) or "nobody"
                self.err(where, f"rule {rule.id} needs {rule.approvals} "
                         f"approval{'s' if rule.approvals != 1 else ''} but {requester} could "
                         f"only ever be approved by {n} other user{'s' if n != 1 else ''} "
                         f"({others})", "name more approvers, lower approvals, or narrow who")
