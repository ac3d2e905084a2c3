"""The state the vault relies on, verified from the audit log
(docs/DESIGN.md §8): :class:`TrustedState`.

Operations never read policy versions, class keys or document labels from
files or rows on their own: they ask this object, which replays the log
into the state store (:mod:`vault._trust.state`, :mod:`vault._trust.journal`)
and brings itself up to date whenever the log grew (:meth:`catch_up`, which
taking the vault's lock calls). The manifest is pinned the first time this
machine user opens the vault: a replaced ``vault.json`` is an alarm.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from vault._primitives import b64, sha256_hex, unb64
from vault._trust.classes import ClassKey, Holder, LabelClass
from vault._trust.journal import Journal
from vault._trust.state import DocRow, StateStore, state_path
from vault.errors import AuditIntegrityError, AuditWriteError, IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.manifest import Manifest
    from vault.audit import AuditLog, TrustedTip
    from vault.policy import Policy

__all__ = ["TrustedState"]


@functools.lru_cache(maxsize=64)
def _parse_policy(text: str, sha: str) -> Policy:
    from vault.policy import load_policy_bytes

    policy = load_policy_bytes(text.encode("utf-8"), f"policy {sha[:12]}")
    assert policy.hash == sha
    return policy


def _tip_to_text(tip: TrustedTip) -> str:
    return json.dumps({"size": tip.size, "end": tip.end_offset, "last": b64(tip.last_leaf),
                       "frontier": [b64(h) for h in tip.frontier]})


def _tip_from_text(text: str | None) -> TrustedTip | None:
    from vault.audit import TrustedTip

    if text is None:
        return None
    d = json.loads(text)
    return TrustedTip(size=d["size"], end_offset=d["end"], last_leaf=unb64(d["last"], 32),
                      frontier=tuple(unb64(h, 32) for h in d["frontier"]))


class TrustedState:
    """The replayed state of one vault, for one process."""

    def __init__(self, manifest: Manifest, manifest_bytes: bytes, log: AuditLog,
                 path: str | None = None, *, persistent: bool = True) -> None:
        self.manifest = manifest
        self._log = log
        where = path if path is not None else (state_path(manifest.vault_id)
                                               if persistent else None)
        self.store = StateStore(where)
        self._pin = sha256_hex(manifest_bytes)
        self._keys: dict[str, list[ClassKey]] | None = None
        self._policy: Policy | None = None
        self._end: object = None  # where the log ended at the last catch-up
        self._seen = -1  # the log size the caches below were made at

    def close(self) -> None:
        self.store.close()

    # -- bringing it up to date ---------------------------------------------------

    def catch_up(self, *, force: bool = False) -> bool:
        """Replay what was appended since; True if anything was."""
        try:
            end = self._log.storage.end()
        except FileNotFoundError:
            raise AuditIntegrityError(
                "the vault's audit log is missing", kind="truncated", seq=0,
                hint="restore the audit folder from a backup; treat this as an incident"
            ) from None
        except OSError as e:  # fail closed: no log, no action
            raise AuditWriteError(f"cannot read the audit log: {e.strerror or e}",
                                  hint="nothing was done; fix the audit log's storage") from e
        if not force and self._end is not None and end == self._end:
            return False
        with self.store.transaction():
            self._check_pin()
            tip = _tip_from_text(self.store.meta("tip"))
            try:
                new_tip = self._replay(tip)
            except AuditIntegrityError as e:
                if tip is None:
                    raise
                # The log no longer extends what this machine verified. Only an
                # administrator's incident record over what was seen before
                # explains that; otherwise it is an alarm.
                self.store.reset()
                self._check_pin()
                new_tip = self._replay(None)
                # The incident must be new to this machine (recorded at or
                # after what it had verified) and seal off lines it had seen:
                # an incident it already knew never explains a later rollback.
                if not any(seq < tip.size <= incident
                           for seq, incident in self.store.sealed_off().items()):
                    raise AuditIntegrityError(
                        "the audit log no longer extends what this machine verified before "
                        f"(record {tip.size}): it was rolled back or rewritten",
                        kind=e.kind, seq=e.seq,
                        hint="treat this as an incident; compare with a published checkpoint"
                    ) from e
                self.store.add_finding(tip.size, "incident", "the log changed below what "
                                       "this machine had verified; an administrator's incident "
                                       "record covers it, and the state was replayed again")
            if tip is None or new_tip.size != tip.size:
                self.store.set_meta("tip", _tip_to_text(new_tip))
        self._log.set_trusted_tip(new_tip)
        self._end = end
        # The store may have been brought forward by another session of this
        # user (same file): what this object cached is compared with the
        # tip it was cached at, not with what this catch-up replayed.
        changed = new_tip.size != self._seen
        if changed:
            self._keys, self._policy, self._seen = None, None, new_tip.size
        if self.store.meta("version") is None and not self.store.policies():
            raise IntegrityError("the audit log installs no policy: this is not a vault, "
                                 "or its first record was removed",
                                 hint="restore the vault from a backup; treat it as an incident")
        return changed

    def _check_pin(self) -> None:
        pinned, vid = self.store.meta("manifest"), self.store.meta("vault")
        if pinned is None:
            self.store.set_meta("manifest", self._pin)
            self.store.set_meta("vault", self.manifest.vault_id)
        elif pinned != self._pin or vid != self.manifest.vault_id:
            raise IntegrityError("vault.json changed since this machine first opened the vault",
                                 hint="someone replaced the vault's manifest; treat it as an "
                                      "incident")

    def _replay(self, tip: TrustedTip | None) -> TrustedTip:
        """Feed the lines after ``tip`` to the journal (inside a transaction)."""
        from vault.audit import verify_record

        journal = Journal(self.store, self.manifest, _parse_policy, verify_record)
        with self._log.scan(tip) as scan:
            for line in scan:
                journal.feed(line)
        return scan.tip

    @contextlib.contextmanager
    def reading(self) -> Iterator[TrustedState]:
        self.catch_up()
        yield self

    # -- policy ------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The policy version in force: the latest one the log installed."""
        if self._policy is None:
            versions = self.store.policies()
            if not versions:
                raise IntegrityError("no policy version is in force")
            self._policy = self.policy_by_hash(versions[-1][1])
        assert self._policy is not None
        return self._policy

    @property
    def policy_version(self) -> int:
        return len(self.store.policies())

    def policy_versions(self) -> list[tuple[int, str, int, str, str]]:
        """``(version, sha256, seq, applied by, applied at)`` of each version."""
        return self.store.policies()

    def policy_by_hash(self, sha: str) -> Policy:
        text = self.store.policy_text(sha)
        if text is None:
            raise IntegrityError(f"no policy version {sha[:12]}… was ever in force")
        return _parse_policy(text, sha)

    def recovery_at(self, seq: int) -> list[str]:
        """The recovery recipients a header recorded at line ``seq`` was
        wrapped to: those of the policy in force then (a writer holds the
        vault's lock from wrapping to recording, so no version came
        between)."""
        sha = None
        for _, digest, at, _, _ in self.store.policies():
            if at > seq:
                break
            sha = digest
        if sha is None:
            return recovery_for(self.policy, self.manifest.recovery)
        return recovery_for(self.policy_by_hash(sha), self.manifest.recovery)

    def sealed_off_now(self) -> dict[int, int]:
        """Lines sealed off by the incidents the log declares by now
        (docs/AUDIT.md §13.8): line -> incident record."""
        self.catch_up()
        return self.store.sealed_off()

    def recovery_now(self) -> list[str]:
        """Recovery recipients new wraps go to."""
        return recovery_for(self.policy, self.manifest.recovery)

    def post_quantum_keys(self) -> bool:
        """Are new class keys hybrid? They share every header with the
        recovery recipients, which are all of one kind (docs/POLICY.md
        §3.12)."""
        recovery = self.recovery_now()
        if recovery:
            return all(r.startswith("age1pq1") for r in recovery)
        return self.policy.post_quantum != "off"

    def recovery_ever(self) -> set[str]:
        """Every recovery recipient a document may still be wrapped to."""
        out = set(self.manifest.recovery)
        for _, sha, *_ in self.store.policies():
            out |= set(self.policy_by_hash(sha).recovery)
        return out

    # -- class keys ---------------------------------------------------------------------

    def _load_keys(self) -> dict[str, list[ClassKey]]:
        if self._keys is None:
            holders: dict[str, set[Holder]] = {}
            for kid, name, recipient in self.store.holders():
                holders.setdefault(kid, set()).add(Holder(name, recipient))
            from vault._trust.classes import key_id

            keys: dict[str, list[ClassKey]] = {}
            for class_id, gen, cls, recipient, creator, seq in self.store.class_keys():
                keys.setdefault(class_id, []).append(ClassKey(
                    LabelClass.from_dict(json.loads(cls)), gen, recipient, creator, seq,
                    frozenset(holders.get(key_id(recipient), ()))))
            self._keys = keys
        return self._keys

    def classes(self) -> list[list[ClassKey]]:
        return list(self._load_keys().values())

    def generations(self, cls: LabelClass) -> list[ClassKey]:
        return list(self._load_keys().get(cls.id, []))

    def current(self, cls: LabelClass) -> ClassKey | None:
        gens = self.generations(cls)
        return gens[-1] if gens else None

    def key(self, kid: str) -> ClassKey | None:
        for gens in self._load_keys().values():
            for ck in gens:
                if ck.key_id == kid:
                    return ck
        return None

    def entry_digest(self, kid: str, owner: str) -> str | None:
        return self.store.entry(kid, owner)

    # -- documents ----------------------------------------------------------------------

    def doc(self, doc_id: str) -> DocRow | None:
        return self.store.doc(doc_id)

    def docs(self, **where: object) -> list[DocRow]:
        return self.store.docs(**where)  # type: ignore[arg-type]


def recovery_for(policy: Policy, from_init: Sequence[str]) -> list[str]:
    """The recovery recipients under ``policy``: its own, and the one made
    at ``vault init`` -- unless that one is of the other kind (hybrid or
    classical), which one header cannot hold beside them; with none of its
    own, the one made at init."""
    named = set(policy.recovery)
    if not named:
        return sorted(from_init)
    pq = all(r.startswith("age1pq1") for r in named)
    return sorted(named | {r for r in from_init if r.startswith("age1pq1") == pq})
