"""Runs of lines that are no records, of any length (docs/AUDIT.md §8): an
insider with the application's rights appends them -- schema-valid JSON in
PostgreSQL, anything in a folder -- and the next writer sets them aside with
one torn record; the vault goes on, verification agrees, and memory stays
bounded (a long run is named by its last lines and covered by a digest)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from audit_support import KEYS, fields, key_lookup, lines_of, make_log, write_lines
from backends import RawFolder, RawPostgres
from office import Office
from test_audit_go import _files, _keys_file, auditcheck  # noqa: F401 - the Go checker, built once

from vault.audit import AuditLog, fingerprint
from vault.audit._chain import SIGNING_CONTEXT
from vault.audit._hashing import leaf_hash
from vault.audit._record import AuditRecord, canonical_json
from vault.audit._walk import MAX_FRAGMENTS
from vault.errors import AuditIntegrityError

LONG = MAX_FRAGMENTS + 1  # the shortest run a torn record cannot name line by line


def _junk(path: Path, first: int, n: int) -> None:
    """Lines a folder writer appends directly: JSON the schema would take."""
    with open(path / "log", "ab") as f:
        f.write(b"".join(b'{"v":2,"seq":%d}\n' % s for s in range(first, first + n)))


def _office_junk(office: Office, n: int) -> int:
    """``n`` junk lines at the end of an office's log, as its insiders can
    write them: one INSERT in PostgreSQL, an append to audit/log in a folder.
    Returns the first one's number."""
    raw = office.raw
    head = len(raw.audit_lines())
    if isinstance(raw, RawPostgres):
        raw.cluster.execute(
            "INSERT INTO vault.audit_log (seq, line) SELECT s, convert_to(format("
            "'{\"v\":2,\"seq\":%%s}', s), 'UTF8') FROM generate_series(%s::bigint, %s::bigint) s",
            (head, head + n - 1), dbname=raw.dbname, user="vault_app")
    else:
        assert isinstance(raw, RawFolder)
        _junk(raw.path / "audit", head, n)
    return head


def test_a_long_run_is_set_aside_by_one_torn_record(tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 5)
    _junk(path, 5, 3 * MAX_FRAGMENTS)
    before = AuditLog.open(path).verify(key_lookup=key_lookup)
    assert before.unrecovered_lines == 3 * MAX_FRAGMENTS  # pending: not damage
    log = AuditLog.open(path)
    log.append(fields("bob"), KEYS["bob"])
    end = 5 + 3 * MAX_FRAGMENTS
    (torn,) = [r for r in log.records() if r.action == "torn"]
    assert torn.seq == end and [f.seq for f in torn.fragments] == list(
        range(end - MAX_FRAGMENTS, end))  # the last lines, one by one
    report = log.verify(key_lookup=key_lookup)
    assert (report.size, report.unrecovered_lines, report.signatures) == (end + 2, 0, 7)
    assert log.verify().size == end + 2
    scan = log.scan()
    items = list(scan)
    assert scan.tip == log.tip() and scan.unrecovered == 0
    assert sum(i.count for i in items) == end + 2 and all(i.problem is None for i in items)
    assert [i.count for i in items if i.count > 1] == [2 * MAX_FRAGMENTS]


def test_the_torn_record_covers_the_whole_long_run(tmp_path: Path) -> None:
    # A line of the run the torn record does not name one by one still
    # counts: its chain (§8) covers it, so a change breaks its signature.
    path = tmp_path / "log"
    make_log(path, 5, every=0, final_checkpoint=False)  # no checkpoint vouches for it
    _junk(path, 5, LONG + 10)
    AuditLog.open(path, checkpoint_every=0).append(fields("bob"), KEYS["bob"])
    lines = lines_of(path)
    lines[7] = b'{"v":2,"seq":7,"x":1}'
    write_lines(path, lines)
    with pytest.raises(AuditIntegrityError) as e:
        AuditLog.open(path).verify(key_lookup=key_lookup)
    assert (e.value.kind, e.value.seq) == ("signature", 5 + LONG + 10)


