"""Verifying the audit log as the vault reads it (docs/AUDIT.md §10,
docs/DESIGN.md §9).

Every record's signature is checked with the key the policy *in force at
that record* gives the name it claims -- a key the policy does not know
stands only for an unnamed actor (registered, self-certifying, under
``actors/``), never for a user -- and checkpoints with the verifier key
pinned in ``vault.json``. Lines an officer's incident record sealed off are
reported as such rather than failing the verification.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault._primitives import b64, parse_signing_key, raw_public
from vault.errors import AuditIntegrityError, IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault.audit import NoteVerifier, VerifyReport
    from vault.audit._tip import TrustedTip

__all__ = ["confirm_history", "key_bindings", "key_lookup", "keys_file_line", "named_actor_keys",
           "signer_lookup", "verify_audit"]

#: ``(name, first, end, key)``: ``key`` signs for ``name`` (None: an unnamed
#: actor) in the runs starting at lines ``first`` to ``end - 1`` (None: on)
Binding = tuple[str | None, int, int | None, Ed25519PublicKey]


def key_lookup(s: Session) -> Callable[[str | None, str, int], Ed25519PublicKey | None]:
    from vault.audit import fingerprint

    versions = s.trusted.policy_versions()
    starts = [seq for _, _, seq, _, _ in versions]
    policies = [s.trusted.policy_by_hash(sha) for _, sha, *_ in versions]
    officer = s.manifest.officer
    parsed: dict[str, Ed25519PublicKey] = {}  # a policy's keys, parsed once
    named: dict[int, set[str]] = {}  # fingerprints each version gives a name

    def users(i: int) -> set[str]:
        found = named.get(i)
        if found is None:
            texts = [officer["signing_key"]] if i < 0 else \
                [u.signing_key for u in policies[i].users.values()]
            found = named[i] = {fingerprint(parse_signing_key(t)) for t in texts}
        return found

    def lookup(name: str | None, fp: str, seq: int) -> Ed25519PublicKey | None:
        # The version in force when the record was appended (the record
        # that installs a version is signed under the one before it).
        i = bisect.bisect_left(starts, seq) - 1
        if name is None:
            # A key the policy then gave a user stands for that user, never
            # for an unnamed actor: a record of theirs that carries no name
            # hides who acted (DESIGN.md §9.1).
            return None if fp in users(i) else _registered(s, fp)
        if i < 0:
            text = officer["signing_key"] if name == officer["name"] else None
        else:
            user = policies[i].users.get(name)
            text = user.signing_key if user is not None else None
        if text is None:
            return None
        key = parsed.get(text)
        if key is None:
            key = parsed[text] = parse_signing_key(text)
        return key if fingerprint(key) == fp else None

    return lookup


def keys_file_line(binding: Binding) -> str:
    """One line of the keys file (docs/AUDIT.md §15): FIRST END FINGERPRINT
    BASE64-KEY NAME, the name last as a JSON string (``null`` for records
    that carry none) -- a name may hold spaces, so it is the rest of the
    line, and JSON keeps it exact."""
    from vault.audit import fingerprint

    name, first, end, public = binding
    return (f"{first} {'-' if end is None else end} {fingerprint(public)} "
            f"{b64(raw_public(public))} {json.dumps(name, ensure_ascii=False)}")


def key_bindings(s: Session) -> list[Binding]:
    """What :func:`key_lookup` holds a record to, as the keys file of
    docs/AUDIT.md §15: for each name, each key the policy gave it and the
    runs it signs for -- a version recorded at line ``a`` governs the runs
    starting after ``a``; before the first, the officer's key -- and each
    registered key a record carrying no name gives as its actor's
    (:func:`named_actor_keys`), wherever no version gives it a user."""
    from vault.audit import fingerprint

    versions = s.trusted.policy_versions()
    firsts = [0, *(seq + 1 for _, _, seq, _, _ in versions)]
    officer = s.manifest.officer
    registered = [Ed25519PublicKey.from_public_bytes(raw) for _, raw in named_actor_keys(s)]
    done: list[Binding] = []
    held: dict[tuple[str | None, str], tuple[int, Ed25519PublicKey]] = {}
    for i, first in enumerate(firsts):
        named = [(officer["name"], officer["signing_key"])] if i == 0 else \
            [(u.name, u.signing_key) for u in
             s.trusted.policy_by_hash(versions[i - 1][1]).users.values()]
        now: dict[tuple[str | None, str], Ed25519PublicKey] = {}
        for name, text in named:
            key = parse_signing_key(text)
            now[(name, fingerprint(key))] = key
        users = {fp for _, fp in now}
        for key in registered:
            if fingerprint(key) not in users:
                now[(None, fingerprint(key))] = key
        for pair in [p for p in held if p not in now]:
            since, key = held.pop(pair)
            done.append((pair[0], since, first, key))
        for pair, key in now.items():
            held.setdefault(pair, (first, key))
    done += [(name, since, None, key) for (name, _), (since, key) in held.items()]
    return sorted(done, key=lambda b: (b[1], b[0] or "", fingerprint(b[3])))


def signer_lookup(s: Session) -> tuple[Callable[[str, int], tuple[str, Ed25519PublicKey] | None],
                                        Callable[[str], set[str]]]:
    """Who holds a signing key: ``(fingerprint, seq)`` to the name and key
    of the user the policy in force at ``seq`` gave it (the officer before
    the first policy); and a name to every fingerprint any version gave it.
    For telling who signed a record under another's name (AUDIT.md §14)."""
    from vault.audit import fingerprint

    versions = s.trusted.policy_versions()
    starts = [seq for _, _, seq, _, _ in versions]
    shas = [sha for _, sha, *_ in versions]
    officer = s.manifest.officer
    by_version: dict[int, dict[str, tuple[str, Ed25519PublicKey]]] = {}

    def keys(i: int) -> dict[str, tuple[str, Ed25519PublicKey]]:
        found = by_version.get(i)
        if found is None:
            named = ([(officer["name"], officer["signing_key"])] if i < 0 else
                     [(u.name, u.signing_key) for u in
                      s.trusted.policy_by_hash(shas[i]).users.values()])
            found = by_version[i] = {}
            for name, text in named:
                key = parse_signing_key(text)
                found[fingerprint(key)] = (name, key)
        return found

    def lookup(fp: str, seq: int) -> tuple[str, Ed25519PublicKey] | None:
        return keys(bisect.bisect_left(starts, seq) - 1).get(fp)

    def fingerprints(name: str) -> set[str]:
        return {fp for i in range(-1, len(shas)) for fp, (who, _) in keys(i).items()
                if who == name}

    return lookup, fingerprints


