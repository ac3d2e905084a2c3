"""Bringing declassification forward lowers a label (docs/POLICY.md §6.4).

A due declassify-on is what ``declassify --due`` and rules with ``when:
{declassify_on: due}`` release, so an earlier declassify-on, or one added
where there was none, lets more people read sooner: whoever may only raise
labels may not do it, through the library, a policy test case, or a
modified library whose records the replay of the log decides again.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from office import OFFICE, Office
from policy_support import AT, make_policy, rule

import vault
from vault.errors import DeniedError, StateError
from vault.policy import Decision, Label, Policy, run_cases
from vault.policy._decide import Engine

RELABEL = rule("relabel", "allow", "reclassify")
EXEMPTIONS = "declassification: {exemptions: [25X1]}\n"


def _reclassify(policy: Policy, old: Label, new: Label, actor: str = "carol",
                **inputs: Any) -> Decision:
    return policy.decide(actor, "reclassify", old, at=AT, inputs={"new_label": new, **inputs})


def _internal(declassify_on: str | None = None, **fields: Any) -> Label:
    return Label("INTERNAL", declassify_on=declassify_on, **fields)


# -- the rule ---------------------------------------------------------------------


@pytest.mark.parametrize(("before", "after"), [
    ("2045-01-01", "2000-01-01"),  # pulled into the past
    ("2045-01-01", "2044-12-31T23:59:59Z"),  # a second earlier is earlier
    (None, "2099-01-01"),  # newly added where there was none
    ("event:end of the project", "2060-01-01"),  # an event is never due
    ("exempt:25X1", "P1Y"),  # a bare exemption is never due either
    ("exempt:25X1@2050-01-01", "2049-01-01"),
    ("P10Y", "P1Y"),  # durations after the same creation
])
def test_an_earlier_declassify_on_is_lowering(before: str | None, after: str) -> None:
    policy = make_policy(RELABEL, EXEMPTIONS)
    created = AT - timedelta(days=1)
    old = _internal(before, created=created)
    new = _internal(after, created=created)
    d = _reclassify(policy, old, new, justification="typo")
    assert d.rule_ids == ["builtin:no-write-down"]
    assert "brings declassification forward" in d.reasons[0]
    assert d.obligations == ["justification"]


@pytest.mark.parametrize(("before", "after"), [
    ("2030-01-01", "2045-01-01"),  # pushed back
    ("2030-01-01", None),  # removed: never due
    ("2030-01-01", "event:end of the project"),
    ("2030-01-01", "exempt:25X1"),
    ("2030-01-01", "2030-01-01T00:00:00Z"),  # the same instant, written otherwise
    (None, None),
    ("event:end of the project", "event:another event"),
])
def test_a_later_or_removed_declassify_on_is_not_lowering(before: str | None,
                                                          after: str | None) -> None:
    policy = make_policy(RELABEL, EXEMPTIONS)
    d = _reclassify(policy, _internal(before), _internal(after))
    assert d.allowed and d.obligations == []


def test_a_duration_counts_from_the_creation_each_label_carries() -> None:
    policy = make_policy(RELABEL)
    old = _internal("2040-01-01")
    # P10Y after a creation in 1999 is due in 2009: long before 2040.
    backdated = _internal("P10Y", created=datetime(1999, 1, 1, tzinfo=UTC))
    d = _reclassify(policy, old, backdated, justification="x")
    assert d.rule_ids == ["builtin:no-write-down"]
    # Without its creation time a duration is never due, as for the replay.
    assert _reclassify(policy, old, _internal("P10Y")).allowed


def test_a_rule_with_may_lower_brings_it_forward_with_a_justification() -> None:
    policy = make_policy(rule("downgrade", "allow", "reclassify", "{groups: [leads]}",
                              may_lower="true"))
    old, new = _internal("2045-01-01"), _internal("2026-01-01")
    assert _reclassify(policy, old, new, "alice").rule_ids == ["builtin:justification"]
    d = _reclassify(policy, old, new, "alice", justification="released early")
    assert d.allowed and d.obligations == ["justification"]
    trace = {t["id"]: t["why"] for t in d.trace() if t["kind"] == "check"}
    assert "declassify-on 2026-01-01 brings declassification forward from 2045-01-01" \
        in trace["builtin:no-write-down"]


def test_a_release_rule_for_due_documents_cannot_be_reached_by_relabelling() -> None:
    """Staff may release what is due; pulling a date forward to make it due
    is lowering, which they may not do."""
    policy = make_policy(RELABEL + rule("release-due", "allow", "declassify", "{groups: [staff]}",
                                        when="{declassify_on: due}"))
    old = _internal("2045-01-01")
    assert not policy.decide("carol", "declassify", old, at=AT).allowed
    d = _reclassify(policy, old, _internal("2000-01-01"), justification="x")
    assert d.rule_ids == ["builtin:no-write-down"]


def test_a_policy_test_case_judges_it_the_same_way(tmp_path: Path) -> None:
    cases = tmp_path / "declassify.cases.yaml"
    cases.write_text(f"""\
