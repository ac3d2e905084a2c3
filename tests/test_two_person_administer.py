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
import json
from pathlib import Path

import pytest
from approval_support import ask, grant
from backends import Kind
from office import Office, make_office
from vault_helpers import forge_record_after_last

import vault
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
        assert v.apply_policy(path, approvals=[grant(guarded, "leader", request, policy=path)]
                              ).version == 2


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


CONTRACTOR = {"description: A visiting contractor.": "description: A visiting contractor (v2)."}


def _install(office: Office, edit: dict[str, str]) -> int:
    path = office.write_policy(edit)
    request = ask(office, "officer", "policy-apply", policy_path=path)
    with office.as_("officer") as v:
        return v.apply_policy(path, approvals=[grant(office, "leader", request, policy=path)]
                              ).version


def test_an_approval_does_not_come_back_with_an_old_policy_text(guarded: Office) -> None:
    # The leader approves a version that clears the officer; another
    # version is installed first, so that approval is dead. Then the first
    # text is installed again. A request names its policy by the text's
    # SHA-256: before, the old approval counted again (for its 90 days)
    # and the officer installed the version that clears them.
    from vault._trust.approvals import ApprovalError

    doc = _minutes(guarded)
    path = guarded.write_policy({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    old = grant(guarded, "leader", ask(guarded, "officer", "policy-apply", policy_path=path),
                policy=path)
    assert _install(guarded, {**TWO_PERSON, **CONTRACTOR}) == 2
    assert _install(guarded, TWO_PERSON) == 3  # the first text, again
    with pytest.raises(ApprovalError, match="another policy version") as e:
        guarded.as_("officer").apply_policy(path, approvals=[old])
    assert e.value.kind == "policy"
    _minutes(guarded)
    assert not _officer_reads(guarded, doc)
    with guarded.as_("leader") as v:
        assert v.policy_version == 3


def test_a_completion_held_back_past_another_version_gets_no_approvers(
        guarded: Office) -> None:
    # The officer's modified client records the approved decision to
    # install a version that clears them, and holds its completion back.
    # Another version is installed meanwhile. Before, the completion
    # recorded then, as the next version, counted with the approval the
    # decision had used under the version before.
    from vault._ops.approved import Approved
    from vault._ops.discipline import Attempt, authorise, complete
    from vault._ops.init import read_policy_file

    doc = _minutes(guarded)
    path = guarded.write_policy({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    approval = grant(guarded, "leader", ask(guarded, "officer", "policy-apply",
                                            policy_path=path), policy=path)
    raw, new = read_policy_file(path)
    with guarded.as_("officer") as v:
        v._s.trusted.catch_up()
        att = Attempt("policy-apply")
        approved = Approved(v._s, [approval], None).bind("policy-apply",
                                                        details={"policy": new.hash})
        authorise(v._s, att, "administer", None, inputs={"justification": "an audit"},
                  approved=approved)
    assert _install(guarded, {**TWO_PERSON, **CONTRACTOR}) == 2
    with guarded.as_("officer") as v:
        v._s.trusted.catch_up()
        held = Attempt("policy-apply", request=att.request, recorded=True, allowed=True)
        complete(v._s, [held], [{"policy": {"version": 3, "sha256": new.hash,
                                             "text": raw.decode()}}])
    _minutes(guarded)
    assert not _officer_reads(guarded, doc)
    with guarded.as_("leader") as v:
        assert v.policy_version == 2
    problems = guarded.as_("leader").doctor().problems
    assert any("(policy)" in p and "not entitled" in p for p in problems), problems


# -- what else administering means: incidents and repairs ------------------------------


def test_an_incident_takes_the_approval_of_those_lines(guarded: Office) -> None:
    from vault._trust.approvals import ApprovalError

    _minutes(guarded)
    at = forge_record_after_last(guarded)
    _minutes(guarded)
    with pytest.raises(DeniedError, match="approv"):
        guarded.as_("officer").declare_incident(at, at, reason="a forged line")
    other = ask(guarded, "officer", "incident", lines=(at - 1, at))
    with pytest.raises(ApprovalError, match="another range of lines"):
        guarded.as_("officer").declare_incident(at, at, reason="a forged line",
                                                approvals=[grant(guarded, "leader", other)])
    request = ask(guarded, "officer", "incident", lines=(at, at))
    seq = guarded.as_("officer").declare_incident(
        at, at, reason="a forged line", approvals=[grant(guarded, "leader", request)])
    assert seq > at
    report = guarded.as_("officer").verify_audit()
    assert report.incidents  # a successful verification, the forged line contained


def test_an_incident_recorded_without_approval_does_not_count(guarded: Office) -> None:
    _minutes(guarded)
    at = forge_record_after_last(guarded)
    me = guarded.ids["officer"]
    with guarded.as_("officer") as v:
        v.audit.append({
            "actor": {"name": "officer", "key": me.fingerprint}, "action": "incident",
            "doc": None, "label": None, "outcome": "done", "rules": [], "reason": "x",
            "policy": None, "state": {"incident": {"from": at, "to": at, "reason": "x"}}},
            me.signing_key)
        v._s.trusted.catch_up()
        assert at not in v._s.trusted.store.sealed_off()
        findings = v._s.trusted.store.findings()
    assert any(kind == "incident" and "not entitled" in message
               for _, kind, message in findings), findings
    # The forged line stays what it was, damage nobody has contained, and
    # the refused incident record is a problem of its own, not a note.
    problems = guarded.as_("officer").doctor().problems
    assert any("bad signature" in p for p in problems), problems
    assert any("(incident)" in p and "not entitled" in p for p in problems), problems


def test_a_repair_takes_an_approval_too(guarded: Office) -> None:
    _minutes(guarded)
    with pytest.raises(DeniedError, match="approv"):
        guarded.as_("officer").doctor(repair=True)
    request = ask(guarded, "officer", "doctor")
    report = guarded.as_("officer").doctor(repair=True,
                                           approvals=[grant(guarded, "leader", request)])
    assert report.ok


def test_the_command_line_asks_for_and_uses_an_incident_approval(guarded: Office) -> None:
    _minutes(guarded)
    at = forge_record_after_last(guarded)
    r = guarded.cli("officer", "request", "incident", f"{at}-{at}", "--justification",
                    "a forged line")
    assert r.exit_code == 0, r.stderr
    request_id = r.stdout.strip()
    r = guarded.cli("leader", "approve", request_id, "--yes")
    assert r.exit_code == 0, r.stderr
    r = guarded.cli("officer", "audit", "incident", str(at), str(at), "--reason",
                    "a forged line", "--request", request_id, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["first"] == at
    r = guarded.cli("officer", "request", "incident", "soon")
    assert r.exit_code == 2 and "FIRST-LAST" in r.stderr
    r = guarded.cli("officer", "doctor", "--request", request_id)
    assert r.exit_code == 2 and "--repair" in r.stderr


def test_an_approver_refuses_a_request_recorded_before_the_policy_in_force(
        guarded: Office) -> None:
    # The officer's request was recorded under the first text; another
    # version was installed, then the first text again. The request names
    # the policy in force by its hash, but it was recorded before that
    # install, so no approval of it could serve: the approver is told so
    # before signing anything.
    from vault._trust.approvals import ApprovalError

    path = guarded.write_policy({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    request = ask(guarded, "officer", "policy-apply", policy_path=path)
    assert _install(guarded, {**TWO_PERSON, **CONTRACTOR}) == 2
    assert _install(guarded, TWO_PERSON) == 3  # the first text, again
    with pytest.raises(ApprovalError, match="another policy version") as e:
        grant(guarded, "leader", request, policy=path)
    assert e.value.kind == "policy"


def test_the_approver_of_a_policy_version_sees_what_it_changes(guarded: Office) -> None:
    # The officer asks for "a typo in a description" and sends a version
    # that clears them for SECRET//BOARD. The leader was shown two SHA-256
    # lines and the justification, approved, and the officer read the
    # board's minutes: the two-person rule was one person's and a blind
    # signature.
    from vault.errors import UsageError

    path = guarded.write_policy({**TWO_PERSON, OFFICER: OFFICER_SECRET})
    request = ask(guarded, "officer", "policy-apply", policy_path=path,
                  justification="typo in a description")
    with guarded.as_("leader") as v:
        with pytest.raises(UsageError, match="approved only once read") as e:
            v.approve(request.to_bytes())
        assert "--policy FILE" in (e.value.hint or "")
        other = guarded.write_policy({**TWO_PERSON, "description: ": "description: typo "})
        with pytest.raises(UsageError, match="not the one asked for"):
            v.approve(request.to_bytes(), policy=other)
        shown = v.explain_request(request, path)
    assert "clearance of officer: CONFIDENTIAL//HR/STAFF -> SECRET//BOARD/HR/STAFF" in shown
    assert "+    clearance: {level: SECRET, compartments: [STAFF, HR, BOARD]}" in shown
    assert not [r for r in guarded.raw.audit_lines() if b'"approve"' in r]
    # On the command line: refused before any confirmation, then shown.
    r = guarded.cli("leader", "approve", request.id, "--yes")
    assert r.exit_code == 2 and "what it changes: not shown without the file" in r.stderr
    assert "hint: add --policy FILE" in r.stderr
    r = guarded.cli("leader", "approve", request.id, "--yes", "--policy", str(path))
    assert r.exit_code == 0, r.stderr
    assert "clearance of officer: CONFIDENTIAL//HR/STAFF -> SECRET//BOARD/HR/STAFF" in r.stderr
    # Refusing needs no file.
    again = ask(guarded, "officer", "policy-apply", policy_path=path)
    r = guarded.cli("leader", "approve", again.id, "--yes", "--refuse")
    assert r.exit_code == 0 and "hint: add --policy" not in r.stderr, r.stderr


def test_the_approver_is_told_who_a_change_of_keys_gives_what(guarded: Office) -> None:
    # The clerk's recipient replaced by another, her signing key kept, was
    # shown as "keys of clerk replaced (whoever holds the new ones acts as
    # clerk)": nobody does -- whoever holds the new recipient reads what the
    # clerk is cleared for, with stock age. A new identity, or a new user,
    # is shown with its identity fingerprint, to compare with its person's.
    from vault.age import MLKEM768X25519Identity
    from vault.identity import new_identity

    clerk = guarded.ids["clerk"]
    other = str(MLKEM768X25519Identity.generate().recipient)
    renewed, newcomer = new_identity("clerk"), new_identity("newcomer")
    cases = [
        ({clerk.recipient: other},
         "recipient of clerk replaced, signing key kept (whoever holds the new recipient "
         "reads what clerk is cleared for; nobody holds both keys, so nobody acts as clerk)"),
        ({clerk.recipient: renewed.recipient, clerk.signing_public: renewed.signing_public},
         "keys of clerk replaced (whoever holds the new ones acts as clerk and reads what "
         f"clerk is cleared for): identity fingerprint {renewed.identity_fingerprint} "
         "(compare it with clerk's own)"),
        ({"\nusers:\n": f"\nusers:\n  newcomer:\n    recipient: {newcomer.recipient}\n"
                        f"    signing_key: {newcomer.signing_public}\n"
                        "    clearance: {level: INTERNAL}\n"},
         "user added: newcomer, cleared INTERNAL, identity fingerprint "
         f"{newcomer.identity_fingerprint} (compare it with newcomer's own)"),
    ]
    for edit, shown in cases:
        path = guarded.write_policy({**TWO_PERSON, **edit})
        request = ask(guarded, "officer", "policy-apply", policy_path=path)
        with guarded.as_("leader") as v:
            text = v.explain_request(request, path)
        assert shown in text, text[:3000]
        assert "whoever holds the new ones acts as clerk)" not in text


def test_a_move_under_the_two_person_rule_is_asked_for_and_approved(
        guarded: Office, tmp_path: Path) -> None:
    # With approval required to administer, 'vault migrate --to' could never
    # run: it took no approvals, and its hint named 'vault request migrate',
    # which did not exist.
    from vault._ops.migrate import move_vault

    doc = _minutes(guarded)
    with pytest.raises(DeniedError, match="approv") as e:
        move_vault(guarded.location, tmp_path / "moved", guarded.ids["officer"])
    assert "vault request migrate DEST" in (e.value.hint or "")
    r = guarded.cli("officer", "request", "migrate", str(tmp_path / "moved"),
                    "--justification", "new file server")
    assert r.exit_code == 0, r.stderr
    assert "--to DEST'" in r.stderr
    request_id = r.stdout.strip()
    r = guarded.cli("leader", "approve", request_id, "--yes")  # not blind
    assert r.exit_code == 2 and "hint: add --to DEST" in r.stderr, r.stderr
    r = guarded.cli("leader", "approve", request_id, "--yes", "--to", str(tmp_path / "else"))
    assert r.exit_code == 2 and "not for a move to" in r.stderr
    r = guarded.cli("leader", "approve", request_id, "--yes", "--to", str(tmp_path / "moved"))
    assert r.exit_code == 0, r.stderr
    assert "asks to move the vault to another store" in r.stderr
    # The approval is for that destination only (the officer's private copy
    # was moved on the leader's approval of another place) -- not even
    # through a link made at the approved name.
    r = guarded.cli("officer", "migrate", "--from", guarded.location, "--to",
                    str(tmp_path / "private-copy"), "--request", request_id)
    assert r.exit_code == 3, r.stderr
    assert not (tmp_path / "private-copy" / "vault.json").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "moved").symlink_to(tmp_path / "mine")
    r = guarded.cli("officer", "migrate", "--from", guarded.location, "--to",
                    str(tmp_path / "moved"), "--request", request_id)
    assert r.exit_code == 3, r.stderr
    assert not (tmp_path / "mine" / "vault.json").exists()
    (tmp_path / "moved").unlink()
    # A vault id given is held to, as by every command.
    r = guarded.cli("officer", "--vault-id", "0" * 32, "migrate", "--from", guarded.location,
                    "--to", str(tmp_path / "moved"), "--request", request_id)
    assert r.exit_code == 4 and "as you said" in r.stderr, r.stderr
    r = guarded.cli("officer", "migrate", "--from", guarded.location, "--to",
                    str(tmp_path / "moved"), "--request", request_id)
    assert r.exit_code == 0, r.stderr
    out = io.BytesIO()
    with vault.Vault(str(tmp_path / "moved"), guarded.ids["leader"]) as v:
        v.open(doc, out)
    assert out.getvalue() == b"board minutes"
    # One approval, one move.
    r = guarded.cli("officer", "migrate", "--from", guarded.location, "--to",
                    str(tmp_path / "again"), "--request", request_id)
    assert r.exit_code == 3, r.stderr


def test_what_a_policy_version_changes_is_shown_whatever_its_layout_hides(
        guarded: Office) -> None:
    # Three versions the approver was shown as harmless: a lowered intake
    # floor below 450 lines of comments ("nothing that decides access", the
    # change cut off after 400 lines of differences); the two-person rule
    # dropped ("rule changed", as for a new description); an alias moved
    # from SECRET to INTERNAL ("levels: …" the same on both sides).
    padding = "".join(f"# note {i}\n" for i in range(450))
    cases = [
        ({"    - id: board-minutes\n      description: Minutes and papers of the board.\n"
          "      keywords: [board minutes, minutes of the board, board paper]\n"
          "      label: {level: CONFIDENTIAL, compartments: [BOARD]}":
          "    - id: board-minutes\n      description: Minutes and papers of the board.\n"
          "      keywords: [board minutes, minutes of the board, board paper]\n"
          "      label: {level: CONFIDENTIAL, compartments: [STAFF]}"},
         'intake floors id board-minutes label compartments: ["BOARD"] -> ["STAFF"]'),
        ({"    who: {groups: [officers]}\n    require: [approver]\n"
          "    approvers: {users: [leader]}\n": "    who: {groups: [officers]}\n"},
         "rules id officers-administer require: removed"),
        ({"    aliases: [S]": "    aliases: []", "    aliases: [I]": "    aliases: [I, S]"},
         'levels name INTERNAL aliases: ["I"] -> ["I", "S"]'),
        # A rule whose id is "description" was taken for a description, and
        # the whole version for "nothing but descriptions".
        ({"\nrules:\n": "\nrules:\n  - {id: description, description: wording, effect: deny, "
                        "actions: [open, seal, list, export], who: {users: [leader]}}\n"},
         "rules id description: added"),
    ]
    for edit, shown in cases:
        path = guarded.write_policy({**TWO_PERSON, **edit})
        path.write_text(padding + path.read_text())
        request = ask(guarded, "officer", "policy-apply", policy_path=path,
                      justification="comments")
        with guarded.as_("leader") as v:
            text = v.explain_request(request, path)
        assert shown in text, text[:3000]
        assert "nothing but descriptions" not in text
        assert text.count("+# note") == 450  # every line of the differences


def test_an_approved_new_identity_leaves_no_finding(guarded: Office) -> None:
    # The clerk's laptop is lost: the officer, not cleared for BOARD, installs
    # (with the leader's approval) a version giving her a new identity. Its
    # record withdrawing her old entries was judged without that approval,
    # so every 'doctor' on this intact vault found "may not withdraw its
    # entries", for good.
    from vault.identity import new_identity

    guarded.as_("clerk").seal(io.BytesIO(b"board papers"), level="CONFIDENTIAL",
                              compartments=["BOARD"])
    renewed = {**guarded.ids, "clerk": new_identity("clerk", post_quantum=True)}
    old = guarded.ids
    guarded.ids = renewed
    path = guarded.write_policy(TWO_PERSON)
    guarded.ids = old
    request = ask(guarded, "officer", "policy-apply", policy_path=path,
                  justification="the clerk's laptop was lost")
    with guarded.as_("officer") as v:
        v.apply_policy(path, approvals=[grant(guarded, "leader", request, policy=path)])
    guarded.ids = renewed
    guarded.as_("leader").rotate()
    report = guarded.as_("officer").doctor()
    assert report.ok, report.problems
    assert guarded.as_("officer").verify_audit().size > 0