#: what the line of every record carrying no name holds: its actor member
#: ends so in the canonical form (docs/AUDIT.md §3), the only one a record has
_NO_NAME = b'"name":null}'


def named_actor_keys(s: Session) -> list[tuple[str, bytes]]:
    """``(hash, key)`` of each registered key that a record of the log
    carrying no name gives as its actor's: the only ones a record is ever
    checked with (:func:`key_lookup`). Found from the log's lines, a block
    at a time (only those that can hold such a record are parsed), then read
    in one go -- never every key registered: the application role (or a
    folder writer) can register any number of them, each certifying itself,
    and every one made the keys file a line longer and cost a query."""
    from vault.audit import AuditRecord

    hashes: set[str] = set()
    for seq, line in enumerate(s.log.lines()):
        if _NO_NAME not in line:
            continue
        try:
            record = AuditRecord.from_line(line, seq=seq)
        except AuditIntegrityError:
            continue  # no record: it names nobody
        if record.actor is None:
            key_hash = _key_hash(record.actor_key)
            if key_hash is not None:
                hashes.add(key_hash)
    return list(s.backend.registered_keys(hashes))


def _key_hash(fp: str) -> str | None:
    """The hex SHA-256 a key fingerprint (``SHA256:`` + base64) stands for."""
    try:
        digest = base64.b64decode(fp.removeprefix("SHA256:") + "=", validate=True)
    except ValueError:
        return None
    return digest.hex() if len(digest) == 32 else None


def _registered(s: Session, fp: str) -> Ed25519PublicKey | None:
    key_hash = _key_hash(fp)
    raw = s.backend.actor_key(key_hash) if key_hash is not None else None
    if raw is None or hashlib.sha256(raw).hexdigest() != key_hash:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


