"""Reading a log: what every :class:`~vault.audit.AuditLog` offers besides
appending (docs/AUDIT.md §7, §10, §11, §12).

Nothing here writes, except what verification and proofs may rebuild of the
derived data (docs/AUDIT.md §6) and a checkpoint :meth:`LogReading.prove`
may make.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from vault.audit._checkpoint import Checkpoint, open_checkpoint
from vault.audit._reader import KeyLookup, SignerLookup, attributed, select
from vault.audit._record import AuditRecord
from vault.audit._scan import Scan
from vault.audit._storage import LogStorage
from vault.audit._tip import EMPTY_TIP, TrustedTip
from vault.audit._writer import check_tip
from vault.audit.note import NoteSigner, NoteVerifier, parse_note
from vault.errors import AuditIntegrityError, CheckpointError, UsageError

if TYPE_CHECKING:  # pragma: no cover - verification is imported when used
    from vault.audit._chain import KeyLookup
    from vault.audit._verify import VerifyReport

__all__ = ["LogReading"]


class LogReading:
    """The reading half of :class:`~vault.audit.AuditLog`."""

    storage: LogStorage
    checkpoint_signer: NoteSigner | None
    #: the key stored checkpoints must verify with when this handle has no
    #: signer (a vault pins it: a note another key signed, or none, is
    #: ignored, §7); without either, a note is only parsed
    checkpoint_verifier: NoteVerifier | None = None
    checkpoint_every: int
    origin: str | None
    notes: list[str]
    _tip: TrustedTip | None
    #: the lines the incidents a proof is made under seal off (§10, §11.3)
    _sealed_off: frozenset[int] = frozenset()
    #: gives the lines the log's incidents seal off (a vault interprets the
    #: incident records and sets it); proofs are made under them
    sealed_off: Callable[[], Collection[int]] = staticmethod(frozenset)
    #: the original leaf hashes the incidents a proof is made under carry
    _recorded: Mapping[int, bytes] = MappingProxyType({})
    #: gives the leaf hashes incident records carry for the lines they seal
    #: off, by line (a vault sets it, beside :attr:`sealed_off`; read after
    #: it, without catching up again); appends rebuilding the derived data
    #: hold the trusted tip to them too (§6, §11.3)
    original_leaves: Callable[[], Mapping[int, bytes]] = staticmethod(dict)
    #: gives the leaves the trusted tip's tree holds at sealed-off lines
    #: below it -- the original ones, or those the tip was made with, where
    #: it read a line only after the damage (a vault sets it; None: those of
    #: :attr:`original_leaves`). Appends hold the tip to them when a
    #: sealed-off line moved or changed, and verify holds the tip to them
    #: (§11.3): a sealed-off line never counts, whatever it says now.
    held_leaves: Callable[[], Mapping[int, bytes]] | None = None
    #: gives the lines the log's incidents seal off as known now, without
    #: catching up (a vault sets it): a writer's walk for records out of
    #: place passes over them, as the replay does (§8, §11.3)
    sealed_known: Callable[[], Collection[int]] = staticmethod(frozenset)

    def checkpoint(self) -> bytes:
        raise NotImplementedError  # AuditLog signs and stores one

    def tip(self) -> TrustedTip:
        raise NotImplementedError  # AuditLog hashes the lines past its trusted tip

    # -- checkpoints (docs/AUDIT.md §7) ----------------------------------------------

    def latest_checkpoint(self) -> bytes | None:
        """The newest stored checkpoint that verifies (any that parses, for a
        handle without the key); bogus ones are skipped (§7)."""
        found = self._valid_checkpoints(newest_only=True)
        return found[-1][0] if found else None

    def _valid_checkpoints(self, *, newest_only: bool = False,
                           above: int = -1) -> list[tuple[bytes, Checkpoint]]:
        out: list[tuple[bytes, Checkpoint]] = []
        for size in reversed(self.storage.checkpoint_sizes()):
            if size <= above:
                break
            note = self.storage.read_checkpoint(size)
            cp = self._checkpoint_from(note) if note else None
            if cp is not None and cp.size == size:
                out.insert(0, (note or b"", cp))
                if newest_only:
                    break
        return out

    def _newest_counting(self, size: int, above: int) -> int:
        """The size of the newest stored checkpoint in ``(above, size]`` that
        counts (§7: one that does not verify is ignored, also in deciding
        whether one is due), else ``max(above, 0)``. Bounded: sizes at or
        below ``above`` are never read, however many were planted."""
        cp = self._newest_checkpoint(size, above)
        return cp.size if cp is not None else max(above, 0)

    def _newest_checkpoint(self, size: int, above: int) -> Checkpoint | None:
        """The newest stored checkpoint in ``(above, size]`` that counts (see
        :meth:`_newest_counting`), if any."""
        for stored in reversed(self.storage.checkpoint_sizes()):
            if stored <= above:
                break
            if stored > size:
                continue
            note = self.storage.read_checkpoint(stored)
            cp = self._checkpoint_from(note) if note else None
            if cp is not None and cp.size == stored:
                return cp
        return None

    def _checkpoint_from(self, note: bytes) -> Checkpoint | None:
        try:
            verifier = self.checkpoint_signer.verifier if self.checkpoint_signer is not None \
                else self.checkpoint_verifier
            if verifier is not None:
                return open_checkpoint(note, [verifier], origin=self.origin)
            unverified_text, _ = parse_note(note)  # a proof's reader verifies it
            return Checkpoint.from_text(unverified_text)
        except (CheckpointError, UnicodeError):
            return None

    def _require_signer(self) -> NoteSigner:
        if self.checkpoint_signer is None:
            raise UsageError(
                "this audit log has no checkpoint key",
                hint="open the log with its checkpoint signer (or its log.key file)",
            )
        return self.checkpoint_signer

    def verifier(self) -> NoteVerifier:
        return self._require_signer().verifier

    # -- reading (docs/AUDIT.md §12) -------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            with self.storage.shared():
                yield
        except FileNotFoundError:
            raise UsageError(f"no audit log in {self.storage.location}",
                             hint="check the --log directory") from None

    def scan(self, start: TrustedTip | None = None,
             recorded: Mapping[int, bytes] | None = None,
             tree: Mapping[int, bytes] | None = None,
             keep: Collection[int] = ()) -> Scan:
        """Every settled line after ``start`` (default: the beginning), with
        its leaf hash, parsed record, chain digest and damage if any; the
        scan's ``tip`` is the trusted tip after the lines it yielded.
        ``recorded``: the leaf hashes sealed-off lines had when written
        (§11.3): a signed record whose chain covers one also gets the chain
        over them (``original_chain``). ``tree``: the leaves the scan's
        ``original_root`` holds at their lines instead (default: ``recorded``).
        ``keep``: lines whose leaves the scan keeps as it reads them
        (``Scan.kept``)."""
        start = start or EMPTY_TIP
        with self._reading():
            end = self.storage.end()
            check_tip(self.storage, start, end)
            source = self.storage.read(start.size, start.end_offset, end)
        return Scan(source, start, recorded, tree, keep)

    def records(
        self,
        *,
        actor: str | None = None,
        doc: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Iterator[AuditRecord]:
        """The records in order, filtered; fragments and unsigned records not
        yet covered are skipped. ``since`` is inclusive, ``until`` exclusive.
        Signatures are not checked here (see :meth:`verify`)."""
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (for example tzinfo=UTC)")
        return select(self._records(self.scan()), actor=actor, doc=doc, action=action,
                      outcome=outcome, since=since, until=until)

    def attributed_records(self, key_lookup: KeyLookup, signer_lookup: SignerLookup,
                           actor_keys: Collection[str] = (),
                           sealed_off: Collection[int] = frozenset(), **filters: object
                           ) -> Iterator[tuple[AuditRecord, bool, str | None]]:
        """:meth:`records`, each with whether it is its actor's: signed (with
        its run) by the key ``key_lookup(name, fingerprint, seq)`` gives its
        name before the run's first line -- and who signed it, if known
        (:func:`vault.audit._reader.attributed`; docs/AUDIT.md §14). An
        ``actor`` filter picks records carrying that name and those its
        user signed under another name (their key fingerprints are
        ``actor_keys``): who acted is who signed, not the name written."""
        actor = filters.pop("actor", None)

        def shown(r: AuditRecord) -> bool:
            return (actor is None or r.actor == actor or r.actor_key in actor_keys) and \
                next(select((r,), **filters), None) is not None  # type: ignore[arg-type]

        for r, own, signer in attributed(self.scan(), key_lookup, shown, signer_lookup,
                                         sealed_off):
            if actor is None or r.actor == actor or signer == actor:
                yield r, own, signer

    @staticmethod
    def _records(scan: Scan) -> Iterator[AuditRecord]:
        with scan:
            for item in scan:
                if item.problem is not None:
                    raise item.problem
                if item.record is not None:
                    yield item.record

    def lines(self) -> Iterator[bytes]:
        """Every complete line of the log, in order (a move copies these)."""
        with self._reading():
            end = self.storage.end()
            source = self.storage.read(0, 0, end)
        try:
            for block in source:
                yield from block
        finally:
            source.close()

    def stored_checkpoints(self) -> dict[int, bytes]:
        """The stored checkpoint notes that count (§7), by size, as stored
        (to move a log): a bogus one is a finding here, and whoever can
        store notes can store one at every size."""
        return {cp.size: note for note, cp in self._valid_checkpoints()}

    # -- verification and proofs (docs/AUDIT.md §10, §11) ------------------------------

    def verify(
        self,
        *,
        trusted_checkpoint: bytes | None = None,
        key_lookup: KeyLookup | None = None,
        verifier: NoteVerifier | None = None,
        sealed_off: Collection[int] = (),
        expect_signer: bool = False,
        known: TrustedTip | None = None,
        recorded: Mapping[int, bytes] | None = None,
        stored: bool = True,
        known_leaves: Mapping[int, bytes] | None = None,
        damage: list[range] | None = None,
    ) -> VerifyReport:
        """Recompute the tree from the log and check it (docs/AUDIT.md §11).

        Checkpoints are checked with ``verifier`` (default: this log's own
        key -- an auditor should pass the key they trust); with
        ``key_lookup`` every record's signature is checked over its chain.
        Raises :class:`AuditIntegrityError` naming the damage, except for
        damage confined to the ``sealed_off`` lines (an officer's incident),
        reported in ``report.incidents``. ``known``: a tip the caller verified
        before (a machine's trusted state), held to as a checkpoint is.
        ``recorded``: the leaf hashes the incidents carry for sealed-off
        lines (the lines' leaves when written, §11.3). ``stored``: False
        leaves the stored checkpoints out (a declaration is held to the
        caller's own tip and a checkpoint it gives, never to notes any
        holder of the log key can store). ``known_leaves``: the leaves
        ``known``'s tree holds at sealed-off lines (that machine's own,
        §11.3), which it is also held to. ``damage``: filled, even when
        this raises, with the lines found damaged (excused or not: the
        stretches the reading rules break on, the runs of signatures that
        do not verify as the lines stand, sealed-off lines differing from a
        root held to) -- what an incident may seal off.
        """
        from vault.audit._verify import verify_log

        verifier = verifier or self.verifier()
        return verify_log(self, verifier=verifier, origin=self.origin or verifier.name,
                          trusted_checkpoint=trusted_checkpoint, key_lookup=key_lookup,
                          sealed_off=frozenset(sealed_off), expect_signer=expect_signer,
                          known=known, recorded=recorded or {}, stored=stored,
                          known_leaves=known_leaves, damage=damage)

    def prove(self, seq: int, *, sealed_off: Collection[int] | None = None,
              recorded: Mapping[int, bytes] | None = None) -> str:
        """A c2sp.org/tlog-proof@v1 that record ``seq`` is in the log, against
        the newest valid checkpoint (a new one is made if none covers it).
        ``sealed_off``: the lines an officer's incidents declared damaged
        (§11.3; default: what the :attr:`sealed_off` hook gives); a root
        differing from the lines' own only there, by the leaves they had
        when written, is still theirs, and such a line itself proves
        nothing. ``recorded``: the leaf hashes those lines had, as their
        incident records carry them (default: the :attr:`original_leaves`
        hook's, with the default ``sealed_off``)."""
        from vault.audit._prover import prove

        if not isinstance(seq, int) or seq < 0:
            raise ValueError("seq must be a non-negative integer")
        self._sealed_off = frozenset(self.sealed_off() if sealed_off is None else sealed_off)
        self._recorded = dict(recorded if recorded is not None else
                              self.original_leaves() if sealed_off is None else {})
        if seq in self._sealed_off:
            raise UsageError(f"line {seq} was sealed off by an incident: no proof is made of it",
                             hint="see 'vault audit verify'; the line stays as evidence only")
        with self._reading():
            found = self._valid_checkpoints(newest_only=True)
        if found and found[-1][1].size > seq:
            try:
                self._check_root(found[-1][1])
            except AuditIntegrityError as e:
                # Signed by whoever holds the key (every folder writer): one
                # stored for another history must not stop every proof. The
                # newest that is the lines' own and covers seq serves; the
                # others are named (a note), as 'verify' names them. A log
                # cut below a checkpoint is no such case: it stays an alarm,
                # and nothing is signed over what was passed over.
                if e.kind != "modified":
                    raise
                found = self._matching(seq)
                if not found:
                    raise
        if not found or found[-1][1].size <= seq:
            if self.checkpoint_signer is None:
                raise UsageError(f"no checkpoint covers record {seq} yet",
                                 hint="create one with 'vault audit checkpoint'")
            note = self.checkpoint()
            cp = self._checkpoint_from(note)
            assert cp is not None
            found = [(note, cp)]
        note, cp = found[-1]
        return prove(self, seq, note, cp)

    def _matching(self, seq: int) -> list[tuple[bytes, Checkpoint]]:
        """The newest stored checkpoint above ``seq`` whose root is the
        lines' own (or none), noting those passed over; every root hashed
        from the lines in one pass. A checkpoint larger than the log is
        the log cut below it (``truncated``), raised."""
        from vault.audit._storage import LogEnd
        from vault.audit._treepass import hash_tree

        tip = self.tip()
        # Passing over is for checkpoints of another history, never for
        # lines of another history: the lines this machine read before (its
        # trusted tip) are hashed in the same pass and must be those it saw.
        trusted = self._tip if self._tip is not None and self._tip.size else None
        with self._reading():
            stored = self._valid_checkpoints(above=seq)
            if stored and stored[-1][1].size > tip.size:
                # the proof module is loaded for a mismatch only, not by every append
                from vault.audit._prover import short_of_checkpoint

                raise short_of_checkpoint(stored[-1][1].size, tip.size)
            wanted = [cp.size for _, cp in stored] + ([trusted.size] if trusted else [])
            roots = hash_tree(self.storage, LogEnd(max(wanted), None), wanted).roots \
                if wanted else {}
        if trusted is not None and roots.get(trusted.size) != trusted.root \
                and not self._original_root(trusted.size, trusted.root):
            raise AuditIntegrityError(
                f"the audit log's first {trusted.size} lines are not those this machine read",
                kind="modified", hint="run 'vault audit verify'")
        chosen: list[tuple[bytes, Checkpoint]] = []
        passed: list[int] = []
        for entry in reversed(stored):
            if roots.get(entry[1].size) == entry[1].root or \
                    self._original_root(entry[1].size, entry[1].root):
                chosen = [entry]
                break
            passed.append(entry[1].size)
        if passed:
            sizes = ", ".join(map(str, sorted(passed)))
            self.notes.append(
                f"stored checkpoint {sizes} does not match the log's lines and was passed over"
                if len(passed) == 1 else f"stored checkpoints {sizes} do not match the log's "
                "lines and were passed over")
        return chosen

    def _check_root(self, cp: Checkpoint) -> None:
        """A proof is handed out only against a checkpoint whose root is the
        lines' own (§10): a stored one is signed by whoever holds the key,
        and the derived hashes it would be checked with are anyone's to
        write -- together they vouched for a history no machine saw. Checked
        against the trusted tip (the lines hashed past it first): equal, or
        a prefix of it by a consistency proof; else from the lines alone."""
        from vault.audit._proof import verify_consistency
        from vault.audit._storage import LogEnd
        from vault.audit._treepass import hash_tree
        from vault.errors import MerkleError

        tip = self._tip
        if tip is None or tip.size < cp.size:
            tip = self.tip()
        if tip.size == cp.size and tip.root == cp.root:
            return
        if tip.size > cp.size:
            with contextlib.suppress(MerkleError, EOFError, OSError, ValueError):
                verify_consistency(cp.size, tip.size, self.consistency_proof(cp.size, tip.size),
                                   cp.root, tip.root)
                return
            with self._reading():  # the derived hashes may be what is wrong
                result = hash_tree(self.storage, LogEnd(cp.size, None), [cp.size])
            if result.roots.get(cp.size) == cp.root:
                return
        if tip.size >= cp.size and self._original_root(cp.size, cp.root):
            return
        from vault.audit._prover import not_its_checkpoint, short_of_checkpoint

        raise short_of_checkpoint(cp.size, tip.size) if tip.size < cp.size \
            else not_its_checkpoint(cp.size)

    def _original_root(self, size: int, root: bytes) -> bool:
        """Does ``root`` differ from the root of the first ``size`` lines only
        at lines an incident sealed off, by the leaves they had when
        written -- the rule 'verify' holds a checkpoint to (§11.3)? The
        leaves come from the incident records, else the derived data; none
        need be trusted: a leaf that is not the one written cannot
        reproduce a signed root."""
        from vault.audit._damage import Target
        from vault.audit._incidents import Incidents
        from vault.audit._verify_end import _originals_confirm

        if not self._sealed_off:
            return False
        with self._reading():
            return _originals_confirm(self, Target(size, root),
                                      Incidents(self._sealed_off, self._recorded))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between two sizes of this log."""
        from vault.audit._prover import consistency

        return consistency(self, old_size, new_size)
