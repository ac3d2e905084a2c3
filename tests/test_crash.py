"""Crash safety: operations killed with SIGKILL at random points.

For each operation a child process (forked by ``crash_worker.py``) runs it
in a loop, reporting every attempt and every success on a pipe, and is
killed after a random delay. After each kill the test checks:

* no plaintext anywhere in the vault folder, and none left in an output
  folder once the next run has swept it;
* no partial or orphan document: every document verifies (``doctor``) and
  has its ``seal`` record;
* every operation that reported success is durable;
* ``doctor`` is clean after its documented tidy-up (``doctor --repair``,
  and ``rotate`` when the doctor asks for it), which also verifies the
  audit log with every record's signature.

``VAULT_CRASH_TRIALS`` sets the trials per operation (20 by default; the
long run in docs/THREAT-MODEL.md uses 200):

    VAULT_CRASH_TRIALS=200 python3 -m pytest tests/test_crash.py
"""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hardening_support import (
    Trial,
    Zygote,
    assert_nowhere,
    audit_records,
    leftover_temps,
    sealed_ids,
    settle,
    trial_seed,
    trials,
)
from vault_helpers import Office, doc_path, make_office, office_policy

import vault
from vault._ops.read import class_identities
from vault._sealed.reading import read_sealed, unlock
from vault.age import MLKEM768X25519Identity, read_header, unwrap_file_key
from vault.errors import NoKeyError, UsageError

SEED = trial_seed()
REGISTRAR = "clearance: {level: INTERNAL, compartments: [STAFF]}"
REGISTRAR_UP = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


def _job(office: Office, op: str, who: str, marker: str, n: int, **extra: Any) -> dict[str, Any]:
    return {"op": op, "vault": str(office.path), "who": who, "marker": marker,
            "keys": {k: str(v) for k, v in office.files.items()}, "seed": SEED + n,
            "src": str(office.root / "in"), "out": str(office.root / "out"), "steps": 6,
            **extra}


class Killer:
    """Random kill delays spread over an uninterrupted run of the job: half
    the trials from the child's start (opening the vault included), half
    from its first operation to the last fsync of its last one."""

    def __init__(self, zygote: Zygote, job: dict[str, Any]) -> None:
        self.zygote = zygote
        self.spans = zygote.calibrate(job)
        self.rng = random.Random(SEED)
        self.n = 0

    def run(self, job: dict[str, Any]) -> Trial:
        self.n += 1
        ops = self.n % 2 == 0
        delay = self.rng.uniform(0.0, self.spans[ops])
        trial = self.zygote.run(job, delay, from_first_try=ops)
        trial.check_clean()
        return trial


