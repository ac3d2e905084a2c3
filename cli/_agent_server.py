"""The passphrase agent's process (``vault agent start`` runs it).

It keeps the plain text of encrypted identity files, each for a fixed time
after it was first unlocked, so that commands run meanwhile skip the
passphrase and its scrypt cost -- the way ssh-agent and gpg-agent users
expect. It answers only its own user (``SO_PEERCRED``) on a Unix socket in
a folder only that user can enter, refuses to be traced or to dump core,
and exits once it has held nothing for its time limit, or when told to.

Protocol: one JSON object per line in each direction.

    {"op": "get", "key": K}               -> {"ok": true, "identity": TEXT} | {"ok": false}
    {"op": "put", "key": K, "identity": T} -> {"ok": true}
    {"op": "status"}                      -> {"ok": true, "entries": [seconds left, ...],
                                              "timeout": T, "pid": P}
    {"op": "forget"}                      -> {"ok": true}  (drops every entry)
    {"op": "stop"}                        -> {"ok": true}  (then exits)

``K`` is the SHA-256 of the encrypted file's bytes (vault.identity.IdentityCache).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import struct
import sys
import time
from typing import Any

MAX_REQUEST = 256 * 1024  # a post-quantum identity's text is far smaller


def _harden() -> None:
    """No core dumps, no ptrace by other processes of the same user."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def _same_user(conn: socket.socket) -> bool:
    if not hasattr(socket, "SO_PEERCRED"):
        return True  # the socket's folder (0700) is the only guard there
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


class Agent:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.entries: dict[str, tuple[str, float]] = {}  # key -> (text, expiry)
        self.last_held = time.monotonic()
        self.running = True

    def expire(self) -> None:
        now = time.monotonic()
        self.entries = {k: v for k, v in self.entries.items() if v[1] > now}
        if self.entries:
            self.last_held = now

    def idle_too_long(self) -> bool:
        return not self.entries and time.monotonic() - self.last_held >= self.timeout

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        key = request.get("key")
        if op == "get" and isinstance(key, str) and key in self.entries:
            return {"ok": True, "identity": self.entries[key][0]}
        if op == "put" and isinstance(key, str) and isinstance(request.get("identity"), str):
            # The time limit runs from the first unlock: using a key does not
            # keep it longer.
            expiry = self.entries.get(key, ("", time.monotonic() + self.timeout))[1]
            self.entries[key] = (request["identity"], expiry)
            return {"ok": True}
        if op == "status":
            now = time.monotonic()
            return {"ok": True, "entries": sorted(round(e - now) for _, e in
                                                  self.entries.values()),
                    "timeout": self.timeout, "pid": os.getpid()}
        if op == "forget":
            self.entries.clear()
            return {"ok": True}
        if op == "stop":
            self.entries.clear()
            self.running = False
            return {"ok": True}
        return {"ok": False}


def _serve_one(agent: Agent, conn: socket.socket) -> None:
    conn.settimeout(5)
    with conn:
        if not _same_user(conn):
            return
        data = b""
        while not data.endswith(b"\n") and len(data) <= MAX_REQUEST:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        try:
            request = json.loads(data)
        except ValueError:
            return
        reply = agent.answer(request if isinstance(request, dict) else {})
        conn.sendall(json.dumps(reply).encode() + b"\n")


def serve(path: str, timeout: float) -> None:
    _harden()
    agent = Agent(timeout)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(path)
    finally:
        os.umask(old)
    server.listen(8)
    try:
        while agent.running:
            ready, _, _ = select.select([server], [], [], 1.0)
            agent.expire()
            if ready:
                conn, _ = server.accept()
                # Whatever one request holds (a malformed line, nesting
                # deep enough to exhaust the parser), the agent goes on.
                with contextlib.suppress(Exception):
                    _serve_one(agent, conn)
            if agent.idle_too_long():
                break
    finally:
        server.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))


if __name__ == "__main__":
    serve(sys.argv[1], float(sys.argv[2]))
