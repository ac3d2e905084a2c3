"""Hostile input, through the CLI: every case ends in a precise message on
stderr, the documented exit code (README.md: 1 other, 2 usage, 3 denied,
4 integrity, 5 no key), nothing on stdout, no traceback -- and nothing
lost: other documents stay intact, no file appears where it should not,
and every attempt is on the audit record.

Small file systems are real: a tmpfs mounted by the test (size-limited for
the full disk, remounted read-only for the read-only vault). Where mounting
is not permitted, the full disk falls back to ``RLIMIT_FSIZE`` in the
``vault`` subprocess and the read-only vault to file modes (non-root
only); docs/THREAT-MODEL.md says which ran.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Office, assert_error, make_office, run, run_script

import vault
from vault._primitives import canonical_json
from vault.age import (
    Header,
    ScryptRecipient,
    Stanza,
    encrypt,
    parse_identities,
    read_header,
    unwrap_file_key,
)

INTEGRITY, OTHER, USAGE = 4, 1, 2


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    return make_office(tmp_path_factory.mktemp("hostile"))


def _seal(office: Office, data: bytes = b"hostile test document", name: str = "doc.txt") -> str:
    src = office.root / name
    src.write_bytes(data)
    return office.seal("clerk", src, "--level", "INTERNAL", "--compartment", "STAFF")


def _last_record(office: Office, doc: str) -> vault.audit.AuditRecord:
    return list(vault.Vault(office.vault).audit.records(doc=doc))[-1]


def _opens(office: Office, doc: str, data: bytes) -> None:
    r = office.as_("clerk", "open", doc, "-o", "-")
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == data


def _oversized() -> bytes:
    # A well-formed stanza whose body goes on past the 1 MiB header limit.
    return b"age-encryption.org/v1\n-> x\n" + (b"A" * 64 + b"\n") * 20000


@pytest.mark.parametrize(("name", "damage", "message"), [
    ("truncated", lambda d: d[:30], "truncated header"),
    ("truncated stanza", lambda d: d[:d.index(b"\n-> ") + 40], "truncated header"),
    # Deterministic garbage (a seeded generator), never starting like armor.
    ("garbage", lambda d: b"\xff" + random.Random(600).randbytes(599), "not an age file"),
    ("empty", lambda d: b"", "not an age file"),
    ("oversized", lambda d: _oversized(), "header too large"),
    ("one endless line", lambda d: b"age-encryption.org/v1\n-> " + b"a" * (2 << 20),
     "header too large"),
    ("no MAC line", lambda d: d[:d.index(b"\n---")] + b"\n", "truncated header"),
])
def test_damaged_headers_are_integrity_failures(office: Office, name: str, damage: object,
                                                message: str) -> None:
    keep = _seal(office, b"an untouched neighbour")
    doc = _seal(office)
    path = office.doc_path(doc)
    original = path.read_bytes()
    path.write_bytes(damage(original))  # type: ignore[operator]
    out = office.root / f"out-{doc}"
    for args in (["open", doc, "-o", str(out)], ["info", doc], ["export", doc, "-o", str(out)],
                 ["reclassify", doc, "--level", "CONFIDENTIAL", "--justification", "x"]):
        r = office.as_("clerk", *args)
        assert_error(r, INTEGRITY, message)
        assert r.stdout == "" and not out.exists()
        assert _last_record(office, doc).outcome == "error"  # on the record all the same
    r = run("age", "decrypt", "-i", str(office.recovery), str(path))
    assert_error(r, INTEGRITY, message)
    _opens(office, keep, b"an untouched neighbour")  # nothing else lost
    path.write_bytes(original)  # repaired from a backup: all as before
    _opens(office, doc, b"hostile test document")


@pytest.mark.parametrize("factor", [b"23", b"40", b"99", b"1" + b"0" * 30, b"0", b"018",
                                    b"-1", b"+5", b"1e9"])
def test_absurd_scrypt_work_factors_are_refused_before_any_work(office: Office,
                                                                factor: bytes) -> None:
    # A passphrase-protected identity file whose scrypt stanza asks for an
    # absurd amount of work: refused outright (docs/FORMAT.md §5.2), never
    # attempted (2^40 would take hours and terabytes).
    out = io.BytesIO()
    plain = office.people["clerk"].key.read_bytes()
    encrypt(io.BytesIO(plain), out, [ScryptRecipient("pass phrase", work_factor=2)])
    header_line = out.getvalue().split(b"\n")[1]
    assert header_line.startswith(b"-> scrypt ") and header_line.endswith(b" 2")
    forged = out.getvalue().replace(header_line, header_line[:-1] + factor, 1)
    key = office.root / f"absurd-{factor[:8].decode()}.key"
    key.write_bytes(forged)
    key.chmod(0o600)
    pw = office.root / "passphrase"
    pw.write_text("pass phrase\n")
    pw.chmod(0o600)
    r = run("--vault", str(office.vault), "--identity", str(key), "ls",
            env={"VAULT_PASSPHRASE_FILE": str(pw)})
    assert_error(r, INTEGRITY, "scrypt work factor")
    assert r.stdout == ""
    doc = office.doc_path(_seal(office))
    r = run("age", "decrypt", "-i", str(key), str(doc), env={"VAULT_PASSPHRASE_FILE": str(pw)})
    assert_error(r, INTEGRITY, "scrypt work factor")


def _relabel(office: Office, doc: str, edit: object, *, remac: bool) -> None:
    """Rewrite the label stanza as a holder of the file key could (the
    recovery identity: it recomputes a valid header MAC)."""
    path = office.doc_path(doc)
    with open(path, "rb") as f:
        header = read_header(f)
        payload = f.read()
    file_key = unwrap_file_key(header, parse_identities(office.recovery.read_text()))
    stanzas = []
    for s in header.stanzas:
        if s.type == "vault/v2/label":
            outer = json.loads(s.body)
            if edit(outer) is False:  # type: ignore[operator]
                continue  # the stanza is dropped
            s = Stanza(s.type, s.args, canonical_json(outer))
        stanzas.append(s)
    new = Header.seal(stanzas, file_key) if remac else Header(stanzas, header.mac)
    path.write_bytes(new.encode() + payload)


def _forge(outer: dict[str, object]) -> None:
    sig = bytearray(base64.b64decode(str(outer["sig"])))
    sig[7] ^= 0x20
    outer["sig"] = base64.b64encode(bytes(sig)).decode()


def _unsign(outer: dict[str, object]) -> None:
    del outer["sig"]


def _lower(outer: dict[str, object]) -> None:
    outer["statement"]["label"]["level"] = "PUBLIC"  # type: ignore[index]


def _drop(outer: dict[str, object]) -> bool:
    return False


RECORDED = "is not the version the audit log records"


@pytest.mark.parametrize(("edit", "message"), [
    (_forge, RECORDED),
    (_unsign, RECORDED),
    (_lower, RECORDED),
    (_drop, RECORDED),
])
@pytest.mark.parametrize("remac", [True, False])
def test_forged_or_missing_label_signature(office: Office, edit: object, message: str,
                                           remac: bool) -> None:
    doc = _seal(office)
    original = office.doc_path(doc).read_bytes()
    _relabel(office, doc, edit, remac=remac)
    for who in ("clerk", "outsider"):  # before any policy decision or key
        r = office.as_(who, "open", doc, "-o", "-")
        assert_error(r, INTEGRITY, message)
        assert r.stdout == ""
        assert _last_record(office, doc).outcome == "error"
    office.doc_path(doc).write_bytes(original)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("deep-flow", "levels: " + "[" * 50_000 + "]" * 50_000 + "\n", "nesting deeper than"),
    ("deep-block", "".join("  " * i + f"k{i}:\n" for i in range(300)), "nesting deeper than"),
    ("huge", "# " + "x" * (8 << 20) + "\n", "expected at most"),
    ("many-keys", "".join(f"k{i}: {i}\n" for i in range(100_000)), "expected at most"),
    ("laughs", (Path(__file__).parent / "policies_broken" / "billion_laughs.yaml").read_text(),
     "anchor"),
    ("nul", "version: 1\x00\n", "control character"),
])
def test_huge_or_deeply_nested_policies(office: Office, name: str, text: str,
                                        message: str) -> None:
    path = office.root / f"{name}.yaml"
    path.write_text(text)
    officer = str(office.people["officer"].key)
    before = vault.Vault(office.vault).policy_version
    r = run("policy", "check", str(path))
    assert r.exit_code == OTHER and message in r.stderr + r.stdout, r.stderr
    assert "Traceback" not in r.stderr
    r = run("--vault", str(office.vault), "--identity", officer, "policy", "apply", str(path))
    assert_error(r, OTHER, f"{name}.yaml:")  # the first problem, with its position
    r = run("init", str(office.root / f"vault-{name}"), "--policy", str(path), "--identity",
            officer, "--recovery-out", str(office.root / f"recovery-{name}"))
    assert_error(r, OTHER, f"{name}.yaml:")
    assert not (office.root / f"vault-{name}" / "vault.json").exists()
    assert vault.Vault(office.vault).policy_version == before  # nothing installed


@pytest.mark.parametrize("bad", ["../../x", "/etc/passwd", "a\x00b", "C:\\Windows\\x",
                                 "aaaaaaaaaaaaaaaa/../../x", "AAAAAAAAAAAAAAAA", ""])
def test_hostile_document_ids_are_usage_errors(office: Office, bad: str) -> None:
    for args in (["open", bad, "-o", "-"], ["info", bad], ["export", bad, "-o", "-"],
                 ["shred", bad, "--justification", "x"]):
        r = office.as_("clerk", *args)
        assert_error(r, USAGE, "not a document id")
        assert r.stdout == ""


HOSTILE_NAMES = ["../../escaped.txt", "/tmp/absolute.txt", "C:\\Windows\\drive.txt", "..",
                 "sub/dir/name.txt"]
CONTROL_NAMES = ["nul\x00byte.txt", "\x1b]0;pwned\x07title.txt", "new\nline.txt", ""]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_stored_filenames_never_become_paths(office: Office, tmp_path: Path) -> None:
    # A sealer may store any printable file name in the metadata. 'vault
    # open ID' never uses it as a path: without -o it writes to stdout,
    # and -o names the output explicitly.
    clerk = vault.Vault(office.vault, vault.load_identity(office.people["clerk"].key))
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    assert not Path("/tmp/absolute.txt").exists()
    for name in HOSTILE_NAMES:
        data = b"contents of " + name.encode("utf-8", "surrogateescape")
        doc = clerk.seal(io.BytesIO(data), level="INTERNAL", compartments=["STAFF"],
                         filename=name).id
        before = _tree(tmp_path)
        r = subprocess.run(["vault", "--vault", str(office.vault), "--identity",
                            str(office.people["clerk"].key), "open", doc],
                           cwd=work, capture_output=True, timeout=60, check=False)
        assert r.returncode == 0, r.stderr
        assert r.stdout == data
        assert _tree(tmp_path) == before, name  # nothing written anywhere
        assert not Path("/tmp/absolute.txt").exists()
        info = office.as_("clerk", "info", doc, "--json")
        assert info.exit_code == 0
        assert json.loads(info.stdout)["filename"] == name  # shown, as data


@pytest.mark.parametrize("name", CONTROL_NAMES)
def test_control_characters_in_names_are_refused_at_input(office: Office, name: str) -> None:
    # Bounded at input (docs/FORMAT.md §11.3): they never reach a header,
    # and a header a modified library wrote with them fails to read back.
    clerk = vault.Vault(office.vault, vault.load_identity(office.people["clerk"].key))
    before = len(list(clerk.audit.records()))
    with pytest.raises(vault.errors.UsageError, match="printable"):
        clerk.seal(io.BytesIO(b"x"), level="INTERNAL", compartments=["STAFF"], filename=name)
    with pytest.raises(vault.errors.UsageError, match="printable"):
        clerk.seal(io.BytesIO(b"x"), level="INTERNAL", compartments=["STAFF"], title=name)
    after = list(clerk.audit.records())
    assert [r.outcome for r in after[before:]] == ["error", "error"]  # on the record
    assert not name or all(name not in r.reason for r in after[before:])


# -- symbolic links planted in the vault folder --------------------------------


@contextlib.contextmanager
def _plant(office: Office, rel: str, target: Path) -> Iterator[Path]:
    """A symbolic link to ``target`` in place of the vault's ``rel``."""
    path = office.vault / rel
    saved = office.root / "saved"
    moved = path.exists()
    if moved:
        shutil.move(path, saved)
    os.symlink(target, path)
    try:
        yield path
    finally:
        path.unlink()
        if moved:
            shutil.move(saved, path)


