"""Helpers for the two-person rule tests (tests/test_approvals*.py): an
office whose policy asks for approval of every action, and short ways to
ask, approve and act -- each person through their own :class:`vault.Vault`,
opened with their own identity only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from backends import Kind
from office import Office, make_office

from vault import Request

# docs/POLICY.md §4.5: the office's SECRET rule made to cover every action
# on a document, and administration made to need the leader's approval.
EVERY_ACTION = {
    "    actions: [reclassify, declassify]\n    who: {groups: [leaders]}\n    label: {min: SECRET}":
    "    actions: [reclassify, declassify, open, export, seal, shred]\n"
    "    who: {groups: [leaders]}\n    label: {min: SECRET}",
    "    actions: [administer]\n    who: {groups: [officers]}\n":
    "    actions: [administer]\n    who: {groups: [officers]}\n    require: [approver]\n"
    "    approvers: {users: [leader]}\n",
}


def office_for(tmp_path: Path, backend: Kind, edit: dict[str, str] | None = None) -> Office:
    """The office, its policy (version 2) edited by ``edit``."""
    office = make_office(tmp_path, backend, post_quantum=False)
    if edit:
        path = tmp_path / "policy-v2.yaml"
        path.write_text(office.policy_text({"version: 1\n": "version: 1\npost_quantum: off\n",
                                            **edit}))
        with office.as_("officer") as v:
            v.apply_policy(path)
    return office


def policy_file(office: Office, name: str, edit: dict[str, str]) -> Path:
    path = office.root / name
    path.write_text(office.policy_text({"version: 1\n": "version: 1\npost_quantum: off\n",
                                        **edit}))
    return path


def seal(office: Office, who: str, level: str = "SECRET", comps: tuple[str, ...] = ("BOARD",),
         data: bytes = b"minutes of the board", **more: Any) -> str:
    if "approvals" not in more:  # else the approved request's
        more.setdefault("justification", "board business")
    with office.as_(who) as v:
        return v.seal(io.BytesIO(data), filename="m.txt", level=level, compartments=comps,
                      **more).id


def ask(office: Office, who: str, action: str, doc: str | None = None, **what: Any) -> Request:
    what.setdefault("justification", "the merger closed")
    with office.as_(who) as v:
        return v.request(action, doc, **what)


def grant(office: Office, who: str, request: Request, **how: Any) -> bytes:
    with office.as_(who) as v:
        return v.approve(request.to_bytes(), **how).to_bytes()


def records(office: Office) -> list[dict[str, Any]]:
    return [json.loads(line) for line in office.raw.audit_lines()]


def findings(office: Office) -> list[tuple[int, str, str]]:
    with office.as_("officer") as v:
        v._s.trusted.catch_up()
        return v._s.trusted.store.findings()
