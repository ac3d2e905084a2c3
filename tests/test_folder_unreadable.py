"""Files of a vault folder made unreadable (``chmod 000``) by someone who can
write it (docs/THREAT-MODEL.md §5.4): a document, a keyring entry or a
user's keyring folder, a request or approval left for others or the folder
requests are left in, the key of an actor the policy does not know.

Each is that one item damaged, as a file planted in its place is: only what
needs it fails, naming it as the vault folder's, and ``doctor`` names it;
nobody else is stopped. And one label class a rotation cannot finish keeps
no other on the old key. The commands run as real ``vault`` processes under
which file modes apply as they do for the vault's account -- root's
capabilities to override them dropped. The PostgreSQL backend has no such
per-item permission for its role to change: these are the folder's alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_support import VAULT, age_decrypt
from office import Office, make_office
from test_folder_planted import _seal, _stored
from vault_helpers import doc_file, held_secret_keys, opens_with

from vault.store.base import owner_key

INTEGRITY = 4
UNREADABLE = "in the vault folder cannot be read (permission denied)"
CLASSICAL = {"version: 1\n": "version: 1\npost_quantum: off\n"}
CLERK = "clearance: {level: CONFIDENTIAL, compartments: [STAFF, FINANCE, BOARD]}"


def _modes_apply() -> list[str]:
    """A prefix under which a command honours file modes, as the vault's
    account does: root's capabilities to override them dropped."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("file modes do not bind root here, and setpriv (util-linux) is missing "
                    "to drop the capabilities that override them")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


@pytest.fixture
def office(tmp_path: Path) -> Office:
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    r = subprocess.run([*_modes_apply(), "cat", str(probe)], capture_output=True, check=False)
    if r.returncode == 0:
        pytest.skip("file modes do not apply to this user here, even without capabilities")
    return make_office(tmp_path / "office", post_quantum=False)


