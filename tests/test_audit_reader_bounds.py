"""What the audit log's reader takes, the same on every machine and for the
independent checker: a torn record naming lines none pending (docs/AUDIT.md
§8), integers of more digits than §3 allows whatever the interpreter's own
limit, and a tlog-proof's index (§10)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audit_support import KEYS, fields, key_lookup, lines_of, make_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from office import Office
from test_audit_go import _files, auditcheck  # noqa: F401 - the Go checker, built once

from vault.audit import AuditLog, NoteSigner, fingerprint, verify_tlog_proof
from vault.audit._chain import SIGNING_CONTEXT
from vault.audit._hashing import leaf_hash
from vault.audit._record import canonical_json
from vault.errors import ProofError

ROOT = Path(__file__).resolve().parent.parent


def _torn_naming_the_last(lines: list[bytes], signer: Ed25519PrivateKey, name: str) -> bytes:
    """What an insider with a key appends by hand: a torn record, signed
    with her own key, whose fragment names the log's last line -- a settled
    record, nothing pending."""
    k, last = len(lines), lines[-1]
    body = {"v": 2, "seq": k, "time": "2026-01-05T10:00:00.000000Z",
            "actor": {"key": fingerprint(signer.public_key()), "name": name},
            "action": "torn", "doc": None, "label": None, "outcome": "error", "rules": [],
            "reason": "an interrupted write left these lines; they are set aside, not records",
            "policy": None, "request": "b" * 32, "host": "h", "pid": 1, "state": None,
            "fragments": [{"length": len(last), "seq": k - 1,
                           "sha256": hashlib.sha256(last).hexdigest()}]}
    chain = hashlib.sha256(leaf_hash(last)).digest()  # nothing pending: leaf(k-1) alone
    sig = signer.sign(SIGNING_CONTEXT + chain + canonical_json(body))
    return canonical_json({**body, "sig": base64.b64encode(sig).decode()})


# -- a torn record naming lines none pending (§8) -------------------------------------


def test_a_torn_record_naming_settled_lines_is_its_signers_finding(office: Office) -> None:
    # The clerk's torn record named the officer's settled line: every vault
    # command took it without a word, while the independent checker failed
    # on that line for good. It sets nothing aside, and is said of its signer.
    clerk = office.ids["clerk"]
    lines = office.raw.audit_lines()
    seq = len(lines)
    office.raw.append_audit_line(_torn_naming_the_last(lines, clerk.signing_key, "clerk"))
    leader = office.as_("leader")
    doc = leader.seal(io.BytesIO(b"minutes"), level="INTERNAL", compartments=["STAFF"]).id
    out = io.BytesIO()
    office.as_("clerk").open(doc, out)  # the office goes on
    assert out.getvalue() == b"minutes"
    officer = office.as_("officer")
    said = f"torn record {seq} (clerk) names 1 line from line {seq - 1}"
    report = officer.verify_audit()
    assert report.unrecovered_lines == 0
    assert [f for f in report.findings if f.startswith(said)], report.findings
    doctor = officer.doctor()
    assert any(p.startswith(f"audit record {seq} (torn): {said}") and "sets nothing aside" in p
               for p in doctor.problems), doctor.problems
    result = office.cli("officer", "audit", "checkpoint")
    assert result.exit_code == 0, result.stderr


def test_the_writer_sets_aside_only_pending_lines_and_no_alarm_follows(office: Office) -> None:
    # No false alarm: an honest torn record (a junk line set aside) is no finding.
    office.raw.append_audit_line(b'{"v":2,"seq":%d}' % len(office.raw.audit_lines()))
    office.as_("leader").seal(io.BytesIO(b"rota"), level="INTERNAL", compartments=["STAFF"])
    officer = office.as_("officer")
    assert not [f for f in officer.verify_audit().findings if "torn record" in f]
    assert officer.doctor().ok


def test_go_reports_a_torn_record_naming_settled_lines(auditcheck: Path,  # noqa: F811
                                                       tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 20, every=7)
    lines = lines_of(path)
    with open(path / "log", "ab") as f:
        f.write(_torn_naming_the_last(lines, KEYS["bob"], "bob") + b"\n")
    log = AuditLog.open(path, checkpoint_every=7)
    log.append(fields("alice"), KEYS["alice"])
    log.checkpoint()
    report = log.verify(key_lookup=key_lookup)
    said = "torn record 20 (bob) names 1 line from line 19"
    assert [f for f in report.findings if f.startswith(said)], report.findings
    result = subprocess.run([str(auditcheck), *_files(tmp_path, path, 3)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert (f"finding: torn record 20 ({fingerprint(KEYS['bob'].public_key())}) names 1 lines "
            "from line 19, none pending: it sets nothing aside") in out
    assert out[-1] == ("signatures ok: 22 signed records cover 0 unsigned; 0 lines set aside, "
                       "0 pending")


# -- integers: §3's bound, not the interpreter's ----------------------------------------


def _python(code: str, *args: str, env_digits: str | None) -> list[str]:
    """The lines ``code`` prints, run by a process whose int_max_str_digits
    is ``env_digits`` (None: the default)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONINTMAXSTRDIGITS"}
    if env_digits is not None:
        env["PYTHONINTMAXSTRDIGITS"] = env_digits
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                         env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code, *args], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _read_in(env_digits: str | None, path: Path) -> str:
    """The records the reader finds in ``path``, and what verifying the log
    makes of it, read by a process whose int_max_str_digits is
    ``env_digits`` (None: the default)."""
    code = ("import sys; from vault.audit import AuditLog\n"
            "log = AuditLog.open(sys.argv[1])\n"
            "r = log.verify()\n"
            "print([(x.seq, x.action, sorted(x.state or {})) for x in log.records()],"
            " r.records_parsed, r.unrecovered_lines)\n")
    return "\n".join(_python(code, str(path), env_digits=env_digits))