def test_a_checkpoint_inside_a_long_run(tmp_path: Path) -> None:
    # Quick verification reads from the newest checkpoint on; a pending run
    # straddling it, longer than a torn record names, is read whole.
    path = tmp_path / "log"
    make_log(path, 5)
    _junk(path, 5, 2 * MAX_FRAGMENTS)
    AuditLog.open(path).checkpoint()
    log = AuditLog.open(path)
    log.append(fields("carol"), KEYS["carol"])
    report = log.verify()
    assert report.size == 5 + 2 * MAX_FRAGMENTS + 2 and report.unrecovered_lines == 0
    assert log.verify(key_lookup=key_lookup).newest_checkpoint == 5 + 2 * MAX_FRAGMENTS


def test_a_long_run_before_the_tip_of_a_turn_that_only_read(tmp_path: Path) -> None:
    # A handle whose tip ends inside a long run (a checkpoint turn read it)
    # looks back for where the run starts.
    path = tmp_path / "log"
    make_log(path, 5)
    _junk(path, 5, LONG)
    log = AuditLog.open(path)
    log.checkpoint()  # the tip is now the end of the junk
    _junk(path, 5 + LONG, 3)
    log.append(fields(), KEYS["alice"])
    (torn,) = [r for r in log.records() if r.action == "torn"]
    assert torn.fragments[-1].seq == 5 + LONG + 2
    assert log.verify(key_lookup=key_lookup).unrecovered_lines == 0


def test_a_junk_run_does_not_stop_the_vault(office: Office) -> None:
    # Longer than a database turn reads in one round trip, too.
    clerk = office.as_("clerk")
    doc = clerk.seal(io.BytesIO(b"before"), level="INTERNAL", compartments=["STAFF"]).id
    n = 3 * MAX_FRAGMENTS
    first = _office_junk(office, n)
    out = io.BytesIO()
    office.as_("leader").open(doc, out)  # the leader's append sets the run aside
    assert out.getvalue() == b"before"
    clerk.seal(io.BytesIO(b"after"), level="INTERNAL", compartments=["STAFF"])
    officer = office.as_("officer")
    assert officer.verify_audit().unrecovered_lines == 0
    assert officer.doctor().ok
    torn = json.loads(office.raw.audit_lines()[first + n])
    assert torn["action"] == "torn" and torn["fragments"][0]["seq"] == first + n - MAX_FRAGMENTS


def test_an_incident_does_not_wait_for_the_damage_to_settle(office: Office) -> None:
    # The declaration is an append: it sets the run aside first, then names it.
    first = _office_junk(office, LONG + 100)
    officer = office.as_("officer")
    seq = officer.declare_incident(first, first + LONG + 99, reason="junk")
    assert seq == first + LONG + 100 + 2  # after the torn record and the decision
    assert officer.doctor().ok


def test_go_agrees_on_a_long_run(auditcheck: Path, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "log"
    make_log(path, 20, every=7)
    _junk(path, 20, LONG + 3)
    log = AuditLog.open(path, checkpoint_every=7)
    log.append(fields("bob"), KEYS["bob"])
    args = _files(tmp_path, path, 3, newest=14)  # above it only the signatures vouch

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(auditcheck), *args], capture_output=True, text=True,
                              timeout=60, check=False)

    result = check()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"signatures ok: 22 signed records cover 0 unsigned; {LONG + 3} lines set aside, "
        "0 pending")
    lines = lines_of(path)
    lines[21] = b'{"v":2,"seq":21,"x":1}'  # not one the torn record names one by one
    write_lines(path, lines)
    result = check()
    assert result.returncode == 1 and f"signature: record {20 + LONG + 3}" in result.stderr


def test_a_writer_far_behind_catches_up(pg_cluster: Any) -> None:
    # A database writer whose tip is many round trips behind reads the lines
    # since inside its own (pipelined) transaction.
    from vault.audit import NoteSigner
    from vault.store.postgres import PostgresBackend

    dsn = pg_cluster.new_database()
    signer = NoteSigner.generate("pg.example/behind")
    behind, busy = (PostgresBackend(dsn).audit_log(signer, "pg.example/behind")
                    for _ in range(2))
    behind.append(fields(), KEYS["alice"])
    for _ in range(3):
        busy.append_many([(fields("bob", i), KEYS["bob"]) for i in range(MAX_FRAGMENTS)])
    behind.append(fields(), KEYS["alice"])
    assert behind.tip().size == 3 * MAX_FRAGMENTS + 2
    assert busy.verify(key_lookup=key_lookup).size == 3 * MAX_FRAGMENTS + 2


