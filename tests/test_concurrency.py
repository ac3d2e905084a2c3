"""Concurrency: five processes, five people, mixed operations on one vault
(in a folder, and in PostgreSQL) at the same time -- sealing, opening,
reclassifying, shredding, listing, appending to the audit log and
installing policies that grant and revoke.

Afterwards: every attempt of every process got a clear answer (success, or
a vault error with its documented exit code -- never a crash, and never a
false alarm of tampering); the audit log has exactly one record per
attempt, none lost or duplicated, and verifies; the index and every
document agree (``doctor`` is clean without repairs); every document
still opens for a cleared reader; and a user the final policy revokes
holds no key to any document of the revoked class.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from backends import Kind
from hardening_support import HERE, WORKER, Trial, trial_seed
from vault_helpers import Office, make_office, office_policy

import vault
from vault._ops.read import class_identities
from vault._sealed.reading import read_sealed
from vault.age import unwrap_file_key
from vault.audit import AuditRecord
from vault.errors import NoKeyError

SEED = trial_seed()
STEPS = 30
REGISTRAR = "clearance: {level: INTERNAL, compartments: [STAFF]}"
REGISTRAR_UP = "clearance: {level: CONFIDENTIAL, compartments: [STAFF]}"
COMPARTMENTS = [["STAFF"], ["STAFF"], ["STAFF", "FINANCE"]]
# Who does what, with weights. Each process is a different person, so that
# the audit records of each can be counted against its attempts.
PROCESSES: dict[str, dict[str, Any]] = {
    "leader": {"mix": {"seal": 3, "open": 3, "reclassify": 3, "audit": 1}},
    "deputy": {"mix": {"shred": 1, "open": 4, "audit": 2}},
    "clerk": {"mix": {"seal": 4, "open": 3, "audit": 1}},
    "registrar": {"mix": {"seal": 2, "open": 3, "audit": 1}, "levels": ["INTERNAL"]},
    "officer": {"mix": {"apply": 1, "audit": 1}},
}
# attempt -> (audit action, records per attempt); appends count their requests
ACTIONS = {"seal": "seal", "open": "open", "reclassify": "reclassify", "shred": "shred",
           "ls": "ls", "apply": "policy-apply", "append": "note"}
# Clear answers: other error, usage (e.g. a document shredded meanwhile),
# denied, no key. Never 4: nobody tampered with anything.
CLEAR = {"1", "2", "3", "5"}


def _start(office: Office, who: str, docs: list[str], policies: list[str], n: int
           ) -> subprocess.Popen[bytes]:
    job = {"op": "mixed", "vault": office.location, "who": who, "seed": SEED + n,
           "marker": "CONCURRENT-PLAINTEXT", "keys": {k: str(v) for k, v in office.files.items()},
           "src": str(office.root / "in"), "out": str(office.root / "out"), "docs": docs,
           "policies": policies, "start": 0, "steps": STEPS, "tolerate": True,
           "levels": ["INTERNAL", "CONFIDENTIAL"], "compartments": COMPARTMENTS,
           **PROCESSES[who]}
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    env.pop("VAULT_DEBUG", None)
    proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, cwd=HERE)
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(job) + "\nreap\n").encode())
    proc.stdin.close()
    return proc


def _collect(proc: subprocess.Popen[bytes]) -> Trial:
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0
    trial = Trial()
    for line in out.splitlines():
        words = line.split()
        if words[0] == "exit":
            trial.status = int(words[2])
        elif words[0] != "start":
            trial.lines.append(words)
    return trial


def _answers(who: str, trial: Trial) -> collections.Counter[str]:
    """Every attempt has exactly one clear answer; returns attempts by action."""
    attempts: collections.Counter[str] = collections.Counter()
    pending: list[str] | None = None
    for words in trial:
        assert words[0] != "fail", (who, " ".join(words))
        if words[0] == "try":
            assert pending is None, (who, pending)
            pending = words
            attempts[ACTIONS[words[1]]] += len(words) - 2 if words[1] == "append" else 1
        elif words[0] in ("ok", "refused"):
            assert pending is not None, (who, words)
            if words[0] == "refused":
                assert words[2] in CLEAR, (who, " ".join(pending), " ".join(words))
            pending = None
        else:
            assert words[0] == "done", words
    assert pending is None, (who, pending)
    assert trial.status == 0, (who, trial.status)
    return attempts


def _decisions(records: Iterable[AuditRecord]) -> collections.Counter[tuple[str | None, str]]:
    """How many decisions each (actor, action) has on the record (completion
    records and the follow-ups of a decision are not attempts)."""
    return collections.Counter((r.actor, r.action) for r in records
                               if r.outcome in ("allowed", "denied", "error")
                               and r.action not in ("class-key", "grant", "retire", "rewrap"))


def test_five_processes_at_once(tmp_path: Path, backend: Kind) -> None:
    office = make_office(tmp_path, backend)
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    seeded = office.as_("clerk").seal_many(
        [io.BytesIO(b"shared %d " % i + os.urandom(3000)) for i in range(12)],
        level="CONFIDENTIAL", compartments=["STAFF"])
    docs = [d.id for d in seeded]
    policies = []
    for name, edit in (("up", {REGISTRAR: REGISTRAR_UP}), ("down", {})):
        p = tmp_path / f"{name}.yaml"
        p.write_text(office_policy(office.ids, [str(office.recovery.recipient)], edit))
        policies.append(str(p))
    before = _decisions(vault.Vault(office.location).audit.records())

    procs = {who: _start(office, who, docs, policies, n) for n, who in enumerate(PROCESSES)}
    trials = {who: _collect(p) for who, p in procs.items()}

    records = list(vault.Vault(office.location).audit.records())
    seqs = [r.seq for r in records]
    assert seqs == sorted(set(seqs)), "duplicated or reordered sequence numbers"
    after = _decisions(records)
    for who, trial in trials.items():
        for action, n in _answers(who, trial).items():
            assert after[(who, action)] - before[(who, action)] == n, (who, action)
    # The log and every document agree, with nothing to repair.
    report = office.as_("officer").doctor()
    assert report.ok, report.problems
    r = subprocess.run(["vault", "--vault", office.location, "audit", "verify"],
                       capture_output=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    # Everything that says it was sealed is there and opens, whole.
    present = {d.id for d in office.as_("leader").ls()}
    for who, trial in trials.items():
        for doc, _digest in trial.of("ok", "seal"):
            shredded = doc in {d for (d,) in trials["deputy"].of("ok", "shred")}
            assert doc in present or shredded, (who, doc)
    for doc in present:
        out = io.BytesIO()
        office.as_("leader").open(doc, out)
        assert out.getvalue().startswith((b"shared ", b"CONCURRENT-PLAINTEXT"))
    # Revocation held even though sealing raced with it.
    v = vault.Vault(office.location, office.ids["registrar"])
    if v.policy.hash != hashlib.sha256(Path(policies[0]).read_bytes()).hexdigest():
        for doc in present:
            sealed, f = read_sealed(v._s.backend, v._s.trusted, doc)
            f.close()
            if sealed.label.label.level == "CONFIDENTIAL":
                ids = class_identities(v._s, sealed)
                if ids:
                    try:
                        unwrap_file_key(sealed.header, ids)
                    except NoKeyError:
                        continue
                    raise AssertionError(f"the revoked registrar still opens {doc}")
