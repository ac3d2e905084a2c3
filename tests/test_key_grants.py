"""A grant gives a key to someone who has no entry for it, and only a
holder still cleared gives it (docs/FORMAT.md §14.4).

The replay cannot read an entry encrypted to someone else, so a recorded
entry digest is the only thing that says which entry is its owner's. A
grant that replaced it -- with the digest of junk -- would close every
document of that generation to its owner, and nobody else could tell.
Two insiders try: the deputy after their clearance was lowered (they kept
the key, as a revoked user does), and the clerk, cleared and holding the
key, with a modified client. Run on both backends.
"""

from __future__ import annotations

import hashlib
import io

from office import Office

from vault._ops import keys as keys_mod

DEPUTY_SECRET = "clearance: {level: SECRET, compartments: [STAFF, HR, FINANCE, BOARD]}\n  outsider:"
DEPUTY_LOWER = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}\n  outsider:"
JUNK = hashlib.sha256(b"junk").hexdigest()


def _seal(office: Office, who: str, data: bytes, level: str, compartment: str) -> str:
    return office.as_(who).seal(io.BytesIO(data), filename="m.txt", level=level,
                                compartments=[compartment], justification="minutes").id


def _opens(office: Office, who: str, doc: str) -> bytes:
    out = io.BytesIO()
    office.as_(who).open(doc, out)
    return out.getvalue()


def _grant_junk(office: Office, who: str, doc: str, victims: list[str]) -> None:
    """``who``'s modified client records a grant of ``doc``'s key to
    ``victims``, each entry's digest that of junk (the real entries are left
    in place: only the record changes)."""
    with office.as_(who) as v:
        s = v._s
        row = s.trusted.doc(doc)
        assert row is not None
        entries = [{"owner": office.ids[name].recipient, "sha256": JUNK} for name in victims]
        with s.lock():
            keys_mod._state_record(s, "grant", "granted again",
                                   {"grants": {"key_id": row.key_id, "entries": entries}})


def test_a_revoked_holder_grants_nothing(office: Office) -> None:
    mine = _seal(office, "leader", b"minutes 1", "SECRET", "BOARD")
    theirs = _seal(office, "deputy", b"minutes 2", "SECRET", "BOARD")
    office.apply({DEPUTY_SECRET: DEPUTY_LOWER})  # the deputy keeps generation 1
    _grant_junk(office, "deputy", mine, ["leader"])
    # The leader, the one still cleared, still opens both documents, and
    # so does a new machine of the leader's (the replay decides alike).
    for doc, data in ((mine, b"minutes 1"), (theirs, b"minutes 2")):
        assert _opens(office, "leader", doc) == data
    problems = office.as_("leader").doctor().problems
    assert any("no longer cleared" in p for p in problems), problems
    # And the rotation still moves both off the key the deputy kept.
    report = office.as_("leader").rotate()
    assert sorted(report.rewrapped) == sorted([mine, theirs]), report
    assert _opens(office, "leader", theirs) == b"minutes 2"


def test_a_cleared_holder_never_replaces_a_colleagues_entry(office: Office) -> None:
    docs = [_seal(office, "leader", b"budget", "CONFIDENTIAL", "FINANCE"),
            _seal(office, "deputy", b"forecast", "CONFIDENTIAL", "FINANCE")]
    assert _opens(office, "clerk", docs[0]) == b"budget"  # the clerk holds the key
    _grant_junk(office, "clerk", docs[0], ["leader", "deputy"])
    for who in ("leader", "deputy"):
        assert [_opens(office, who, d) for d in docs] == [b"budget", b"forecast"]
    problems = office.as_("leader").doctor().problems
    assert any("a grant never replaces one" in p for p in problems), problems


def test_the_grant_a_colleague_lacks_still_counts(office: Office) -> None:
    # What the rule leaves alone: a holder still cleared gives an entry to
    # someone newly cleared who has none -- the routine grant after a
    # clearance is raised -- and nobody is granted twice, not even oneself.
    doc = _seal(office, "leader", b"budget", "CONFIDENTIAL", "FINANCE")
    office.apply({"clearance: {level: INTERNAL, compartments: [STAFF]}":
                  "clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE]}"})
    _seal(office, "leader", b"forecast", "CONFIDENTIAL", "FINANCE")  # grants the registrar
    assert _opens(office, "registrar", doc) == b"budget"
    assert office.as_("officer").doctor().ok
    _grant_junk(office, "leader", doc, ["leader"])
    assert _opens(office, "leader", doc) == b"budget"
    problems = office.as_("officer").doctor().problems
    assert any("a grant never replaces one" in p for p in problems), problems
