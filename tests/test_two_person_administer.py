"""An administrator who must not read (THREAT-MODEL.md §9): the policy
decides who is cleared, so the control is a two-person rule on
`administer` -- the leader approves every policy the officer installs.

Such a rule can be in the first policy: that one is the officer's alone
(vault.json pins it), and the rule applies from the next version on. Then
the officer can neither clear themselves nor, with a modified client,
record a policy version nobody approved. Both backends.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from approval_support import ask, grant
from backends import Kind
from office import Office, make_office

from vault.errors import DeniedError

TWO_PERSON = {
    "    actions: [administer]\n    who: {groups: [officers]}\n":
    "    actions: [administer]\n    who: {groups: [officers]}\n    require: [approver]\n"
    "    approvers: {users: [leader]}\n"}
OFFICER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF, HR]}"
OFFICER_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, BOARD]}"


@pytest.fixture
def guarded(tmp_path: Path, backend: Kind) -> Office:
    return make_office(tmp_path, backend, edit=TWO_PERSON)


def _minutes(office: Office) -> str:
    return office.as_("leader").seal(io.BytesIO(b"board minutes"), filename="m.txt",
                                     level="SECRET", compartments=["BOARD"],
                                     justification="minutes").id


def _officer_reads(office: Office, doc: str) -> bool:
    try:
        office.as_("officer").open(doc, io.BytesIO())
    except DeniedError:
        return False
    return True


def test_a_vault_can_start_with_a_two_person_rule_on_administer(guarded: Office) -> None:
    doc = _minutes(guarded)
    assert guarded.as_("officer").doctor().ok
    assert not _officer_reads(guarded, doc)


def test_the_officer_cannot_clear_themselves_alone(guarded: Office) -> None:
    doc = _minutes(guarded)
    path = guarded.write_policy({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    with pytest.raises(DeniedError, match="approv"):
        guarded.as_("officer").apply_policy(path)
    _minutes(guarded)  # the leader's routine seal grants nothing to the officer
    assert not _officer_reads(guarded, doc)
    # The leader can read what is asked, and approve it: then, on the record.
    request = ask(guarded, "officer", "policy-apply", policy_path=path)
    with guarded.as_("officer") as v:
        assert v.apply_policy(path, approvals=[grant(guarded, "leader", request)]).version == 2


def test_a_policy_version_recorded_without_approval_does_not_count(guarded: Office) -> None:
    doc = _minutes(guarded)
    # The officer's modified client records version 2, which clears them,
    # signed with their own key and with no approval.
    text = guarded.policy_text({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    me = guarded.ids["officer"]
    with guarded.as_("officer") as v:
        v.audit.append({
            "actor": {"name": "officer", "key": me.fingerprint}, "action": "policy-apply",
            "doc": None, "label": None, "outcome": "allowed", "rules": [], "reason": "",
            "policy": None, "state": {"policy": {
                "version": 2, "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "text": text}}}, me.signing_key)
    _minutes(guarded)  # a routine seal: were version 2 in force, this would grant the key
    assert not _officer_reads(guarded, doc)
    with guarded.as_("leader") as v:
        assert v.policy_version == 1
    problems = guarded.as_("officer").doctor().problems
    assert any("policy" in p and "not entitled" in p for p in problems), problems
