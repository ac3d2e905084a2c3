"""Whoever makes a class key cannot lock cleared colleagues out of it
(docs/DESIGN.md §3.5, FORMAT.md §14.3).

The deputy, cleared for SECRET//BOARD, makes its next generation with a
modified client: granted to themselves alone, or with a junk entry for the
leader (its digest recorded, so nobody would grant the leader again). Done
naively, that generation is the one everyone then seals to, the leader's
own new documents are closed to the leader, and the leader's `rotate`
even rewraps older documents to it. Run on both backends.
"""

from __future__ import annotations

import io

import pytest
from office import Office

from vault._ops import keys as keys_mod
from vault.errors import StorageError


def _seal(office: Office, who: str, data: bytes) -> str:
    return office.as_(who).seal(io.BytesIO(data), filename="m.txt", level="SECRET",
                                compartments=["BOARD"], justification="minutes").id


def _opens(office: Office, who: str, doc: str) -> bytes:
    out = io.BytesIO()
    office.as_(who).open(doc, out)
    return out.getvalue()


def _deputy_makes_a_generation(office: Office, doc: str,
                               monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    leader = office.ids["leader"].recipient
    with office.as_("deputy") as v, monkeypatch.context() as m:
        s = v._s
        if how == "only for themselves":
            m.setattr(keys_mod, "cleared_users",
                      lambda policy, cls: [policy.users["deputy"]])
        else:
            real = keys_mod.entry_bytes
            m.setattr(keys_mod, "entry_bytes", lambda vault_id, ck, identity, owner: (
                b"junk" if owner == leader else real(vault_id, ck, identity, owner)))
        row = s.trusted.doc(doc)
        assert row is not None
        ck = s.trusted.key(row.key_id)
        assert ck is not None
        with s.lock():
            keys_mod.create_generation(s, ck.cls)


def test_a_generation_its_maker_kept_to_themselves_does_not_count(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _seal(office, "leader", b"first minutes")
    # The deputy's own client says so: the generation did not take effect.
    with pytest.raises(StorageError, match="did not take effect"):
        _deputy_makes_a_generation(office, first, monkeypatch, "only for themselves")
    second = _seal(office, "leader", b"second minutes")
    assert _opens(office, "leader", second) == b"second minutes"
    assert _opens(office, "deputy", second) == b"second minutes"
    problems = office.as_("officer").doctor().problems
    assert any("is not given to leader, cleared for it" in p for p in problems), problems


def test_a_junk_entry_from_the_keys_maker_does_not_lock_the_leader_out(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _seal(office, "leader", b"first minutes")
    _deputy_makes_a_generation(office, first, monkeypatch, "junk for the leader")
    # The leader's own doctor says what is wrong with their entry ...
    problems = office.as_("leader").doctor().problems
    assert any("your keyring entry for SECRET//BOARD generation 2" in p
               and "does not hold the class key" in p for p in problems), problems
    # ... and their next seal makes a generation everyone cleared holds.
    second = _seal(office, "leader", b"second minutes")
    assert _opens(office, "leader", second) == b"second minutes"
    assert _opens(office, "deputy", second) == b"second minutes"
    report = office.as_("leader").rotate()
    assert first in report.rewrapped  # from generation 1 to the leader's new one
    for doc, text in ((first, b"first minutes"), (second, b"second minutes")):
        assert _opens(office, "leader", doc) == text
        assert _opens(office, "deputy", doc) == text
    assert office.as_("officer").doctor().ok


def test_rotate_gives_the_leader_a_key_they_hold_instead_of_rewrapping_to_the_junk(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _seal(office, "leader", b"first minutes")
    _deputy_makes_a_generation(office, first, monkeypatch, "junk for the leader")
    report = office.as_("leader").rotate()
    assert report.rotated == ["SECRET//BOARD -> generation 3 (your entry for generation 2 does "
                              "not give you its key)"], report
    assert _opens(office, "leader", first) == b"first minutes"
    second = _seal(office, "leader", b"second minutes")
    assert _opens(office, "leader", second) == b"second minutes"
    assert office.as_("officer").doctor().ok
