"""``vault agent``: an optional passphrase agent, off by default.

Every command that reads a passphrase-protected identity pays for the
passphrase's scrypt (about 0.75 s) and asks for it again. The agent keeps
unlocked identities for a time limit (default 15 minutes from the first
unlock), for commands run in a shell where ``VAULT_AGENT_SOCK`` names it::

    eval "$(vault agent start --timeout 30m)"     # sh, bash, zsh
    vault agent start --fish | source              # fish
    vault agent status | forget | stop

Anything running as you can ask a running agent for the identities it
holds, as it could read your terminal: start it only in a session you
trust, and stop it (or let it expire) when done. It needs nothing beyond
the standard library: no keyring service or extra package.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import click

from vault.errors import OperationalError, UsageError

from ._agent_client import SOCKET_ENV, ask
from ._common import echo_json, info

DEFAULT_TIMEOUT = 15 * 60
MAX_TIMEOUT = 24 * 3600
# At most 6 ASCII digits: more is past MAX_TIMEOUT in any unit, and int()
# refuses a string past 4,300 digits with a ValueError (or takes '١٢').
_DURATION = re.compile(r"\A([0-9]{1,6})([smh]?)\Z")


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m`` or ``2h`` as seconds (1 s to 24 h)."""
    m = _DURATION.match(text.strip())
    if not m:
        raise UsageError(f"--timeout: {text!r} is not a duration",
                         hint="give seconds, or a number with s, m or h: 900, 15m, 2h")
    seconds = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise UsageError("--timeout must be between 1 second and 24 hours")
    return seconds


def _socket() -> str:
    path = os.environ.get(SOCKET_ENV)
    if not path:
        raise UsageError("no agent is set for this shell",
                         hint=f"start one with: eval \"$(vault agent start)\" (sets {SOCKET_ENV})")
    return path


@click.group("agent")
def agent() -> None:
    """Keep unlocked identities for a while (optional; off by default).

    Start it with: eval "$(vault agent start)". Commands use it while
    VAULT_AGENT_SOCK names it.
    """


@agent.command("start")
@click.option("--timeout", "timeout", default="15m", show_default=True, metavar="DURATION",
              help="How long an identity stays unlocked after its first use (s, m or h).")
@click.option("--fish", is_flag=True, help="Print fish commands instead of sh ones.")
def start(timeout: str, fish: bool) -> None:
    """Start an agent; print the shell commands that point this shell at it."""
    seconds = parse_duration(timeout)
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = tempfile.mkdtemp(prefix="vault-agent-", dir=base if base and
                              os.path.isdir(base) else None)  # mode 0700
    path = os.path.join(folder, "agent.sock")
    # -P: '-m' would put the current folder first on the module path, and
    # a module planted there (json.py in a shared folder) would run inside
    # the process that holds every unlocked identity. From '/', an empty
    # entry of PYTHONPATH names no folder anyone else may write either.
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "vault_cli._agent_server", path, str(seconds)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True, cwd="/")
    deadline = time.monotonic() + 10
    while ask(path, {"op": "status"}, timeout=1) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise OperationalError("the agent did not start",
                                   hint="check that the folder for its socket is writable")
        time.sleep(0.05)
    if fish:
        click.echo(f"set -gx {SOCKET_ENV} {shlex.quote(path)};")
    else:
        click.echo(f"{SOCKET_ENV}={shlex.quote(path)}; export {SOCKET_ENV};")
    info(f"vault agent {process.pid} started: identities stay unlocked for "
         f"{seconds // 60} min {seconds % 60} s after their first use")


@agent.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Say whether the agent runs and how long each identity stays unlocked."""
    reply = ask(_socket(), {"op": "status"})
    if reply is None:
        raise OperationalError("the agent is not running",
                               hint="start one with: eval \"$(vault agent start)\"")
    if as_json:
        echo_json({"pid": reply["pid"], "timeout": reply["timeout"],
                   "entries": reply["entries"]})
        return
    held = reply["entries"]
    click.echo(f"agent {reply['pid']}: {len(held)} identit{'y' if len(held) == 1 else 'ies'} "
               f"unlocked" + (f", for {', '.join(f'{s} s' for s in held)} more" if held else ""))


@agent.command("forget")
def forget() -> None:
    """Drop every unlocked identity now (the agent keeps running)."""
    if ask(_socket(), {"op": "forget"}) is None:
        raise OperationalError("the agent is not running")
    info("the agent holds no identity now")


@agent.command("stop")
def stop() -> None:
    """Stop the agent (it forgets everything)."""
    if ask(_socket(), {"op": "stop"}) is None:
        raise OperationalError("the agent is not running")
    info("agent stopped")
