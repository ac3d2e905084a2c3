"""What the command line writes, and where.

* ``-o`` never turns a device, a FIFO or a symbolic link into a regular
  file: a character device or FIFO is written in place (as stock ``age``
  does, so ``-o /dev/stdout`` works), a link is followed only when the user
  or root made it, and an existing file is replaced only with ``--force``
  (``vault age``, like ``age``, overwrites). Device nodes are private ones
  made in a tmp folder, never the system's.
* Control characters that a user typed or that a record carries never
  reach the terminal raw: the audit log's table and CSV, and every error
  message, show them escaped, every JSON output writes them as ``\\u``
  escapes; a justification or incident reason carrying them is refused at
  input.
"""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from backends import Kind
from cli_support import Office, assert_error, make_office, run
from office import Office as LibraryOffice
from office import make_office as make_library_office
from vault_helpers import make_another_users

import vault._ops.seal as seal_module
import vault.age as agelib
from vault._primitives import canonical_json

MEMO = b"The office is closed on Friday.\n"


@pytest.fixture
def office(tmp_path: Path) -> Office:
    o = make_office(tmp_path)
    (o.root / "memo.txt").write_bytes(MEMO)
    return o


@pytest.fixture
def age_files(tmp_path: Path) -> tuple[Path, Path, str]:
    """An identity file, an age file of MEMO encrypted to it, its recipient."""
    key = agelib.X25519Identity.generate()
    key_file = tmp_path / "k.key"
    key_file.write_text(f"{key}\n")
    key_file.chmod(0o600)
    src = tmp_path / "memo.age"
    with src.open("wb") as f:
        agelib.encrypt(io.BytesIO(MEMO), f, [key.recipient])
    return key_file, src, str(key.recipient)


def _writers(office: Office, age_files: tuple[Path, Path, str]) -> dict[str, list[str]]:
    """Each command that writes to -o, with --force where it has one."""
    key_file, src, recipient = age_files
    plain = office.root / "memo.txt"
    doc = office.seal("clerk", plain, "--level", "PUBLIC")
    base = ["--vault", str(office.vault), "--identity", str(office.people["clerk"].key)]
    return {
        "age decrypt": ["age", "decrypt", "-i", str(key_file), str(src)],
        "age encrypt": ["age", "encrypt", "-r", recipient, str(plain)],
        "open": [*base, "open", doc, "--force"],
        "export": [*base, "export", doc, "--force"],
    }


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can make device nodes")


