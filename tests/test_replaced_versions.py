"""What becomes of what a change recorded done replaced, when it cannot be
removed (THREAT-MODEL.md §5.3, §6; DESIGN.md §6.4): a document version or
keyring entry whose row the PostgreSQL application role holds locked (a
transaction it never ends: the person being revoked keeps the login), or
whose name a folder writer took with a folder. The change counts from its
completion record: the command says it is done, names what is left over,
does the rest of its work, and `doctor` lists what is left, which its
repair removes once nothing holds it. Before, the command said "nothing
was changed" (exit 1) after its done record, and a revocation skipped the
rest of its reconciliation."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from office import Office
from pg_support import APP, Cluster, dbname_of

from vault.store._pg_conn import _close_all
from vault.store.base import owner_key

_REVOKED = {
    # The registrar keeps no clearance, the clerk none at CONFIDENTIAL//STAFF.
    "clearance: {level: INTERNAL, compartments: [STAFF]}\n    description: A junior clerk, "
    "cleared for INTERNAL only.": "clearance: PUBLIC\n    description: A junior clerk, no "
    "longer cleared.",
    "clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}":
        "clearance: {level: INTERNAL, compartments: [STAFF, FINANCE, BOARD]}",
}


@contextlib.contextmanager
def _kept(office: Office, monkeypatch: pytest.MonkeyPatch, *,
          versions: Sequence[tuple[str, str]] = (),
          entries: Sequence[tuple[str, str]] = ()) -> Iterator[None]:
    """Within the block, the document ``versions`` and keyring ``entries``
    (owner key, key id) cannot be removed: the application role holds their
    rows locked (a lock wait of 1 s for the vault's sessions opened from
    now on), or a folder writer puts a folder at each one's name -- at a
    version's once a command has opened it (it must be read first), at an
    entry's at once. After it, they can be again."""
    if office.kind.name == "postgres":
        monkeypatch.setenv("VAULT_PG_LOCK_TIMEOUT", "1")
        _close_all()
        cluster: Cluster = office.kind.cluster  # type: ignore[attr-defined]
        with psycopg.connect(cluster.dsn(APP, dbname_of(office.location)),
                             application_name="holder") as conn:
            for doc, version in versions:
                conn.execute("SELECT 1 FROM vault.documents WHERE id = %s AND tag = %s"
                             " FOR KEY SHARE", (doc, version))
            for okey, kid in entries:
                conn.execute("SELECT 1 FROM vault.keyrings WHERE okey = %s AND key_id = %s"
                             " FOR KEY SHARE", (okey, kid))
            yield
            conn.rollback()
        return
    from vault.store.folder import FolderBackend

    taken: dict[Path, Path] = {}

    def take(path: Path) -> None:
        aside = office.root / f"taken-{len(taken)}"
        os.rename(path, aside)
        path.mkdir()  # no unlink removes a folder
        taken[path] = aside

    for okey, kid in entries:
        take(office.path / "keyrings" / okey / f"{kid}.age")
    plain = FolderBackend.open_document

    def opened(backend: FolderBackend, doc_id: str, version: str) -> Any:
        f = plain(backend, doc_id, version)
        path = office.path / "docs" / f"{doc_id}.{version}.age"
        if (doc_id, version) in versions and path not in taken:
            take(path)
        return f

    monkeypatch.setattr(FolderBackend, "open_document", opened)
    try:
        yield
    finally:
        monkeypatch.setattr(FolderBackend, "open_document", plain)
        for path, aside in taken.items():
            path.rmdir()
            os.rename(aside, path)


def _seal(office: Office, who: str, data: bytes, level: str, compartment: str) -> str:
    with office.as_(who) as v:
        return v.seal(io.BytesIO(data), level=level, compartments=[compartment]).id


def _left_over(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if line.startswith("vault: warning: ") and "left over" in line]


def _repaired_clean(office: Office, where: Sequence[str]) -> None:
    """``doctor`` lists each of ``where`` as a leftover, and no problem; its
    repair removes them; then nothing is left."""
    with office.as_("officer") as v:
        report = v.doctor()
    assert report.ok, report.problems
    for name in where:
        assert any(item.startswith(name) for item in report.leftovers), report.leftovers
    r = office.cli("officer", "doctor", "--repair")
    assert r.exit_code == 0, r.stdout + r.stderr
    for name in where:
        assert f"removed {name}" in r.stdout, r.stdout
    with office.as_("officer") as v:
        report = v.doctor()
    assert report.ok and not report.leftovers, report