def _links(office: Office, doc: str) -> list[tuple[str, list[str], int, str]]:
    from vault.store.base import owner_key

    clerk = owner_key(office.people["clerk"].recipient)
    entry = next((office.vault / "keyrings" / clerk).glob("*.age")).name
    stored = office.doc_path(doc).name
    return [
        (f"docs/{stored}", ["open", doc, "-o", "-"], INTEGRITY, "symbolic link"),
        ("docs", ["ls"], INTEGRITY, "not a directory"),
        (f"keyrings/{clerk}/{entry}", ["open", doc, "-o", "-"], INTEGRITY, "symbolic link"),
        ("vault.json", ["ls"], INTEGRITY, "symbolic link"),
        ("lock", ["reclassify", doc, "--level", "CONFIDENTIAL", "--justification", "x"],
         INTEGRITY, "symbolic link"),
        # A link to nothing leaves the log "missing"; to a file, appending
        # through it is refused: both fail closed, nothing is performed.
        ("audit/log", ["ls"], -1, "audit"),
    ]


def test_symlinks_planted_in_the_vault_folder(office: Office, tmp_path: Path) -> None:
    doc = _seal(office, b"linked")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_bytes(b"the vault must never write here\n")
    for rel, args, code, message in _links(office, doc):
        for target in (victim, outside / f"new-{rel.replace('/', '-')}"):
            if rel == "docs" and target == victim:
                target = outside
            with _plant(office, rel, target):
                gc.collect()  # no index connection of an earlier run stays open
                r = office.as_("clerk", *args)
                assert_error(r, r.exit_code if code == -1 else code, message)
                assert r.exit_code in (OTHER, INTEGRITY) and r.stdout == ""
            assert victim.read_bytes() == b"the vault must never write here\n", rel
            assert sorted(os.listdir(outside)) == ["victim"], rel  # nothing created
    _opens(office, doc, b"linked")  # links removed: all as before
    report = office.as_("officer", "doctor")
    assert report.exit_code == 0, report.stdout + report.stderr