policy: {OFFICE}
at: 2026-06-01T12:00:00Z
cases:
  - name: a clerk may not bring declassification forward
    actor: clerk
    action: reclassify
    label: {{level: CONFIDENTIAL, compartments: [BOARD], declassify_on: 2045-01-01}}
    inputs:
      justification: typo fix
      new_label: {{level: CONFIDENTIAL, compartments: [BOARD], declassify_on: 2000-01-01}}
    expect: deny
    rule: builtin:no-write-down
  - name: a clerk may not add one where there was none
    actor: clerk
    action: reclassify
    label: {{level: CONFIDENTIAL, compartments: [BOARD]}}
    inputs:
      justification: adding finance
      new_label: {{level: CONFIDENTIAL, compartments: [BOARD, FINANCE], declassify_on: 2099-01-01}}
    expect: deny
    rule: builtin:no-write-down
  - name: a clerk may put it off
    actor: clerk
    action: reclassify
    label: {{level: CONFIDENTIAL, compartments: [BOARD], declassify_on: 2045-01-01}}
    inputs:
      justification: still sensitive
      new_label: {{level: CONFIDENTIAL, compartments: [BOARD], declassify_on: 2050-01-01}}
    expect: allow
    rule: clerks-correct-upward
""")
    report = run_cases(cases)
    assert [r.message for r in report.results] == ["", "", ""]
    assert report.passed


# -- through the vault --------------------------------------------------------------


def _board_minutes(office: Office) -> str:
    with office.as_("leader") as v:
        return v.seal(io.BytesIO(b"board minutes: the merger"), filename="m.txt",
                      level="CONFIDENTIAL", compartments=["BOARD"],
                      declassify_on="2045-01-01", justification="board").id


def test_a_clerk_cannot_bring_declassification_forward(office: Office) -> None:
    doc = _board_minutes(office)
    with office.as_("clerk") as v:
        for changes in ({}, {"add_compartments": ["FINANCE"]}):
            with pytest.raises(DeniedError, match="may_lower"):
                v.reclassify(doc, declassify_on="2000-01-01", justification="typo fix",
                             **changes)
        # Raising stays theirs: a later date and a compartment more.
        raised = v.reclassify(doc, add_compartments=["FINANCE"], declassify_on="2050-01-01",
                              justification="adding finance").label
        assert raised.declassify_on == "2050-01-01"
    with office.as_("leader") as v:
        assert v.declassify(due=True, justification="scheduled release") == []
        # A leader may bring it forward (may_lower), with a justification.
        v.reclassify(doc, declassify_on="2000-01-01", justification="released early")
        [released] = v.declassify(due=True, justification="scheduled release")
        assert released.label.level == "PUBLIC"


def _old_lowering(self: Engine, old: Label, new: Label) -> bool:
    """What a modified library counts as lowering: everything but declassify-on."""
    return (self.rank[new.level] < self.rank[old.level]
            or not old.compartments <= new.compartments
            or not old.caveats <= new.caveats
            or (old.embargo_until is not None
                and (new.embargo_until is None or new.embargo_until < old.embargo_until)))


def test_a_clerk_with_a_modified_library_releases_nothing(office: Office, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The clerk's own copy of the library (own machine, own replay) lets the
    relabel through and records it, signed; everyone else's replay decides it
    again under the policy and does not count it."""
    doc = _board_minutes(office)
    with monkeypatch.context() as patched:
        patched.setattr(Engine, "lowering", _old_lowering)
        with vault.Vault(office.location, office.ids["clerk"],
                         state_dir=tmp_path / "clerk-state") as v:
            v.reclassify(doc, declassify_on="2000-01-01", justification="typo fix")
    with office.as_("leader") as v:
        assert any("clerk was not entitled to reclassify" in p for p in v.doctor().problems)
        assert v.declassify(due=True, justification="scheduled release") == []
        row = v._s.trusted.doc(doc)
        assert row is not None
        assert row.statement["label"]["level"] == "CONFIDENTIAL"
        assert row.statement["label"]["declassify_on"] == "2045-01-01"
    # The clerk's version is not the one the log records: nobody reads it.
    for who in ("outsider", "leader"):
        with pytest.raises(StateError, match="missing from the vault"):
            office.as_(who).open(doc, io.BytesIO())