@pytest.mark.parametrize("action", ["reclassify", "declassify"])
def test_a_relabelling_whose_old_version_cannot_be_removed_is_done_and_names_it(
        office: Office, monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    doc = _seal(office, "leader", b"board plan", "CONFIDENTIAL", "BOARD")
    (old,) = office.raw.versions(doc)
    args = ("--level", "SECRET", "--compartment", "BOARD") if action == "reclassify" else ()
    with _kept(office, monkeypatch, versions=[(doc, old)]):
        r = office.cli("leader", action, doc, *args, "--justification", "decided")
        assert r.exit_code == 0, r.stderr
        assert "nothing was changed" not in r.stderr, r.stderr
        (said,) = _left_over(r.stderr)
        assert f"document {doc}: its old version {old} is left over" in said, said
        assert "vault doctor --repair" in said, said
        assert old in office.raw.versions(doc) and office.raw.current(doc) != old
    with office.as_("leader") as v:
        label = v.info(doc).label
    assert (label.level, sorted(label.compartments)) == (
        ("SECRET", ["BOARD"]) if action == "reclassify" else ("PUBLIC", []))
    _repaired_clean(office, [f"docs/{doc}.{old}.age"])
    assert office.raw.versions(doc) == [office.raw.current(doc)]
    out = io.BytesIO()
    with office.as_("leader") as v:
        v.open(doc, out)
    assert out.getvalue() == b"board plan"


def test_a_revocation_whose_old_versions_cannot_be_removed_finishes_reconciling(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The revoked registrar keeps the database login and holds one rewrapped
    # document's row locked: 'policy apply' installed the version, rewrapped,
    # then said "nothing was changed" (exit 1), and the rest of the
    # reconciliation -- the retirements, the other classes -- never ran.
    staff = [_seal(office, "clerk", b"staff note %d" % i, "INTERNAL", "STAFF")
             for i in range(2)]
    conf = _seal(office, "clerk", b"staff salaries", "CONFIDENTIAL", "STAFF")
    held = [(staff[1], office.raw.current(staff[1])), (conf, office.raw.current(conf))]
    keys = {k for _, k in office.raw.keyring_files()}  # generation 1 of both classes
    with _kept(office, monkeypatch, versions=held):
        r = office.cli("officer", "policy", "apply", str(office.write_policy(_REVOKED)))
        assert r.exit_code == 0, r.stderr
        assert "nothing was changed" not in r.stderr, r.stderr
        assert "rotated: 2" in r.stdout and "rewrapped: 3" in r.stdout, r.stdout
        said = _left_over(r.stderr)
        assert len(said) == 2, r.stderr
        for doc, version in held:
            assert any(f"document {doc}: its old version {version} is left over" in line
                       for line in said), said
        if office.kind.name == "postgres":  # one wait, not one per document
            assert sum("gave up after 1s" in line for line in said) == 1, said
            assert sum("not waited for" in line for line in said) == 1, said
            # Each names the session holding the rows, not the command's own.
            assert all("(application 'holder')" in line and "'vault'" not in line
                       for line in said), said
    # Both generations 1 retired, on the record and from the store: every
    # document is on generation 2.
    assert not keys & {k for _, k in office.raw.keyring_files()}
    _repaired_clean(office, [f"docs/{d}.{v}.age" for d, v in held])
    for doc in [*staff, conf]:
        assert office.raw.versions(doc) == [office.raw.current(doc)]
        with office.as_("officer") as v:  # the clerk is no longer cleared for one
            out = io.BytesIO()
            v.open(doc, out)
            assert out.getvalue().startswith(b"staff")


def test_a_retirement_whose_entry_cannot_be_removed_is_done_and_names_it(
        office: Office, monkeypatch: pytest.MonkeyPatch) -> None:
    # The revoked registrar holds her own keyring entry's row locked: the
    # retirement was recorded, then its DELETE gave up -- "nothing was
    # changed" (exit 1), and the entries after hers were never removed.
    _seal(office, "clerk", b"staff note", "INTERNAL", "STAFF")
    registrar = owner_key(office.ids["registrar"].recipient)
    (entry,) = [(o, k) for o, k in office.raw.keyring_files() if o == registrar]
    with _kept(office, monkeypatch, entries=[entry]):
        r = office.cli("officer", "policy", "apply", str(office.write_policy(_REVOKED)))
        assert r.exit_code == 0, r.stderr
        assert "nothing was changed" not in r.stderr, r.stderr
        assert "rotated: 1" in r.stdout and "rewrapped: 1" in r.stdout, r.stdout
        (said,) = _left_over(r.stderr)
        assert "1 keyring entry of INTERNAL//STAFF generation 1" in said, said
        assert "vault doctor --repair" in said, said
        # Of generation 1, hers alone is left: everyone else's went.
        assert [e for e in office.raw.keyring_files() if e[1] == entry[1]] == [entry]
        # A repair meanwhile names what keeps it (it once called a row held
        # locked "not a file (planted)").
        r = office.cli("officer", "doctor", "--repair")
        kept = ": cannot delete a keyring entry: gave up after 1s" \
            if office.kind.name == "postgres" else \
            " in the vault folder is a directory, not a regular file"
        assert f"keyrings/{entry[0]}/{entry[1]}.age{kept}" in r.stdout, r.stdout
        assert "it was not removed" in r.stdout, r.stdout
    _repaired_clean(office, [f"keyrings/{entry[0]}/{entry[1]}.age"])
    assert entry not in office.raw.keyring_files()