# -- small and read-only file systems ------------------------------------------


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[bool]:
    """A real size-limited tmpfs at ``where``; yields False if mounting is
    not permitted here (then callers use their fallback)."""
    where.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700",
                                  "tmpfs", str(where)], capture_output=True,
                                 check=False).returncode == 0
    except OSError:  # no mount command at all
        mounted = False
    print(f"{where.name}: " + (f"a tmpfs of {size}" if mounted else
                               "no mount permitted here: the fallback runs"))
    try:
        yield mounted
    finally:
        gc.collect()
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _fill(path: Path) -> None:
    """Fill the file system holding ``path`` to the last byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (1 << 16, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)


def _refused_for_space(r: subprocess.CompletedProcess[bytes], office: Office,
                       keep: str) -> None:
    """A seal the full disk stopped: a clear error, no traceback, nothing on
    stdout, and no file of it left in docs/ (only ``keep``)."""
    assert r.returncode == OTHER, r.stderr
    assert r.stderr.decode().startswith("vault: ") and b"Traceback" not in r.stderr
    assert b"space" in r.stderr or b"too large" in r.stderr, r.stderr
    assert r.stdout == b""
    assert sorted(p.name for p in (office.vault / "docs").iterdir()) == [
        office.doc_path(keep).name]


def _still_whole(office: Office, keep: str) -> None:
    """What was sealed before the disk filled opens; doctor and the log agree."""
    _opens(office, keep, b"sealed before the disk filled")
    assert office.as_("officer", "doctor").exit_code == 0
    assert run("audit", "verify", "--log", str(office.vault / "audit")).exit_code == 0


def test_full_disk_during_seal(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "1m") as mounted:
        office = make_office(tmp_path / "small" if mounted else tmp_path / "plain")
        keep = _seal(office, b"sealed before the disk filled")
        records = len(list(vault.Vault(office.vault).audit.records()))
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(3 << 20))
        args = ["--vault", str(office.vault), "--identity", str(office.people["clerk"].key),
                "seal", str(big), "--level", "INTERNAL", "--compartment", "STAFF"]
        if mounted:
            r = run_script(*args)
        else:  # fallback: the process may not write files beyond 256 KiB
            r = subprocess.run(["vault", *args], capture_output=True, timeout=60, check=False,
                               preexec_fn=lambda: resource.setrlimit(
                                   resource.RLIMIT_FSIZE, (1 << 18, 1 << 18)))
        # Nothing half-written, nothing lost; the attempt is on the record once.
        _refused_for_space(r, office, keep)
        seals = [x for x in vault.Vault(office.vault).audit.records() if x.action == "seal"]
        decided = [x for x in seals if x.outcome in ("allowed", "denied", "error")]
        assert decided[-1].outcome == "allowed"  # decided and recorded before the write
        new = list(vault.Vault(office.vault).audit.records())[records:]
        assert [x.outcome for x in new if x.action == "seal"] in (["allowed"],
                                                                  ["allowed", "failed"])
        big.unlink()
        _still_whole(office, keep)


def test_full_disk_while_workers_seal_many(tmp_path: Path) -> None:
    # Forty files of 100 KB: sealed by forked workers, which write the
    # documents themselves; the disk fills under them part way.
    with _tmpfs(tmp_path / "small", "1m") as mounted:
        office = make_office(tmp_path / "small" if mounted else tmp_path / "plain")
        keep = _seal(office, b"sealed before the disk filled")
        records = len(list(vault.Vault(office.vault).audit.records()))
        log_size = sum(p.stat().st_size for p in (office.vault / "audit").iterdir())
        size = 100_000 if mounted else log_size + (64 << 10)  # each past the fallback's limit
        folder = tmp_path / "memos"
        folder.mkdir()
        for i in range(40):
            (folder / f"memo-{i:02d}.bin").write_bytes(os.urandom(size))
        args = ["--vault", str(office.vault), "--identity", str(office.people["clerk"].key),
                "seal", "--level", "INTERNAL", "--compartment", "STAFF",
                *sorted(str(p) for p in folder.iterdir())]
        limit = log_size + (48 << 10)
        r = subprocess.run(["vault", *args], capture_output=True, timeout=120, check=False,
                           preexec_fn=None if mounted else lambda: resource.setrlimit(
                               resource.RLIMIT_FSIZE, (limit, limit)))
        # No document of the batch left, nothing half-written; every attempt
        # on the record, decided before anything was written.
        _refused_for_space(r, office, keep)
        new = [x for x in list(vault.Vault(office.vault).audit.records())[records:]
               if x.action == "seal"]
        assert [x.outcome for x in new][:40] == ["allowed"] * 40
        assert {x.outcome for x in new[40:]} <= {"failed"}
        _still_whole(office, keep)


def _open_until_refused(office: Office, doc: str, tmp_path: Path, limit: int | None
                        ) -> tuple[list[Path], str]:
    """Open ``doc`` into new files until the audit log refuses; returns the
    files opened and the refusal's stderr."""
    opened = []
    for n in range(60):  # until the log's last block is full too
        out = tmp_path / f"out-{n}"
        args = ["--vault", str(office.vault), "--identity", str(office.people["clerk"].key),
                "open", doc, "-o", str(out)]
        if limit is None:
            result = run(*args)
            code, stdout, stderr = result.exit_code, result.stdout, result.stderr
        else:  # fallback: this process may not grow files beyond ``limit`` bytes
            done = subprocess.run(["vault", *args], capture_output=True, timeout=60,
                                  check=False, preexec_fn=lambda: resource.setrlimit(
                                      resource.RLIMIT_FSIZE, (limit, limit)))
            code, stdout, stderr = done.returncode, done.stdout.decode(), done.stderr.decode()
        if code == 0:
            assert out.read_bytes() == b"the plaintext"
            opened.append(out)
            continue
        # Fail closed: no record, no plaintext.
        assert code == OTHER and stdout == "" and "Traceback" not in stderr, stderr
        assert not out.exists()
        return opened, stderr
    pytest.fail("the audit log never ran out of space")


