"""Loading identity files, through the passphrase agent when one runs.

The agent is off by default: it is used only while ``VAULT_AGENT_SOCK``
names its socket (``eval "$(vault agent start)"`` sets it). If it is gone,
or answers nothing, the passphrase is asked as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Any

from ._common import read_passphrase

if TYPE_CHECKING:  # pragma: no cover
    from vault import UserIdentity

SOCKET_ENV = "VAULT_AGENT_SOCK"


def _served_by_me(s: Any, path: str) -> bool:
    """Is the process at the other end of ``s`` this user's? The socket's
    path may be another user's by now: an agent that stopped leaves its name
    in the environment, and in a shared /tmp anyone can make a socket there
    and collect the identities sent to it (``put``) or hand out its own."""
    import socket
    import stat
    import struct

    me = os.geteuid()
    if hasattr(socket, "SO_PEERCRED"):
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return bool(struct.unpack("3i", creds)[1] == me)
    # No peer credentials here: the socket and its folder must be the
    # user's alone (the agent makes both so).
    folder = os.lstat(os.path.dirname(os.path.abspath(path)))
    sock = os.lstat(path)
    return (stat.S_ISSOCK(sock.st_mode) and sock.st_uid == me and folder.st_uid == me
            and stat.S_IMODE(folder.st_mode) & 0o077 == 0)


def ask(path: str, request: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any] | None:
    """One request to the agent at ``path``; None if it cannot be reached,
    or if another user serves that socket (a warning says so)."""
    with contextlib.suppress(OSError, ValueError):
        import socket  # here: most commands never talk to an agent

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            if not _served_by_me(s, path):
                from ._common import warn

                warn(f"the agent socket {SOCKET_ENV} names is served by another user; it is "
                     "not used (unset it, or start your agent again)")
                return None
            s.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        return reply if isinstance(reply, dict) else None
    return None


class AgentCache:
    """:class:`vault.identity.IdentityCache` over the agent's socket."""

    def __init__(self, path: str) -> None:
        self.path = path

    def get(self, key: str) -> str | None:
        reply = ask(self.path, {"op": "get", "key": key})
        text = reply.get("identity") if reply else None
        return text if isinstance(text, str) else None

    def put(self, key: str, text: str) -> None:
        ask(self.path, {"op": "put", "key": key, "identity": text})


def agent_cache() -> AgentCache | None:
    path = os.environ.get(SOCKET_ENV)
    return AgentCache(path) if path else None


def load_identity_file(path: str, *, who: str = "your",
                       env: str = "VAULT_PASSPHRASE_FILE") -> UserIdentity:
    """Load an identity file, asking for its passphrase (the file named by
    ``env``, else the terminal) only if it is encrypted and the agent does
    not hold it."""
    from vault import load_identity

    def passphrase() -> str:
        return read_passphrase(f"passphrase for {who} identity {path}", env=env)

    return load_identity(path, passphrase=passphrase, cache=agent_cache())