def _vault(office: Office, who: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command as ``who``, file modes applying."""
    assert VAULT is not None
    cmd = [*_modes_apply(), VAULT, "--vault", str(office.path), "--identity",
           str(office.files[who]), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                       stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    assert str(office.path) not in r.stdout + r.stderr, r  # no path of the folder's
    return r


def _revoke_clerk(office: Office, keep: str) -> None:
    """The officer (not cleared for the classes) takes compartments from
    the clerk, who keeps ``keep`` and write access to the folder."""
    new = CLERK.replace("STAFF, FINANCE, BOARD", keep)
    report = office.apply({**CLASSICAL, CLERK: new})
    assert report.pending and not report.rotated, report


def test_an_unreadable_document_is_a_damaged_one_and_stops_no_rotation(office: Office) -> None:
    # The revoked clerk, still a folder writer, made one board document
    # unreadable: every 'vault rotate' failed on it ("permission denied:
    # <path>", exit 1) before any rewrap was recorded, so every document
    # of the class stayed on the key she kept; doctor printed the OS error.
    docs = [_seal(office, "leader", b"board minutes %d" % i, "CONFIDENTIAL", "BOARD")
            for i in range(4)]
    kept = held_secret_keys(office, "clerk")
    _revoke_clerk(office, "STAFF, FINANCE")
    victim = _stored(office, docs[1])
    victim.chmod(0)
    pending = f"rewrap {docs[1]}: it cannot be rewrapped (docs/{victim.name} {UNREADABLE})"
    for _ in range(2):  # and again: nothing stays stuck
        r = _vault(office, "leader", "rotate")
        assert r.returncode == 0 and pending in r.stdout, r
    for doc in docs:
        if doc != docs[1]:
            assert not opens_with(kept, doc_file(office, doc), office.root), doc
    for who in ("leader", "officer"):
        r = _vault(office, who, "doctor")
        assert r.returncode == INTEGRITY, r
        assert f"document {docs[1]}: docs/{victim.name} {UNREADABLE}" in r.stdout, r.stdout
        assert f"1 document of CONFIDENTIAL//BOARD ({docs[1]}) still wrapped" in r.stdout
    r = _vault(office, "leader", "open", docs[1], "-o", "-")
    assert r.returncode == INTEGRITY and f"docs/{victim.name} {UNREADABLE}" in r.stderr, r
    r = _vault(office, "leader", "open", docs[2], "-o", "-")
    assert r.returncode == 0 and r.stdout == "board minutes 2", r
    victim.chmod(0o600)  # its mode restored, the next rotation finishes
    r = _vault(office, "leader", "rotate")
    assert r.returncode == 0 and docs[1] in r.stdout, r
    assert not opens_with(kept, doc_file(office, docs[1]), office.root)
    assert _vault(office, "officer", "doctor").returncode == 0


def test_an_unreadable_keyring_entry_is_a_damaged_one_named_by_doctor(office: Office) -> None:
    # The deputy's entry for the new key, chmod 000 by the revoked clerk:
    # the deputy's seal, open and even ls failed ("permission denied:
    # <path>", exit 1), and doctor failed for everyone, naming nothing.
    doc = _seal(office, "leader", b"board minutes", "CONFIDENTIAL", "BOARD")
    _revoke_clerk(office, "STAFF, FINANCE")
    assert _vault(office, "leader", "rotate").returncode == 0
    okey = owner_key(office.ids["deputy"].recipient)
    (entry,) = (office.path / "keyrings" / okey).glob("*.age")
    entry.chmod(0)
    where = f"keyrings/{okey}/{entry.name} {UNREADABLE}"
    r = _vault(office, "deputy", "open", doc, "-o", "-")
    assert r.returncode == INTEGRITY, r
    assert f"your keyring entry for CONFIDENTIAL//BOARD generation 2: {where}" in r.stderr
    r = _vault(office, "deputy", "ls")
    assert r.returncode == 0 and doc in r.stdout, r
    for who in ("leader", "officer"):
        r = _vault(office, who, "doctor")
        assert r.returncode == INTEGRITY, r
        assert f"deputy's keyring entry for CONFIDENTIAL//BOARD: {where}; it is not used" \
            in r.stdout, r.stdout
    # As for an entry replaced: the deputy's client makes a new key, for
    # everyone cleared, rather than seal to one they cannot open.
    src = office.file("new.txt", b"new board paper")
    r = _vault(office, "deputy", "seal", str(src), "--level", "CONFIDENTIAL//BOARD")
    assert r.returncode == 0, r
    new = r.stdout.split()[0]
    for who in ("deputy", "leader"):
        r = _vault(office, who, "open", new, "-o", "-")
        assert r.returncode == 0 and r.stdout == "new board paper", (who, r)
    # The leader moves the old document to it; the damaged entry is retired.
    assert _vault(office, "leader", "rotate").returncode == 0
    r = _vault(office, "deputy", "open", doc, "-o", "-")
    assert r.returncode == 0 and r.stdout == "board minutes", r
    assert not entry.exists()
    assert _vault(office, "officer", "doctor").returncode == 0


def test_a_keyring_folder_that_cannot_be_listed_is_named_and_stops_nobody_else(
        office: Office) -> None:
    # Listing the deputy's keyring folder, made mode 000, failed every
    # doctor ("permission denied: <path>", exit 1).
    doc = _seal(office, "leader", b"board minutes", "CONFIDENTIAL", "BOARD")
    folder = office.path / "keyrings" / owner_key(office.ids["deputy"].recipient)
    folder.chmod(0)
    try:
        r = _vault(office, "officer", "doctor")
        assert r.returncode == INTEGRITY, r
        assert f"keyrings/{folder.name}/ {UNREADABLE}: none of its entries is used" \
            in r.stdout, r.stdout
        r = _vault(office, "deputy", "open", doc, "-o", "-")
        assert r.returncode == INTEGRITY and f"keyrings/{folder.name}/" in r.stderr, r
        r = _vault(office, "leader", "open", doc, "-o", "-")
        assert r.returncode == 0 and r.stdout == "board minutes", r
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("planted", ["files", "folder"])
def test_unreadable_statements_stop_no_approval_and_doctor_names_them(office: Office,
                                                                       planted: str) -> None:
    # A request and an approval file of mode 000 (or the requests folder):
    # 'vault approvals', 'vault approve ID' and 'declassify --request ID'
    # failed for everyone ("permission denied: <path>", exit 1), and doctor
    # said ok.
    import hashlib

    doc = _seal(office, "leader", b"plan", "SECRET", "BOARD")
    r = office.cli("leader", "request", "declassify", doc, "--justification", "release")
    assert r.exit_code == 0, r.stderr
    request = r.stdout.strip()
    names = []
    if planted == "files":
        for kind in ("requests", "approvals"):
            data = f"planted {kind}\n".encode()
            path = office.path / kind / f"{hashlib.sha256(data).hexdigest()}.json"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            path.chmod(0)
            names.append(f"{kind}/{path.name} {UNREADABLE}: it is not used")
    else:
        (office.path / "requests").chmod(0)
        names.append(f"requests/ {UNREADABLE}: no request left there is seen")
    try:
        r = _vault(office, "deputy", "approvals")
        assert r.returncode == 0 and request in r.stdout, r
        if planted == "folder":  # taken as empty, and said
            assert f"vault: warning: requests/ {UNREADABLE}: no request left there is seen" \
                in r.stderr, r.stderr
        r = _vault(office, "deputy", "approve", request, "--yes")
        assert r.returncode == 0, r
        r = _vault(office, "leader", "declassify", doc, "--request", request)
        assert r.returncode == 0 and doc in r.stdout, r
        r = _vault(office, "deputy", "doctor")
        assert r.returncode == INTEGRITY, r
        for name in names:
            assert name in r.stdout, r.stdout
    finally:
        (office.path / "requests").chmod(0o700)


def test_an_unreadable_actor_key_is_no_key_and_stops_no_reader(office: Office) -> None:
    # The key of an actor the policy does not know, kept under actors/,
    # made mode 000: 'vault audit keys' and 'audit verify' failed for
    # everyone ("permission denied: <path>", exit 1).
    from vault.identity import new_identity

    stranger = new_identity("stranger", post_quantum=False)
    office.files["stranger"] = office.root / "keys" / "stranger.key"
    stranger.to_file(office.files["stranger"], None)
    assert _vault(office, "stranger", "ls").returncode == 3  # denied, on the record
    (key,) = (office.path / "actors").glob("*.pub")
    key.chmod(0)
    r = _vault(office, "officer", "audit", "keys")
    assert r.returncode == 0 and '"leader"' in r.stdout, r
    r = _vault(office, "officer", "doctor")  # as a key nobody registered: its records named
    assert r.returncode == INTEGRITY and "is signed by an unknown key" in r.stdout, r
    assert _vault(office, "clerk", "ls").returncode == 0
    assert _vault(office, "stranger", "ls").returncode == 3  # registers it again
    assert _vault(office, "officer", "audit", "verify").returncode == 0


# Who reconciles, the classes (made by the leader's seals) and what the
# clerk keeps: the leader's rotation finishes what the officer, not cleared
# for the board, left pending; the officer's install rotates the classes
# she is cleared for at once.
_RECONCILED = {"rotate": ("leader", ["CONFIDENTIAL//BOARD", "CONFIDENTIAL//FINANCE"], "STAFF"),
               "policy apply": ("officer", ["INTERNAL//STAFF", "CONFIDENTIAL//STAFF"],
                                "FINANCE, BOARD")}


@pytest.mark.parametrize("command", list(_RECONCILED))
def test_an_entry_one_class_cannot_remove_stops_no_other_class(office: Office,
                                                               command: str) -> None:
    # A folder planted at the name of the deputy's entry for one revoked
    # class: its retirement failed ("is a directory: <path>", exit 1), and
    # every class after it kept the key the revoked clerk held, run after
    # run. Classes are reconciled in the order of their ids: the first one.
    who, classes, keep = _RECONCILED[command]
    docs = [_seal(office, "leader", cls.encode(), *cls.split("//")) for cls in classes]
    kept = held_secret_keys(office, "clerk")
    deputy = office.path / "keyrings" / owner_key(office.ids["deputy"].recipient)
    entries = {}
    for entry in deputy.glob("*.age"):
        text = age_decrypt(office.files["deputy"], entry).stdout.decode()
        fields = dict(line[2:].split(": ", 1) for line in text.splitlines()
                      if line.startswith("# ") and ": " in line)
        entries[fields["class id"]] = (fields["class"], entry)
    first, entry = entries[min(entries)]
    args = ["rotate"]
    if command == "rotate":
        _revoke_clerk(office, keep)
    else:
        args = ["policy", "apply", str(office.write_policy(
            {**CLASSICAL, CLERK: CLERK.replace("STAFF, FINANCE, BOARD", keep)}))]
    entry.unlink()
    entry.mkdir()
    r = _vault(office, who, *args)
    # The retirement is recorded, so the entry is left over, said, and the
    # other classes are reconciled all the same (DESIGN.md §6.6).
    assert r.returncode == 0, r
    assert f"1 keyring entry of {first} generation 1 is left over (keyrings/{deputy.name}/" \
           f"{entry.name} in the vault folder is a directory, not a regular file)" in r.stderr, \
           r.stderr
    for cls in classes:
        assert f"{cls} -> generation 2" in r.stdout, r.stdout
    for doc in docs:
        assert not opens_with(kept, doc_file(office, doc), office.root), doc
    assert _vault(office, "leader", "rotate").returncode == 0  # nothing left stuck
    r = _vault(office, "officer", "doctor")
    assert r.returncode == 0 and f"keyrings/{deputy.name}/{entry.name}: no grant" in r.stdout