def _signed_with_integer(lines: list[bytes], digits: int) -> bytes:
    """Bob's signed policy-apply record whose state holds an integer of
    ``digits`` digits, written as a writer with no limit of its own would."""
    k = len(lines)
    body = canonical_json({"v": 2, "seq": k, "time": "2026-01-05T10:00:00.000000Z",
                           "actor": {"key": fingerprint(KEYS["bob"].public_key()), "name": "bob"},
                           "action": "policy-apply", "doc": None, "label": None,
                           "outcome": "allowed", "rules": [], "reason": "x", "policy": None,
                           "request": "c" * 32, "host": "h", "pid": 1, "state": {"n": 7}})
    body = body.replace(b'{"n":7}', b'{"n":%s}' % (b"9" * digits))
    chain = hashlib.sha256(leaf_hash(lines[-1])).digest()
    sig = base64.b64encode(KEYS["bob"].sign(SIGNING_CONTEXT + chain + body))
    head, tail = body.split(b',"state":', 1)
    return head + b',"sig":"%s","state":' % sig + tail


@pytest.mark.parametrize("digits", [700, 4300, 4400])
def test_a_record_reads_the_same_whatever_the_interpreters_integer_limit(
        tmp_path: Path, digits: int) -> None:
    # A signed record holding a 4,400-digit integer was junk (set aside) on a
    # default machine and a record where PYTHONINTMAXSTRDIGITS=0; one of 700
    # digits, a record by default and junk where the limit is 640.
    path = tmp_path / "log"
    make_log(path, 3, every=0, final_checkpoint=False)
    with open(path / "log", "ab") as f:
        f.write(_signed_with_integer(lines_of(path), digits) + b"\n")
    AuditLog.open(path).append(fields("alice"), KEYS["alice"])  # sets it aside, or not
    seen = {_read_in(limit, path) for limit in (None, "0", "640", "100000")}
    assert len(seen) == 1, seen
    record = "(3, 'policy-apply', ['n'])" in seen.pop()
    assert record == (digits <= 4300)


