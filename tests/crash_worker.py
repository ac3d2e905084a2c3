"""A process that runs vault operations in a loop until it is killed
(tests/test_crash.py, tests/test_concurrency.py).

Started once per test as ``python crash_worker.py``, it imports the library
and the CLI, then reads one JSON job per line on stdin. For each job it
forks a child that opens the vault and runs the job's operation over and
over, reporting on stdout (a pipe to the test, one short line per
``os.write``, so a line arrives whole or not at all):

    start <pid>               the child runs
    try <op> <args...>        an operation is about to start
    ok <op> <args...>         it returned successfully (so it must be durable)
    refused <op> <exit code> <message>   it ended with a clear vault error
    fail <op> <type> <text>   it ended with something else (a bug)

The test kills the child with SIGKILL whenever it likes, then writes
``reap``; only then does the worker collect the child (so its pid cannot be
reused before the kill) and write ``exit <pid> <wait status>``. Forking
from a process that has already imported everything makes a trial cost
milliseconds, so many kill points fit in the CI budget.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import vault
from vault.errors import AuditWriteError, VaultError
from vault_cli.main import cli

_OUT = 1  # stdout: the pipe to the test


def say(*words: object) -> None:
    os.write(_OUT, (" ".join(str(w) for w in words) + "\n").encode())


class _Unseekable(io.RawIOBase):
    """A stream that cannot seek: sealing takes its spooling path."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        b[: len(data)] = data
        return len(data)


def run_cli(job: dict[str, Any], who: str, *args: str) -> str:
    """``vault --vault V --identity WHO ARGS`` in this process; stdout or an error."""
    result = CliRunner().invoke(
        cli, ["--vault", job["vault"], "--identity", job["keys"][who], *args],
        catch_exceptions=True)
    if result.exit_code != 0:
        raise _CliFailed(result.exit_code, result.stderr.strip())
    return str(result.stdout)


class _CliFailed(Exception):
    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr)
        self.code = code


def plaintext(rng: random.Random, marker: str) -> bytes:
    size = rng.choice([0, 1, 900, 5000, 65536, 70000])
    # Letters only, as the marker: hex digits formed a Dutch citizen number
    # (a 9-digit run that met its checksum) in 9 of 6,000 plaintexts,
    # and the seal met a floor instead of being tested.
    body = marker.encode() + b" " + "".join(rng.choices("abcdefghijklmnop", k=16)).encode()
    return (body + rng.randbytes(size))[: max(size, len(body))]


def _levels(rng: random.Random, job: dict[str, Any]) -> tuple[str, list[str]]:
    level = rng.choice(job.get("levels", ["INTERNAL", "CONFIDENTIAL"]))
    if "compartments" in job:
        return level, list(rng.choice(job["compartments"]))
    comps = rng.sample(["STAFF", "FINANCE", "HR", "BOARD"], rng.randint(1, 2))
    return level, comps


# -- one step of each operation ---------------------------------------------


