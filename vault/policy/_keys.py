"""Checks for the public keys a policy names (docs/POLICY.md §3.6).

A user's ``recipient`` must be a native age recipient -- post-quantum
(``age1pq1…``) or X25519 (``age1…``) -- because the vault wraps label-class
keys to it; a ``signing_key`` must be
``ed25519:`` followed by the standard base64 of a 32-byte Ed25519 public key.
Each check returns None when the text is fine, or a short message saying what
is wrong (public keys only: messages may quote them). Recipients are
parsed by :func:`vault.age.parse_recipient`, the same code that encrypts.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import re
from collections.abc import Callable, Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault.age import MLKEM768X25519Recipient, X25519Recipient, parse_recipient
from vault.errors import IdentityFileError

SIGNING_PREFIX = "ed25519:"


# What shipped templates hold until the officer pastes real keys: refused,
# so that no key whose private half nobody here controls is ever granted.
PLACEHOLDER = "REPLACE-WITH-"
PLACEHOLDER_HINT = "fill it from that person's FILE.pub ('vault policy fill TEMPLATE FILE.pub... " \
    "-o POLICY', or paste what 'vault identity show FILE' prints), or remove the user"


# Policy test cases run against templates: with this set, a placeholder
# stands for a fresh key of the right kind instead of being refused.
STAND_INS: contextvars.ContextVar[bool] = contextvars.ContextVar("stand_ins", default=False)


def stand_in(kind: str) -> str:
    """A fresh public key standing for a template's placeholder."""
    from vault._primitives import format_signing_key
    from vault.age import MLKEM768X25519Identity

    if kind == "signing_key":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return format_signing_key(Ed25519PrivateKey.generate().public_key())
    return str(MLKEM768X25519Identity.generate().recipient)


_USER = re.compile(r"^  ([A-Za-z0-9_][A-Za-z0-9_.@+-]*):\s*$")
_KEY = re.compile(r"^(    (recipient|signing_key): )REPLACE-WITH-\S+\s*$")


def fill_template(text: str, keys: Mapping[str, Mapping[str, str]], *,
                  others: Callable[[str], str] | None = None
                  ) -> tuple[str, list[str], list[str]]:
    """A policy template's text with the placeholder keys of the users in
    ``keys`` replaced (``keys[user]["recipient"]`` and ``["signing_key"]``)
    and, with ``others``, those of every other user by ``others(kind)``
    (e.g. :func:`stand_in`). Nothing else changes: comments, order and
    layout stay. Returns the text, the users filled from ``keys``, and the
    users still holding placeholders (``vault policy fill``)."""
    out: list[str] = []
    in_users = False
    user: str | None = None
    filled: set[str] = set()
    left: set[str] = set()
    for line in text.splitlines(keepends=True):
        if line.startswith("users:"):
            in_users = True
        elif line[:1].isalnum():
            in_users = False  # the next top-level section
        if in_users and (m := _USER.match(line)):
            user = m.group(1)
        elif in_users and user is not None and (k := _KEY.match(line)):
            if user in keys:
                line = f"{k.group(1)}{keys[user][k.group(2)]}\n"
                filled.add(user)
            elif others is not None:
                line = f"{k.group(1)}{others(k.group(2))}\n"
            else:
                left.add(user)
        out.append(line)
    return "".join(out), sorted(filled), sorted(left)


def placeholder_problem(text: str) -> str | None:
    if PLACEHOLDER in text:
        return f"'{text[:40]}' is a placeholder of the template, not a key"
    return None


def recipient_problem(text: str) -> str | None:
    """Why ``text`` is not a native age recipient, or None if it is one."""
    if (problem := placeholder_problem(text)) is not None:
        return problem
    if not text.startswith("age1"):
        return f"'{text}' is not an age recipient; expected age1 followed by 58 characters"
    if text != text.lower() or text != text.strip():
        return f"'{_short(text)}' is not a native age recipient; expected lowercase age1…"
    try:
        recipient = parse_recipient(text)
    except IdentityFileError:
        return (f"'{_short(text)}' is not a valid age recipient (mistyped or cut?); plugin "
                "and SSH recipients are not supported")
    # X25519 ignores the top bit of a public key, and reduces it modulo the
    # field prime: one key has several spellings, and "one key per person"
    # compares recipients as text. Only the canonical one is a recipient here
    # (the X25519 half of a hybrid one too: its last 32 bytes).
    raw = recipient.to_bytes() if isinstance(
        recipient, X25519Recipient | MLKEM768X25519Recipient) else b""
    x25519 = raw[-32:]
    if int.from_bytes(x25519, "little") >= _FIELD_PRIME:
        return (f"'{_short(text)}' is not an X25519 key in its one encoding (another "
                "spelling of some key); expected the recipient its identity file gives")
    return None


_FIELD_PRIME = 2**255 - 19


def _short(text: str) -> str:
    return text if len(text) <= 100 else text[:60] + "…"


def signing_key_problem(text: str) -> str | None:
    """Why ``text`` is not ``ed25519:<base64 of 32 bytes>``, or None."""
    if (problem := placeholder_problem(text)) is not None:
        return problem
    if not text.startswith(SIGNING_PREFIX):
        return f"'{text}' is not a signing key; expected ed25519:<base64 of 32 bytes>"
    b64 = text[len(SIGNING_PREFIX):]
    try:
        raw = binascii.a2b_base64(b64.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32 or base64.b64encode(raw).decode("ascii") != b64:
        return f"'{text}' is not ed25519:<base64 of 32 bytes> (standard base64 with padding)"
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return f"'{text}' is not a valid Ed25519 public key"
    return None