def test_a_writer_with_no_integer_limit_refuses_what_readers_would_not_take(
        tmp_path: Path) -> None:
    path = tmp_path / "log"
    make_log(path, 1, every=0, final_checkpoint=False)
    code = ("import sys; from vault.audit import AuditLog; from audit_support import KEYS, fields\n"
            "log = AuditLog.open(sys.argv[1])\n"
            "for n in (10**4299, 10**4300):\n"
            "    try:\n"
            "        log.append({**fields('bob'), 'state': {'n': n}}, KEYS['bob']); print('ok')\n"
            "    except ValueError as e: print('refused', e)\n")
    out = _python(code, str(path), env_digits="0")
    assert out[0] == "ok"
    assert out[1].startswith("refused") and "more than 4300 digits" in out[1]
    assert len(lines_of(path)) == 2


@pytest.mark.parametrize("env_digits", [None, "0", "640", "100000"])
def test_the_canonical_encoding_of_long_integers_is_the_same_under_any_limit(
        env_digits: str | None) -> None:
    # What a writer signs is the canonical encoding: the same bytes on a
    # machine whose interpreter converts fewer digits, or none.
    code = ("import hashlib; from vault.audit._record import canonical_json\n"
            "value = {'z': [10**4299, -10**700, 5, True, None, 'x'],"
            " 'a': {'k': 1 - 10**641, 's': 'caf\\u00e9'}, 'n': 7}\n"
            "print(hashlib.sha256(canonical_json(value)).hexdigest())\n"
            "try:\n    canonical_json({'n': 10**4300}); print('written')\n"
            "except ValueError as e:\n    print('refused', e)\n")
    digest, longer = _python(code, env_digits=env_digits)
    expected = canonical_json({"z": [10**4299, -10**700, 5, True, None, "x"],
                               "a": {"k": 1 - 10**641, "s": "caf\u00e9"}, "n": 7})
    assert digest == hashlib.sha256(expected).hexdigest()
    # one digit more than every reader takes is refused, even where the
    # interpreter would convert it
    assert longer == "refused an integer of more than 4300 digits"


# -- a tlog-proof's index (§10) -----------------------------------------------------------


def _proof(index: str) -> str:
    signer = NoteSigner.generate("vault/test")
    note = signer.sign("vault/test\n1\n" + "A" * 43 + "=\n").decode()
    return f"c2sp.org/tlog-proof@v1\nindex {index}\n\n{note}"


@pytest.mark.parametrize("index", ["9" * 5000, "18446744073709551616", "+1", "01", "-1"],
                         ids=["5000 digits", "2**64", "+1", "01", "-1"])
def test_a_proof_index_beyond_a_uint64_is_a_proof_error(index: str) -> None:
    # 5,000 digits escaped as a bare ValueError from int().
    with pytest.raises(ProofError, match="bad index"):
        verify_tlog_proof(_proof(index), [])


def test_go_refuses_a_proof_with_no_index_or_one_written_otherwise(auditcheck: Path,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    # No index line made the checker panic (index out of range, exit 2);
    # "+1", "01" and "-1" it read as numbers.
    path = tmp_path / "log"
    make_log(path, 20, every=7)
    args = _files(tmp_path, path, 3)
    proof = Path(args[4])
    text = proof.read_text()
    head, checkpoint = text.split("\n\n", 1)
    cases = {"c2sp.org/tlog-proof@v1\n\n" + checkpoint: "FAIL: tlog-proof: no index line"}
    for bad in ("+3", "03", "-3", "3 "):
        cases[head.replace("\nindex 3\n", f"\nindex {bad}\n") + "\n\n" + checkpoint] = \
            "FAIL: tlog-proof: bad index"
    for text, error in cases.items():
        proof.write_text(text)
        result = subprocess.run([str(auditcheck), *args], capture_output=True, text=True,
                                timeout=60, check=False)
        assert (result.returncode, result.stderr.strip()) == (1, error), text[:60]