def test_a_device_named_by_o_is_written_in_place_never_replaced(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    _need_root()
    devices = tmp_path / "dev"
    devices.mkdir()
    for name, args in _writers(office, age_files).items():
        for node, rdev, code in (("null", os.makedev(1, 3), 0), ("full", os.makedev(1, 7), 1)):
            path = devices / node
            os.mknod(path, 0o666 | stat.S_IFCHR, rdev)
            try:
                r = run(*args, "-o", str(path))
                assert r.exit_code == code, (name, node, r.stderr)
                if code:
                    assert "no space left" in r.stderr, (name, r.stderr)
                st = path.lstat()
                assert stat.S_ISCHR(st.st_mode) and st.st_rdev == rdev, (name, node)
                assert sorted(os.listdir(devices)) == [node], (name, os.listdir(devices))
            finally:
                path.unlink()


def _read_into(path: Path, got: list[bytes]) -> None:
    got.append(path.read_bytes())


def test_a_fifo_of_ones_own_is_written_in_place(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    for name, args in _writers(office, age_files).items():
        os.mkfifo(fifo)
        got: list[bytes] = []
        reader = threading.Thread(target=_read_into, args=(fifo, got), daemon=True)
        reader.start()
        r = run(*args, "-o", str(fifo))
        reader.join(30)
        assert r.exit_code == 0, (name, r.stderr)
        assert stat.S_ISFIFO(fifo.lstat().st_mode), name
        assert got and got[0], name
        if name in ("age decrypt", "open"):
            assert got[0] == MEMO
        fifo.unlink()


def test_a_device_or_fifo_another_user_made_is_refused(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    make_another_users(fifo)
    for name, args in _writers(office, age_files).items():
        r = run(*args, "-o", str(fifo))  # refused at once: nothing waits for a reader
        assert_error(r, 2, "another user made")
        assert stat.S_ISFIFO(fifo.lstat().st_mode), name


def test_a_symbolic_link_is_never_replaced(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    link = tmp_path / "link"
    for name, args in _writers(office, age_files).items():
        target.write_bytes(b"keep")
        link.symlink_to(target)
        if name.startswith("age"):  # like age: an existing file is overwritten
            r = run(*args, "-o", str(link))
        else:
            refused = run(*args[:-1], "-o", str(link))  # without --force
            assert_error(refused, 2, f"{target} already exists")
            assert target.read_bytes() == b"keep"
            r = run(*args, "-o", str(link))
        assert r.exit_code == 0, (name, r.stderr)
        assert link.is_symlink() and os.readlink(link) == str(target), name
        assert target.read_bytes() not in (b"keep", b""), name
        link.unlink()


def test_a_symbolic_link_another_user_made_is_refused(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    make_another_users(link)
    for name, args in _writers(office, age_files).items():
        r = run(*args, "-o", str(link))
        assert_error(r, 2, "symbolic link that another user made")
        assert link.is_symlink() and target.read_bytes() == b"keep", name


def test_a_folder_link_another_user_made_is_refused_for_open_into_it(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    # "vault open ID -o DIR" (and -O -o DIR) followed a link another user
    # planted at DIR, and wrote the plaintext into that user's folder.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    inbox = tmp_path / "inbox"
    inbox.symlink_to(theirs)
    make_another_users(inbox)
    args = _writers(office, age_files)["open"]
    for more in ([], ["-O"]):
        r = run(*args[:-1], *more, "-o", str(inbox))
        assert_error(r, 2, "symbolic link that another user made")
    assert list(theirs.iterdir()) == []


def test_a_folder_another_user_made_is_refused_for_open_into_it(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # In a folder others may write, another user made a folder where the
    # clerk meant her file to go: "vault open ID -o shared/report.txt" put
    # the plaintext in it under the stored file name, which its maker then
    # read, with the size, and could rename or remove the file.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    theirs = shared / "report.txt"
    theirs.mkdir()
    theirs.chmod(0o777)
    make_another_users(theirs)
    args = _writers(office, age_files)["open"]
    for more in ([], ["-O"]):
        r = run(*args, *more, "-o", str(theirs))
        assert_error(r, 2, f"{theirs} is a folder that another user made")
        assert "hint: open into a folder of your own" in r.stderr
    # Nor a folder of her own inside theirs: they can move it out and put
    # one of theirs in its place; nor theirs reached by a link of her own,
    # nor theirs as the working folder of "-O".
    mine = theirs / "mine"
    mine.mkdir()
    r = run(*args, "-o", str(mine))
    assert_error(r, 2, f"{mine} lies in {theirs}, a folder that another user made")
    link = tmp_path / "inbox"
    link.symlink_to(theirs)
    assert_error(run(*args, "-o", str(link)), 2, f"{link} is a folder that another user made")
    link.unlink()
    link.symlink_to(mine)
    assert_error(run(*args, "-o", str(link)), 2, f"{link} lies in {theirs}, a folder that")
    monkeypatch.chdir(theirs)
    assert_error(run(*args, "-O"), 2, ". is a folder that another user made")
    assert_error(run(*args, "-O", "-o", "mine"), 2, "mine lies in")  # as given: "." is hers
    assert [p.name for p in theirs.rglob("*")] == ["mine"]
    # Her own folders are written into as before, a shared one of hers too,
    # and -o FILE and -o - are untouched.
    monkeypatch.chdir(tmp_path)
    for folder in (tmp_path / "out", shared):
        folder.mkdir(exist_ok=True)
        r = run(*args, "-o", str(folder))
        assert r.exit_code == 0, r.stderr
        assert (folder / "memo.txt").read_bytes() == MEMO
    r = run(*args, "-o", str(shared / "memo-2.txt"))
    assert r.exit_code == 0 and (shared / "memo-2.txt").read_bytes() == MEMO, r.stderr
    r = run(*args, "-o", "-")
    assert r.exit_code == 0 and r.stdout_bytes == MEMO, r.stderr


def test_an_existing_file_is_replaced_only_with_force(
        office: Office, age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name, args in _writers(office, age_files).items():
        out.write_bytes(b"keep")
        if not name.startswith("age"):
            assert_error(run(*args[:-1], "-o", str(out)), 2, "already exists")
            assert out.read_bytes() == b"keep", name
        r = run(*args, "-o", str(out))
        assert r.exit_code == 0, (name, r.stderr)
        assert out.read_bytes() != b"keep", name


def test_the_library_never_renames_over_a_link_a_device_or_a_fifo(
        age_files: tuple[Path, Path, str], tmp_path: Path) -> None:
    # encrypt_file and decrypt_file replace a file; anything else stays as it is.
    from vault.errors import UsageError

    key_file, src, recipient = age_files
    key = agelib.parse_identities(key_file.read_text())
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(target)
    os.mkfifo(tmp_path / "pipe")
    names = ["link", "pipe"]
    if os.geteuid() == 0:
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        names.append("null")
    for name in names:
        dst = tmp_path / name
        kind = stat.S_IFMT(dst.lstat().st_mode)
        with pytest.raises(UsageError, match="not a regular file"):
            agelib.decrypt_file(src, dst, key)
        with pytest.raises(UsageError, match="not a regular file"):
            agelib.encrypt_file(src, dst, [agelib.parse_recipient(recipient)])
        assert stat.S_IFMT(dst.lstat().st_mode) == kind, name
    assert target.read_bytes() == b"keep"


def test_vault_open_and_export_never_rename_over_a_link(tmp_path: Path) -> None:
    # A path given to the library is the user's output, as on the command
    # line: their own link is followed, never replaced; without overwrite
    # the file it leads to is kept.
    from vault.errors import UsageError

    o = make_library_office(tmp_path / "lib", post_quantum=False)
    target = tmp_path / "target.txt"
    target.write_bytes(b"keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    with o.as_("clerk") as v:
        doc = v.seal(io.BytesIO(MEMO), filename="memo.txt", level="PUBLIC").id
        for write in (v.open, v.export):
            with pytest.raises(UsageError, match=f"{target} already exists"):
                write(doc, link)
            assert link.is_symlink() and target.read_bytes() == b"keep"
        v.open(doc, link, overwrite=True)
        assert link.is_symlink() and target.read_bytes() == MEMO
        v.export(doc, link, overwrite=True)
        assert link.is_symlink() and target.read_bytes().startswith(b"age-encryption.org/v1")


# -- control characters never reach the terminal raw ----------------------------

HOSTILE = "\r3    2026-01-01 00:00:00  leader  shred \x1b]0;PWNED\x07\x1b[2J\u202eX\x9b"
RAW = ("\r", "\x1b", "\x07", "\u202e", "\x9b")


def _raw(text: str) -> list[str]:
    return [c for c in RAW if c in text]


def test_control_characters_in_records_are_escaped_in_the_table_and_csv(
        tmp_path: Path) -> None:
    # An insider's modified client signs records whose text they chose.
    o = make_library_office(tmp_path / "lib", post_quantum=False)
    me = o.ids["clerk"]
    with o.as_("officer") as v:
        v.audit.append({"actor": {"name": "clerk", "key": me.fingerprint},
                        "action": "ls" + HOSTILE, "doc": None, "label": None,
                        "outcome": "allowed", "rules": ["r" + HOSTILE], "reason": HOSTILE,
                        "policy": None, "state": None}, me.signing_key)
    for fmt in ([], ["--csv"]):
        r = o.cli(None, "audit", "log", *fmt)
        assert r.exit_code == 0, r.stderr
        assert _raw(r.stdout) == [], (fmt, r.stdout[-300:])
        assert "\\r3    2026-01-01" in r.stdout and "\\x1b]0;PWNED\\x07" in r.stdout
        assert "\\u202e" in r.stdout
        # splitlines() breaks at '\r' as a terminal does: no forged row appears.
        assert not any(row.startswith("3    2026-01-01") for row in r.stdout.splitlines()), fmt


# A justification an insider's modified client signs: the input check skipped,
# a NEL and a U+2028 forge a line, a CSI and an RLO drive the terminal.
FORGED = "routine\x85vault: audit verified\u2028ok\x9b2J\u202eevil\u2066"


def test_a_signed_justification_s_controls_are_escaped_in_every_json_output(
        tmp_path: Path, backend: Kind) -> None:
    # 'vault audit log --json' and '--jsonl' printed the record's line as
    # stored: NEL, CSI and RLO raw to every user's terminal and SIEM.
    o = make_library_office(tmp_path / "lib", backend, post_quantum=False)
    me = o.ids["clerk"]
    with o.as_("clerk") as v:
        v.audit.append({"actor": {"name": "clerk", "key": me.fingerprint},
                        "action": "seal", "doc": None, "label": None, "outcome": "allowed",
                        "rules": [], "reason": FORGED, "policy": None, "state": None},
                       me.signing_key)
    stored = o.raw.audit_lines()[-1]
    assert FORGED.encode() in stored  # accepted, signed, as the client wrote it
    assert o.cli("leader", "audit", "verify").exit_code == 0
    for fmt in (["--json"], ["--jsonl"], ["--jsonl", "--actor", "clerk"]):
        r = o.cli("leader", "audit", "log", *fmt)
        assert r.exit_code == 0, r.stderr
        assert r.stdout.replace("\n", "").isprintable(), fmt
        # One record a line; each the signed record's values, which give
        # its signed bytes again in the canonical form (docs/AUDIT.md §3).
        lines = r.stdout.split("\n")
        records = json.loads(r.stdout) if fmt == ["--json"] else \
            [json.loads(line) for line in lines if line]
        assert records[-1]["reason"] == FORGED
        assert canonical_json(records[-1]) == stored


def _hostile_seal(o: LibraryOffice, monkeypatch: pytest.MonkeyPatch) -> str:
    """The clerk's modified client seals a document whose signed label's
    reason is FORGED (the client's check skipped): its id."""
    monkeypatch.setattr(seal_module, "check_free_text", lambda *a, **k: None)
    with o.as_("clerk") as v:
        doc = v.seal(o.file("a.txt", b"hi"), level="PUBLIC", reason=FORGED).id
    monkeypatch.undo()
    return doc


def test_a_signed_label_reason_s_controls_are_escaped_in_every_json_listing(
        tmp_path: Path, backend: Kind, monkeypatch: pytest.MonkeyPatch) -> None:
    # 'vault ls --json --no-titles' printed the library's listing as it was:
    # NEL, U+2028, CSI and RLO raw to every user's terminal, one document's
    # JSON split into three lines for a line-based reader.
    o = make_library_office(tmp_path / "lib", backend, post_quantum=False)
    doc = _hostile_seal(o, monkeypatch)
    for args in (["ls", "--json", "--no-titles"], ["ls", "--json"], ["info", doc, "--json"],
                 ["ls", "--json", "--level", "PUBLIC"]):
        r = o.cli("leader", *args)
        assert r.exit_code == 0, (args, r.stderr)
        assert r.stdout.endswith("\n") and r.stdout[:-1].isprintable(), (args, r.stdout)
        assert len(r.stdout.splitlines()) == 1, args
        got = json.loads(r.stdout)
        (entry,) = [d for d in got if d["id"] == doc] if isinstance(got, list) else [got]
        assert entry["label"]["reason"] == FORGED, args
        assert "\\u0085" in r.stdout and "\\u202e" in r.stdout and "\\u2028" in r.stdout
    # The reports that name the record: its signer's finding, printable.
    for args in (["doctor", "--json"], ["audit", "log", "--jsonl", "--doc", doc]):
        r = o.cli("leader", *args)
        assert r.stdout.replace("\n", "").isprintable(), (args, r.stdout)
        assert "clerk signed a label reason" in r.stdout or "audit" in args, (args, r.stdout)


# How the command line may print JSON: through these two, which escape.
_JSON_PRINTERS = ("echo_json(", "echo_json_text(")


def test_every_json_output_of_the_command_line_goes_through_one_function() -> None:
    # A command printing JSON any other way (click.echo(v.ls_json()) did)
    # bypasses the escaping: no module of the command line but
    # cli/_common.py makes JSON text for stdout, or escapes it itself.
    import vault_cli

    folder = Path(vault_cli.__file__).parent
    for source in sorted(folder.glob("*.py")):
        if source.name == "_common.py":
            continue
        for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{source.name}:{n}: {line.strip()}"
            assert "json_text(" not in line.replace("echo_json_text(", ""), where
            if "json.dumps(" in line:  # the agent's socket protocol alone
                assert "sendall(" in line, where
            if "ls_json(" in line or ("json_line(" in line and "def json_line" not in line):
                assert any(p in line for p in _JSON_PRINTERS), where


def test_names_in_error_messages_are_escaped(office: Office) -> None:
    esc = "\x1b]0;PWNED\x07\u202e"
    memo = str(office.root / "memo.txt")
    for args in (["seal", memo, "--level", esc], ["seal", memo, "--compartment", esc],
                 ["ls", "--label", esc], ["request", "open", esc],
                 ["policy", "explain", "-a", "open", "-l", esc]):
        r = office.as_("clerk", *args)
        assert r.exit_code == 2, (args, r.stderr)
        assert _raw(r.stderr + r.stdout) == [], (args, r.stderr)
        assert "\\x1b]0;PWNED\\x07\\u202e" in r.stderr, (args, r.stderr)
    r = office.as_("clerk", "policy", "explain", "-a", "open", "-u", esc)
    assert r.exit_code == 3, r.stderr
    assert _raw(r.stdout + r.stderr) == [] and "\\x1b]0;PWNED" in r.stdout


def test_a_policy_file_naming_a_level_with_escapes_is_reported_escaped(
        office: Office) -> None:
    text = office.policy.read_text(encoding="utf-8")
    bad = office.root / "bad.yaml"
    bad.write_text(text.replace("name: PUBLIC", 'name: "\\e]0;PWNED\\a"', 1), encoding="utf-8")
    r = run("policy", "check", str(bad))
    assert _raw(r.stdout + r.stderr) == [], r.stderr
    assert r.exit_code != 0 and "\\x1b]0;PWNED" in r.stdout + r.stderr


@pytest.mark.parametrize("char", ["\x1b", "\r", "\n", "\x07", "\x7f", "\x9b", "\u202e",
                                  "\u2066", "\u2028", "\u200b", "\u2060", "\ufeff", "\u00ad",
                                  "\udcff"])  # the last: a byte not UTF-8 in argv
def test_control_characters_in_a_justification_or_reason_are_refused_at_input(
        office: Office, char: str) -> None:
    doc = office.seal("clerk", office.root / "memo.txt", "--level", "PUBLIC")
    before = len(office.audit_records())
    text = f"why{char}x"
    for who, args in (("leader", ["reclassify", doc, "--level", "INTERNAL",
                                  "--justification", text]),
                      ("leader", ["declassify", doc, "--justification", text]),
                      ("leader", ["shred", doc, "--justification", text]),
                      ("officer", ["audit", "incident", "0", "0", "--reason", text]),
                      ("clerk", ["seal", str(office.root / "memo.txt"), "--level", "PUBLIC",
                                 "--justification", text]),
                      ("leader", ["open", doc, "--justification", text]),
                      ("leader", ["export", doc, "-o", str(office.root / "out"),
                                  "--justification", text]),
                      ("leader", ["request", "shred", doc, "--justification", text])):
        r = office.as_(who, *args)
        assert_error(r, 2, "not valid UTF-8" if char == "\udcff" else f"U+{ord(char):04X}")
        assert r.stdout == ""
    assert len(office.audit_records()) == before  # nothing stored


@pytest.mark.parametrize(("text", "said"), [
    ("\u200d\u200c\u200d", "says nothing"), (" \u200d ", "says nothing"),
    ("\u3000\u200c\u00a0", "says nothing"), ("ok\u200d", "joiner U+200D where it joins nothing"),
    ("\u200cok", "joiner U+200C where it joins nothing"),
    ("o\u200d\u200dk", "joiner U+200D where it joins nothing"),
    ("ok \u200dthen", "joiner U+200D where it joins nothing")])
def test_a_justification_or_reason_that_shows_blank_is_refused_at_input(
        office: Office, text: str, said: str) -> None:
    # Joiners alone passed the input check and satisfied require:
    # [justification] (strip() leaves them): the leader lowered
    # CONFIDENTIAL//STAFF to INTERNAL//STAFF, and the audit log and the
    # approve screen showed a blank justification.
    doc = office.seal("clerk", office.root / "memo.txt", "--level", "PUBLIC")
    before = len(office.audit_records())
    for who, args in (("leader", ["reclassify", doc, "--level", "INTERNAL",
                                  "--justification", text]),
                      ("leader", ["declassify", doc, "--justification", text]),
                      ("officer", ["audit", "incident", "0", "0", "--reason", text]),
                      ("clerk", ["seal", str(office.root / "memo.txt"), "--level", "PUBLIC",
                                 "--justification", text]),
                      ("leader", ["request", "shred", doc, "--justification", text])):
        r = office.as_(who, *args)
        assert_error(r, 2, said)
        assert r.stdout == ""
    assert len(office.audit_records()) == before  # nothing stored

# Free text as honest people write it: French with a no-break space and a
# narrow one, Persian with its ZWNJ, a Hindi conjunct and an emoji sequence
# with a ZWJ (vault/_text.py).
FRENCH = "budget 10\u00a0000\u202f\u20ac"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
HINDI = "\u0915\u094d\u200d\u0937 \u0920\u0940\u0915"
TITLE = "Rapport 10\u00a0000\u00a0\u20ac \U0001f469\u200d\U0001f4bb"


def test_honest_free_text_in_any_language_is_accepted_and_shown_as_written(
        tmp_path: Path, backend: Kind) -> None:
    # Refused since free text followed the name rule: a no-break space was
    # "a space other than U+0020", a joiner "an invisible format character".
    from approval_support import ask, grant, office_for, seal

    o = office_for(tmp_path / "o", backend)
    doc = seal(o, "leader", justification=FRENCH, title=TITLE)
    request = ask(o, "leader", "declassify", doc, justification=PERSIAN)
    assert f"justification  {PERSIAN}" in request.describe()  # the approver's screen
    grant(o, "deputy", request, reason=HINDI)
    shown = {"ls": [TITLE], "info": [TITLE, FRENCH], "audit": [PERSIAN, HINDI]}
    for args in (["ls"], ["ls", "--json"], ["info", doc], ["info", doc, "--json"],
                 ["audit", "log"], ["audit", "log", "--json"], ["audit", "log", "--jsonl"]):
        r = o.cli("leader", *args)
        assert r.exit_code == 0, (args, r.stderr)
        for text in shown[args[0]]:
            assert text in r.stdout, (args, text, r.stdout[-400:])
        assert not any(e in r.stdout for e in ("\\xa0", "\\u00a0", "\\u200c", "\\u200d")), args
    r = o.cli("leader", "doctor")
    assert r.exit_code == 0 and "(text)" not in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("char", ["\u00a0", "\u200d"])
def test_a_name_with_a_space_or_joiner_free_text_holds_is_refused(
        tmp_path: Path, char: str) -> None:
    r = run("identity", "new", f"lea{char}der", "-o", str(tmp_path / "k.key"),
            "--no-passphrase")
    assert_error(r, 2, "user name")
    assert not (tmp_path / "k.key").exists()


# -- audit log filters are checked before anything is written ---------------------


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--jsonl"], ["--csv"]])
def test_an_unknown_actor_or_document_writes_nothing_to_stdout(
        office: Office, fmt: list[str]) -> None:
    office.seal("clerk", office.root / "memo.txt", "--level", "PUBLIC")
    for flt in (["--actor", "nobody"], ["--doc", "zzz"], ["--doc", "a" * 16]):
        r = run("--vault", str(office.vault), "audit", "log", *fmt, *flt)
        assert_error(r, 2)
        assert r.stdout == "", (fmt, flt, r.stdout)
    # A known name with no records is an empty answer, not an error.
    r = run("--vault", str(office.vault), "audit", "log", *fmt, "--actor", "deputy")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() in ("", "[]") or r.stdout.startswith("seq,time,"), r.stdout


def test_classify_shows_file_and_user_names_escaped(office: Office) -> None:
    # The names classify prints come from whoever made the file (its name,
    # the Office label names inside it) or from the command line.
    odd = office.root / "a\u202eexe.txt"
    odd.write_text("minutes of the meeting\n")
    for extra in ([], ["--explain"]):
        r = run("classify", "--policy", str(office.policy), str(odd),
                "-u", "bob\x1b]0;owned\x07", *extra)
        assert r.exit_code in (0, 2, 3), r.stderr
        assert _raw(r.stdout + r.stderr) == [], (extra, r.stdout)
        assert "a\\u202eexe.txt" in r.stdout, r.stdout


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_an_output_that_fails_is_on_the_record_as_failed(office: Office) -> None:
    # The output is written (and a file committed) inside the attempt: a
    # failure to write it is the attempt's outcome, never a bare "allowed".
    doc = office.seal("clerk", office.root / "memo.txt", "--level", "PUBLIC")
    for verb in ("open", "export"):
        r = office.as_("clerk", verb, doc, "-o", "/dev/full")
        assert r.exit_code == 1 and "no space left" in r.stderr.lower(), (verb, r.stderr)
        last = office.audit_records()[-1]
        assert (last["action"], last["outcome"]) == (verb, "failed"), last


def test_a_huge_value_quoted_in_an_error_is_cut_short(office: Office) -> None:
    r = office.as_("clerk", "ls", "--label", "X" * 100_000)
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr) < 3000 and "characters left out" in r.stderr, len(r.stderr)
    # A policy's problems quote the file's own text: a 210 KB label was one line.
    policy = office.root / "huge-label.yaml"
    policy.write_text("default_label: INTERNAL" + "//STAFF" * 30_000 + "\n")
    r = run("policy", "check", str(policy))
    assert r.exit_code == 1 and "characters left out" in r.stderr, r.stderr[:300]
    assert max(map(len, r.stderr.splitlines())) <= 2100