def test_full_disk_during_audit_append(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "small", "1m") as mounted:
        office = make_office(tmp_path / "small" if mounted else tmp_path / "plain")
        doc = _seal(office, b"the plaintext")
        limit = None
        if mounted:
            _fill(tmp_path / "small" / "filler")
        else:
            limit = (office.vault / "audit" / "log").stat().st_size + 2000
        opened, refusal = _open_until_refused(office, doc, tmp_path, limit)
        assert refusal.startswith("vault: audit record not durable"), refusal
        if mounted:
            (tmp_path / "small" / "filler").unlink()
        r = run("audit", "verify", "--log", str(office.vault / "audit"))
        assert r.exit_code == 0, r.stderr
        assert office.as_("officer", "doctor", "--repair").exit_code == 0
        assert office.as_("officer", "doctor").exit_code == 0
        records = [x for x in vault.Vault(office.vault).audit.records(doc=doc)
                   if x.action == "open"]
        assert len(records) >= len(opened)  # every performed open has its record
        _opens(office, doc, b"the plaintext")


def test_read_only_vault(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "ro", "4m") as mounted:
        if not mounted and os.geteuid() == 0:
            pytest.fail("a read-only vault needs 'mount' (as root) or a non-root user")
        office = make_office(tmp_path / "ro" if mounted else tmp_path / "plain")
        doc = _seal(office, b"read-only plaintext")
        gc.collect()
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(tmp_path / "ro")], check=True)
        else:
            for p in [office.vault, *office.vault.rglob("*")]:
                p.chmod(p.stat().st_mode & ~0o222)
        out = tmp_path / "out.txt"
        for args in (["open", doc, "-o", str(out)], ["ls"], ["info", doc],
                     ["seal", str(office.root / "doc.txt")],
                     ["shred", doc, "--justification", "x"]):
            r = run_script("--vault", str(office.vault), "--identity",
                           str(office.people["clerk"].key), *args)
            assert r.returncode == OTHER, (args, r.stderr)
            assert r.stderr.startswith(b"vault: audit record not durable"), r.stderr
            assert r.stdout == b"" and not out.exists()
        r = run_script("audit", "verify", "--log", str(office.vault / "audit"))
        assert r.returncode == 0, r.stderr
        r = run_script("--vault", str(office.vault), "doctor")  # an auditor's read-only check
        assert r.returncode == 0, (
            "BUG vault/store/index.py (SQLiteIndex._connect): on a read-only vault the "
            "WAL index cannot be opened, and doctor reports it as an integrity problem; "
            f"open it read-only (mode=ro&immutable=1) there: {r.stdout!r} {r.stderr!r}")


