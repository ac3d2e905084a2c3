"""The intake section of the schema (docs/POLICY.md §3.11).

    intake:
      office_labels:                  # Office sensitivity label -> policy label
        - id: 9fbde396-1a24-4c79-8edf-9254a0f35055
          name: Highly Confidential\\All Employees
          label: {level: SECRET, compartments: [STAFF]}
      floors:                         # content that sets a minimum label
        - id: card-numbers
          description: Payment card numbers (Luhn-checked).
          detector: payment-card      # or keywords: [...] or regex: '...'
          label: {level: CONFIDENTIAL, compartments: [FINANCE], caveats: [PERSONAL-DATA]}
      uninspectable: require-label    # or accept, or {floor: LABEL}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.intake._detectors import DETECTORS
from vault.intake._labels import guid
from vault.intake._patterns import pattern_problem, phrase_problem
from vault.policy._fields import did_you_mean
from vault.policy._intake_model import (
    UNINSPECTABLE_CHOICES,
    FloorRule,
    IntakePolicy,
    OfficeLabelMapping,
)
from vault.policy._schema_rules import RULE_ID
from vault.policy._yaml import Node
from vault.policy.model import Rule

if TYPE_CHECKING:
    from vault.policy._schema import Schema

__all__ = ["read_intake"]

_GUID_HINT = "an Office label id is a GUID like 9fbde396-1a24-4c79-8edf-9254a0f35055 " \
    "(braces optional); 'Get-Label | ft Name, Guid' lists a tenant's labels"


def read_intake(s: Schema, node: Node, rules: list[Rule]) -> IntakePolicy | None:
    """Read ``intake:`` with the policy's schema reader ``s`` (a ``Schema``)."""
    f = s.mapping(node, "intake", (), ("office_labels", "floors", "uninspectable"))
    if f is None:
        return None
    mappings = _office_labels(s, f["office_labels"]) if "office_labels" in f else []
    floors = _floors(s, f["floors"], {r.id for r in rules}) if "floors" in f else []
    mode, floor = "require-label", None
    if "uninspectable" in f:
        u = f["uninspectable"]
        if u.kind == "map":
            g = s.mapping(u, "intake uninspectable", ("floor",))
            if g is not None and "floor" in g:
                mode, floor = "floor", s.label(g["floor"], "intake uninspectable floor")
                if floor is None:
                    return None
        else:
            mode = s.choice(u, "intake uninspectable", UNINSPECTABLE_CHOICES) or mode
    return IntakePolicy(tuple(mappings), tuple(floors), mode, floor)


def _office_labels(s: Schema, node: Node) -> list[OfficeLabelMapping]:
    out: list[OfficeLabelMapping] = []
    ids: dict[str, Node] = {}
    names: dict[str, Node] = {}
    for item in s.seq(node, "intake office_labels") or []:
        f = s.mapping(item, "office label", ("label",), ("id", "name", "site_id"))
        if f is None or "label" not in f:  # a missing label is already reported
            continue
        if "id" not in f and "name" not in f:
            s.err(item, "office label has neither id nor name; expected at least one",
                  "the id (GUID) is reliable; a name is a fallback for files without one")
        gid = None
        if "id" in f:
            text = s.text(f["id"], "office label id")
            gid = guid(text) if text is not None else None
            if text is not None and gid is None:
                s.err(f["id"], f"office label id '{text}' is not a GUID", _GUID_HINT)
            elif gid is not None and not _unique(s, gid, f["id"], ids, "office label id"):
                gid = None
        site = None
        if "site_id" in f:
            text = s.text(f["site_id"], "office label site_id")
            site = guid(text) if text is not None else None
            if text is not None and site is None:
                s.err(f["site_id"], f"office label site_id '{text}' is not a GUID",
                      "the site id is the Microsoft Entra tenant id, a GUID")
        name = s.text(f["name"], "office label name") if "name" in f else None
        if name is not None and not _unique(s, name.casefold(), f["name"], names,
                                            "office label name"):
            name = None
        label = s.label(f["label"], f"office label {gid or name or ''}".strip())
        if label is not None and (gid is not None or name is not None):
            out.append(OfficeLabelMapping(label, gid, name, item.line, site))
    return out


def _unique(s: Schema, key: str, node: Node, seen: dict[str, Node], what: str) -> bool:
    if key in seen:
        s.err(node, f"{what} is already mapped (line {seen[key].line}); expected each once")
        return False
    seen[key] = node
    return True


def _floors(s: Schema, node: Node, rule_ids: set[str]) -> list[FloorRule]:
    out: list[FloorRule] = []
    seen: dict[str, Node] = {}
    for item in s.seq(node, "intake floors") or []:
        given = next((v.text for k, v in item.pairs if k.text == "id"), "")
        what = f"floor {given}".strip()
        f = s.mapping(item, what, ("id", "label"), ("description", "detector", "keywords",
                                                    "regex"))
        if f is None:
            continue
        fid = s.name(f["id"], "floor id", RULE_ID,
                      "floor ids are lowercase letters, digits and . _ -") if "id" in f else None
        if fid is not None and (fid in seen or fid in rule_ids):
            where = f"floor at line {seen[fid].line}" if fid in seen else "a rule"
            s.err(f["id"], f"floor id '{fid}' is already used by {where}; expected unique ids",
                  "floor ids appear beside rule ids in decisions and audit records")
            fid = None
        elif fid is not None and fid.startswith(("builtin", "office-label")):
            s.err(f["id"], f"floor id '{fid}' is reserved; expected an id not starting with "
                  "'builtin' or 'office-label'")
            fid = None
        kinds = [k for k in ("detector", "keywords", "regex") if k in f]
        if len(kinds) != 1:
            s.err(item, f"{what} has {' and '.join(kinds) or 'nothing to look for'}; expected "
                  "exactly one of detector, keywords, regex", "write one floor per kind of "
                  "content; they share the label by listing it twice")
        detector = keywords = regex = None
        if "detector" in f:
            detector = s.text(f["detector"], f"{what} detector")
            if detector is not None and detector not in DETECTORS:
                s.err(f["detector"], f"{what} detector '{detector}' is not a built-in detector;"
                      f" expected one of: {', '.join(DETECTORS)}",
                      did_you_mean(detector, DETECTORS))
                detector = None
        if "keywords" in f:
            keywords = _phrases(s, f["keywords"], what)
        if "regex" in f:
            regex = s.text(f["regex"], f"{what} regex")
            problem = pattern_problem(regex) if regex is not None else None
            if problem:
                s.err(f["regex"], f"{what} regex refused: {problem}",
                      "patterns run on untrusted text; see docs/POLICY.md §11.3")
                regex = None
        label = s.label(f["label"], f"{what} label") if "label" in f else None
        if fid is not None:
            seen[fid] = item
        if fid is None or label is None or len(kinds) != 1 or \
                (detector or keywords or regex) is None:
            continue
        out.append(FloorRule(fid, label, s._opt_text(f, "description"), detector,
                             tuple(keywords or ()), regex, item.line))
    return out


def _phrases(s: Schema, node: Node, what: str) -> list[str] | None:
    out: list[str] = []
    items = s.seq(node, f"{what} keywords", nonempty=True)
    if items is None:
        return None
    for item in items:
        phrase = s.text(item, f"entry of {what} keywords")
        problem = phrase_problem(phrase) if phrase is not None else None
        if problem:
            s.err(item, f"{what} keyword: {problem}")
        elif phrase is not None:
            out.append(phrase)
    return out if len(out) == len(items) and out else None

