"""No state record a named insider signs takes the vault down
(docs/DESIGN.md §8.2, THREAT-MODEL.md §17).

Hypothesis writes `state` members of every kind -- well-formed ones with
one field changed, and arbitrary JSON -- signed by the clerk with a
modified library. Whatever they hold, the replay names them and goes on:
everyone else still lists, seals, opens and reads the log, and `doctor`
reports findings instead of failing. Folder backend: the replay is the
same code for both.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from office import Office, make_office

from vault._trust.journal import STATE_KINDS

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    office = make_office(tmp_path_factory.mktemp("hostile-state"))
    office.as_("clerk").seal(io.BytesIO(b"invoice"), filename="i.txt", level="CONFIDENTIAL",
                             compartments=["FINANCE"])
    return office


def _genuine(office: Office) -> dict[str, dict[str, Any]]:
    """One real member of each kind, from the log, to mutate."""
    found: dict[str, dict[str, Any]] = {}
    for line in office.raw.audit_lines():
        state = json.loads(line).get("state") or {}
        for kind, member in state.items():
            found.setdefault(kind, member)
    return found


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    obj[path[0]] = _replace(obj[path[0]], path[1:], value)
    return obj


@st.composite
def hostile(draw: st.DrawFn, genuine: dict[str, dict[str, Any]]) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from([*STATE_KINDS, "bogus"]), min_size=1, max_size=3,
                          unique=True))
    state: dict[str, Any] = {}
    for kind in kinds:
        if kind in genuine and draw(st.booleans()):
            member = copy.deepcopy(genuine[kind])
            path = draw(st.sampled_from(_paths(member)))
            state[kind] = _replace(member, path, draw(JSON))
        else:
            state[kind] = draw(JSON)
    return state


def _sign(office: Office, state: dict[str, Any], action: str, outcome: str) -> None:
    me = office.ids["clerk"]
    with office.as_("officer") as v:
        v.audit.append({"actor": {"name": "clerk", "key": me.fingerprint}, "action": action,
                        "doc": None, "label": None, "outcome": outcome, "rules": [],
                        "reason": "", "policy": None, "state": state}, me.signing_key)


def test_hostile_state_members_never_stop_the_vault(office: Office, tmp_path: Path) -> None:
    genuine = _genuine(office)

    @settings(max_examples=100, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(state=hostile(genuine), action=st.sampled_from(["seal", "grant", "ls"]),
           outcome=st.sampled_from(["allowed", "done"]))
    def attack(state: dict[str, Any], action: str, outcome: str) -> None:
        _sign(office, state, action, outcome)
        with office.as_("leader") as v:
            v.ls()
            doc = v.seal(io.BytesIO(b"after"), filename="a.txt", level="CONFIDENTIAL",
                         compartments=["FINANCE"]).id
            out = io.BytesIO()
            v.open(doc, out)
            assert out.getvalue() == b"after"

    attack()
    report = office.as_("officer").doctor()
    assert report.problems  # the findings are named, and nothing failed
    assert all("internal" not in p for p in report.problems)
