"""Running a program on a real pseudo-terminal and typing its passphrases.

age and ``vault`` read passphrases from the controlling terminal, never from
stdin; these tests give them one (``pty.fork``) instead of mocking the prompt.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import time
from collections.abc import Mapping, Sequence


def with_tty(argv: Sequence[str], answers: Sequence[str], *,
             env: Mapping[str, str] | None = None,
             timeout: float = 60.0) -> tuple[int, bytes, int]:
    """Run ``argv`` with a pseudo-terminal as its controlling terminal. Each
    time it prompts (its output since the last answer ends with ":", as
    "Enter passphrase:" and "Repeat for confirmation:" do), type the next
    answer.

    Returns (exit status, terminal transcript, answers typed). A program
    still running after ``timeout`` seconds is killed."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execvpe(argv[0], list(argv), dict(os.environ if env is None else env))
        finally:
            os._exit(127)
    transcript, since, typed = b"", 0, 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
                break
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                transcript += data
            tail = transcript[since:]
            if pending and tail.rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
                since, typed = len(transcript), typed + 1
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript, typed