# -- checkpoints a planted one would have suppressed (docs/AUDIT.md §7) --------------


@pytest.fixture(params=["folder", "postgres"])
def bare_log(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AuditLog, Any]:
    """A log checkpointed every 10 lines, and how an insider plants a line
    or a checkpoint in it: ``plant(kind, seq_or_size, data)``."""
    if request.param == "folder":
        log = make_log(tmp_path / "log", 5, every=10, final_checkpoint=False)

        def plant(kind: str, n: int, data: bytes) -> None:
            if kind == "line":
                with open(tmp_path / "log" / "log", "ab") as f:
                    f.write(data + b"\n")
            else:
                (tmp_path / "log" / "checkpoints" / str(n)).write_bytes(data)

        return log, plant
    from pg_support import APP, Cluster, dbname_of

    from vault.audit import NoteSigner
    from vault.store.postgres import PostgresBackend

    cluster: Cluster = request.getfixturevalue("pg_cluster")
    dsn = cluster.new_database()
    log = PostgresBackend(dsn).audit_log(NoteSigner.generate("pg.example/junk"),
                                         "pg.example/junk")
    log.checkpoint_every = 10
    log.append_many([(fields("alice", i), KEYS["alice"]) for i in range(5)])

    def plant_pg(kind: str, n: int, data: bytes) -> None:
        table = "audit_log (seq, line)" if kind == "line" else "audit_checkpoints (size, note)"
        cluster.execute(f"INSERT INTO vault.{table} VALUES (%s, %s)", (n, data),
                        dbname=dbname_of(dsn), user=APP)

    return log, plant_pg


def test_a_bogus_checkpoint_does_not_suppress_real_ones(bare_log: tuple[AuditLog, Any]) -> None:
    log, plant = bare_log
    for seq in range(5, 10):  # the log padded to the next multiple of 10
        plant("line", seq, b'{"v":2,"seq":%d}' % seq)
    plant("checkpoint", 10, b"bogus")
    for i in range(3):
        log.append(fields("bob", i), KEYS["bob"])
    report = log.verify(expect_signer=True)
    assert report.checkpoints == 1 and report.newest_checkpoint == 12
    assert not any("checkpoints are missing" in f for f in report.findings)
    assert any(f.startswith("checkpoint 10 does not verify") for f in report.findings)


def test_doctor_names_a_bogus_checkpoint(office: Office) -> None:
    size = len(office.raw.audit_lines())
    raw = office.raw
    if isinstance(raw, RawPostgres):
        raw.cluster.execute("INSERT INTO vault.audit_checkpoints VALUES (%s, 'bogus')", (size,),
                            dbname=raw.dbname, user="vault_app")
    else:
        assert isinstance(raw, RawFolder)
        (raw.path / "audit" / "checkpoints" / str(size)).write_bytes(b"bogus")
    report = office.as_("officer").doctor()
    assert report.ok  # a finding, not damage (docs/AUDIT.md §7)
    assert any(n.startswith(f"audit log: checkpoint {size} does not verify") for n in report.notes)