def confirm_history(s: Session, tip: TrustedTip | None, declared: range = range(0),
                    leaves: Mapping[int, bytes] | None = None,
                    checkpoint: bytes | None = None, *, stored: bool = True,
                    held: Mapping[int, bytes] | None = None,
                    damage: list[range] | None = None) -> VerifyReport:
    """Does the log differ from what this machine verified (``tip``) -- and
    from ``checkpoint``, one kept outside -- only at the lines incidents
    seal off, and the ``declared`` lines, which an incident about to be
    recorded will, carrying ``leaves`` (the leaf hashes those lines had
    when written)? Only if the original leaves -- the lines' own, at
    sealed-off lines those incident records carry (else the derived data's,
    for an incident carrying none) -- reproduce the root (docs/AUDIT.md
    §11.3); every signature is checked too. Raises
    :class:`AuditIntegrityError` otherwise. Called while the state is being
    replayed again, so it reads the store, never catching up. ``stored``:
    False holds the log to ``tip`` and ``checkpoint`` only, not to the
    stored checkpoints. ``held``: the leaves ``tip``'s tree holds at the
    lines sealed off on the machine it is from (its own, which may differ
    from the original ones: ``TrustedState.tip_leaves``), which it is also
    held to -- a tip made from a sealed-off line as that machine read it,
    which anyone may rewrite since. ``damage``: filled, even when this
    raises, with the lines found damaged (``LogReading.verify``)."""
    from vault.audit import NoteVerifier

    # The declaration's leaves stand for the declared lines: a later
    # incident's replace those an earlier one carries (FORMAT.md §14.8).
    recorded = {**s.trusted.store.original_leaves(), **(leaves or {})}
    return s.log.verify(key_lookup=key_lookup(s), trusted_checkpoint=checkpoint,
                        sealed_off=set(s.trusted.store.sealed_off()).union(declared),
                        verifier=NoteVerifier.from_key(s.manifest.log_key), known=tip,
                        recorded=recorded, stored=stored,
                        known_leaves=held, damage=damage)


def verify_audit(s: Session, *, trusted_checkpoint: bytes | None = None,
                 verifier: NoteVerifier | None = None) -> VerifyReport:
    from vault.audit import NoteVerifier

    sealed_off = set(s.trusted.sealed_off_now())
    try:
        report = s.log.verify(trusted_checkpoint=trusted_checkpoint, key_lookup=key_lookup(s),
                              verifier=verifier or NoteVerifier.from_key(s.manifest.log_key),
                              sealed_off=sealed_off, expect_signer=True,
                              recorded=s.trusted.store.original_leaves())
        _keep_confirmed(s, sealed_off)
        return report
    except AuditIntegrityError as e:
        signer = _who_signed(s, e.seq) if e.kind == "signature" else None
        if signer is None:
            raise
        raise AuditIntegrityError(
            f"record {e.seq} ({signer[1]}) is signed by {signer[0]}'s key, which the policy "
            "does not give that name" if signer[1] is not None else
            f"record {e.seq} carries no name but is signed by {signer[0]}'s key",
            kind=e.kind, seq=e.seq, hint=e.hint) from None


def _keep_confirmed(s: Session, sealed_off: set[int]) -> None:
    """The log verified against this machine's trusted tip: where the
    original leaves of sealed-off lines below it that no incident carries
    reproduce its root, keep them in this machine's state (docs/AUDIT.md
    §11.3) -- derived data any folder writer may delete and any append then
    rebuilds from the damaged lines is otherwise all that holds them."""
    import contextlib

    from vault.errors import VaultError

    tip = s.log._tip
    if tip is None or not sealed_off:
        return
    recorded = s.trusted.store.original_leaves()
    if all(i >= tip.size or i in recorded for i in sealed_off):
        return
    with contextlib.suppress(VaultError), s.trusted.store.transaction():
        s.trusted.keep_confirmed(tip)


def _who_signed(s: Session, seq: int | None) -> tuple[str, str | None] | None:
    """For a record whose signature does not verify with the key of the
    name it carries: the user whose key does verify it -- someone who
    signed under another's name, to be named as themselves, not as "an
    unknown key" (AUDIT.md §14) -- and the name it carries."""
    from vault.audit._reader import attributed

    if seq is None:
        return None
    lookup, _ = signer_lookup(s)
    try:
        for record, own, signer in attributed(s.log.scan(), key_lookup(s),
                                              lambda r: r.seq == seq, lookup):
            if not own and signer is not None:
                return signer, record.actor
            return None
    except IntegrityError:
        return None  # damage elsewhere: the message stays as it was
    return None