def _batches() -> list[int]:
    """Trials in batches of at most 25, each on a fresh vault: long runs
    stay as fast per trial as short ones (policy versions, documents and
    the audit log of a batch do not pile up)."""
    n = trials()
    return [25] * (n // 25) + ([n % 25] if n % 25 else [])


def _marker() -> str:
    """A random plaintext marker of letters only: hex digits could form a
    number that an intake detector takes for a national identifier (1 in
    400 did), and the seal would meet a floor instead of being tested."""
    return "PLAINTEXT-MARKER-" + "".join(random.choice("abcdefghijklmnop") for _ in range(16))


def _office(tmp_path: Path) -> tuple[Office, str]:
    office = make_office(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return office, _marker()


def _seal_some(office: Office, who: str, marker: str, n: int,
               level: str = "CONFIDENTIAL") -> dict[str, bytes]:
    v = office.as_(who)
    srcs = [marker.encode() + b" %d " % i + random.randbytes(random.choice([10, 70000]))
            for i in range(n)]
    infos = v.seal_many([io.BytesIO(s) for s in srcs], level=level, compartments=["STAFF"])
    return {info.id: s for info, s in zip(infos, srcs, strict=True)}


def _plaintext_of(office: Office, doc_id: str) -> bytes:
    out = io.BytesIO()
    office.as_("leader").open(doc_id, out)
    return out.getvalue()


def _check_common(office: Office, marker: str, *, may_rotate: bool = False) -> None:
    # The vault never writes plaintext into its folder, not even briefly.
    assert_nowhere(office.path, marker.encode(), what="plaintext")
    settle(office, may_rotate=may_rotate)
    assert not leftover_temps(office.path / "docs")
    # No orphan: every document has the allowed seal record that preceded it.
    sealed = {r.doc for r in audit_records(office) if r.action == "seal"
              and r.outcome == "allowed"}
    assert sealed_ids(office) <= sealed
    listed = {d.id for d in office.as_("leader").ls()}
    assert listed == sealed_ids(office)


def _cli_clean(office: Office) -> None:
    """The same verdict from the installed commands an operator runs."""
    for argv in (["--vault", str(office.path), "doctor"],
                 ["audit", "verify", "--log", str(office.path / "audit")]):
        r = subprocess.run(["vault", *argv], capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, (argv, r.stdout, r.stderr)
        assert r.stdout.startswith(b"ok"), r.stdout


def _seal_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    levels = ["INTERNAL", "CONFIDENTIAL", "SECRET"]
    kill = Killer(zygote, _job(office, "seal", "leader", marker, -1, levels=levels))
    for n in range(count):
        trial = kill.run(_job(office, "seal", "leader", marker, n, levels=levels))
        _check_common(office, marker)
        for doc, digest in trial.of("ok", "seal"):
            got = _plaintext_of(office, doc)
            assert hashlib.sha256(got).hexdigest() == digest, (n, doc)
    _cli_clean(office)


def test_seal_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _seal_trials(tmp_path / f"batch-{i}", zygote, count)


def _open_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    docs = _seal_some(office, "clerk", marker, 6)
    out = tmp_path / "out"
    kill = Killer(zygote, _job(office, "open", "leader", marker, -1, docs=sorted(docs)))
    for p in out.iterdir():
        p.unlink()
    swept = 0
    for n in range(count):
        trial = kill.run(_job(office, "open", "leader", marker, n, docs=sorted(docs)))
        tried = {Path(p): d for d, p in trial.of("try", "open")}
        for doc, p in trial.of("ok", "open"):
            assert Path(p).read_bytes() == docs[doc]
        for p in out.iterdir():
            if p.name.startswith("."):
                # A killed writer's temporary: owner-only, never at a final name.
                assert p in leftover_temps(out), p
                assert p.stat().st_mode & 0o777 == 0o600
                swept += 1
            else:
                # Finished, reported or not: whole and exact.
                assert p.read_bytes() == docs[tried[p]], p
                p.unlink()
        # The next run that writes into this folder sweeps what a killed one left.
        office.as_("leader").open(sorted(docs)[0], out / "next.bin")
        assert not leftover_temps(out)
        (out / "next.bin").unlink()
        _check_common(office, marker)
    print(f"open: {count} kills, {swept} temporaries left by killed writers and swept")
    _cli_clean(office)


def test_open_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _open_trials(tmp_path / f"batch-{i}", zygote, count)


def _reclassify_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    docs = _seal_some(office, "leader", marker, 5)
    levels = ["INTERNAL", "CONFIDENTIAL"]  # SECRET would need a second leader
    state: dict[str, tuple[str, str]] = {}
    kill = Killer(zygote, _job(office, "reclassify", "leader", marker, -1, docs=sorted(docs),
                               levels=levels))
    for n in range(count):
        for doc in docs:
            label = office.as_("leader").info(doc).label
            state[doc] = (label.level, ",".join(sorted(label.compartments)))
        trial = kill.run(_job(office, "reclassify", "leader", marker, n, docs=sorted(docs),
                                levels=levels))
        _check_common(office, marker)
        tries = trial.of("try", "reclassify")
        oks = trial.of("ok", "reclassify")
        for doc in docs:
            label = office.as_("leader").info(doc).label
            now = (label.level, ",".join(sorted(label.compartments)))
            mine = [(t[1], t[2]) for t in tries if t[0] == doc]
            if not mine:
                assert now == state[doc], doc
                continue
            # The last attempt finished (reported or not), or it did not and
            # the one before it stands; reported ones are never undone.
            allowed = {mine[-1], mine[-2] if len(mine) > 1 else state[doc]}
            if any(o[0] == doc for o in oks) and [o for o in oks if o[0] == doc][-1] == \
                    [doc, *mine[-1]]:
                allowed = {mine[-1]}
            assert now in allowed, (doc, now, allowed)
            assert _plaintext_of(office, doc) == docs[doc]  # the payload never changes
    _cli_clean(office)


def test_reclassify_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _reclassify_trials(tmp_path / f"batch-{i}", zygote, count)


def _shred_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    docs = _seal_some(office, "leader", marker, 3 * (count + 2))
    wrapped = {}
    for d in docs:
        with open(doc_path(office, d), "rb") as f:
            wrapped[d] = [s.encode() for s in read_header(f).stanzas
                          if s.type in ("X25519", "mlkem768x25519")]
    pool = sorted(docs)
    job = _job(office, "shred", "leader", marker, -1, docs=pool, steps=3)
    kill = Killer(zygote, job)
    pool = pool[6:]
    interrupted = 0
    for n in range(count):
        trial = kill.run({**job, "seed": SEED + n, "docs": pool})
        tried = [d for (d,) in trial.of("try", "shred")]
        backend = vault.Vault(office.path)._s.backend
        half_done = [d for d, _ in backend.interrupted_shreds()]
        assert set(half_done) <= set(tried)
        interrupted += len(half_done)
        if half_done:  # the shred is on the record: doctor names what is left of it
            report = office.as_("officer").doctor()
            assert any(half_done[0] in x for x in report.leftovers), report.leftovers
        _check_common(office, marker)  # doctor --repair finishes it
        done = [d for (d,) in trial.of("ok", "shred")]
        left = sealed_ids(office)
        for d in tried:
            if d in left:
                assert d not in done
                assert _plaintext_of(office, d) == docs[d]  # untouched, still whole
                continue
            with pytest.raises(UsageError, match="was shredded"):
                office.as_("leader").open(d, io.BytesIO())
        assert not set(done) & left
        # Shredded: no wrapped copy of their file keys is left in the folder.
        gone = [s for d in tried if d not in left for s in wrapped[d]]
        assert_nowhere(office.path, *gone, what="a wrapped key of a shredded document")
        pool = pool[3:]
    print(f"shred: {count} kills, {interrupted} shreds interrupted half way and finished")


def _registrar_holds_no_key_for(office: Office, level: str) -> None:
    """Checked with the keys themselves, not the policy: no class identity
    in the registrar's keyring unwraps a document of ``level``."""
    s = office.as_("registrar")._s
    for d in sealed_ids(office):
        sealed, f = read_sealed(s.backend, s.trusted, d)
        f.close()
        if sealed.label.label.level == level:
            ids = class_identities(s, sealed)
            with pytest.raises(NoKeyError):
                unwrap_file_key(sealed.header, ids) if ids else unlock(sealed, ids, s.trusted)
    _cli_clean(office)


def test_shred_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _shred_trials(tmp_path / f"batch-{i}", zygote, count)


def _policy_apply_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    _seal_some(office, "clerk", marker, 4)
    _seal_some(office, "clerk", marker, 2, level="INTERNAL")
    policies = []
    for name, edit in (("up", {REGISTRAR: REGISTRAR_UP}), ("down", {})):
        p = tmp_path / f"{name}.yaml"
        p.write_text(office_policy(office.ids, [str(office.recovery.recipient)], edit))
        policies.append(str(p))
    up = hashlib.sha256(Path(policies[0]).read_bytes()).hexdigest()
    job = _job(office, "apply", "officer", marker, -1, policies=policies, start=0, steps=2)
    kill = Killer(zygote, job)
    head = vault.Vault(office.path).policy.hash
    for n in range(count):
        trial = kill.run({**job, "seed": SEED + n, "start": 0 if head != up else 1})
        _check_common(office, marker, may_rotate=True)
        v = vault.Vault(office.path)  # the policy versions the log installed
        possible = {head} | {h for (h,) in trial.of("try", "apply")}
        assert v.policy.hash in possible
        versions = v._s.trusted.policy_versions()
        for digest, version in trial.of("ok", "apply"):
            assert versions[int(version) - 1][1] == digest
        head = v.policy.hash
        if head != up:  # revoked, whatever the crash interrupted
            _registrar_holds_no_key_for(office, "CONFIDENTIAL")
    _cli_clean(office)


def test_policy_apply_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _policy_apply_trials(tmp_path / f"batch-{i}", zygote, count)


def _pq_move_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    """A move between classical and hybrid class keys (``rotate
    --post-quantum``, docs/POLICY.md §3.12) killed at random points, then
    run again: it resumes, and every document opens to the same bytes,
    wrapped to keys of one kind only."""
    office = make_office(tmp_path, post_quantum=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    marker = _marker()
    docs = _seal_some(office, "clerk", marker, 5)
    docs |= _seal_some(office, "leader", marker, 3, level="SECRET")
    hybrid = MLKEM768X25519Identity.generate()
    policies = {}
    for kind, recovery, edit in (
            ("pq", hybrid, {"version: 1\n": "version: 1\npost_quantum: preferred\n"}),
            ("classic", office.recovery, {"version: 1\n": "version: 1\npost_quantum: off\n"})):
        p = tmp_path / f"{kind}.yaml"
        p.write_text(office_policy(office.ids, [str(recovery.recipient)], edit))
        policies[kind] = p
    office.as_("officer").apply_policy(policies["pq"])
    job = _job(office, "rotate", "leader", marker, -1, steps=1, post_quantum=True)
    kill = Killer(zygote, job)  # its calibration run completes the first move
    kill.spans = (kill.spans[0], kill.spans[0])  # the second run had nothing to do
    for n in range(count):
        kind = "classic" if n % 2 == 0 else "pq"
        office.as_("officer").apply_policy(policies[kind])  # moves what it is cleared for
        kill.run({**job, "seed": SEED + n, "post_quantum": kind == "pq"})
        _check_common(office, marker)
        report = office.as_("leader").rotate(post_quantum=kind == "pq")  # resumes
        assert not report.pending, report.pending
        for doc, data in docs.items():
            header = read_header(io.BytesIO(office.raw.doc_bytes(doc)))
            kinds = {st.type for st in header.stanzas if not st.type.startswith("vault/")}
            assert kinds == ({"mlkem768x25519"} if kind == "pq" else {"X25519"}), (n, doc)
            assert _plaintext_of(office, doc) == data, (n, doc)
    _cli_clean(office)


def test_a_move_to_post_quantum_keys_killed_at_random_points(tmp_path: Path,
                                                             zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _pq_move_trials(tmp_path / f"batch-{i}", zygote, count)


def _audit_append_trials(tmp_path: Path, zygote: Zygote, count: int) -> None:
    office, marker = _office(tmp_path)
    kill = Killer(zygote, _job(office, "audit", "clerk", marker, -1))
    for n in range(count):
        trial = kill.run(_job(office, "audit", "clerk", marker, n))
        _check_common(office, marker)
        requests = [r.request for r in audit_records(office)]
        for words in trial.of("ok", "append"):
            for req in words:
                assert requests.count(req) == 1, req
        for words in trial.of("try", "append"):
            assert all(requests.count(r) <= 1 for r in words), words  # never twice
    _cli_clean(office)


def test_audit_append_killed_at_random_points(tmp_path: Path, zygote: Zygote) -> None:
    for i, count in enumerate(_batches()):
        _audit_append_trials(tmp_path / f"batch-{i}", zygote, count)


def test_anyones_interrupted_change_is_ended_by_their_own_repair(tmp_path: Path) -> None:
    # A leader's seal killed after its decision stayed "allowed but never
    # completed" for good: only a record of its maker's ends a decision, so
    # the officer's repair left it, and the leader's '--repair' was refused
    # as administration. A user's own repair ends their own.
    import json
    import os
    import signal
    import sys
    import time

    office = make_office(tmp_path / "office")
    src = office.file("minutes.txt", b"board minutes")
    script = ("import sys, time, vault, vault._ops.seal as s\n"
              "s._write_all = lambda *a, **k: time.sleep(600)\n"
              "v = vault.Vault(sys.argv[1], vault.load_identity(sys.argv[2]))\n"
              "v.seal(sys.argv[3], level='CONFIDENTIAL', compartments=['BOARD'])\n")
    proc = subprocess.Popen([sys.executable, "-c", script, office.location,
                             str(office.files["leader"]), str(src)],
                            env={**os.environ, "VAULT_STATE_DIR": str(tmp_path / "s")})
    try:
        for _ in range(600):
            if any(json.loads(line)["action"] == "seal" for line in office.raw.audit_lines()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the seal never recorded its decision")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert any("was allowed but never completed" in n
               for n in office.as_("officer").doctor(repair=True).notes)
    r = office.cli("leader", "doctor", "--repair")
    assert r.exit_code == 0, r.stderr
    assert "leader's seal" in r.stdout and "recorded as failed" in r.stdout, r.stdout
    notes = office.as_("officer").doctor().notes
    assert not any("never completed" in n for n in notes), notes
    r = office.cli("clerk", "doctor", "--repair")  # nothing of theirs, and nothing else done
    assert r.exit_code == 0 and "recorded as failed" not in r.stdout, r.stdout
