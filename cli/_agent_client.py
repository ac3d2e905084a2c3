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


def ask(path: str, request: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any] | None:
    """One request to the agent at ``path``; None if it cannot be reached."""
    with contextlib.suppress(OSError, ValueError):
        import socket  # here: most commands never talk to an agent

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
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
