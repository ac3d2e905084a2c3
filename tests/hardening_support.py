"""Helpers for the hardening tests: crash trials, concurrency, hostile
input and secret hygiene (tests/test_crash.py, test_concurrency.py,
test_hostile_input.py, test_secret_hygiene.py).

Everything is real: vaults in tmp folders, processes killed with SIGKILL,
the installed ``vault`` script, the stock ``age`` binary.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault_helpers import Office

import vault

HERE = Path(__file__).resolve().parent
WORKER = HERE / "crash_worker.py"
# A temporary file the vault's atomic writer leaves behind when killed.
TEMP_NAME = re.compile(r"\A\.(vault-)?tmp-[0-9a-f]{16}\Z")


def trial_seed() -> int:
    """The seed of this run's random trials (crash points, concurrent
    operations): ``VAULT_TRIAL_SEED`` replays a run; pytest's header shows it."""
    global _SEED
    if _SEED is None:
        _SEED = int(os.environ.get("VAULT_TRIAL_SEED") or random.randrange(1 << 32))
    return _SEED


_SEED: int | None = None


def trials(default: int = 20) -> int:
    """Trials per operation: ``VAULT_CRASH_TRIALS`` (default 20 in CI)."""
    return max(1, int(os.environ.get("VAULT_CRASH_TRIALS", default)))


@dataclass
class Trial:
    """What one killed child reported."""

    lines: list[list[str]] = field(default_factory=list)
    status: int | None = None
    seconds: float = 0.0

    def __iter__(self) -> Iterator[list[str]]:
        return iter(self.lines)

    def of(self, kind: str, op: str) -> list[list[str]]:
        return [w[2:] for w in self.lines if len(w) >= 2 and w[0] == kind and w[1] == op]

    def check_clean(self) -> None:
        """The child only ever succeeded, until it was killed (or finished)."""
        bad = [" ".join(w) for w in self.lines if w[0] in ("fail", "refused")]
        assert not bad, bad
        assert self.status is not None
        killed = os.WIFSIGNALED(self.status) and os.WTERMSIG(self.status) == signal.SIGKILL
        assert killed or (os.WIFEXITED(self.status) and os.WEXITSTATUS(self.status) == 0), \
            (self.status, self.lines)


class Zygote:
    """``crash_worker.py``: forks one child per job (see its docstring)."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(HERE)}
        env.pop("VAULT_DEBUG", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env, cwd=HERE)

    def _line(self) -> list[str]:
        assert self.proc.stdout is not None
        raw = self.proc.stdout.readline()
        assert raw, "the crash worker died"
        return raw.decode().split()

    def run(self, job: dict[str, Any], kill_after: float | None, *,
            from_first_try: bool = False) -> Trial:
        """Start ``job`` in a fresh child; SIGKILL it ``kill_after`` seconds
        after it started, or after its first ``try`` line (None: let it
        finish)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        trial = Trial()
        first = self._line()
        assert first[0] == "start", first
        pid = int(first[1])
        started = time.monotonic()
        if from_first_try:
            while (words := self._line())[0] not in ("try", "fail", "refused", "done"):
                trial.lines.append(words)
            trial.lines.append(words)
            started = time.monotonic()
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(pid, signal.SIGKILL)  # a zombie at worst: not reaped before "reap"
        self.proc.stdin.write(b"reap\n")
        self.proc.stdin.flush()
        while True:
            words = self._line()
            if words[0] == "exit" and int(words[1]) == pid:
                trial.status = int(words[2])
                trial.seconds = time.monotonic() - started
                return trial
            trial.lines.append(words)

    def calibrate(self, job: dict[str, Any]) -> tuple[float, float]:
        """How long ``job`` runs when nobody kills it, from its start and
        from its first operation: kill delays are drawn from those spans."""
        whole = self.run(job, None)
        whole.check_clean()
        ops = self.run({**job, "first": job["steps"]}, None, from_first_try=True)
        ops.check_clean()
        return whole.seconds, ops.seconds

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


_SCAN = """
import os, sys
root, needles = sys.argv[1], [bytes.fromhex(n) for n in sys.argv[2:]]
for top, _, names in os.walk(root):
    for name in names:
        path = os.path.join(top, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        for i, n in enumerate(needles):
            if n in data:
                print(i, os.path.relpath(path, root))
"""


def assert_nowhere(root: Path, *needles: bytes, what: str) -> None:
    """No file under ``root`` contains any of ``needles`` (raw bytes).

    The scan runs in its own process: this one holds SQLite connections to
    the vault's index, and opening and closing the index files here would
    drop their POSIX locks (fcntl locks belong to the process), which
    corrupts the database under concurrent use."""
    if not needles:
        return
    r = subprocess.run([sys.executable, "-c", _SCAN, str(root), *(n.hex() for n in needles)],
                       capture_output=True, timeout=120, check=True)
    hits = r.stdout.decode().splitlines()
    assert not hits, f"{what} found: {hits}"


def leftover_temps(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if TEMP_NAME.match(p.name))


def settle(office: Office, *, may_rotate: bool = False) -> vault.DoctorReport:
    """The documented tidy-up after a crash: ``doctor --repair`` (and
    ``rotate`` when the doctor asks for it), then a clean ``doctor``."""
    officer = office.as_("officer")
    officer.doctor(repair=True)
    report = office.as_("officer").doctor()
    if may_rotate and not report.ok and all("vault rotate" in p for p in report.problems):
        office.as_("officer").rotate()
        report = office.as_("officer").doctor()
    assert report.ok, report.problems
    return report


def audit_records(office: Office) -> list[Any]:
    return list(vault.Vault(office.path).audit.records())


def sealed_ids(office: Office) -> set[str]:
    """Ids of the documents stored (``docs/<id>.<version>.age``)."""
    return {p.name.split(".")[0] for p in (office.path / "docs").iterdir()
            if p.name.endswith(".age") and not p.name.startswith(".")}
