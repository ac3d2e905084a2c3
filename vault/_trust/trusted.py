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
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from vault._primitives import b64, loads_json, sha256_hex, unb64
from vault._trust.classes import ClassKey, Holder, LabelClass
from vault._trust.journal import RULES, Journal, inert
from vault._trust.state import DocRow, StateStore, state_path
from vault.audit import LineSource
from vault.errors import AuditIntegrityError, AuditWriteError, IntegrityError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._trust.manifest import Manifest
    from vault.audit import AuditLog, LastAppend, Scan, TrustedTip
    from vault.policy import Policy

__all__ = ["OutOfPlace", "TrustedState"]

_UNSET = object()
_AHEAD = 256  # own appends kept in memory only, at most, before the store is written


@functools.lru_cache(maxsize=64)
def _parse_policy(text: str, sha: str) -> Policy:
    from vault.policy._loader import load_installed_policy

    # A version the log installed: read as it was installed (a text value is
    # not refused for characters a newer reader refuses, docs/POLICY.md §2.3).
    policy = load_installed_policy(text.encode("utf-8"), f"policy {sha[:12]}")
    assert policy.hash == sha
    return policy


def _tip_to_text(tip: TrustedTip) -> str:
    return json.dumps({"size": tip.size, "end": tip.end_offset, "last": b64(tip.last_leaf),
                       "frontier": [b64(h) for h in tip.frontier]})


def _tip_from_text(text: str | None) -> TrustedTip | None:
    from vault.audit import TrustedTip

    if text is None:
        return None
    d = loads_json(text)
    return TrustedTip(size=d["size"], end_offset=d["end"], last_leaf=unb64(d["last"], 32),
                      frontier=tuple(unb64(h, 32) for h in d["frontier"]))


class OutOfPlace(AuditIntegrityError):
    """Records of the audit log are out of place: nothing is decided."""