def step_seal(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    data = plaintext(rng, job["marker"])
    level, comps = _levels(rng, job)
    digest = hashlib.sha256(data).hexdigest()
    how = rng.choice(["file", "stream", "cli"])
    say("try", "seal", how, digest)
    if how == "stream":
        doc = v.seal(_Unseekable(data), level=level, compartments=comps).id  # type: ignore[arg-type]
    else:
        src = Path(job["src"]) / f"{os.getpid()}-{i}.bin"
        src.write_bytes(data)
        if how == "file":
            doc = v.seal(src, level=level, compartments=comps).id
        else:
            args = ["seal", str(src), "--level", level]
            for c in comps:
                args += ["--compartment", c]
            doc = run_cli(job, job["who"], *args).strip()
    say("ok", "seal", doc, digest)


def step_open(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    doc = rng.choice(job["docs"])
    out = Path(job["out"]) / f"{os.getpid()}-{i}.bin"
    how = rng.choice(["library", "cli"])
    say("try", "open", doc, out)
    if how == "library":
        v.open(doc, out)
    else:
        run_cli(job, job["who"], "open", doc, "-o", str(out))
    say("ok", "open", doc, out)


def step_reclassify(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    doc = rng.choice(job["docs"])
    try:
        label = v.info(doc).label
        has = (label.level, sorted(label.compartments))
    except VaultError:
        has = None  # shredded meanwhile: the reclassify attempt says so
    level, comps = _levels(rng, job)
    while (level, sorted(comps)) == has:
        level, comps = _levels(rng, job)  # the label it has already is refused
    say("try", "reclassify", doc, level, ",".join(sorted(comps)))
    v.reclassify(doc, level=level, compartments=comps, justification=f"trial {i}")
    say("ok", "reclassify", doc, level, ",".join(sorted(comps)))


def step_shred(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    if job["op"] == "mixed":  # others may be opening it, or shredding it too
        doc = rng.choice(job["docs"])
    else:
        i += job.get("first", 0)  # documents not shredded yet
        if i >= len(job["docs"]):
            raise SystemExit(0)
        doc = job["docs"][i]
    say("try", "shred", doc)
    v.shred(doc, justification=f"trial {i}")
    say("ok", "shred", doc)


def step_apply(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    path = job["policies"][(job["start"] + i) % len(job["policies"])]
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    say("try", "apply", digest)
    report = v.apply_policy(path)
    say("ok", "apply", digest, report.version)


def step_rotate(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    pq = bool(job.get("post_quantum"))
    say("try", "rotate", int(pq))
    report = v.rotate(post_quantum=pq)
    say("ok", "rotate", len(report.rotated), len(report.rewrapped))


def step_audit(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    me = v._s.me()
    how = rng.choice(["one", "many", "ls"])
    if how == "ls":
        say("try", "ls")
        v.ls()
        say("ok", "ls")
        return
    n = 1 if how == "one" else rng.randint(2, 5)
    requests = [f"{os.getpid()}-{i}-{k}" for k in range(n)]
    items = [({"actor": {"name": v.actor, "key": me.fingerprint}, "action": "note",
               "outcome": "allowed", "reason": "crash trial " + "x" * rng.randint(0, 3000),
               "request": r, "policy": v.policy.hash}, me.signing_key)
             for r in requests]
    say("try", "append", *requests)
    v.audit.append_many(items)
    say("ok", "append", *requests)


def step_mixed(v: vault.Vault, job: dict[str, Any], rng: random.Random, i: int) -> None:
    """Concurrency: whatever the job's weights say, on a shared vault."""
    op = rng.choices(list(job["mix"]), weights=list(job["mix"].values()))[0]
    STEPS[op](v, job, rng, i)


STEPS: dict[str, Callable[[vault.Vault, dict[str, Any], random.Random, int], None]] = {
    "seal": step_seal, "open": step_open, "reclassify": step_reclassify,
    "shred": step_shred, "apply": step_apply, "rotate": step_rotate, "audit": step_audit,
    "mixed": step_mixed,
}


def child(job: dict[str, Any]) -> int:
    say("start", os.getpid())
    rng = random.Random(job["seed"])
    v = vault.Vault(job["vault"], vault.load_identity(job["keys"][job["who"]]))
    for i in range(job["steps"]):
        try:
            STEPS[job["op"]](v, job, rng, i)
        except VaultError as e:
            say("refused", job["op"], e.exit_code, type(e).__name__, e.message[:200])
            if not job.get("tolerate"):
                return 1
            if isinstance(e, AuditWriteError):  # that audit handle is spent
                v = vault.Vault(job["vault"], v._s.identity)
        except _CliFailed as e:
            say("refused", job["op"], e.code, "cli", str(e)[:200].replace("\n", " | "))
            if not job.get("tolerate"):
                return 1
    say("done")
    return 0


def main() -> None:
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(job)
            except SystemExit as e:
                code = int(e.code or 0)
            except BaseException as e:  # a bug: tell the test, with the traceback
                text = "".join(traceback.format_exception(e)).replace("\n", " | ")
                say("fail", job["op"], type(e).__name__, text[-1500:])
            finally:
                os._exit(code)
        sys.stdin.readline()  # "reap": the test has sent its signal, if any
        _, status = os.waitpid(pid, 0)
        say("exit", pid, status)


if __name__ == "__main__":
    main()
