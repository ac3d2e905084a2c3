"""Loading policies from files, text, bytes or plain data (docs/POLICY.md §2)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from vault.errors import PolicyLoadError, PolicyProblem
from vault.policy._fields import from_data
from vault.policy._schema import build_policy
from vault.policy._yaml import MAX_POLICY_BYTES, Problems, compose, decode
from vault.policy.model import Policy


def load_policy(path: str | os.PathLike[str], *, template: bool = False) -> Policy:
    """Load and check a policy file; PolicyLoadError lists every problem.

    ``template``: the file is a shipped template whose users' keys are
    placeholders (refused otherwise); fresh stand-in keys take their place,
    for test cases and classification, never for a vault."""
    if template:
        from vault.policy._keys import STAND_INS

        token = STAND_INS.set(True)
        try:
            return load_policy(path)
        finally:
            STAND_INS.reset(token)
    from vault._inputs import open_input
    from vault.errors import PolicyProblem, UsageError

    name = os.fspath(path)
    # open_input: a FIFO or link another user planted is refused, never
    # waited on; the user's own (``<(…)``) is read.
    try:
        with open_input(name) as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise PolicyLoadError([PolicyProblem(name, None, None,
                                             f"cannot read: {e.strerror or e}")]) from None
    except UsageError as e:
        raise PolicyLoadError([PolicyProblem(name, None, None, e.message, e.hint)]) from None
    return load_policy_bytes(data, name)


def load_policy_bytes(data: bytes, filename: str = "<bytes>") -> Policy:
    """Load a policy from its exact bytes (``hash`` is their SHA-256)."""
    return _load(data, Problems(filename))


def load_installed_policy(data: bytes, filename: str) -> Policy:
    """Load a policy version the vault's log installed: as
    :func:`load_policy_bytes`, but a text value holding a character a
    policy may no longer hold (docs/POLICY.md §2.3) is kept, not refused.

    Such a version was in force before the reader refused it; refusing it
    now would leave every machine of the vault without a policy (and its
    log's later versions without the one they follow). What reads its
    texts escapes them on terminals or refuses to write them; the officer
    applies a corrected version (:func:`installed_text_problems` names
    what to correct)."""
    return _load(data, Problems(filename, installed=True))


def installed_text_problems(data: bytes, filename: str) -> list[PolicyProblem]:
    """The problems a new policy with these bytes would be refused for; [] if
    none. For a version :func:`load_installed_policy` loaded, these are the
    characters its text values hold."""
    try:
        load_policy_bytes(data, filename)
    except PolicyLoadError as e:
        return list(e.problems)
    return []


def _load(data: bytes, problems: Problems) -> Policy:
    text = decode(data, problems)
    root = None if text is None else compose(text, problems)
    return build_policy(root, problems, hashlib.sha256(data).hexdigest())


def load_policy_text(text: str, filename: str = "<string>") -> Policy:
    """Load a policy from text (``hash`` is the SHA-256 of its UTF-8 bytes)."""
    if not isinstance(text, str):
        raise TypeError("load_policy_text takes str; use load_policy_bytes for bytes")
    return load_policy_bytes(text.encode("utf-8", "surrogatepass"), filename)


def policy_from_data(data: Mapping[str, Any], filename: str) -> Policy:
    if not isinstance(data, Mapping):
        raise TypeError("Policy.from_dict takes a mapping")
    problems = Problems(filename)
    root = from_data(data, "", problems)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return build_policy(root, problems, hashlib.sha256(canonical.encode("utf-8")).hexdigest())
