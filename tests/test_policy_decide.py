"""Decision semantics (docs/POLICY.md §6): default deny, deny wins, no read up,
no seal above, no write down, required inputs, embargo and time conditions."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import AT, CLEARANCES, COMPARTMENTS, LEVELS, make_policy, rule

from vault.errors import DeniedError, UsageError
from vault.policy import ACTIONS, Label, Policy

OPEN_ALL = rule("open-all", "allow", "open, export, list")


def label(level: str, *compartments: str, **fields: object) -> Label:
    return Label(level, frozenset(compartments), **fields)  # type: ignore[arg-type]


def test_default_deny_for_every_action() -> None:
    policy = make_policy(" []\n")
    for action in ACTIONS:
        lab = None if action == "administer" else label("PUBLIC")
        inputs = {"new_label": label("SECRET")} if action == "reclassify" else {}
        d = policy.decide("alice", action, lab, at=AT, inputs=inputs)
        assert not d.allowed
        assert d.rule_ids == ["builtin:default-deny"]
        assert d.reasons and "no rule allows alice" in d.reasons[0]


def test_explicit_deny_beats_allow() -> None:
    policy = make_policy(OPEN_ALL + rule("no-bob", "deny", "open", "{users: [bob]}",
                                         description="Bob is on leave."))
    d = policy.decide("bob", "open", label("PUBLIC"), at=AT)
    assert not d.allowed
    assert d.rule_ids == ["no-bob"]
    assert d.reasons == ["denied by rule no-bob: Bob is on leave."]
    assert policy.decide("alice", "open", label("PUBLIC"), at=AT).rule_ids == ["open-all"]


def test_no_read_up_on_level_and_compartments() -> None:
    policy = make_policy(OPEN_ALL)
    cases = [
        ("bob", label("CONFIDENTIAL", "A"), True),
        ("bob", label("SECRET"), False),
        ("bob", label("CONFIDENTIAL", "B"), False),
        ("bob", label("INTERNAL", "A", "B"), False),
        ("carol", label("INTERNAL"), True),
        ("alice", label("SECRET", "A", "B", "C"), True),
    ]
    for actor, lab, allowed in cases:
        for action in ("open", "export"):
            d = policy.decide(actor, action, lab, at=AT)
            assert d.allowed is allowed, (actor, action, lab)
            if not allowed:
                assert d.rule_ids == ["builtin:no-read-up"]
                assert d.reasons[0].startswith("no read up: ")
    # Listing shows labels only: no dominance needed.
    assert policy.decide("carol", "list", label("SECRET", "A"), at=AT).allowed


def test_read_up_reasons_name_the_gap() -> None:
    policy = make_policy(OPEN_ALL)
    [level] = policy.decide("bob", "open", label("SECRET"), at=AT).reasons
    assert level == ("no read up: bob's clearance CONFIDENTIAL//A does not dominate SECRET "
                     "(level SECRET is above CONFIDENTIAL)")
    [comp] = policy.decide("bob", "open", label("CONFIDENTIAL", "A", "C"), at=AT).reasons
    assert comp.endswith("(not cleared for C)")


def test_nobody_seals_above_their_clearance() -> None:
    policy = make_policy(rule("seal-all", "allow", "seal"))
    assert policy.decide("carol", "seal", label("INTERNAL"), at=AT).allowed
    for lab in (label("CONFIDENTIAL"), label("INTERNAL", "A")):
        d = policy.decide("carol", "seal", lab, at=AT)
        assert d.rule_ids == ["builtin:no-seal-above"]


def _reclassify(policy: Policy, actor: str, old: Label, new: Label, **inputs: object) -> object:
    return policy.decide(actor, "reclassify", old, at=AT, inputs={"new_label": new, **inputs})


def test_lowering_needs_a_may_lower_rule() -> None:
    policy = make_policy(rule("relabel", "allow", "reclassify"))
    old = label("SECRET", "A", caveats=frozenset({"X"}))
    lowered = [
        label("CONFIDENTIAL", "A", caveats=frozenset({"X"})),  # level down
        label("SECRET", caveats=frozenset({"X"})),  # compartment removed
        label("SECRET", "A"),  # caveat removed
    ]
    for new in lowered:
        d = _reclassify(policy, "alice", old, new, justification="because")
        assert d.rule_ids == ["builtin:no-write-down"], new  # type: ignore[attr-defined]
    # Raising needs neither may_lower nor a justification.
    raised = label("SECRET", "A", "B", caveats=frozenset({"X", "Y"}))
    d = _reclassify(policy, "alice", old, raised)
    assert d.allowed and d.obligations == []  # type: ignore[attr-defined]


def test_shortening_an_embargo_is_lowering() -> None:
    policy = make_policy(rule("relabel", "allow", "reclassify"))
    old = label("INTERNAL", embargo_until=AT + timedelta(days=30))
    for new in (label("INTERNAL"), label("INTERNAL", embargo_until=AT + timedelta(days=1))):
        d = _reclassify(policy, "carol", old, new, justification="released early")
        assert d.rule_ids == ["builtin:no-write-down"]  # type: ignore[attr-defined]
    later = label("INTERNAL", embargo_until=AT + timedelta(days=60))
    assert _reclassify(policy, "carol", old, later).allowed  # type: ignore[attr-defined]


def test_lowering_always_needs_a_justification() -> None:
    policy = make_policy(rule("downgrade", "allow", "reclassify", "{groups: [leads]}",
                              may_lower="true"))
    old, new = label("SECRET", "A"), label("INTERNAL")
    # Spaces, joiners and letters that draw nothing alone are shown blank:
    # none is a justification given (vault/_text.py, says_something).
    for text in (None, "", "   ", "\u3000", "\u200d\u200c\u200d", " \u200d\u00a0", "\u3164"):
        inputs = {} if text is None else {"justification": text}
        d = _reclassify(policy, "alice", old, new, **inputs)
        assert d.rule_ids == ["builtin:justification"]  # type: ignore[attr-defined]
        assert d.obligations == ["justification"]  # type: ignore[attr-defined]
    d = _reclassify(policy, "alice", old, new, justification="published")
    assert d.allowed and d.rule_ids == ["downgrade"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        _reclassify(policy, "alice", old, new, justification=42)


def test_reclassify_checks_both_labels_against_the_clearance() -> None:
    policy = make_policy(rule("relabel", "allow", "reclassify", "{users: [bob]}",
                              may_lower="true"))
    up = _reclassify(policy, "bob", label("CONFIDENTIAL", "A"), label("SECRET", "A"))
    assert up.rule_ids == ["builtin:no-seal-above"]  # type: ignore[attr-defined]
    read = _reclassify(policy, "bob", label("SECRET", "A"), label("CONFIDENTIAL", "A"),
                       justification="x")
    assert read.rule_ids == ["builtin:no-read-up"]  # type: ignore[attr-defined]


def test_declassify_always_needs_a_justification_and_names_its_principals() -> None:
    policy = make_policy(rule("release", "allow", "declassify", "{groups: [leads]}"))
    lab = label("SECRET", "A", caveats=frozenset({"X"}))
    d = policy.decide("alice", "declassify", lab, at=AT)
    assert d.rule_ids == ["builtin:justification"]
    d = policy.decide("alice", "declassify", lab, at=AT, inputs={"justification": "released"})
    assert d.allowed and d.obligations == ["justification"]
    assert policy.declassified_label(lab) == Label("PUBLIC")
    assert policy.decide("bob", "declassify", label("INTERNAL"), at=AT,
                         inputs={"justification": "x"}).rule_ids == ["builtin:default-deny"]


def test_declassify_on_due_condition() -> None:
    policy = make_policy(rule("due", "allow", "declassify", "{users: [alice]}",
                              when="{declassify_on: due}"))
    created = AT - timedelta(days=3700)
    inputs = {"justification": "automatic"}
    due = label("SECRET", created=created, declassify_on="P10Y")
    assert due.declassify_at() is not None and due.declassify_at() <= AT  # type: ignore[operator]
    assert policy.decide("alice", "declassify", due, at=AT, inputs=inputs).allowed
    for pending in (label("SECRET", created=AT, declassify_on="P10Y"),
                    label("SECRET", declassify_on="P10Y"),  # no creation time: unknown
                    label("SECRET", declassify_on="event:end of the project"),
                    label("SECRET")):
        d = policy.decide("alice", "declassify", pending, at=AT, inputs=inputs)
        assert d.rule_ids == ["builtin:default-deny"], pending


def test_two_person_rule() -> None:
    policy = make_policy(rule("two", "allow", "declassify", "{groups: [leads]}",
                              require="[justification, approver]",
                              approvers="{roles: [approver], users: [alice]}"))
    lab = label("SECRET", "A")

    def decide(*approvers: str) -> object:
        inputs = {"justification": "ok", "approvers": list(approvers)}
        return policy.decide("alice", "declassify", lab, at=AT, inputs=inputs)

    need = "a second person's approval is required (rule two, by user alice; role approver)"
    expected = {
        (): need,
        ("mallory",): f"{need}; mallory does not count: not a user of this policy",
        ("alice",): f"{need}; alice does not count: nobody approves their own request",
        ("bob",): f"{need}; bob does not count: not among user alice; role approver (rule two)",
    }
    for approvers, reason in expected.items():
        d = decide(*approvers)
        assert d.rule_ids == ["builtin:approver"] and d.reasons == [reason]  # type: ignore[attr-defined]
        assert d.obligations == ["approver", "justification"]  # type: ignore[attr-defined]
    d = decide("dave")
    assert d.allowed and d.rule_ids == ["two"]  # type: ignore[attr-defined]
    d = decide("bob", "dave", "dave")  # one who counts is enough; names count once
    assert d.allowed  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="inputs\\['approver'\\] is gone"):
        policy.decide("alice", "declassify", lab, at=AT, inputs={"justification": "ok",
                                                                 "approver": "dave"})
    with pytest.raises(TypeError):
        policy.decide("alice", "declassify", lab, at=AT, inputs={"approvers": "dave"})


def test_approver_must_be_cleared() -> None:
    policy = make_policy(rule("two", "allow", "export", require="[approver]"))
    d = policy.decide("alice", "export", label("SECRET", "B"), at=AT,
                      inputs={"approvers": ["bob"]})
    assert d.reasons == ["a second person's approval is required (rule two); bob does not "
                         "count: not cleared for SECRET//B"]
    assert policy.decide("alice", "export", label("CONFIDENTIAL", "A"), at=AT,
                         inputs={"approvers": ["bob"]}).allowed


def test_approvals_count_distinct_acceptable_people() -> None:
    policy = make_policy(rule("three", "allow", "export", "{users: [erin]}",
                              require="[approver]", approvals="2"))
    lab = label("PUBLIC")
    d = policy.decide("erin", "export", lab, at=AT, inputs={"approvers": ["bob"]})
    assert d.reasons == ["2 approvals by other people are required (rule three); 1 counted "
                         "(bob)"]
    d = policy.decide("erin", "export", lab, at=AT, inputs={"approvers": ["bob", "erin"]})
    assert not d.allowed and "erin does not count" in d.reasons[0]
    d = policy.decide("erin", "export", lab, at=AT, inputs={"approvers": ["bob", "carol"]})
    assert d.allowed
    trace = [t for t in d.trace() if t["id"] == "builtin:approver"]
    assert trace == [{"kind": "check", "id": "builtin:approver", "passed": True,
                      "why": "approved by bob, carol (rule three: 2 of 2)"}]


def test_requirements_of_every_matching_allow_rule_apply() -> None:
    policy = make_policy(OPEN_ALL + rule("secret-two", "allow", "open",
                                         label="{min: SECRET}", require="[approver]"))
    assert policy.decide("alice", "open", label("CONFIDENTIAL"), at=AT).allowed
    d = policy.decide("alice", "open", label("SECRET"), at=AT)
    assert d.rule_ids == ["builtin:approver"]
    d = policy.decide("alice", "open", label("SECRET"), at=AT, inputs={"approvers": ["dave"]})
    assert d.allowed and d.rule_ids == ["open-all", "secret-two"]


def test_embargo_holds_back_rules_that_do_not_mention_it() -> None:
    policy = make_policy(OPEN_ALL + rule("leads-early", "allow", "open", "{groups: [leads]}",
                                         when="{embargo: active}"))
    until = AT + timedelta(days=10)
    lab = label("INTERNAL", embargo_until=until)
    d = policy.decide("carol", "open", lab, at=AT)
    assert d.rule_ids == ["builtin:embargo", "open-all"]
    assert d.reasons == ["under embargo until 2025-06-11T12:00:00Z: no rule lets carol open it "
                         "before then"]
    assert policy.decide("alice", "open", lab, at=AT).rule_ids == ["leads-early"]
    # At the embargo's end the ordinary rule applies, and the early one no longer matches.
    assert policy.decide("carol", "open", lab, at=until).rule_ids == ["open-all"]
    assert policy.decide("alice", "open", lab, at=until).rule_ids == ["open-all"]
    # The sealed file may be conveyed during the embargo; only opening is held back.
    assert policy.decide("carol", "export", lab, at=AT).allowed


def test_from_until_window() -> None:
    policy = make_policy(rule("window", "allow", "open",
                              when="{from: 2025-06-01, until: 2025-07-01T00:00:00+02:00}"))
    lab = label("PUBLIC")
    start = datetime(2025, 6, 1, tzinfo=UTC)
    end = datetime(2025, 6, 30, 22, tzinfo=UTC)
    assert not policy.decide("erin", "open", lab, at=start - timedelta(seconds=1)).allowed
    assert policy.decide("erin", "open", lab, at=start).allowed
    assert policy.decide("erin", "open", lab, at=end - timedelta(seconds=1)).allowed
    assert not policy.decide("erin", "open", lab, at=end).allowed


def test_unknown_actor_and_unknown_label_fail_closed() -> None:
    policy = make_policy(OPEN_ALL)
    assert policy.decide("mallory", "open", label("PUBLIC"), at=AT).rule_ids == [
        "builtin:unknown-actor"]
    for lab, what in ((label("S"), "level 'S'"), (label("SECRET", "Z"), "compartment Z"),
                      (label("SECRET", caveats=frozenset({"Q"})), "caveat Q")):
        d = policy.decide("alice", "open", lab, at=AT)
        assert d.rule_ids == ["builtin:unknown-label"]
        assert d.reasons == [f"the label names {what}, unknown to this policy"]


def test_administer_takes_no_label_and_lists_administrators() -> None:
    policy = make_policy(rule("admins", "allow", "administer", "{roles: [approver]}"))
    assert policy.decide("dave", "administer", None, at=AT).allowed
    assert not policy.decide("alice", "administer", None, at=AT).allowed
    assert policy.administrators() == ["dave"]


def test_api_misuse_raises_type_and_value_errors() -> None:
    policy = make_policy(OPEN_ALL)
    with pytest.raises(ValueError, match="unknown action 'read'"):
        policy.decide("alice", "read", label("PUBLIC"))
    with pytest.raises(TypeError, match="needs a Label"):
        policy.decide("alice", "open", None)
    with pytest.raises(TypeError):
        policy.decide("alice", "open", {"level": "PUBLIC"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        policy.decide("alice", "open", label("PUBLIC"), at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="new_label"):
        policy.decide("alice", "reclassify", label("PUBLIC"))
    with pytest.raises(TypeError):
        policy.decide("alice", "open", label("PUBLIC"), inputs=[("a", 1)])  # type: ignore[arg-type]
    assert policy.decide("alice", "open", label("PUBLIC"), at="2025-01-01").allowed


def test_decision_to_dict_is_json_and_complete() -> None:
    policy = make_policy(rule("relabel", "allow", "reclassify", "{users: [alice]}",
                              may_lower="true"))
    d = policy.decide("alice", "reclassify", label("SECRET", "A"), at=AT,
                      inputs={"new_label": label("INTERNAL"), "justification": "why"})
    data = json.loads(json.dumps(d.to_dict()))
    assert data == {
        "outcome": "allowed", "allowed": True, "actor": "alice", "action": "reclassify",
        "label": {"level": "SECRET", "compartments": ["A"], "caveats": []},
        "at": "2025-06-01T12:00:00Z",
        "inputs": {"new_label": {"level": "INTERNAL", "compartments": [], "caveats": []},
                   "justification": "why"},
        "rule_ids": ["relabel"], "reasons": ["allowed by rule relabel"],
        "obligations": ["justification"], "policy": policy.hash,
    }


def test_explain_lists_every_rule_once_with_its_reason() -> None:
    rules = (OPEN_ALL + rule("no-bob", "deny", "open", "{users: [bob]}")
             + rule("seal-leads", "allow", "seal", "{groups: [leads]}"))
    policy = make_policy(rules)
    d = policy.decide("bob", "open", label("PUBLIC"), at=AT)
    text = d.explain()
    assert text.splitlines()[0] == "DENIED: bob open PUBLIC"
    assert "  MATCH allow open-all  anyone" in text
    assert "  MATCH deny  no-bob    bob is named" in text
    assert "rules for other actions:\n  seal-leads" in text
    assert "built-in checks: not reached (the rules decided)" in text
    trace = d.trace()
    assert [t["id"] for t in trace if t["kind"] == "rule"] == ["open-all", "no-bob", "seal-leads"]
    d = policy.decide("alice", "open", label("SECRET", "C"), at=AT)
    assert "  pass  builtin:no-read-up  alice's clearance SECRET//A/B/C dominates SECRET//C" \
        in d.explain()
    assert "label     level SECRET; compartments C" in d.explain()
    assert d.explain().splitlines()[0] == "ALLOWED: alice open SEKRIT//CHARLIE"


# -- labels built from input (docs/POLICY.md §5.2) ----------------------------


def test_make_label_canonicalises_and_applies_defaults() -> None:
    policy = make_policy(OPEN_ALL, extra="default_label: {level: INTERNAL, compartments: [A]}\n"
                         "declassification: {default: P10Y, limit: P25Y}\n")
    assert policy.make_label() == Label("INTERNAL", frozenset({"A"}), declassify_on="P10Y")
    assert policy.make_label(level="s").level == "SECRET"
    assert policy.make_label(level="C", compartments=["B"]).compartments == {"B"}
    with pytest.raises(UsageError, match="unknown level 'TOP'"):
        policy.make_label(level="TOP")
    with pytest.raises(UsageError) as info:
        policy.make_label(level="SECRET", compartments=["a"])
    assert info.value.hint == "did you mean 'A'?"
    with pytest.raises(UsageError, match="declassify-on"):
        policy.make_label(level="SECRET", declassify_on="soon")
    with pytest.raises(UsageError, match="no time zone"):
        policy.make_label(level="SECRET", embargo_until="2025-01-01T10:00")


def test_mandatory_labelling_is_a_denial_with_a_decision() -> None:
    policy = make_policy(OPEN_ALL, extra="labelling: mandatory\n")
    with pytest.raises(DeniedError) as info:
        policy.make_label(actor="alice")
    err = info.value
    assert err.exit_code == 3
    assert err.decision.rule_ids == ["builtin:mandatory-labelling"]
    assert err.decision.actor == "alice" and not err.decision.allowed
    assert err.decision.trace()[0]["id"] == "builtin:mandatory-labelling"
    assert policy.make_label(level="PUBLIC").level == "PUBLIC"


def test_label_requirements_and_declassify_limits() -> None:
    policy = make_policy(rule("seal", "allow", "seal", "{users: [alice]}"), extra=(
        "label_requires: [classified_by, reason]\n"
        "declassification: {default: P10Y, limit: P25Y, exemptions: [25X1]}\n"))

    def seal(**fields: object) -> object:
        lab = policy.make_label(level="SECRET", classified_by="alice", created=AT, **fields)
        return policy.decide("alice", "seal", lab, at=AT)

    d = seal()
    assert d.rule_ids == ["builtin:label-requirements"]  # type: ignore[attr-defined]
    assert d.reasons == ["label lacks reason (or derived_from)"]  # type: ignore[attr-defined]
    assert seal(reason="1.4(c)").allowed  # type: ignore[attr-defined]
    assert seal(derived_from="memo 12").allowed  # type: ignore[attr-defined]
    assert seal(reason="r", declassify_on="P25Y").allowed  # type: ignore[attr-defined]
    assert seal(reason="r", declassify_on="event:treaty signed").allowed  # type: ignore[attr-defined]
    assert seal(reason="r", declassify_on="exempt:25X1@2080-01-01").allowed  # type: ignore[attr-defined]
    for bad in ("P26Y", "2051-06-02", "exempt:50X1-HUM"):
        d = seal(reason="r", declassify_on=bad)
        assert d.rule_ids == ["builtin:declassify-on"], bad  # type: ignore[attr-defined]


def test_cleared_users_and_dominance() -> None:
    policy = make_policy(OPEN_ALL)
    assert policy.cleared_users(label("CONFIDENTIAL", "A")) == ["alice", "bob", "dave"]
    assert policy.cleared_users(label("PUBLIC")) == sorted(CLEARANCES)
    assert not policy.dominates(policy.users["alice"].clearance, label("TOP"))
    assert policy.level_rank("i") == 1
    assert policy.format_label(label("SECRET", "C", "A", caveats=frozenset({"X"}))) == \
        "SEKRIT//A/CHARLIE//X"


# -- properties ----------------------------------------------------------------

labels = st.builds(
    lambda lvl, comps: Label(lvl, frozenset(comps)),
    st.sampled_from(LEVELS), st.sets(st.sampled_from(COMPARTMENTS)))
actors = st.sampled_from(sorted(CLEARANCES))
OPEN_POLICY = make_policy(OPEN_ALL)


@settings(max_examples=200, deadline=None)
@given(actor=actors, lab=labels, action=st.sampled_from(["open", "export"]))
def test_dominance_decides_reading(actor: str, lab: Label, action: str) -> None:
    policy = OPEN_POLICY
    dominated = policy.dominates(policy.users[actor].clearance, lab)
    d = policy.decide(actor, action, lab, at=AT)
    assert d.allowed is dominated
    assert ("builtin:no-read-up" in d.rule_ids) is not dominated


def _random_rules(draw: st.DrawFn) -> list[str]:
    rules = []
    for i in range(draw(st.integers(0, 6))):
        effect = draw(st.sampled_from(["allow", "deny"]))
        actions = draw(st.lists(st.sampled_from(["seal", "open", "export", "list"]),
                                min_size=1, max_size=3, unique=True))
        who = draw(st.sampled_from(["{anyone: true}", "{groups: [staff]}",
                                    "{groups: [leads]}", "{users: [bob, erin]}"]))
        extra = {}
        if draw(st.booleans()):
            extra["label"] = f"{{max: {draw(st.sampled_from(LEVELS))}}}"
        if draw(st.booleans()):
            extra["when"] = "{embargo: active}"
        rules.append(rule(f"r{i}", effect, ", ".join(actions), who, **extra))
    return rules


@st.composite
def requests(draw: st.DrawFn) -> tuple[list[str], str, str, Label]:
    lab = draw(labels)
    if draw(st.booleans()):
        lab = lab.replace(embargo_until=AT + timedelta(days=1))
    return (_random_rules(draw), draw(actors), draw(st.sampled_from(["seal", "open", "export",
                                                                       "list"])), lab)


@settings(max_examples=60, deadline=None)
@given(req=requests(), position=st.integers(0, 6))
def test_explicit_deny_always_wins(req: tuple[list[str], str, str, Label],
                                   position: int) -> None:
    rules, actor, action, lab = req
    rules.insert(min(position, len(rules)), rule("veto", "deny", action))
    d = make_policy("".join(rules)).decide(actor, action, lab, at=AT)
    assert not d.allowed
    assert "veto" in d.rule_ids
    assert all(i.startswith("r") or i == "veto" for i in d.rule_ids)


@settings(max_examples=40, deadline=None)
@given(req=requests(), seed=st.integers(0, 1000))
def test_rule_order_does_not_change_the_outcome(req: tuple[list[str], str, str, Label],
                                                seed: int) -> None:
    rules, actor, action, lab = req
    first = make_policy("".join(rules) or " []\n").decide(actor, action, lab, at=AT)
    random.Random(seed).shuffle(rules)
    second = make_policy("".join(rules) or " []\n").decide(actor, action, lab, at=AT)
    assert first.allowed == second.allowed
    assert sorted(first.rule_ids) == sorted(second.rule_ids)
    trace_ids = [t["id"] for t in first.trace() if t["kind"] == "rule"]
    assert sorted(trace_ids) == sorted(f"r{i}" for i in range(len(rules)))
