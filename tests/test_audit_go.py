"""Third-party verification: Go's golang.org/x/mod/sumdb/note and tlog check
our checkpoints (with `vault audit key`'s output), inclusion proofs, hash
file and consistency proofs, and Go's standard library every record
signature over its chain (docs/AUDIT.md §4, §5). Go is required: without it
this fails."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_support import KEYS, fields, key_lookup, lines_of, make_log, write_lines
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.audit import AuditLog, fingerprint
from vault_cli.main import cli

SOURCE = Path(__file__).parent / "go" / "auditcheck"
GOPATH = "/usr/share/gocode"  # Debian's golang-golang-x-mod-dev


@pytest.fixture(scope="module")
def auditcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    assert go is not None, "Go is required for the independent check (apt-get install golang-go)"
    assert Path(GOPATH, "src/golang.org/x/mod/sumdb/note").is_dir(), (
        "golang.org/x/mod is required (apt-get install golang-golang-x-mod-dev)"
    )
    out = tmp_path_factory.mktemp("go") / "auditcheck"
    env = {
        **os.environ,
        "GOPATH": GOPATH,
        "GO111MODULE": "off",  # GOPATH mode: offline, Debian's sources
        "GOFLAGS": "",
        "GOCACHE": os.environ.get("GOCACHE") or str(out.parent / "cache"),
    }
    sources = [str(p) for p in sorted(SOURCE.glob("*.go"))]
    subprocess.run([go, "build", "-o", str(out), *sources], env=env, check=True, timeout=300)
    return out


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _keys_file(path: Path, keys: dict[str, Ed25519PrivateKey],
               lines: dict[str, tuple[int, int | None]] | None = None) -> str:
    """The auditor's keys file (AUDIT.md §15): each name, the lines its key
    holds for (all of them unless ``lines`` says), its fingerprint and key."""
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    rows = []
    for name, key in keys.items():
        first, end = (lines or {}).get(name, (0, None))
        text = base64.b64encode(key.public_key().public_bytes(*raw)).decode()
        rows.append(f"{first} {'-' if end is None else end} "
                    f"{fingerprint(key.public_key())} {text} {json.dumps(name)}\n")
    path.write_text("".join(rows))
    return str(path)


def _files(tmp_path: Path, log_dir: Path, seq: int, newest: int | None = None) -> list[str]:
    log = AuditLog.open(log_dir)
    (tmp_path / "vkey").write_text(_cli("audit", "key", "--log", str(log_dir)))
    (tmp_path / "proof").write_text(_cli("audit", "prove", str(seq), "--log", str(log_dir)))
    newest = newest or log.paths.checkpoint_sizes()[-1]
    (tmp_path / "old").write_bytes(log.paths.checkpoint(7).read_bytes())
    consistency = log.consistency_proof(7, newest)
    (tmp_path / "consistency").write_text(
        "".join(base64.b64encode(h).decode() + "\n" for h in consistency)
    )
    return [
        "-keys", _keys_file(tmp_path / "keys", KEYS),
        str(tmp_path / "vkey"),
        str(log.paths.checkpoint(newest)),
        str(tmp_path / "proof"),
        str(log.paths.hashes),
        str(log.paths.log),
        str(tmp_path / "old"),
        str(tmp_path / "consistency"),
    ]


def _check(auditcheck: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(auditcheck), *args], capture_output=True, text=True, timeout=60, check=False
    )


def _batched_log(log_dir: Path) -> AuditLog:
    """Single records, runs of one signer, signers alternating in a batch,
    and an interrupted write set aside by a torn record."""
    log = make_log(log_dir, 20, every=7, final_checkpoint=False)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(5)])
    log.append_many([(fields(a, i), KEYS[a]) for i, a in enumerate(["alice"] * 3 + ["carol"] * 2
                                                                     + ["alice"])])
    with open(log_dir / "log", "ab") as f:
        f.write(b'{"action":"op')  # a torn write
    log = AuditLog.open(log_dir, checkpoint_every=7)
    log.append_many([(fields("carol", i), KEYS["carol"]) for i in range(4)])
    log.checkpoint()
    return log


def test_go_verifies_checkpoints_proofs_hashes_and_signatures(auditcheck: Path,
                                                              tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    log = _batched_log(log_dir)
    size = len(lines_of(log_dir))
    assert size == 37 and log.verify(key_lookup=key_lookup).unsigned_covered == 4 + 3 + 3
    for seq in (0, 13, 22, size - 1):
        result = _check(auditcheck, _files(tmp_path, log_dir, seq))
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"checkpoint ok: audit.example.org/test size {size}",
            f"inclusion ok: record {seq} in tree of size {size}",
            f"record ok: line {seq} of the log",
            f"tree ok: {size} log lines hash to the checkpoint root; "
            f"{2 * size - size.bit_count()} stored hashes match",
            f"consistency ok: 7 is a prefix of {size}",
            "signatures ok: 26 signed records cover 10 unsigned; 1 lines set aside, 0 pending",
        ]


def test_go_rejects_what_we_would_reject(auditcheck: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    make_log(log_dir, 20, every=7)
    args = _files(tmp_path, log_dir, 9)
    assert _check(auditcheck, args).returncode == 0

    other = make_log(tmp_path / "other", 1)  # another log's key
    (tmp_path / "vkey2").write_text(other.verifier().verifier_key())
    result = _check(auditcheck, [*args[:2], str(tmp_path / "vkey2"), *args[3:]])
    assert result.returncode == 1 and "checkpoint signature" in result.stderr

    proof = (tmp_path / "proof").read_text().split("\n")
    i = proof.index("index 9") + 1
    proof[i] = base64.b64encode(bytes(32)).decode()
    (tmp_path / "proof").write_text("\n".join(proof))
    result = _check(auditcheck, args)
    assert result.returncode == 1 and "inclusion proof" in result.stderr

    # A checkpoint signed by the log's key whose size is no canonical
    # decimal, or whose origin is not the key's name (AUDIT.md §7).
    from vault.audit.note import NoteSigner

    _files(tmp_path, log_dir, 9)
    signer = NoteSigner.from_private_key((log_dir / "log.key").read_text().strip())
    good = Path(args[3]).read_bytes()
    origin, size, root = good.decode().split("\n")[:3]
    for text, error in ((f"{origin}\n+{size}\n{root}\n", "checkpoint size"),
                        (f"{origin}\n0{size}\n{root}\n", "checkpoint size"),
                        (f"{origin}/other\n{size}\n{root}\n", "is not its key's name")):
        Path(args[3]).write_bytes(signer.sign(text))
        result = _check(auditcheck, args)
        assert result.returncode == 1 and error in result.stderr, (text, result.stderr)
    Path(args[3]).write_bytes(good)
    assert _check(auditcheck, args).returncode == 0

    hashes = bytearray(Path(args[5]).read_bytes())
    hashes[5] ^= 1
    Path(args[5]).write_bytes(bytes(hashes))
    result = _check(auditcheck, args)
    assert result.returncode == 1 and "hash file" in result.stderr


def test_go_finds_rewritten_records_by_their_signatures(auditcheck: Path,
                                                        tmp_path: Path) -> None:
    # Lines above the checkpoint used: only the signatures vouch for them.
    log_dir = tmp_path / "log"
    log = make_log(log_dir, 14, every=7, final_checkpoint=False)
    log.append_many([(fields("bob", i), KEYS["bob"]) for i in range(4)])  # lines 14-17
    args = _files(tmp_path, log_dir, 3, newest=14)
    assert _check(auditcheck, args).returncode == 0
    pristine = lines_of(log_dir)
    for change in ("modify", "substitute"):
        lines = list(pristine)
        record = json.loads(lines[15])
        if change == "modify":  # an unsigned record of the run: the run's signature breaks
            lines[15] = lines[15].replace(b'"reason":"reason 1"', b'"reason":"REASON 1"')
            want = "signature: record 17"
        else:  # a record re-signed by a fresh key the auditor does not know
            mallory = AuditLog.create(tmp_path / "m", origin="x.example/m")
            fresh = Ed25519PrivateKey.generate()
            forged = mallory.append({**fields("alice", 9), "actor": {"name": "alice"}}, fresh)
            lines = [*lines[:14], forged.line.replace(b'"seq":0', b'"seq":14')]
            want = "signature: record 14"
            assert record["seq"] == 15
        write_lines(log_dir, lines)
        result = _check(auditcheck, args)
        assert result.returncode == 1 and want in result.stderr, (change, result.stderr)


def test_go_confirms_rebuilt_derived_files(auditcheck: Path, tmp_path: Path) -> None:
    log_dir = tmp_path / "log"
    make_log(log_dir, 30, every=7)
    hashes = bytearray((log_dir / "hashes").read_bytes())
    hashes[32 * 5 + 3] ^= 0x40  # a stored hash proofs of record 4 use
    (log_dir / "hashes").write_bytes(bytes(hashes))
    index = bytearray((log_dir / "index").read_bytes())
    index[8 * 20 + 7] ^= 1  # a moved offset
    (log_dir / "index").write_bytes(bytes(index))
    log = AuditLog.open(log_dir)
    log.append(fields("bob", 1), KEYS["bob"])  # in step at the end: extended as is
    assert log.verify().hashes_ok  # the quick check reads what it needs, not all
    report = log.verify(key_lookup=key_lookup)  # the deep one compares every byte
    assert any("rebuilt" in f for f in report.findings) and not report.hashes_ok
    assert log.verify(key_lookup=key_lookup).hashes_ok
    result = _check(auditcheck, _files(tmp_path, log_dir, 4))
    assert result.returncode == 0, result.stderr


def test_go_attributes_a_record_to_the_key_bound_to_its_name(auditcheck: Path,
                                                             tmp_path: Path) -> None:
    # Mallory appends "leader opened BOARD-plan" under the leader's name,
    # with her own fingerprint, signed by her own key. vault's verify said
    # "signed by an unknown key"; Go's checker -- and AUDIT.md §15, which
    # found the key by fingerprint alone -- said "signatures ok", and the
    # auditor took the record for the leader's. A key revoked at a line
    # was taken after it as well.
    log_dir = tmp_path / "log"
    make_log(log_dir, 14, every=7)
    mallory = Ed25519PrivateKey.generate()
    keys = {**KEYS, "mallory": mallory}
    args = _files(tmp_path, log_dir, 3)
    args[1] = _keys_file(tmp_path / "keys", keys)
    assert _check(auditcheck, args).returncode == 0  # the honest office passes
    log = AuditLog.open(log_dir, checkpoint_every=0)
    log.append({**fields("bob", 99), "actor": {"name": "bob"}}, mallory)  # line 14
    args = _files(tmp_path, log_dir, 3)
    args[1] = _keys_file(tmp_path / "keys", keys)
    result = _check(auditcheck, args)
    assert result.returncode == 1, result.stdout
    assert 'record 14 (' + fingerprint(mallory.public_key()) + ') is signed by no key ' \
        'bound to "bob" at line 14' in result.stderr, result.stderr
    with pytest.raises(Exception, match="signed by an unknown key"):
        log.verify(key_lookup=key_lookup)

    # Bob's key revoked at line 10: his record at line 13 is no longer his.
    honest = tmp_path / "honest"
    make_log(honest, 14, every=7)
    args = _files(tmp_path, honest, 3)
    args[1] = _keys_file(tmp_path / "keys", KEYS, {"bob": (0, 10)})
    result = _check(auditcheck, args)
    assert result.returncode == 1 and 'bound to "bob" at line 10' in result.stderr, \
        result.stderr


def test_go_checks_a_vault_with_the_keys_file_it_prints(auditcheck: Path, tmp_path: Path) -> None:
    # The auditor's keys file from 'vault audit keys': the honest office
    # passes; the clerk's record under the leader's name, signed with her own
    # key, is reported -- and so is one she appends after the officer
    # revoked her.
    import io

    from office import make_office

    office = make_office(tmp_path / "office")
    office.as_("leader").seal(io.BytesIO(b"board plan"), level="SECRET", compartments=["BOARD"])
    audit = office.path / "audit"

    def check() -> subprocess.CompletedProcess[str]:
        r = office.cli("officer", "audit", "keys")
        assert r.exit_code == 0, r.stderr
        (tmp_path / "keys").write_text(r.stdout)
        (tmp_path / "vkey").write_text(office.cli("officer", "audit", "key").stdout)
        r = office.cli("officer", "audit", "prove", "1")
        assert r.exit_code == 0, r.stderr
        (tmp_path / "proof").write_text(r.stdout)
        newest = max(int(p.name) for p in (audit / "checkpoints").iterdir())
        return _check(auditcheck, ["-keys", str(tmp_path / "keys"), str(tmp_path / "vkey"),
                                   str(audit / "checkpoints" / str(newest)),
                                   str(tmp_path / "proof"), str(audit / "hashes"),
                                   str(audit / "log")])

    result = check()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("signatures ok")
    clerk = office.ids["clerk"]
    with office.as_("clerk") as v:
        forged = v.audit.append({
            "actor": {"name": "leader", "key": fingerprint(clerk.signing_key.public_key())},
            "action": "open", "doc": "BOARD-plan-2026",
            "label": {"level": "SECRET", "compartments": ["BOARD"], "caveats": []},
            "outcome": "allowed", "rules": ["board-read"], "reason": "read", "policy": None,
            "state": None}, clerk.signing_key)
    result = check()
    assert result.returncode == 1, result.stdout
    assert f"record {forged.seq} (" in result.stderr and 'bound to "leader"' in result.stderr

    # The officer gives the clerk a new key; she signs on with the old one.
    from office import policy_text

    from vault.identity import new_identity

    fresh = tmp_path / "office-2"
    office = make_office(fresh)
    audit = office.path / "audit"
    new = {**office.ids, "clerk": new_identity("clerk", post_quantum=True)}
    (fresh / "rekeyed.yaml").write_text(policy_text(new, [str(office.recovery.recipient)]))
    office.as_("officer").apply_policy(fresh / "rekeyed.yaml")
    old = office.ids["clerk"]  # her old key, appending as any folder writer can
    stale = AuditLog.open(audit, checkpoint_every=0).append({
        "actor": {"name": "clerk", "key": fingerprint(old.signing_key.public_key())},
        "action": "ls", "doc": None, "label": None, "outcome": "allowed", "rules": [],
        "reason": "", "policy": None, "state": None}, old.signing_key).seq
    result = check()
    assert result.returncode == 1, result.stdout
    assert f"record {stale} (" in result.stderr and 'bound to "clerk"' in result.stderr


@pytest.mark.parametrize("first, end", [("01", "-"), ("+0", "-"), ("0", "+9"), ("0", "09")])
def test_go_reads_a_keys_files_lines_as_written(auditcheck: Path, tmp_path: Path,
                                                first: str, end: str) -> None:
    # FIRST and END are written as a checkpoint's size is: a binding read
    # from "01" or "+0" is one no vault printed.
    log_dir = tmp_path / "log"
    make_log(log_dir, 14, every=7)
    args = _files(tmp_path, log_dir, 3)
    keys = (tmp_path / "keys").read_text().splitlines()
    fields = keys[0].split(" ", 4)
    keys[0] = " ".join([first, end, *fields[2:]])
    (tmp_path / "keys").write_text("\n".join(keys) + "\n")
    result = _check(auditcheck, args)
    assert result.returncode == 1 and "keys: bad line" in result.stderr, result.stderr