def test_a_record_dated_in_other_digits_is_junk_set_aside(office: Office,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A modified client dates its record "٢٠٢٦-١٢-٠٧T…": Python's \d took
    # those digits for a time (AUDIT.md §2 says RFC 3339), so the vault
    # believed a record other readers of the format refuse. It is junk: the
    # next writer sets it aside, and everyone goes on.
    import vault.audit._log as log_module
    from vault.audit._fields import RecordBuilder

    clerk = office.as_("clerk")
    doc = clerk.seal(io.BytesIO(b"rota"), level="INTERNAL", compartments=["STAFF"]).id
    first = len(office.raw.audit_lines())

    def other_digits(*, time: str, host: str, pid: int) -> RecordBuilder:
        return RecordBuilder(time="٢٠٢٦-١٢-٠٧T04:00:00.000000Z", host=host, pid=pid)

    ident = office.ids["clerk"]
    with monkeypatch.context() as m, office.as_("clerk") as v:
        m.setattr(log_module, "RecordBuilder", other_digits)
        with contextlib.suppress(AuditIntegrityError):
            v.audit.append({"actor": {"name": "clerk", "key": ident.fingerprint},
                            "action": "ls", "outcome": "allowed", "reason": "listed"},
                           ident.signing_key)
    assert "٢٠٢٦" in office.raw.audit_lines()[first].decode()
    out = io.BytesIO()
    office.as_("leader").open(doc, out)
    assert out.getvalue() == b"rota"
    officer = office.as_("officer")
    assert officer.verify_audit().unrecovered_lines == 0
    assert officer.doctor().ok
    assert any(json.loads(line).get("action") == "torn"
               for line in office.raw.audit_lines()[first + 1:])


def test_go_agrees_on_a_record_dated_in_other_digits(auditcheck: Path, tmp_path: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # A signed line dated "٢٠٢٦-…" is no record to the vault, which sets it
    # aside; the independent checker took it for one and then refused the
    # torn record that names it.
    import vault.audit._log as log_module
    from vault.audit._fields import RecordBuilder

    path = tmp_path / "log"
    make_log(path, 20, every=7)
    log = AuditLog.open(path, checkpoint_every=7)

    def other_digits(*, time: str, host: str, pid: int) -> RecordBuilder:
        return RecordBuilder(time="٢٠٢٦-١٢-٠٧T04:00:00.000000Z", host=host, pid=pid)

    with monkeypatch.context() as m:
        m.setattr(log_module, "RecordBuilder", other_digits)
        with contextlib.suppress(AuditIntegrityError):
            log.append(fields("bob"), KEYS["bob"])
    log = AuditLog.open(path, checkpoint_every=7)
    log.append(fields("bob"), KEYS["bob"])  # sets it aside
    assert json.loads(lines_of(path)[21])["action"] == "torn"
    result = subprocess.run([str(auditcheck), *_files(tmp_path, path, 3, newest=21)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "1 lines set aside" in result.stdout.splitlines()[-1]


@pytest.mark.parametrize("member", ["KEY", "Key"])
def test_go_agrees_on_an_actor_key_in_other_case(auditcheck: Path, tmp_path: Path,  # noqa: F811
                                                 member: str) -> None:
    # Go's encoding/json matches a struct's member names case-insensitively:
    # the independent checker read "KEY" as the actor's key and took a line
    # the vault sets aside for a record -- whose signature then failed.
    path = tmp_path / "log"
    make_log(path, 20, every=7)
    line = json.loads(lines_of(path)[-1])
    line["seq"] = 20
    line["actor"] = {"name": line["actor"]["name"], member: line["actor"]["key"]}
    with open(path / "log", "ab") as f:
        f.write(json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    log = AuditLog.open(path, checkpoint_every=7)
    log.append(fields("bob"), KEYS["bob"])  # sets it aside
    log.checkpoint()
    assert json.loads(lines_of(path)[21])["action"] == "torn"
    result = subprocess.run([str(auditcheck), *_files(tmp_path, path, 3)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "1 lines set aside" in result.stdout.splitlines()[-1]


# Lines a writer with a key of its own can sign and plant: a record's members
# signed over their chain (§4) like a record, yet no record by §2-§3, and
# the canonical lines of unusual members that are records. Each case gets
# the body of the log's last record (without "sig", at the next line) and
# ``sign``: the signature, in base64, of the given JSON text there.
Sign = Callable[[bytes], str]
Case = Callable[[dict[str, Any], Sign], bytes]


def _canonical(body: dict[str, Any], sign: Sign) -> bytes:
    return canonical_json({**body, "sig": sign(canonical_json(body))})


def _spoiled(text: bytes, sign: Sign) -> bytes:
    """``text`` signed as it is, its "sig" last: a line an independent
    checker that does not re-encode takes for a record whose signature
    verifies."""
    return text[:-1] + b',"sig":"%s"}' % sign(text).encode()


def _long_integer(body: dict[str, Any], sign: Sign) -> bytes:
    """A pid of 4,301 digits, canonical but for what Python's json does not
    read, "sig" in its place (after "seq")."""
    text = canonical_json({**body, "pid": 2}).replace(b'"pid":2,', b'"pid":1%s,' % (b"0" * 4300))
    seq = b'"seq":%d,' % body["seq"]
    return text.replace(seq, seq + b'"sig":"%s",' % sign(text).encode(), 1)


def _trailing_bits(body: dict[str, Any], sign: Sign) -> bytes:
    """The signature in base64 whose unused last bits are not zero: the same
    64 bytes, not their encoding."""
    sig = sign(canonical_json(body))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(sig[-3])
    other = sig[:-3] + alphabet[last ^ 1] + "=="
    assert base64.b64decode(other) == base64.b64decode(sig)
    return canonical_json({**body, "sig": other})


def _with(**members: Any) -> Case:
    return lambda body, sign: _canonical({**body, **members}, sign)


def _text(change: Callable[[bytes], bytes], **members: Any) -> Case:
    return lambda body, sign: _spoiled(change(canonical_json({**body, **members})), sign)


def _named(name: str) -> Case:
    return lambda body, sign: _canonical({**body, "actor": {**body["actor"], "name": name}}, sign)


def _nested(depth: int) -> Any:
    """Lists and objects nested ``depth`` deep."""
    value: Any = []
    for i in range(depth - 1):
        value = [value] if i % 2 else {"x": value}
    return value


def _copy_with_a_space(last: bytes, seq: int) -> bytes:
    """The log's last signed record copied to line ``seq``, one space in."""
    return last.replace(b'"seq":%d' % (seq - 1), b'"seq":%d' % seq).replace(b"{", b"{ ", 1)


_NO_RECORD: dict[str, Case] = {
    # §3: not the canonical encoding of what it holds
    "a space": _text(lambda t: t.replace(b"{", b"{ ", 1)),
    "members out of order": _text(lambda t: b'{"v":2,' + t[1:].replace(b',"v":2}', b"}")),
    "a duplicate member": _text(lambda t: t[:-1] + b',"reason":"again"}'),
    "state members out of order": _text(
        lambda t: t.replace(b'{"a":1,"b":2}', b'{"b":2,"a":1}'), state={"a": 1, "b": 2}),
    "a duplicate member in state": _text(
        lambda t: t.replace(b'{"a":1,"b":2}', b'{"a":1,"a":1,"b":2}'), state={"a": 1, "b": 2}),
    "2.0 for 2": _text(lambda t: t.replace(b'"v":2}', b'"v":2.0}')),
    "a pid of 2.0": _text(lambda t: t.replace(b'"pid":2,', b'"pid":2.0,'), pid=2),
    "a letter escaped": _text(lambda t: t.replace(b'"A reason"', b'"\\u0041 reason"'),
                              reason="A reason"),
    "U+2028 escaped": _text(lambda t: t.replace("\u2028".encode(), b"\\u2028"),
                            reason="a\u2028b"),
    "a control escaped in capitals": _text(lambda t: t.replace(b"\\u001f", b"\\u001F"),
                                           reason="a\x1fb"),
    "a tab escaped as \\u0009": _text(lambda t: t.replace(b"\\t", b"\\u0009"), reason="a\tb"),
    "the signature's unused bits set": _trailing_bits,
    "an integer of 4,301 digits": _long_integer,
    # §2: a value the record's members may not hold
    "outcome bogus": _with(outcome="bogus"),
    "a request with a space": _with(request="a b"),
    "compartments out of order": _with(label={"caveats": [], "compartments": ["b", "a"],
                                              "level": "secret"}),
    "a label with a title": _with(label={"caveats": [], "compartments": [], "level": "secret",
                                         "title": "Q3 layoffs"}),
    "an empty rule": _with(rules=[""]),
    "a host that is a number": _with(host=5),
    "a negative pid": _with(pid=-1),
    "a policy in capitals": _with(policy="AB" * 32),
    "an empty doc": _with(doc=""),
    "a reason of null": _with(reason=None),
    "a state with an empty key": _with(state={"": 1}),
    "a state with a float": _with(state={"n": 1.5}),
    "a name with a no-break space": _named("bob\u00a0"),
    "a name of 65 characters": _named("b" * 65),
    # §3: deeper than 64 -- Python's own limit depends on its caller's depth
    "nested 65 deep": _with(state={"n": _nested(63)}),
    "nested 900 deep": _with(state={"n": _nested(898)}),
    "fragments on an open record": _with(fragments=[]),
}
_RECORD: dict[str, Case] = {
    # §3: strings hold these raw, or escaped as Python's json escapes them
    "raw U+2028 and escaped controls": _with(
        reason="a\u2028b\u2029c\x7f<>&'\"\\/\b\f\n\r\t\x00\x1f\u00e9\U0001f600"),
    "a state sorted by code point": _with(state={
        "z": [-1, 0, 10**30, True, False, None, {"": "x", "B": [], "a": {}}],
        "\u00e9": "\u00fc", "a": {}, "Z": ""}),
    "a printable name": _named("Zo\u00eb \u00dcnal-O'Brien"),
    "an integer of 4,300 digits": _with(pid=10**4299),
    # 64 deep with the record: state at 2, then 62 more
    "nested 64 deep": _with(state={"n": _nested(62)}),
}


def _by_fingerprint(name: str | None, fp: str, seq: int = 0) -> Any:
    keys = {fingerprint(k.public_key()): k.public_key() for k in KEYS.values()}
    return keys.get(fp)


@pytest.mark.parametrize("case", ["a copy with a space", *_NO_RECORD, *_RECORD])
def test_go_and_the_vault_agree_on_what_is_a_record(auditcheck: Path,  # noqa: F811
                                                    tmp_path: Path, case: str) -> None:
    # docs/AUDIT.md §3: a reader re-encodes a parsed line and compares; a line
    # that differs, or that breaks a value rule of §2, is no record. A folder
    # writer plants one such line signed with its own key -- or a signed
    # record copied, one space in; the vault sets it aside with the next
    # writer's torn record. The independent checker took it for a signed
    # record: its signature failed, or the torn record naming it did -- a
    # false alarm for good.
    path = tmp_path / "log"
    make_log(path, 20, every=7)
    lines = lines_of(path)
    body = json.loads(lines[-1])
    del body["sig"]
    key = KEYS[body["actor"]["name"]]
    body["seq"] = len(lines)
    chain = hashlib.sha256(leaf_hash(lines[-1])).digest()

    def sign(text: bytes) -> str:
        return base64.b64encode(key.sign(SIGNING_CONTEXT + chain + text)).decode()

    is_record = case in _RECORD
    if case == "a copy with a space":
        line = _copy_with_a_space(lines[-1], len(lines))
    else:
        line = {**_NO_RECORD, **_RECORD}[case](body, sign)
    try:
        AuditRecord.from_line(line, seq=20)
        parsed = True
    except AuditIntegrityError:
        parsed = False
    assert parsed == is_record
    with open(path / "log", "ab") as f:
        f.write(line + b"\n")
    log = AuditLog.open(path, checkpoint_every=7)
    log.append(fields("alice"), KEYS["alice"])
    log.checkpoint()
    after = lines_of(path)
    assert (json.loads(after[21])["action"] == "torn") != is_record
    assert log.verify(key_lookup=_by_fingerprint).unrecovered_lines == 0
    args = _files(tmp_path, path, 3)
    # The keys file binds the name a case gives the record (one with spaces
    # and letters beyond ASCII) to the key that signed it.
    args[1] = _keys_file(tmp_path / "keys", {**KEYS, json.loads(line)["actor"]["name"]: key}) \
        if is_record else args[1]
    result = subprocess.run([str(auditcheck), *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"signatures ok: 22 signed records cover 0 unsigned; {0 if is_record else 1} lines "
        "set aside, 0 pending")