class _Written(LineSource):
    """Lines this process just appended, as one block (see _own_lines)."""

    def __init__(self, lines: list[bytes]) -> None:
        self._lines = lines

    def __iter__(self) -> Iterator[list[bytes]]:
        if self._lines:
            yield self._lines


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
        self._by_id: dict[str, ClassKey] = {}
        self._policy: Policy | None = None
        self._recovery: frozenset[str] | None = None
        self._end: object = None  # where the log ended at the last catch-up
        self._seen = -1  # the log size at the last catch-up
        self._mark: object = _UNSET  # the store's state mark the caches were made at
        self._pinned = False  # the store's pin was checked against this manifest
        self._trusted_tip: TrustedTip | None = None  # where this object's replay stands
        # This process's own appends replayed in memory only (see _keep_in_memory).
        self._ahead: list[LastAppend] = []
        self._tip: TrustedTip | None = None  # the stored tip, parsed from _tip_text
        self._tip_text: str | None = None
        #: checks that the log differs from what this machine verified (the
        #: tip) only at lines an incident seals off; raises AuditIntegrityError
        #: (the session's verification with every signature, vault/_ops/verify.py)
        self.confirm: Callable[[TrustedTip], object] | None = None
        #: what this machine verified, when the last catch-up refused the log
        #: because it no longer extends it (None otherwise): the record an
        #: incident declared from this machine must explain (vault/_ops/incident.py)
        self.refused: TrustedTip | None = None
        # The leaves the last replay's tree holds at the sealed-off lines
        # below its tip, as its held pass read them (None: no such pass).
        self._told: dict[int, bytes] | None = None

    def close(self) -> None:
        # What this session replayed in memory only is kept for the next one.
        if self._ahead:
            with contextlib.suppress(VaultError, sqlite3.Error, OSError):
                self.catch_up(own=True)
        self.store.close()

    # -- bringing it up to date ---------------------------------------------------

    def catch_up(self, *, force: bool = False, own: bool = False) -> bool:
        """Replay what was appended since; True if anything was. ``own``:
        at least this process's own latest append, without asking the
        storage where the log ends when those lines directly follow what
        was replayed (a writer checking that its change counted)."""
        if own and not force and self._pinned and self._own_chain():
            with self.store.transaction():
                replayed = self._own_lines(self._stored_tip(), None)
                if replayed is not None:
                    new_tip, applied = replayed
                    self._tip_text = _tip_to_text(new_tip)
                    self._tip = new_tip
                    self.store.set_meta("tip", self._tip_text)
                    if applied:
                        self.store.set_meta("state", secrets.token_hex(8))
                    mark = self.store.meta("state")
            if replayed is not None:
                changed = self._caught_up(new_tip, None, mark)
                self._end = None  # where the log ends now is not known: ask next time
                return changed
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
        if not force and self._pinned:
            kept = self._keep_in_memory(end)
            if kept is not None:
                return kept
            adopted = self._adopt(end)
            if adopted is not None:
                return adopted
        with self.store.transaction():
            self._check_pin()
            tip = self._stored_tip()
            anew = tip is None or self.store.meta("rules") != RULES  # a tip made from line 0
            self._told = None
            try:
                if tip is not None and self.store.meta("rules") != RULES:
                    new_tip, applied = self._replay_again(tip)
                else:
                    new_tip, applied = self._own_lines(tip, end) or self._replay_in_place(
                        functools.partial(self._replay_from, tip), tip)
            except AuditIntegrityError as e:
                if tip is None:
                    raise
                # The log no longer extends what this machine verified. Only an
                # administrator's incident record over what was seen before
                # explains that; otherwise it is an alarm.
                self.store.reset()  # "rules" too: the tip is stored again below
                self._pinned = False
                anew = True
                self._check_pin()
                new_tip, _ = self._replay_in_place(self._replay_start, None)
                applied = True
                # The incident must be new to this machine (recorded at or
                # after what it had verified) and seal off lines it had seen:
                # an incident it already knew never explains a later rollback.
                # And it must explain the whole change: a new incident over one
                # line excuses nothing else below what this machine verified.
                if not any(seq < tip.size <= incident
                           for seq, incident in self.store.sealed_off().items()) \
                        or not self._confined(tip):
                    self.refused = tip
                    raise AuditIntegrityError(
                        "the audit log no longer extends what this machine verified before "
                        f"(record {tip.size}): it was rolled back or rewritten",
                        kind=e.kind, seq=e.seq,
                        hint=e.hint if e.kind in ("inserted", "deleted") and e.hint else
                        "treat this as an incident; compare with a published checkpoint"
                    ) from e
                self.store.add_finding(tip.size, "history", "the log changed below what "
                                       "this machine had verified; an administrator's incident "
                                       "record covers it, and the state was replayed again")
            started_over = self.store.meta("rules") != RULES  # the store was emptied
            if started_over:
                self.store.set_meta("rules", RULES)
            if tip is None or started_over or new_tip != tip:  # moved, or grown
                self._tip_text = _tip_to_text(new_tip)
                self._tip = new_tip
                self.store.set_meta("tip", self._tip_text)
            self._keep_tip_leaves(new_tip, anew, self._told)
            if applied or tip is None:
                # A new mark whenever a state record was replayed (or the
                # replay started over): what sessions cached is stale.
                self.store.set_meta("state", secrets.token_hex(8))
            mark = self.store.meta("state")
        self._pinned = True  # checked (or made) in a transaction that committed
        return self._caught_up(new_tip, end, mark)

    def _confined(self, tip: TrustedTip) -> bool:
        """Does the log differ from ``tip`` only at sealed-off lines?"""
        if self.confirm is None:
            return False
        try:
            self.confirm(tip)
        except AuditIntegrityError:
            return False
        self.keep_confirmed(tip)
        return True

    def keep_confirmed(self, tip: TrustedTip) -> int:
        """Keep, as this machine's own, the original leaves of sealed-off
        lines below ``tip`` whose incidents carry none, when the derived
        data holds leaves that reproduce ``tip``'s root and differ from the
        lines' current ones (inside a transaction; docs/AUDIT.md §11.3):
        once the derived data is rebuilt from the damaged lines, nothing
        else holds them. How many were kept."""
        import hmac

        from vault._trust._statement import MAX_INCIDENT_LEAVES
        from vault.audit import leaf_hash
        from vault.audit._storage import LogEnd
        from vault.audit._tree import tree_root
        from vault.audit._verify_end import originals

        sealed = self.store.sealed_off()
        recorded = self.store.original_leaves()
        missing = [i for i in sealed if i < tip.size and i not in recorded]
        if not missing or len(missing) > MAX_INCIDENT_LEAVES:
            return 0
        storage = self._log.storage
        with self._log._reading():
            found = originals(self._log, tip.size, frozenset(sealed), recorded)
            if found is None or not hmac.compare_digest(tree_root(found), tip.root):
                return 0
            source = storage.read(0, 0, LogEnd(tip.size, None))
            try:
                now = [leaf_hash(line) for block in source for line in block]
            finally:
                source.close()
        kept = 0
        for i in missing:
            if i < len(now) and found[i] != now[i]:
                self.store.keep_own_original(i, found[i])
                kept += 1
        return kept

    def _adopt(self, end: object) -> bool | None:
        """Without taking the store's write lock: has another session of
        this user (same file) replayed the log to its current end already?
        Then its tip and state are this one's (None: replay)."""
        found = self.store.metas("tip", "state")
        text = found.get("tip")
        if text is None:
            return None
        if text != self._tip_text:
            self._tip, self._tip_text = _tip_from_text(text), text
        tip = self._tip
        assert tip is not None
        if end != (tip.size, None) and end != (None, tip.end_offset):
            return None
        return self._caught_up(tip, end, found.get("state"))

    def _caught_up(self, new_tip: TrustedTip, end: object, mark: str | None, *,
                   keep: bool = False) -> bool:
        if not keep:  # the store holds every line up to new_tip
            self._ahead.clear()
        self.refused = None
        self._trusted_tip = new_tip
        self._log.set_trusted_tip(new_tip)
        self._end = end
        # The store may have been brought forward by another session of this
        # user (same file): what this object cached is compared with the
        # store's mark of the state it was cached at, not with what this
        # catch-up replayed. Records that change no state (most of them:
        # every decision, every opening) leave the caches alone.
        changed = new_tip.size != self._seen
        self._seen = new_tip.size
        if mark != self._mark:
            self._keys, self._policy, self._recovery, self._mark = None, None, None, mark
            if not self.store.policies():
                # Why the first policy record did not count (the manifest
                # it names, say) says more than that none did.
                why = self.store.first_finding("policy")
                raise IntegrityError("the audit log installs no policy: " + (
                    f"its first policy record does not count: {why.removesuffix('; ignored')}"
                    if why else "this is not a vault, or its first record was removed"),
                    hint="restore the vault from a backup; treat it as an incident")
        return changed

    def _stored_tip(self) -> TrustedTip | None:
        text = self.store.meta("tip")
        if text is None or text != self._tip_text:  # parsed again only when it moved
            self._tip, self._tip_text = _tip_from_text(text), text
        return self._tip

    def _own_chain(self) -> list[LastAppend]:
        """This process's appends not yet in the store, oldest first: those
        kept in memory only, then the latest one (each right after the one
        before it)."""
        chain = list(self._ahead)
        own = self._log.last_append
        if own is not None and (not chain or chain[-1] is not own):
            if chain and own.before != chain[-1].after:
                return []  # not contiguous: read the log
            chain.append(own)
        return chain

    def _keep_in_memory(self, end: object) -> bool | None:
        """Catch up with this process's own latest append in memory only,
        when it is all the log added since this object's tip and changes
        nothing but the tip (a decision to open, list or export; a denial):
        the store, a cache of the log shared by this user's sessions, is not
        written for it -- writing it would make the next fdatasync of the
        log carry SQLite's pages too. Such appends are written to the store
        with the next replay that changes something, or when the session
        closes; until then other sessions read them from the log."""
        own = self._log.last_append
        if (own is None or self._trusted_tip is None or own.before != self._trusted_tip
                or (self._ahead and self._ahead[-1] is own) or len(self._ahead) >= _AHEAD
                or (end != (own.after.size, None) and end != (None, own.after.end_offset))
                or not all(inert(rec) for rec in own.records)):
            return None
        self._ahead.append(own)
        assert isinstance(self._mark, str | None)
        return self._caught_up(own.after, end, self._mark, keep=True)

    def _own_lines(self, tip: TrustedTip | None, end: object) -> tuple[TrustedTip, bool] | None:
        """Replay this process's own appends without reading them back, when
        their lines are all the log added after ``tip``: they are the bytes
        this process wrote, right after the lines this state verified (each
        append checked that the log still starts with them), so they are fed
        to the journal as written -- parsed and settled by the same reading
        rules as lines read from storage. Lines that would change nothing
        but the tip (decisions to open, list, export; denials) are not even
        parsed. None: read the log as usual."""
        chain = self._own_chain()
        if tip is None:
            return None
        start = next((i for i, a in enumerate(chain) if a.before == tip), None)
        if start is None:
            return None
        chain = chain[start:]
        after = chain[-1].after
        if end is not None and end != (after.size, None) and end != (None, after.end_offset):
            return None  # someone else appended since (or the log changed size)
        records = [rec for a in chain for rec in a.records]
        if all(inert(rec) for rec in records):
            return after, False
        if any(rec.state and "incident" in rec.state for rec in records):
            return None  # replayed again with the lines it seals off (_replay)
        from vault.audit import Scan, verify_record

        journal = Journal(self.store, self.manifest, _parse_policy, verify_record,
                          self.store.sealed_off())
        with Scan(_Written([rec.line for rec in records]), tip) as scan:
            for line in scan:
                journal.feed(line)
        if scan.tip != after or scan.unrecovered:  # pragma: no cover - by construction
            raise AssertionError("an append's own lines did not replay to its tip")
        return after, journal.applied > 0

    def _check_pin(self) -> None:
        if self._pinned:  # verified once: a replay never changes the pin
            return
        pinned, vid = self.store.meta("manifest"), self.store.meta("vault")
        if pinned is None:
            self.store.set_meta("manifest", self._pin)
            self.store.set_meta("vault", self.manifest.vault_id)
        elif pinned != self._pin or vid != self.manifest.vault_id:
            raise IntegrityError("vault.json changed since this machine first opened the vault",
                                 hint="someone replaced the vault's manifest; treat it as an "
                                      "incident")

    def _replay_in_place(self, replay: Callable[[int | None], tuple[TrustedTip, bool]],
                         tip: TrustedTip | None) -> tuple[TrustedTip, bool]:
        """``replay(None)`` from ``tip`` (inside a transaction) -- unless it
        finds records out of place after it, as the log stands (lines
        inserted, split, joined or removed before them; none at a line an
        incident seals off by then, which moves nothing): then what it did
        is undone and ``replay(M)`` stops before ``M``, the first of their
        lines, keeping only the finding there. The tip never passes them,
        nor what follows: the records they moved do not count, nor does
        anything after them (docs/AUDIT.md §11.3) -- and once the office
        puts the lines back as written (DEPLOYMENT.md §14), the log extends
        what this machine verified, as it did before the lines moved."""
        start = tip.size if tip is not None else 0
        self.store.drop_findings("misplaced", start)  # found again below while they stand
        try:
            with self.store.savepoint():
                done = replay(None)
                sealed = self.store.sealed_off()
                moved = next(((seq, message) for seq, message
                              in self.store.findings_of("misplaced")
                              if seq >= start and seq not in sealed), None)
                if moved is not None:
                    raise _Moved(*moved)
            return done
        except _Moved as e:
            at, message = e.seq, e.message
        new_tip, applied = replay(at)
        self.store.add_finding(at, "misplaced", message)
        return new_tip, applied

    def _replay_start(self, until: int | None) -> tuple[TrustedTip, bool]:
        """:meth:`_replay` from the log's start, stopping before ``until``."""
        return self._replay(None, until=until)

    def _replay(self, tip: TrustedTip | None, through: TrustedTip | None = None,
                until: int | None = None) -> tuple[TrustedTip, bool]:
        """Feed the lines after ``tip`` to the journal (inside a transaction);
        the new tip, and whether any state record was applied. ``through``:
        a tip the lines must pass through on the way (AuditIntegrityError).
        ``until``: the replay stops before the line so numbered.

        A line an incident sealed off never counts, whatever signature covers
        it, and a record after one was signed over that line as written: it
        is judged with the leaf hash the incident carries for it (docs/AUDIT.md
        §11.3). An incident met in this replay -- sealing off lines the replay
        did not know as such, or carrying leaves it did not know -- has the log
        replayed again from its start with them, held to the tip this replay
        reached (:meth:`_replay_held`): what those lines said is then replayed
        away, on a machine that counted it before as on a new one. A log
        that no longer holds the lines of that tip raises AuditIntegrityError
        (nothing of the replay is kept). That pass also tells the leaves the
        new tip's tree holds at the sealed-off lines below it, as it reads
        them (:meth:`_keep_tip_leaves`)."""
        self._told = None
        given = self._sealed_now()
        new_tip, applied = self._replay_pass(tip, through, *given, until=until)
        for _ in range(3):  # a replay with new leaves may count another incident's
            found = self._sealed_now()
            if found == given:
                break
            self._told = self._replay_held(tip, new_tip, *found)
            given, applied = found, True
        return new_tip, applied

    def _replay_from(self, tip: TrustedTip | None,
                     until: int | None = None) -> tuple[TrustedTip, bool]:
        """:meth:`_replay` from ``tip`` -- from where its lines end now, when
        a line an incident sealed off below it was rewritten at another
        length (anyone may: it never counts, docs/AUDIT.md §11.3) and the
        lines, with the leaves its tree holds at sealed-off lines
        (:meth:`tip_leaves`), still reproduce its root
        (:func:`~vault.audit.moved_tip`; a finding notes it). Held to its
        offset, the machine would stop for good at an incident it already
        knew, as an alarm."""
        from vault.audit._writer import moved_tip

        if tip is None:
            return self._replay(None, until=until)
        try:
            with self.store.savepoint():
                return self._replay(tip, until=until)
        except AuditIntegrityError:
            moved = moved_tip(self._log.storage, tip, self.tip_leaves())
            if moved is None:
                raise
        self.store.add_finding(tip.size, "history", "a line an incident sealed off below "
                               "what this machine had verified was rewritten at another "
                               "length; the lines still hold its tip with the leaves it was made "
                               "with there, and the tip was moved to where they end now")
        return self._replay(moved, until=until)

    def original_leaves(self) -> dict[int, bytes]:
        """The original leaves the state holds (those incident records carry
        and this machine's own), of sealed-off lines only, without catching
        up: what a root is held to at those lines (docs/AUDIT.md §11.3)."""
        return self._sealed_now()[0]

    def tip_leaves(self) -> dict[int, bytes]:
        """The leaves the stored tip's tree holds at sealed-off lines below
        it, without catching up: those this machine told when it stored the
        tip (:meth:`_keep_tip_leaves`) -- the original leaf where it read
        the line before the damage, the line's own, as its replay read it,
        where it first read it after -- else the original ones the state
        holds. A sealed-off line never counts (docs/AUDIT.md §11.3): the tip
        is held to these, never to what the line says now, which any folder
        writer may change again."""
        sealed = self.store.sealed_off()
        held = {i: leaf for i, leaf in self.store.tip_leaves().items() if i in sealed}
        return {**self._sealed_now()[0], **held}

    def _keep_tip_leaves(self, tip: TrustedTip, anew: bool,
                         told: dict[int, bytes] | None) -> None:
        """Keep the leaves ``tip``'s tree holds at the sealed-off lines below
        it (inside the catch-up's transaction): ``told`` by the replay's held
        pass (:meth:`_replay_held`), which read every line below the tip and
        was held to its root -- never read again after the replay: a folder
        writer may rewrite a sealed-off line at any moment, and a leaf taken
        from a later reading is no leaf of this tree. Without such a pass,
        the tip extends the one stored before (its leaves stand), or it was
        made from line 0 again (``anew``: what was kept was another tree's).
        A sealed-off line still without one -- a state kept before these
        were told as read -- is told from the lines as they are now, if
        they reproduce the tip's root (:meth:`_tip_tree`); if not, it is
        left untold, and the next catch-up tries again."""
        sealed = self.store.sealed_off()
        below = [i for i in sealed if i < tip.size]
        stored = self.store.tip_leaves()
        if told is not None:
            keep = {i: told[i] for i in below if i in told}
        else:
            keep = {} if anew else {i: stored[i] for i in below if i in stored}
        if any(i not in keep for i in below):
            found = self._tip_tree(tip, keep)
            if found is not None:
                keep = {i: found[i] for i in below}
        if keep != stored:
            self.store.set_tip_leaves(keep)

    def _tip_tree(self, tip: TrustedTip, known: dict[int, bytes]) -> list[bytes] | None:
        """The leaves of ``tip``'s tree, if the lines reproduce its root with
        the ``known`` leaves at their lines and, at the other sealed-off
        lines, their own leaves or else the original ones (None: neither).
        Only for a tip stored before its leaves were told as read."""
        import hmac

        from vault.audit import leaf_hash
        from vault.audit._storage import LogEnd
        from vault.audit._tree import tree_root

        with self._log._reading():
            source = self._log.storage.read(0, 0, LogEnd(tip.size, None))
            try:
                now = [leaf_hash(line) for block in source for line in block][:tip.size]
            finally:
                source.close()
        if len(now) != tip.size:
            return None
        originals = self._sealed_now()[0]
        for variant in ({}, originals):
            leaves = list(now)
            for i, leaf in {**variant, **known}.items():
                if i < tip.size:
                    leaves[i] = leaf
            if hmac.compare_digest(tree_root(leaves), tip.root):
                return leaves
        return None

    def _sealed_now(self) -> tuple[dict[int, bytes], dict[int, int]]:
        """The original leaves (those incident records carry and this
        machine's own), of sealed-off lines only, and the sealed-off lines
        (line -> incident record), as the state holds them."""
        sealed = self.store.sealed_off()
        leaves = {i: leaf for i, leaf in self.store.original_leaves().items() if i in sealed}
        return leaves, sealed

    def _replay_pass(self, tip: TrustedTip | None, through: TrustedTip | None,
                     recorded: dict[int, bytes], sealed: dict[int, int],
                     stop: int | None = None, tree: dict[int, bytes] | None = None,
                     told: dict[int, bytes] | None = None,
                     until: int | None = None) -> tuple[TrustedTip, bool]:
        """One pass of :meth:`_replay`. ``told``, given with ``through``:
        filled with the leaves ``through``'s tree holds at the ``sealed``
        lines below it, as this pass read them (its lines' own, or the
        ``tree`` leaves, whichever reproduce its root). ``until``: stop
        before the line so numbered, with the tip of the lines before it."""
        from vault.audit import verify_record

        journal = Journal(self.store, self.manifest, _parse_policy, verify_record, sealed)
        passed = through is None or through.size == 0
        keep = sealed if told is not None else ()
        with self._log.scan(tip, recorded, tree, keep) as scan:
            before, stopped = scan.tip, None
            for line in scan:
                if until is not None and line.seq >= until:
                    # What one line settles starts a new tip's lines: the tip
                    # before it ends exactly at the line before ``until``.
                    stopped = before
                    break
                journal.feed(line)
                before = scan.tip
                if through is not None and not passed and scan.tip.size >= through.size:
                    passed = _holds(scan, through)
                    if not passed:
                        break
                if stop is not None and scan.tip.size >= stop:
                    break
        if through is not None and not passed:
            raise AuditIntegrityError(
                f"the audit log no longer starts with the {through.size} lines this machine "
                "verified before", kind="modified", seq=through.size - 1,
                hint="treat this as an incident; compare with a published checkpoint")
        if told is not None and through is not None:
            own = scan.tip == through  # else the tree leaves reproduced it (_holds)
            told.update({i: pair[0] if own else pair[1] for i, pair in scan.kept.items()
                         if i < through.size})
        return stopped or scan.tip, journal.applied > 0

    def _replay_held(self, start: TrustedTip | None, reached: TrustedTip,
                     leaves: dict[int, bytes], sealed: dict[int, int]) -> dict[int, bytes]:
        """Replay the log again from its start with the original ``leaves``
        and the ``sealed`` off lines up to ``reached``, the tip the replay
        from ``start`` just made (kept), keeping the manifest's pin; the
        lines must still be those of ``reached``: by their own leaves, or by
        the leaves its tree holds at sealed-off lines -- below ``start``,
        those of ``start``'s tree (:meth:`tip_leaves`); above it, the lines'
        own, as the first pass read them. Otherwise a line below it changed
        (a line below the tip a first pass from that tip did not read, or a
        sealed-off line rewritten since the first pass read it):
        AuditIntegrityError, and the caller's transaction keeps nothing of
        this catch-up -- keeping the first pass's state, a machine would
        count what the incident's lines said for good once the line was
        restored, while every other machine does not. The leaves
        ``reached``'s tree holds at the sealed-off lines below it, as this
        pass read them (no later reading tells them: a line may be rewritten
        in between)."""
        pins = self.store.metas("manifest", "vault", "rules", "tip", "state")
        size = start.size if start is not None else 0
        held = {**leaves, **self.store.tip_leaves()}
        tree = {i: held[i] for i in sealed if i < size and i in held}
        told: dict[int, bytes] = {}
        with self.store.savepoint():
            self.store.reset()
            for key, value in pins.items():
                self.store.set_meta(key, value)
            self._replay_pass(None, reached, leaves, sealed, stop=reached.size, tree=tree,
                              told=told)
        return told

    def _replay_again(self, old: TrustedTip) -> tuple[TrustedTip, bool]:
        """This machine replayed the log under other rules (``RULES``): replay
        it from its start under these, keeping the manifest's pin, and still
        holding the log to the lines verified before -- a machine that
        started over as if new could no longer tell a cut or rewritten log
        (THREAT-MODEL.md §5.5). The log is held to ``old`` after the replay,
        with what the replay established: the lines the incidents seal off
        and the original leaves they carry, and those this machine confirmed
        itself (kept through the reset) -- held to it before them, a machine
        that read a line before an incident sealed it off was stopped for
        good. Inside the transaction: a failure keeps the old state. A log
        that no longer passes through ``old`` raises AuditIntegrityError,
        which ``catch_up`` handles as for any replay."""
        pins = self.store.metas("manifest", "vault")
        held = self.tip_leaves()  # of the old tip's tree: asked before the reset
        self.store.reset()
        for key, value in pins.items():
            self.store.set_meta(key, value)
        new_tip, _ = self._replay_in_place(self._replay_start, None)
        self._hold(old, held)
        return new_tip, True

    def _hold(self, old: TrustedTip, held: dict[int, bytes]) -> None:
        """Does the log still start with the lines of ``old`` -- the same
        lines, or lines differing from them only at sealed-off lines, by
        the leaves ``old``'s tree holds there (:meth:`tip_leaves`, asked
        before the replay), else the original leaves the state holds for
        them? AuditIntegrityError otherwise."""
        leaves, sealed = self._sealed_now()
        leaves.update({i: h for i, h in held.items() if i in sealed})
        passed = old.size == 0
        with self._log.scan(None, leaves) as scan:
            for _ in scan:
                if scan.tip.size >= old.size:
                    passed = _holds(scan, old)
                    break
        if not passed:
            raise AuditIntegrityError(
                f"the audit log no longer starts with the {old.size} lines this machine "
                "verified before", kind="modified", seq=old.size - 1,
                hint="treat this as an incident; compare with a published checkpoint")

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

    def requests_now(self) -> list[tuple[str, int, dict[str, Any]]]:
        """The requests for approval the log records by now: ``(digest,
        line, signed request)``."""
        self.catch_up()
        return self.store.requests()

    def warnings(self) -> list[str]:
        """What the replay kept that every command must say, read from the
        state without replaying: records out of place -- lines inserted,
        split or joined -- after which the records they moved do not count
        (docs/AUDIT.md §11.3; the office puts the lines back as written,
        DEPLOYMENT.md §14)."""
        found = self.out_of_place()
        return [] if found is None else [f"the audit log has records out of place: {found}"]

    def out_of_place(self) -> str | None:
        """The first record out of place the replay found, as the log
        stands: none at a line an incident seals off by now (such a line
        may hold anything without a newline, and moves nothing). While one
        stands, the records it moved do not count here, so nothing is
        decided (vault/_ops/discipline.py)."""
        sealed = self.store.sealed_off()
        for seq, message in self.store.findings_of("misplaced"):
            if seq not in sealed:
                return message
        return None

    def refuse_out_of_place(self) -> None:
        """Raise :class:`OutOfPlace` while the replay found records out of
        place (lines inserted, split or joined, docs/AUDIT.md §11.3): the
        records they moved -- a revocation, a rotation, a new policy -- do
        not count here, so any decision, key wrapped or state written would
        be made without them. Asked at an attempt's start and again after
        any catch-up within it: one may meet them there first."""
        found = self.out_of_place()
        if found is not None:
            raise OutOfPlace(
                f"the audit log has records out of place ({found}): nothing is decided or "
                "changed until they are", kind="inserted",
                hint="the officer puts the lines back as written (docs/DEPLOYMENT.md §14); "
                     "'vault doctor' and 'vault audit verify' name them")

    def sealed_off_held(self) -> dict[int, int]:
        """Lines sealed off by the incidents the state holds, without
        catching up (a writer under the log's lock asks)."""
        return self.store.sealed_off()

    def sealed_off_now(self) -> dict[int, int]:
        """Lines sealed off by the incidents the log declares by now
        (docs/AUDIT.md §11.3): line -> incident record."""
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
        if self._recovery is None:
            out = set(self.manifest.recovery)
            for _, sha, *_ in self.store.policies():
                out |= set(self.policy_by_hash(sha).recovery)
            self._recovery = frozenset(out)
        return set(self._recovery)

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
                    LabelClass.from_dict(loads_json(cls)), gen, recipient, creator, seq,
                    frozenset(holders.get(key_id(recipient), ()))))
            self._keys = keys
            self._by_id = {ck.key_id: ck for gens in keys.values() for ck in gens}
        return self._keys

    def classes(self) -> list[list[ClassKey]]:
        return list(self._load_keys().values())

    def generations(self, cls: LabelClass) -> list[ClassKey]:
        return list(self._load_keys().get(cls.id, []))

    def current(self, cls: LabelClass) -> ClassKey | None:
        gens = self.generations(cls)
        return gens[-1] if gens else None

    def key(self, kid: str) -> ClassKey | None:
        self._load_keys()
        return self._by_id.get(kid)

    def entry_digest(self, kid: str, owner: str) -> str | None:
        return self.store.entry(kid, owner)

    # -- documents ----------------------------------------------------------------------

    def doc(self, doc_id: str) -> DocRow | None:
        return self.store.doc(doc_id)

    def docs(self, **where: object) -> list[DocRow]:
        return self.store.docs(**where)  # type: ignore[arg-type]


class _Moved(Exception):
    """A replay found records out of place: undone (``_replay_in_place``)."""

    def __init__(self, seq: int, message: str) -> None:
        super().__init__(message)
        self.seq, self.message = seq, message


def _holds(scan: Scan, tip: TrustedTip) -> bool:
    """Has ``scan`` (at ``tip``'s size) read the lines of ``tip``: the same
    lines, or lines differing from them only at sealed-off lines, by the
    leaves their incidents carry (given to the scan)?"""
    return scan.tip == tip or (scan.tip.size == tip.size and scan.original_root == tip.root)


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
