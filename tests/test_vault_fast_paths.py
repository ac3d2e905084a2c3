"""The fast paths give the answers of the slow ones: the JSON listing, the
policy's many-document decider, and sealing many documents through a
document batch (docs/PERFORMANCE.md)."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backends import Kind
from vault_helpers import Office, make_office

from vault.policy import Label


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory, backend: Kind) -> Office:
    office = make_office(tmp_path_factory.mktemp("office"), backend)
    clerk, leader = office.as_("clerk"), office.as_("leader")
    clerk.seal_many([io.BytesIO(b"memo %d" % i) for i in range(3)], level="INTERNAL",
                    compartments=["STAFF"])
    clerk.seal(io.BytesIO(b"invoice"), level="CONFIDENTIAL", compartments=["FINANCE"],
               caveats=["PERSONAL-DATA"])
    leader.seal(io.BytesIO(b"decision"), level="SECRET", compartments=["BOARD"],
                embargo_until=datetime.now(UTC) + timedelta(days=30))
    leader.seal(io.BytesIO(b"minutes"), level="PUBLIC", declassify_on="P1Y")
    return office


@pytest.mark.parametrize("who", ["clerk", "registrar", "leader", "outsider"])
def test_json_listing_is_exactly_the_listing(office: Office, who: str) -> None:
    v = office.as_(who)
    slow = json.dumps([d.to_dict() for d in v.ls()], sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)
    assert v.ls_json() == slow
    assert len(json.loads(slow)) == {"clerk": 6, "registrar": 6, "leader": 6,
                                     "outsider": 1}[who]


def test_json_listing_without_the_entries_made_at_replay_is_the_same(office: Office) -> None:
    # Entries this machine's replay could not make (or a cache from before
    # they existed) are made while listing, with the same outcome.
    v = office.as_("clerk")
    want = v.ls_json()
    store = v._s.trusted.store
    store._db.execute("UPDATE docs SET label = NULL, listed = NULL")
    assert v.ls_json() == want
    store._db.execute("UPDATE docs SET listed = '{\"id\":\"forged\"}' WHERE level = 'SECRET'")
    outsider = office.as_("outsider")
    assert "forged" not in outsider.ls_json()  # entries are filtered by their label


def test_a_record_from_the_version_before_gets_its_entries_in_place(office: Office,
                                                                     tmp_path: Path) -> None:
    from test_threat_model import as_schema_5

    import vault

    state = tmp_path / "state"
    with vault.Vault(office.location, office.ids["clerk"], state_dir=state) as v:
        want = v.ls_json()
        path = v._s.trusted.store.path
    assert path is not None
    as_schema_5(path)
    with vault.Vault(office.location, office.ids["clerk"], state_dir=state) as v:
        assert v.ls_json() == want
        rows = v._s.trusted.store._db.execute("SELECT listed FROM docs").fetchall()
        assert rows and all(listed is not None for (listed,) in rows)


def test_decider_agrees_with_decide_on_every_label_and_moment(office: Office) -> None:
    policy = office.as_("leader").policy
    soon = datetime.now(UTC) + timedelta(days=1)
    labels = [Label(level=lv, compartments=frozenset(c), caveats=frozenset(cv),
                    embargo_until=e, created=datetime(2020, 1, 1, tzinfo=UTC),
                    declassify_on=d)
              for lv in ("PUBLIC", "INTERNAL", "CONFIDENTIAL", "SECRET")
              for c in ((), ("STAFF",), ("BOARD", "FINANCE"))
              for cv in ((), ("LEGAL-PRIVILEGE",))
              for e in (None, soon)
              for d in (None, "P1Y", "P10Y")]
    for at in (datetime.now(UTC), soon + timedelta(days=1)):
        for who in ("clerk", "leader", "outsider", "nobody"):
            for action in ("list", "open", "export"):
                allowed = policy.decider(who, action, at=at)
                for label in labels:
                    want = policy.decide(who, action, label, at=at).allowed
                    assert allowed(label.to_dict()) == want, (who, action, label)
    allowed = policy.decider("clerk", "list")
    assert not allowed({"level": "INTERNAL", "compartments": "STAFF"})  # malformed
    assert not allowed({"level": "NO-SUCH-LEVEL"})
    with pytest.raises(ValueError, match="decider decides one of"):
        policy.decider("clerk", "seal")


def test_seal_many_batch_writes_every_document_whole(office: Office, tmp_path: Path) -> None:
    big = os.urandom(3 << 20)  # streamed straight to its file, not through memory
    files = [office.file(f"note-{i}.txt", b"note %d\n" % i * (i + 1)) for i in range(40)]

    class Pipe(io.RawIOBase):  # a source that cannot seek: spooled, then copied
        def __init__(self) -> None:
            self.left = b"from a pipe\n" * 5000

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray | memoryview) -> int:
            n = min(len(b), len(self.left), 777)
            b[:n], self.left = self.left[:n], self.left[n:]
            return n

    sources: list[Path | io.IOBase] = [*files, io.BytesIO(big), Pipe()]
    clerk = office.as_("clerk")
    docs = clerk.seal_many(sources, level="INTERNAL", compartments=["STAFF"])
    expected = [f.read_bytes() for f in files] + [big, b"from a pipe\n" * 5000]
    listed = {d.id for d in clerk.ls()}
    for doc, data in zip(docs, expected, strict=True):
        out = io.BytesIO()
        info = clerk.open(doc.id, out)
        assert out.getvalue() == data
        assert info.plaintext_size == len(data) == doc.plaintext_size
        assert doc.id in listed
    names = os.listdir(Path(office.location) / "docs") if office.kind.name == "folder" else []
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind


def test_a_small_source_that_grows_while_sealed_is_refused(office: Office) -> None:
    # A small source is read whole and sealed in memory (its header made
    # once): one that turns out longer than its size said is refused, as a
    # large one whose header length changed is.
    from vault.errors import UsageError

    class Growing(io.BytesIO):
        def seek(self, pos: int, whence: int = 0) -> int:  # reports 10 bytes at the end
            return 10 if whence == os.SEEK_END else super().seek(pos, whence)

    clerk = office.as_("clerk")
    before = {d.id for d in clerk.ls()}
    with pytest.raises(UsageError, match="changed while it was being sealed"):
        clerk.seal(Growing(b"x" * 100), level="INTERNAL", compartments=["STAFF"])
    assert {d.id for d in clerk.ls()} == before


def test_sessions_of_one_user_share_what_the_log_says(tmp_path: Path, backend: Kind) -> None:
    # Two vault objects of one machine user share its record of the vault
    # ($VAULT_STATE_DIR). A change of state made through one -- a policy
    # version -- reaches the other at its next attempt, whichever of them
    # replayed it; decisions and openings (no state) leave caches alone.
    office = make_office(tmp_path, backend)
    registrar = office.as_("registrar")
    doc = office.as_("clerk").seal(io.BytesIO(b"for staff"), level="CONFIDENTIAL",
                                   compartments=["STAFF"]).id
    from vault.errors import DeniedError

    with pytest.raises(DeniedError):
        registrar.open(doc, io.BytesIO())
    version = registrar.policy_version
    office.apply({"clearance: {level: INTERNAL, compartments: [STAFF]}":
                  "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"})
    other = office.as_("registrar")  # replays the new version first
    assert other.policy_version == version + 1
    out = io.BytesIO()
    registrar.open(doc, out)  # the older object sees it too
    assert out.getvalue() == b"for staff"
    assert registrar.policy_version == version + 1


def test_a_writers_own_lines_replay_as_the_log_reads(tmp_path: Path, backend: Kind) -> None:
    # What a process replays from the lines it appended equals a fresh
    # replay of the whole log read back from storage.
    office = make_office(tmp_path, backend)
    clerk = office.as_("clerk")
    docs = clerk.seal_many([io.BytesIO(b"one"), io.BytesIO(b"two")], level="INTERNAL",
                           compartments=["STAFF"])
    clerk.open(docs[0].id, io.BytesIO())
    leader = office.as_("leader")
    leader.shred(docs[1].id, justification="duplicate")
    clerk.ls()  # catches up with the shred (read back), then appends its own record
    clerk._s.trusted.catch_up()  # that record: in memory only (it changes no state)
    import sqlite3

    import vault

    with vault.Vault(office.location, office.ids["clerk"],
                     state_dir=tmp_path / "fresh") as fresh:
        mine = clerk._s.trusted.store
        theirs = fresh._s.trusted.store
        assert [(r.doc_id, r.version, r.header, r.statement, r.shredded)
                for r in mine.docs(live=False)] == [
            (r.doc_id, r.version, r.header, r.statement, r.shredded)
            for r in theirs.docs(live=False)]
        assert mine.pending() == theirs.pending() == []
        assert clerk._s.log._tip == fresh._s.log._tip  # both trust every line
        path, tip = mine.path, theirs.meta("tip")
    clerk.close()  # the store is written when the session ends
    if path is not None:
        with sqlite3.connect(path) as db:
            (stored,) = db.execute("SELECT value FROM meta WHERE key = 'tip'").fetchone()
        assert stored == tip
