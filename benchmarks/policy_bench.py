"""Policy engine speed: one decision, loading, and a billion-laughs refusal.

Decisions: ``Policy.decide`` on the shipped office policy (its placeholders
filled with fresh post-quantum keys, as a real office's are) against a plain
Python peer that makes the same decision by walking the ``yaml.safe_load``
dictionaries of the same file on every call (no compilation). Both must
agree on every request measured. Figures are the median per-call time over
many batches. Target: 10 µs per decision.

Loading: ``load_policy`` (strict reader, full schema check, compilation)
against ``yaml.safe_load`` of the same bytes (parsing only). The
billion-laughs row times the strict reader refusing the document against
``yaml.safe_load`` accepting it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks import Row, judge, ms, speedup, us
from benchmarks._office import filled_policy
from vault.errors import PolicyLoadError
from vault.policy import Label, load_policy, load_policy_text

AT = datetime(2025, 6, 2, 9, tzinfo=UTC)
DECIDE_TARGET, LAUGHS_TARGET = 10e-6, 0.1
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(8))


def _per_call(fn: Callable[[], object], batch: int, batches: int) -> float:
    """Median seconds per call over ``batches`` batches of ``batch`` calls."""
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch)
    return statistics.median(samples)


class NaivePolicy:
    """The peer: the same semantics, evaluated straight from the YAML dicts."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _rank(self, level: str) -> int:
        names = [lv if isinstance(lv, str) else lv["name"] for lv in self.data["levels"]]
        return names.index(level)

    def _who(self, who: dict[str, Any], user: str) -> bool:
        if who.get("anyone"):
            return True
        groups = [g for g, v in self.data.get("groups", {}).items() if user in v["members"]]
        roles = self.data["users"][user].get("roles", [])
        return (user in who.get("users", []) or any(g in who.get("groups", []) for g in groups)
                or any(r in who.get("roles", []) for r in roles))

    def _set(self, cond: dict[str, Any] | None, have: set[str]) -> bool:
        if cond is None:
            return True
        return ((not cond.get("any") or bool(have & set(cond["any"])))
                and set(cond.get("all", [])) <= have and not have & set(cond.get("none", []))
                and ("empty" not in cond or cond["empty"] == (not have)))

    def _label(self, cond: dict[str, Any] | None, label: Label) -> bool:
        if cond is None:
            return True
        r = self._rank(label.level)
        return ((("min" not in cond) or r >= self._rank(cond["min"]))
                and (("max" not in cond) or r <= self._rank(cond["max"]))
                and self._set(cond.get("compartments"), set(label.compartments))
                and self._set(cond.get("caveats"), set(label.caveats)))

    def _dominates(self, user: str, label: Label) -> bool:
        c = self.data["users"][user]["clearance"]
        level, comps = (c, []) if isinstance(c, str) else (c["level"], c.get("compartments", []))
        return self._rank(label.level) <= self._rank(level) and set(label.compartments) <= set(
            comps)

    def decide(self, user: str, action: str, label: Label, at: datetime,
               inputs: dict[str, Any]) -> bool:
        embargoed = label.embargo_until is not None and at < label.embargo_until
        allow, required = [], set()
        for rule in self.data["rules"]:
            when = rule.get("when", {})
            if (action not in rule["actions"] or not self._who(rule["who"], user)
                    or not self._label(rule.get("label"), label)
                    or ("embargo" in when and (when["embargo"] == "active") != embargoed)):
                continue
            if rule["effect"] == "deny":
                return False
            if action == "open" and embargoed and when.get("embargo") != "active":
                continue
            allow.append(rule)
            required |= set(rule.get("require", []))
        if not allow:
            return False
        if action in ("open", "export", "declassify", "shred") and not self._dominates(user,
                                                                                     label):
            return False
        if action == "declassify":
            required.add("justification")
        if "justification" in required and not str(inputs.get("justification", "")).strip():
            return False
        if "approver" in required:
            approver = str((inputs.get("approvers") or [None])[0])
            if approver not in self.data["users"] or approver == user:
                return False
            for rule in allow:
                who = rule.get("approvers")
                if "approver" in rule.get("require", []) and who and not self._who(who, approver):
                    return False
            return self._dominates(approver, label)
        return True


def _decisions(office: Path, batch: int, batches: int, quick: bool) -> list[Row]:
    policy = load_policy(office)
    naive = NaivePolicy(yaml.safe_load(office.read_text(encoding="utf-8")))
    finance = policy.make_label(level="CONFIDENTIAL", compartments=["FINANCE"])
    staff = policy.make_label(level="CONFIDENTIAL", compartments=["STAFF"])
    board = policy.make_label(level="SECRET", compartments=["BOARD"])
    release = {"justification": "released", "approvers": ["deputy"]}
    requests: list[tuple[str, str, str, Label, dict[str, Any]]] = [
        ("open, allowed", "leader", "open", finance, {}),
        ("open, denied by a deny rule", "outsider", "open", staff, {}),
        ("declassify SECRET, two-person rule", "leader", "declassify", board, release),
    ]
    rows = []
    for what, user, action, label, inputs in requests:
        ours_result = policy.decide(user, action, label, at=AT, inputs=inputs).allowed
        if ours_result != naive.decide(user, action, label, AT, inputs):
            raise RuntimeError(f"the peer disagrees on: {what}")
        def ours_call(u: str = user, a: str = action, lb: Label = label,
                      i: dict[str, Any] = inputs) -> object:
            return policy.decide(u, a, lb, at=AT, inputs=i)

        def peer_call(u: str = user, a: str = action, lb: Label = label,
                      i: dict[str, Any] = inputs) -> object:
            return naive.decide(u, a, lb, AT, i)

        ours = _per_call(ours_call, batch, batches)
        peer = _per_call(peer_call, batch, batches)
        rows.append(Row(f"policy decide ({what}) vs naive walk of safe_load dicts, per call",
                        us(ours), us(peer), speedup(ours, peer), f"<= {DECIDE_TARGET * 1e6:.0f} µs",
                        judge(ours <= DECIDE_TARGET, quick)))
    return rows


def _loading(office: Path, batches: int, quick: bool) -> list[Row]:
    data = office.read_bytes()
    ours = _per_call(lambda: load_policy(office), 1, batches)
    peer = _per_call(lambda: yaml.safe_load(data), 1, batches)
    rows = [Row(f"load office.yaml ({len(data):,} B, post-quantum keys): check + compile vs "
                "yaml.safe_load",
                ms(ours), ms(peer), speedup(ours, peer))]

    def refuse() -> None:
        try:
            load_policy_text(BILLION_LAUGHS)
        except PolicyLoadError:
            return
        raise RuntimeError("billion laughs was accepted")

    ours = _per_call(refuse, 1, batches)
    peer = _per_call(lambda: yaml.safe_load(BILLION_LAUGHS), 1, batches)
    rows.append(Row("billion laughs: refused vs yaml.safe_load accepting it",
                    ms(ours), ms(peer), speedup(ours, peer), f"< {LAUGHS_TARGET * 1e3:.0f} ms",
                    judge(ours < LAUGHS_TARGET, quick)))
    return rows


def run(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vault-policy-bench-") as tmp:
        office = filled_policy(Path(tmp) / "office.yaml")
        if quick:
            return _decisions(office, 200, 5, quick) + _loading(office, 3, quick)
        return _decisions(office, 2000, 51, quick) + _loading(office, 21, quick)
