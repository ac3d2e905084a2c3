"""Two people, two processes: a vault under a shipped policy whose every
user has an identity file of their own, in a folder of their own, and runs
the installed ``vault`` script with only that file (tests/test_approvals_cli.py).

Each process also logs every file it opens (a ``sitecustomize`` audit hook
on ``PYTHONPATH``), so that a test can show that no process ever read
another person's private key.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from backends import Kind
from cli_support import VAULT as ON_PATH
from office import POLICIES, policy_text

import vault
from vault.age import X25519Identity
from vault.identity import UserIdentity, new_identity

_HOOK = '''\
import atexit, os, sys
_log = os.environ.get("VAULT_OPEN_LOG")
if _log:
    _seen, _busy = [], [False]

    def _hook(event, args):
        if event == "open" and args and not _busy[0] and isinstance(args[0], (str, bytes)):
            _seen.append(os.fsdecode(args[0]))

    def _dump():
        _busy[0] = True
        with open(_log, "a", encoding="utf-8") as f:
            f.write("".join(p + "\\n" for p in _seen))

    sys.addaudithook(_hook)
    atexit.register(_dump)
'''
# The script installed with this interpreter (the one under test), else PATH's.
_NEXT = Path(sys.executable).with_name("vault")
VAULT = str(_NEXT) if _NEXT.exists() else ON_PATH
ADMINS = {"office": "officer", "corporate": "ciso", "tlp2": "soc-admin", "uk-gsc": "dso",
          "us-eo13526": "issm"}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Site:
    """A vault under ``policies/<name>.yaml`` and its people."""

    root: Path
    location: str
    ids: dict[str, UserIdentity]
    opened: dict[str, list[str]] = field(default_factory=dict)

    def key(self, who: str) -> Path:
        return self.root / "people" / who / f"{who}.key"

    def run(self, who: str, *args: str, stdin: bytes | None = None) -> Run:
        """``vault ARGS`` as ``who``: their identity, their state, their home."""
        assert VAULT is not None, "the vault console script is not installed"
        home = self.root / "people" / who
        log = home / "opened.log"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "VAULT_DIR": self.location,
               "VAULT_IDENTITY": str(self.key(who)), "VAULT_STATE_DIR": str(home / "state"),
               "PYTHONPATH": str(self.root / "hook"), "VAULT_OPEN_LOG": str(log),
               "LANG": "C.UTF-8"}
        p = subprocess.run([VAULT, *args], env=env, input=stdin, capture_output=True,
                           timeout=180, check=False, cwd=home)
        self.opened[who] = log.read_text().splitlines() if log.exists() else []
        return Run(p.returncode, p.stdout.decode(), p.stderr.decode())

    def ok(self, who: str, *args: str) -> Run:
        r = self.run(who, *args)
        assert r.code == 0, (args, r.stderr)
        return r

    def keys_read(self) -> dict[str, set[str]]:
        """Whose identity files each person's processes opened."""
        pattern = re.compile(re.escape(str(self.root / "people")) + r"/([^/]+)/\1\.key$")
        return {who: {m.group(1) for p in paths if (m := pattern.search(p))}
                for who, paths in self.opened.items()}

    def audit(self, who: str) -> list[dict[str, object]]:
        return list(json.loads(self.ok(who, "audit", "log", "--json").stdout))


def make_site(root: Path, backend: Kind, name: str) -> Site:
    template = POLICIES / f"{name}.yaml"
    users = re.findall(r"^  ([A-Za-z0-9._@+-]+):\n    recipient:", template.read_text(), re.M)
    ids = {u: new_identity(u, post_quantum=False) for u in users}
    root.mkdir(parents=True, exist_ok=True)
    (root / "hook").mkdir()
    (root / "hook" / "sitecustomize.py").write_text(_HOOK)
    for who, ident in ids.items():
        (root / "people" / who).mkdir(parents=True)
        ident.to_file(root / "people" / who / f"{who}.key", None)
    policy = root / "policy.yaml"
    recovery = str(X25519Identity.generate().recipient)
    policy.write_text(policy_text(ids, [recovery], {"version: 1\n": "version: 1\n"
                                                    "post_quantum: off\n"}, template=template))
    location = backend.new_location(root)
    vault.Vault.init(location, policy, ids[ADMINS[name]]).close()
    return Site(root, location, ids)