def test_a_full_disk_under_the_state_folder_is_a_clear_error(tmp_path: Path) -> None:
    # The disk holding a user's state folder filled up: their machine's
    # record could not grow while it caught up with others' work, and every
    # command ended in "internal error (OperationalError)", "a bug in
    # vault". Now it says what could not be written, and loses nothing.
    from office import make_office as make_office_of

    office = make_office_of(tmp_path / "office")
    state = tmp_path / "clerk-state"
    env = {**os.environ, "VAULT_STATE_DIR": str(state)}
    base = [sys.executable, "-m", "vault_cli.main", "--vault", office.location,
            "--identity", str(office.files["clerk"])]
    assert subprocess.run([*base, "ls"], env=env, capture_output=True,
                          timeout=60).returncode == 0
    with office.as_("leader") as leader:
        for i in range(40):
            leader.seal(io.BytesIO(b"minutes %d" % i * 500), filename=f"m{i}.txt",
                        level="SECRET", compartments=["BOARD"], justification="minutes")
    # No file of the state may grow past what it holds now.
    limit = max(f.stat().st_size for f in state.glob("*.sqlite*"))
    failed = 0
    for args in (["audit", "verify"], ["ls"]):
        r = subprocess.run([*base, *args], env=env, capture_output=True, text=True,
                           timeout=60, check=False,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE,
                                                                 (limit, limit)))
        if r.returncode == 0:
            continue  # a command that found room in the file's free pages
        assert r.returncode == 1, r.stderr
        assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert "cannot update this machine's record of the vault" in r.stderr, r.stderr
        failed += 1
    assert failed  # the disk was full for the state
    r = subprocess.run([*base, "audit", "verify"], env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_statements_nest_at_most_64_deep_wherever_they_are_read() -> None:
    # Python's parser gives up at a depth that depends on its caller's: a
    # label or statement nested some 950 deep was valid in one command and
    # not in another. The bound is the vault's own (AUDIT.md §3).
    import sys

    from vault._primitives import MAX_DEPTH, parse_canonical_json

    def nested(depth: int) -> bytes:
        return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)

    assert parse_canonical_json(nested(MAX_DEPTH)) is not None
    for depth in (MAX_DEPTH + 1, sys.getrecursionlimit() - 50):
        with pytest.raises(ValueError, match="nested too deep"):
            parse_canonical_json(nested(depth))
    # Brackets inside strings are text, not depth.
    assert parse_canonical_json(b'{"a":"' + b"[{" * 500 + b'"}') == {"a": "[{" * 500}
    # A string that never closes, of escaped quotes, after many brackets: a
    # planted audit line like it held every reader for minutes (the scan
    # retried from every quote), and is simply not JSON.
    from vault._primitives import too_deep

    hostile = b"[" * 65 + b'"' + b'\\"' * 32_000
    assert too_deep(hostile)
    with pytest.raises(ValueError):
        parse_canonical_json(b'{"a":' + b"[" * 70 + b'"' + b'\\"' * 32_000)
