"""Model objects (docs/POLICY.md §3-§5): from_dict/to_dict, validation, time."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import KEYS, RECOVERY, make_policy, rule

from vault.errors import PolicyLoadError
from vault.policy import Clearance, Group, Label, Level, Policy, Rule, User, load_policy
from vault.policy._time import parse_declassify_on, parse_duration, parse_time

POLICIES = sorted(p for p in (Path(__file__).parent.parent / "policies").glob("*.yaml")
                  if not p.name.endswith(".cases.yaml"))

names = st.text(st.sampled_from("ABCxyz-09"), min_size=1, max_size=8)
times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1),
                     timezones=st.just(UTC))
declassify = st.one_of(
    st.none(),
    st.dates(min_value=date(1970, 1, 1), max_value=date(2200, 1, 1)).map(str),
    st.builds(lambda y, m: f"P{y}Y{m}M", st.integers(0, 99), st.integers(0, 11)),
    st.just("event:end of the treaty"),
    st.sampled_from(["exempt:25X1", "exempt:50X1-HUM@2060-12-31"]),
)
label_strategy = st.builds(
    Label, level=names, compartments=st.frozensets(names, max_size=3),
    caveats=st.frozensets(names, max_size=2), classified_by=st.none() | names,
    reason=st.none() | st.just("1.4(c)"), derived_from=st.none() | st.just("memo of 2024-01-02"),
    created=st.none() | times, declassify_on=declassify, embargo_until=st.none() | times)


@settings(max_examples=200, deadline=None)
@given(label=label_strategy)
def test_label_round_trips_through_json(label: Label) -> None:
    data = json.loads(json.dumps(label.to_dict()))
    assert Label.from_dict(data) == label
    assert Label.from_dict(data).to_dict() == data


def test_label_to_dict_shape() -> None:
    lab = Label("SECRET", frozenset({"B", "A"}), created=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
                declassify_on="2035-01-01T00:00:00+01:00")
    assert lab.to_dict() == {"level": "SECRET", "compartments": ["A", "B"], "caveats": [],
                             "created": "2025-01-02T03:04:05Z",
                             "declassify_on": "2034-12-31T23:00:00Z"}


@pytest.mark.parametrize(("data", "error"), [
    ({"compartments": []}, "a label needs a level"),
    ({"level": "S", "colour": "red"}, "unknown label field(s): colour"),
    ({"level": "S", "compartments": "A"}, "label compartments must be a list of names"),
    ({"level": "S", "created": 5}, "label created must be RFC 3339 text"),
    ({"level": "S", "created": "2025-01-01T10:00"}, "has no time zone"),
    ({"level": "S", "declassify_on": "soon"}, "expected a date or time, got 'soon'"),
    ({"level": "S", "declassify_on": "P"}, "expected a duration"),
    ({"level": ""}, "non-empty string"),
    ({"level": "S", "reason": " "}, "Label.reason must be non-empty text"),
])
def test_label_from_dict_refuses_bad_data(data: dict[str, object], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=re.escape(error)):
        Label.from_dict(data)


def test_label_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Label("S", created=datetime(2025, 1, 1))
    with pytest.raises(TypeError):
        Label("S", compartments="AB")  # type: ignore[arg-type]


def test_declassify_on_forms() -> None:
    created = datetime(2024, 2, 29, 12, tzinfo=UTC)
    assert Label("S", created=created, declassify_on="P1Y").declassify_at() == \
        datetime(2025, 2, 28, 12, tzinfo=UTC)
    assert Label("S", created=created, declassify_on="P1M2W3D").declassify_at() == \
        datetime(2024, 3, 29, 12, tzinfo=UTC) + timedelta(days=17)
    assert Label("S", declassify_on="2030-05-01").declassify_at() == \
        datetime(2030, 5, 1, tzinfo=UTC)
    assert Label("S", declassify_on="event:x").declassify_at() is None
    assert Label("S", declassify_on="exempt:25X1").declassify_at() is None
    assert parse_declassify_on("exempt:25X1@2050-12-31").when == datetime(2050, 12, 31, tzinfo=UTC)
    # Bounded: a value that could overflow a date is refused, never stored.
    for hostile in ("P9999Y", "P1001Y", "P7900Y9999W99999D"):
        with pytest.raises(ValueError, match="longer than 1000 years"):
            parse_duration(hostile)
    assert parse_time("2025-06-01T10:00:00+02:00") == datetime(2025, 6, 1, 8, tzinfo=UTC)
    for bad in ("2025-02-30", "2025-06-01 10:00:00Z", "tomorrow"):
        with pytest.raises(ValueError):
            parse_time(bad)


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.stem)
def test_shipped_policy_round_trips_through_from_dict(path: Path) -> None:
    policy = load_policy(path, template=True)
    data = json.loads(json.dumps(policy.to_dict()))
    again = Policy.from_dict(data)
    assert again.to_dict() == data
    assert again.hash != policy.hash  # a dict has no file bytes: hash of canonical JSON
    assert Policy.from_dict(data).hash == again.hash


def test_policy_from_dict_reports_paths() -> None:
    data = load_policy(POLICIES[0], template=True).to_dict()
    data["rules"][0]["effect"] = "permit"
    data["users"]["ghost"] = {"recipient": "age1nope", "signing_key": "ed25519:AA==",
                              "clearance": "Public"}
    with pytest.raises(PolicyLoadError) as info:
        Policy.from_dict(data, filename="api")
    messages = [str(p) for p in info.value.problems]
    assert "api: at rules[0].effect: rule security-administers effect is 'permit'; expected " \
        "one of: allow, deny" in messages
    assert any(m.startswith("api: at users.ghost.recipient: user ghost recipient: 'age1nope' ")
               for m in messages)
    with pytest.raises(TypeError):
        Policy.from_dict([])  # type: ignore[arg-type]


def test_sub_objects_from_dict() -> None:
    assert Level.from_dict({"name": "SECRET", "aliases": ["S"]}, rank=3) == \
        Level("SECRET", 3, aliases=("S",))
    assert Clearance.from_dict({"level": "S", "compartments": ["A"]}) == \
        Clearance("S", frozenset({"A"}))
    assert Clearance.from_dict("S") == Clearance("S")
    user = User.from_dict("ann", {"recipient": KEYS[0][0], "signing_key": KEYS[0][1],
                                  "clearance": "S", "roles": ["r"]})
    assert user.to_dict() == {"recipient": KEYS[0][0], "signing_key": KEYS[0][1],
                              "clearance": {"level": "S", "compartments": []}, "roles": ["r"]}
    assert Group.from_dict("g", {"members": []}).to_dict() == {"members": []}
    r = Rule.from_dict({"id": "x", "effect": "allow", "actions": ["open"],
                        "who": {"anyone": True}, "label": {"max": "S"}})
    assert Rule.from_dict(r.to_dict()) == r
    with pytest.raises(ValueError, match="rule x effect is 'maybe'"):
        Rule.from_dict({"id": "x", "effect": "maybe", "actions": ["open"], "who": {"anyone": True}})
    with pytest.raises(ValueError, match="user ann signing_key"):
        User.from_dict("ann", {"recipient": KEYS[0][0], "signing_key": "ed25519:x",
                               "clearance": "S"})


def test_policy_exposes_what_the_vault_needs() -> None:
    policy = make_policy(rule("admins", "allow", "administer", "{users: [dave]}"),
                         extra="labelling: mandatory\n")
    assert [lvl.name for lvl in policy.levels] == ["PUBLIC", "INTERNAL", "CONFIDENTIAL", "SECRET"]
    assert policy.recovery == (RECOVERY,)
    assert policy.labelling_mandatory
    assert policy.default_label == Label("PUBLIC")
    alice = policy.users["alice"]
    assert (alice.recipient, alice.signing_key) == KEYS[0]
    assert alice.groups == {"leads"} and policy.users["dave"].roles == {"approver"}
    assert policy.canonical_level("c") == "CONFIDENTIAL"
    assert policy.administrators() == ["dave"]
    with pytest.raises(TypeError):
        policy.users["x"] = alice  # type: ignore[index]
