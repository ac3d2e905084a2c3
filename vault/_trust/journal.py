"""Replaying the audit log into the vault's trusted state (docs/DESIGN.md §8,
docs/FORMAT.md §14).

Every change of the vault's state is a record in the audit log, signed by
the person who made it, whose ``state`` member says what changed: a policy
version installed, a class key generation created, keyring entries granted
or retired, a document's new version, a shred, an incident. Replaying the
log in order rebuilds the state; each state record counts only if

* its signature verifies with the key the policy *in force at that point of
  the log* gives the name it claims (a key the policy does not know never
  changes anything), and
* its signer was entitled to make it, decided again under that policy
  version: an administrator installs policies; only someone cleared for a
  class creates its keys; whoever grants a key must hold it and may grant
  it only to cleared users; a label counts only if its signer could seal at
  it, or change the previous label into it, with the inputs recorded.

A record that fails is **ignored** for every decision and kept as a
*finding* for ``doctor`` and ``audit verify``: an insider's bad record never
takes the vault down for everyone else. A grant to someone not cleared
still counts as a *holder* of the key (they could know it), which makes the
key unclean, so nothing is encrypted to it again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from vault._primitives import canonical_json, loads_json, parse_signing_key
from vault._trust._statement import MAX_INCIDENT, MAX_INCIDENT_LEAVES
from vault._trust.classes import (
    Holder,
    LabelClass,
    cleared_users,
    key_id,
    may_withdraw,
    unclean,
    user_by_recipient,
    withdrawable,
)
from vault._trust.journal_approvals import ApprovalReplay, Invalid
from vault._trust.state import DocRow, StateStore, due_text

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from vault._trust.manifest import Manifest
    from vault.audit import AuditRecord, ScannedLine
    from vault.policy import Decision, Label, Policy

__all__ = ["RULES", "Journal", "inert"]

# The version of the rules below. A machine whose trusted state was replayed
# under other rules replays the log again from its start (keeping what it
# pinned, docs/DESIGN.md §8.3): bump it with every change that could count a
# record differently, or two machines would disagree about the same log.
RULES = "16"

_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
# How far from its record's time a new label's 'created' may be: a batch
# seals for as long as it takes, under the label made at its start, and a
# clock stepped back mid-operation must not make an honest change count for
# nothing. A completion is held to its decision by as much. What a modified
# client gains by it: a due date two days early.
_LABEL_AGE = timedelta(days=1)
_HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")
_VERSION = re.compile(r"\A[0-9a-f]{8}\Z")
_DOC_ID = re.compile(r"\A[a-z2-7]{16}\Z")
_CHANGES = ("seal", "reclassify", "declassify")
_PENDING = frozenset(("seal", "reclassify", "declassify", "shred"))
STATE_KINDS = ("policy", "class_key", "grants", "retire", "document", "shred", "incident",
               "request", "approval", "use")
_Invalid = Invalid  # a state record that must not count (the message says why)


class _SealedOff(Invalid):
    """A completion that does not count because an incident sealed off its
    decision: evidence of an honest change the damage took, a note."""


def inert(rec: AuditRecord) -> bool:
    """Does feeding this (well-formed, signed or covered) record change
    nothing but the tip? No state, nothing pending begun or ended -- what a
    decision to open, export, list or deny writes."""
    return rec.state is None and rec.outcome not in ("done", "failed") and not (
        rec.outcome == "allowed" and rec.action in _PENDING)


def _need(ok: bool, why: str) -> None:
    if not ok:
        raise _Invalid(why)


class Journal(ApprovalReplay):
    """Feeds lines, in log order, into a :class:`StateStore` (inside one of
    its transactions). ``policy_of`` parses a policy text once."""

    def __init__(self, store: StateStore, manifest: Manifest,
                 policy_of: Callable[[str, str], Policy],
                 verify: Callable[[AuditRecord, bytes, Ed25519PublicKey], bool],
                 sealed: Mapping[int, int] | None = None) -> None:
        self.store = store
        # Line -> the incident record sealing it off, as a replay before this
        # one found them (docs/AUDIT.md §11.3): what such a line says never
        # counts, whatever signature covers it.
        self._sealed: Mapping[int, int] = dict(sealed or {})
        # Allowed decisions at sealed-off lines, request id -> (line, action,
        # doc, actor): a completion naming one is refused as evidence (a note).
        self._sealed_decisions: dict[str, tuple[int, str, str | None, str | None]] = {}
        self.manifest = manifest
        self._policy_of = policy_of
        self._verify = verify
        self._pending: list[AuditRecord] = []  # unsigned records awaiting their batch's end
        self._classes: dict[str, LabelClass] = {}  # key id -> class (see _key_class)
        # Key id -> is it clean under the policy in force (see _key_clean); a
        # policy version or a new holder changes the answer.
        self._clean: dict[str, bool] = {}
        self.applied = 0  # state records applied (counted or not): the state may differ
        # Entitlement decisions of this replay: a batch's records repeat one
        # actor, action, label, moment and inputs (sealing many files).
        self._decided: dict[tuple[Any, ...], Decision] = {}
        # Allowed decisions awaiting their completion, request id -> (action,
        # doc, actor): the store's ``pending`` table, read once per replay.
        self._open: dict[str, tuple[str, str | None, str | None]] | None = None
        self._completes: set[int] = set()  # this run's completions of such a decision
        self._signed: bool | None = None  # does this run's signature verify (if asked)
        self._recovery: tuple[str, str] | None = None  # policy hash -> its recovery set
        versions = store.policies()
        self.version = versions[-1][0] if versions else 0
        self.policy: Policy | None = None
        if versions:
            sha = versions[-1][1]
            text = store.policy_text(sha)
            assert text is not None
            self.policy = policy_of(text, sha)

    # -- feeding -------------------------------------------------------------------

    def feed(self, line: ScannedLine) -> None:
        rec = line.record
        if rec is None:
            if line.problem is not None:
                # Records out of place (lines inserted, split or joined) are
                # said on every command (Vault.warnings), which refuse to decide
                # meanwhile: every record they moved stops counting. A line an
                # incident sealed off may hold anything without a newline: what
                # it holds moves nothing (AUDIT.md §11.3).
                moved = line.problem.kind in ("inserted", "deleted") and not all(
                    i in self._sealed for i in range(line.seq, line.seq + line.count))
                kind = "misplaced" if moved else "damage"
                self._finding(line.seq, kind, line.problem.message)
            return
        if rec.signature is None:  # covered by a later record of the same run
            self._pending.append(rec)
            return
        run, self._pending = [*self._pending, rec], []
        self._signed = None
        run = self._sealed_part(rec, run)
        if not run:
            return
        if line.finding is not None:
            # A torn record naming lines none pending (AUDIT.md §8): it sets
            # nothing aside, and is its signer's to answer for -- named only
            # when the policy's key for the name it carries signed it.
            own = self._run_signed(rec, line)
            self._finding(rec.seq, "torn", line.finding if own else
                          f"{line.finding}; its signature is not the key the policy gives "
                          "that name")
        try:
            self._feed_run(rec, line, run)
        finally:
            # A decision's approvals count for one completion at most: its
            # maker's own, signed (anyone else's record naming the request
            # id would otherwise spend them).
            for r in run:
                if r.outcome in ("done", "failed"):
                    row = self.store.approved(r.request)
                    if row is not None and self._by_maker(r, row[0], rec, line):
                        self.store.end_approved(r.request)

    def _by_maker(self, r: AuditRecord, maker: str | None, rec: AuditRecord,
                  line: ScannedLine) -> bool:
        """Is ``r`` (of the run ``rec`` signs) the record of ``maker``, under
        a signature that verifies with their policy key? Checked only for
        a completion that would end a decision: most runs end none."""
        if r.actor != maker or r.actor_key != rec.actor_key or rec.actor != maker:
            return False
        return self._run_signed(rec, line)

    def _run_signed(self, rec: AuditRecord, line: ScannedLine) -> bool:
        """Does the run's signature (on ``rec``, its last record) verify with
        its actor's policy key? Verified once per run: over the lines as they
        are, or -- where the run's chain covers a line an incident sealed
        off -- over the leaves those lines had when written (the record
        after a damaged line was signed over it as written, AUDIT.md §11.3)."""
        if self._signed is None:
            key = self._key(rec)
            # The original chain only where the run's chain holds a sealed-off
            # line: leaves anywhere else stand for nothing.
            covers = range(line.covers.start - 1, line.seq)
            original = line.original_chain if any(i in self._sealed for i in covers) else None
            self._signed = key is not None and any(
                chain is not None and self._verify(rec, chain, key)
                for chain in (line.chain, original))
        return self._signed

    def _sealed_part(self, rec: AuditRecord, run: list[AuditRecord]) -> list[AuditRecord]:
        """The records of ``run`` (signed by ``rec``) that may count: none at
        a sealed-off line -- what a line an incident sealed off says is
        ignored, whatever signature covers it (a folder writer may have
        rewritten it since, and a run's signature verifying over the leaves
        the lines had when written vouches only for the lines still holding
        them) -- and none at all when the signature itself is on one. The
        others are reported (kind "sealed off": notes) and their allowed
        decisions remembered (see :meth:`_completion`)."""
        sealed = self._sealed
        cut = [r for r in run if r.seq in sealed]
        if not cut and rec.seq not in sealed:
            return run
        for r in cut:
            if r.outcome == "allowed" and r.action in _PENDING \
                    and r.request not in self._sealed_decisions:
                self._sealed_decisions[r.request] = (r.seq, r.action, r.doc, r.actor)
            if r.state:
                self._finding(r.seq, "sealed off", f"a {r.action} record on a line incident "
                              f"record {sealed[r.seq]} sealed off; what it says does not count")
        if rec.seq in sealed:
            for r in run:
                if r.state and r.seq not in sealed:
                    self._finding(r.seq, "signature", f"a {r.action} record whose run's "
                                  f"signature is on line {rec.seq}, which incident record "
                                  f"{sealed[rec.seq]} sealed off, changed nothing")
            return []
        return [r for r in run if r.seq not in sealed]

    def _feed_run(self, rec: AuditRecord, line: ScannedLine, run: list[AuditRecord]) -> None:
        if any(r.actor_key != rec.actor_key or r.actor != rec.actor for r in run):
            # A run is one signer's: an unsigned record under another name,
            # whatever key it carries, is not theirs to sign for.
            self._finding(rec.seq, "signature", "unsigned records are not covered by the "
                          "signature that follows them (another key, or another name); "
                          "ignored")
            run = [rec]
        self._completes = {r.seq for r in run if self._track(r, rec, line)}
        if not any(r.state for r in run):
            return
        if not self._run_signed(rec, line):
            for r in run:
                if r.state:
                    self._finding(r.seq, "signature", f"a {r.action} record whose signer the "
                                  "policy does not know (or a bad signature) changed nothing")
            return
        counted = False
        for r in run:
            if r.state:
                counted = self._apply(r) or counted
        if counted:
            self.seen(rec.actor or "", max(r.time for r in run))

    def _key(self, rec: AuditRecord) -> Ed25519PublicKey | None:
        """The key that must have signed a state record: the policy user's
        (or, before the first policy, the officer's pinned in vault.json)."""
        from vault.audit import fingerprint

        name = rec.actor
        if name is None:
            return None
        if self.policy is None:
            officer = self.manifest.officer
            text = officer["signing_key"] if name == officer["name"] else None
        else:
            user = self.policy.users.get(name)
            text = user.signing_key if user is not None else None
        if text is None:
            return None
        key = parse_signing_key(text)
        return key if fingerprint(key) == rec.actor_key else None

    def _track(self, rec: AuditRecord, signer: AuditRecord, line: ScannedLine) -> bool:
        """Remember allowed changes until their completion (``doctor`` tells
        an interrupted write from a planted file with it). True for the
        completion (``done``) of an allowed decision of the same request id,
        action, document and actor: the only record whose document state
        counts (docs/DESIGN.md §6, no completion without its decision).
        Only the decision's maker, signing, ends it: another's record naming
        its request id leaves it open (``signer``, ``line``: the run's last
        record and its line)."""
        if self._open is None:
            self._open = {r: (a, d, who) for r, _, a, d, who, _, _ in self.store.pending()}
        if rec.outcome == "allowed" and rec.action in _PENDING:
            if rec.request in self._open:
                # The first decision under an id is the one. Ids are drawn at
                # random when the decision is recorded, so only a later record
                # repeats one: anyone's, made to take the maker's place.
                return False
            if not self._run_signed(signer, line):
                # Nobody's: a name without its owner's signature never makes
                # a decision doctor would blame on them, nor lends a planted
                # file the look of an interrupted write.
                return False
            self.store.add_pending(rec.request, rec.seq, rec.action, rec.doc, rec.actor,
                                   rec.host, rec.pid, rec.time)
            self._open[rec.request] = (rec.action, rec.doc, rec.actor)
        elif rec.outcome in ("done", "failed"):
            decided = self._open.get(rec.request)
            if decided is None or not self._by_maker(rec, decided[2], signer, line):
                return False
            if rec.outcome == "done" and not self._after_decision(rec):
                return False  # counts for nothing, and the decision stays open
            self.store.end_pending(rec.request)
            del self._open[rec.request]
            return rec.outcome == "done" and decided == (rec.action, rec.doc, rec.actor)
        return False

    def _after_decision(self, rec: AuditRecord) -> bool:
        """A completion dated more than a day before its own decision does
        not count: its state is judged at its own time, and a new
        label's 'created' is held to that time -- dated back with it, a
        declassify-on duration would be due early (FORMAT.md §14.6)."""
        from datetime import UTC, datetime

        decided = self.store.decided_at(rec.request)
        if decided is None:  # decided before its time was kept: replayed again anyway
            return True
        # A difference, never a sum: a decision dated in year 1 must not
        # overflow. Record times match their pattern (AUDIT.md §3) but may be
        # no date at all (month 13): such a decision is nobody's to complete.
        try:
            return datetime.fromisoformat(decided[:-1]).replace(tzinfo=UTC) - rec.datetime \
                <= _LABEL_AGE
        except (ValueError, OverflowError):
            return False

    def _completion(self, rec: AuditRecord, action: Any, doc_id: str) -> None:
        sealed = self._sealed_decisions.get(rec.request)
        if rec.seq not in self._completes and sealed is not None \
                and sealed[1:] == (action, doc_id, rec.actor):
            raise _SealedOff(
                f"the allowed {action} decision of document {doc_id} this record completes "
                f"(record {sealed[0]}) is on a line incident record {self._sealed[sealed[0]]} "
                "sealed off: the change does not count; its stored file is kept as evidence -- "
                "to record it again, open it with the recovery identity ('vault age decrypt "
                "-i') and seal it again")
        _need(rec.seq in self._completes and rec.action == action and rec.doc == doc_id,
              f"no allowed {action} decision of document {doc_id} under request id "
              f"{rec.request} precedes this record (a completion follows its own decision)")

    def _finding(self, seq: int, kind: str, message: str) -> None:
        self.store.add_finding(seq, kind, message)

    # -- applying one state record -------------------------------------------------

    def _apply(self, rec: AuditRecord) -> bool:
        """Apply one record's state members; True if any of them counted."""
        state = rec.state
        assert state is not None
        self.applied += 1
        unknown = sorted(set(state) - set(STATE_KINDS))
        if unknown:
            self._finding(rec.seq, "state", f"unknown state change {unknown[0]!r}; ignored")
            return False
        counted = False
        for kind in STATE_KINDS:
            if kind not in state:
                continue
            try:
                if self.policy is None and kind != "policy":
                    raise _Invalid("no policy is in force yet")
                getattr(self, f"_{kind}")(rec, state[kind])
                counted = True
            except _SealedOff as e:
                self._finding(rec.seq, "sealed off", f"{kind.replace('_', ' ')}: {e}")
            except _Invalid as e:
                self._finding(rec.seq, kind.replace("_", " "), f"{e}; ignored")
            except (KeyError, TypeError, ValueError, OverflowError):
                self._finding(rec.seq, kind.replace("_", " "), "malformed; ignored")
        return counted

    def _allowed(self, rec: AuditRecord, action: str, label: Label | None,
                 inputs: Mapping[str, Any] | None = None,
                 made: Mapping[str, Any] | None = None) -> None:
        """Decide again under the policy in force at ``rec``, with the
        approvers this state's decision verified (never the record's own
        claim); ``made`` is what it produced, compared with what was
        approved (docs/AUDIT.md §17)."""
        from vault.policy import Label

        assert self.policy is not None and rec.actor is not None
        given = dict(inputs or {})
        given["approvers"] = self.approvers_for(rec, made or {})
        if given.get("floor") is not None and not isinstance(given["floor"], Label):
            given["floor"] = Label.from_dict(given["floor"])
        # At the record's time, or, dated back, no earlier than the clock
        # skew before the time two people have written since (§17): a
        # writer choosing its record's time must not reopen a rule's window
        # that closed (``until``) before others' records.
        at = self._clock(rec)
        try:
            key: tuple[Any, ...] | None = (rec.actor, action, label, at,
                                           tuple(sorted(given.items())))
            hash(key)
        except TypeError:  # an input that cannot be a key: decided on its own
            key = None
        decision = self._decided.get(key) if key is not None else None
        if decision is None:
            decision = self.policy.decide(rec.actor, action, label, at=at, inputs=given)
            if key is not None:
                self._decided[key] = decision
        _need(decision.allowed, f"{rec.actor} was not entitled to {action} this "
              f"({'; '.join(decision.reasons)})")

    def _below(self, label: Label, inputs: Mapping[str, Any]) -> dict[str, Any] | None:
        """The floor a seal's label is below (its approvals must be for
        sealing below it, FORMAT.md §16.2), or None."""
        from vault._trust.approvals import floor_terms
        from vault.policy import Label

        floor = inputs.get("floor")
        if floor is None:
            return None
        try:
            floor = floor if isinstance(floor, Label) else Label.from_dict(floor)
            below = self.policy is not None and self.policy.below_floor(label, floor)
        except (KeyError, TypeError, ValueError):
            raise _Invalid("the seal's floor is no label of the policy") from None
        return floor_terms(floor) if below else None

    def _policy(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        version, sha, text = st["version"], st["sha256"], st["text"]
        _need(isinstance(version, int) and isinstance(text, str) and isinstance(sha, str),
              "malformed policy version")
        _need(version == self.version + 1, f"policy version {version} does not follow "
              f"version {self.version}")
        _need(hashlib.sha256(text.encode("utf-8")).hexdigest() == sha,
              "the policy text does not have the recorded SHA-256")
        if version == 1:
            officer = self.manifest.officer
            # Only the log's first line: were it refused (a manifest that is
            # not the one it names), a later "version 1" naming another
            # manifest must not take its place.
            _need(rec.seq == 0, "policy version 1 is recorded by the log's first line only")
            _need(sha == self.manifest.genesis, "the first policy is not the one vault.json pins")
            # Vaults made before the first record named the manifest have
            # no such member: theirs is held to genesis alone (FORMAT.md §14.2).
            _need(st.get("manifest", self.manifest.digest()) == self.manifest.digest(),
                  "vault.json is not the manifest the vault's first record names")
            _need(rec.actor == officer["name"], "the first policy is not the officer's")
        else:
            self._allowed(rec, "administer", None, made={"details": {"policy": sha}})
        try:
            policy = self._policy_of(text, sha)
        except Exception as e:  # a policy the parser refuses never comes into force
            raise _Invalid(f"policy version {version} does not load") from e
        if version == 1:
            user = policy.users.get(rec.actor or "")
            # The first policy is the officer's alone (vault.json pins it):
            # a two-person rule on administer applies from the next one.
            _need(user is not None and user.signing_key == self.manifest.officer["signing_key"]
                  and policy.may_administer(user.name, at=rec.datetime),
                  "the officer is not an administrator of the first policy")
        self.store.add_policy(version, sha, text, rec.seq, rec.actor or "", rec.time)
        self.version, self.policy = version, policy
        self._decided.clear()
        self._clean.clear()

    def _class_key(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        assert self.policy is not None and rec.actor is not None
        cls = LabelClass.from_dict(st["class"])
        generation, recipient = st["generation"], st["recipient"]
        _need(st["class_id"] == cls.id, "the class id does not match the class")
        _need(isinstance(recipient, str) and isinstance(generation, int), "malformed")
        have = [g for c, g, *_ in self.store.class_keys() if c == cls.id]
        _need(generation == len(have) + 1, f"generation {generation} of {cls} does not follow "
              f"generation {len(have)}")
        from vault.age import parse_recipient

        parse_recipient(recipient)  # ValueError/IdentityFileError: malformed
        user = self.policy.users[rec.actor]
        _need(self.policy.dominates(user.clearance, cls.label()),
              f"{rec.actor} is not cleared for {cls} and may not create its key")
        kid = key_id(recipient)
        _need(all(k != kid for k, *_ in self.store.holders()), "a reused class key")
        # Its first grants, in the same record, reach everyone cleared for the
        # class: a generation its maker kept to themselves (or to a few) would
        # become the one everyone else seals to and cannot open.
        grants = (rec.state or {}).get("grants")
        given = set()
        if isinstance(grants, dict) and grants.get("key_id") == kid:
            given = {e.get("owner") for e in grants.get("entries") or () if isinstance(e, dict)}
        left_out = [u.name for u in cleared_users(self.policy, cls) if u.recipient not in given]
        _need(not left_out, f"the new key of {cls} is not given to {', '.join(left_out)}, "
              "cleared for it")
        self.store.add_class_key(cls.id, generation, cls.to_dict(), recipient, kid, rec.actor,
                                 rec.seq)
        self.store.add_holder(kid, rec.actor, user.recipient, rec.seq)
        self._clean.pop(kid, None)

    def _key_class(self, kid: str) -> LabelClass:
        # Class keys are only ever added, and a key id names one of them
        # (a reused one is refused): what was found once stays true.
        if not isinstance(kid, str):  # a malformed record's
            raise _Invalid(f"no class key {kid}")
        hit = self._classes.get(kid)
        if hit is None:
            found = self.store.class_of_key(kid)
            if found is None:
                raise _Invalid(f"no class key {kid}")
            hit = self._classes[kid] = LabelClass.from_dict(loads_json(found))
        return hit

    def _key_clean(self, kid: str, cls: LabelClass) -> bool:
        """Is every holder of ``kid``, with the same recipient, a user cleared
        for ``cls`` under the policy in force (ClassKey.clean, from the
        replayed holders)?"""
        hit = self._clean.get(kid)
        if hit is None:
            assert self.policy is not None
            holders = [Holder(name, recipient) for name, recipient in self.store.holders_of(kid)]
            hit = self._clean[kid] = not unclean(self.policy, cls, holders)
        return hit

    def _grants(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        assert self.policy is not None
        kid, entries = st["key_id"], st["entries"]
        _need(isinstance(kid, str) and bool(_HEX32.match(kid)) and isinstance(entries, list)
              and bool(entries), "malformed grant")
        cls = self._key_class(kid)
        _need(any(k == kid and n == rec.actor for k, n, _ in self.store.holders()),
              f"{rec.actor} does not hold the key of {cls} and cannot grant it")
        granter = self.policy.users.get(rec.actor or "")
        # A holder no longer cleared (a revoked user keeps the key) grants
        # nothing: an entry of theirs could be junk that locks out someone
        # still cleared (FORMAT.md §14.4).
        _need(granter is not None and self.policy.dominates(granter.clearance, cls.label()),
              f"{rec.actor} is no longer cleared for {cls} and may not grant its key")
        problems, replaced = [], []
        for e in entries:
            owner, digest = e["owner"], e["sha256"]
            _need(isinstance(owner, str) and isinstance(digest, str)
                  and bool(_HEX64.match(digest)), "malformed grant entry")
            user = user_by_recipient(self.policy, owner)
            # Whoever received an entry could know the key: a holder either way.
            self.store.add_holder(kid, user.name if user else None, owner, rec.seq)
            self._clean.pop(kid, None)
            if user is None or not self.policy.dominates(user.clearance, cls.label()):
                problems.append(user.name if user else "a recipient the policy does not know")
                continue
            if self.store.entry(kid, owner) is not None:
                # A grant only gives an entry to someone who has none: one
                # replacing a recorded entry would take a colleague's key
                # away from every document of the generation, and nobody
                # could tell the new entry from junk but its owner.
                replaced.append(user.name)
                continue
            self.store.set_entry(kid, owner, digest, rec.seq)
        _need(not problems, f"{cls} was granted to {', '.join(problems)}, not cleared for it "
              "(the key must be rotated)")
        _need(not replaced, f"{cls} was granted again to {', '.join(replaced)}, who already "
              "had an entry for it: a grant never replaces one")

    def _retire(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        """Entries are withdrawn by an administrator or by a cleared holder
        of the key, and only entries nobody needs: of people not (or no
        longer) cleared for the class, or of an old generation no document
        is wrapped to. Anything else would lock cleared people out."""
        assert self.policy is not None and rec.actor is not None
        kid, owners = st["key_id"], st["owners"]
        _need(isinstance(kid, str) and isinstance(owners, list)
              and all(isinstance(o, str) for o in owners), "malformed")
        cls = self._key_class(kid)
        holder = any(k == kid and n == rec.actor for k, n, _ in self.store.holders())
        # The rule the client writes by too (classes.may_withdraw).
        _need(may_withdraw(self.policy, cls, rec.actor, holder, at=rec.datetime),
              f"{rec.actor} neither administers the vault nor holds the key of {cls}, and "
              "may not withdraw its entries")
        generations = [(g, key_id(r)) for c, g, _, r, _, _ in self.store.class_keys()
                       if c == cls.id]
        unused = kid != max(generations)[1] and not self.store.docs(key_id=kid)
        needed = [user_by_recipient(self.policy, o) for o in owners
                  if not withdrawable(self.policy, cls, o, unused)]
        _need(not needed, f"the entries of {', '.join(u.name for u in needed if u)}, cleared "
              f"for {cls}, are still needed and may not be withdrawn")
        for owner in owners:
            self.store.remove_entry(kid, owner)

    def _document(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        from vault.policy import Label

        assert self.policy is not None and rec.actor is not None
        doc_id, version, header, kid = st["doc"], st["version"], st["header"], st["key_id"]
        statement, inputs = st["statement"], st.get("inputs") or {}
        _need(isinstance(doc_id, str) and bool(_DOC_ID.match(doc_id))
              and isinstance(version, str) and bool(_VERSION.match(version))
              and isinstance(header, str) and bool(_HEX64.match(header))
              and isinstance(statement, dict) and isinstance(inputs, dict), "malformed")
        _need(statement.get("vault") == self.manifest.vault_id
              and statement.get("doc") == doc_id, "the label names another vault or document")
        user = self.policy.users[rec.actor]
        label = Label.from_dict(statement["label"])
        cls = self._key_class(kid)
        _need(cls == LabelClass.of(label), "the document is wrapped to another class's key")
        # A new header goes only to a key nobody uncleared could know: a
        # cleared insider's client that wraps to the generation a revoked
        # user kept (or rewraps back to it) must not count (FORMAT.md §14.6).
        _need(self._key_clean(kid, cls), f"the document is wrapped to a key of {cls} that "
              "someone not cleared for it could know")
        prev = self.store.doc(doc_id)
        _need(prev is None or not prev.shredded, f"document {doc_id} was shredded")
        if prev is not None and canonical_json(prev.statement) == canonical_json(statement):
            # Rewrapped (a new key generation or recovery set): the label stays.
            _need(self.policy.dominates(user.clearance, cls.label()),
                  f"{rec.actor} is not cleared for {cls}")
        else:
            _need(statement.get("signer") == {"name": rec.actor,
                                               "signing_key": user.signing_key},
                  "the label is not signed by the one who recorded it")
            # Its text, once: the record that brings it in, by its signer.
            # Text equal to the same field of the label before is carried,
            # not brought in -- a rewrap above, a declassify keeping the
            # derived-from, a relabel keeping a reason -- and stays the
            # finding of whoever brought it in, never of whoever carries it.
            before = prev.statement.get("label") if prev is not None else None
            self._check_free_text(rec, rec.actor, (
                (f"a label {name.replace('_', '-')}", value)
                for name in ("reason", "derived_from")
                if (value := statement["label"].get(name)) is not None
                and not (isinstance(before, dict) and before.get(name) == value)))
            _need(statement.get("policy") == self.policy.hash,
                  "the label was not signed under the policy in force")
            self._entitled(rec, statement, label, prev, inputs)
            self._completion(rec, statement.get("action"), doc_id)
        pins = self._pins(st.get("stanzas"), prev)
        when = label.declassify_at()  # the instant, never the day (POLICY.md §5.3)
        self.store.put_doc(DocRow(
            doc_id, version, header, statement, kid, cls.id, label.level,
            str(statement["sealed_at"]), str(statement["sealed_by"]),
            None if when is None else due_text(when), rec.seq, False, pins=pins))

    def _pins(self, pins: Any, prev: DocRow | None) -> dict[str, Any] | None:
        """The recipient stanzas a version names (FORMAT.md §14.6), held to
        the recovery stanzas of the version it replaces while the recovery
        recipients are the same: a post-quantum stanza cannot be recomputed,
        and one swapped for another's would otherwise count."""
        if pins is None:
            _need(prev is None or prev.pins is None, "the new version does not name its "
                  "recipient stanzas, as the one it replaces does")
            return None
        _need(isinstance(pins, dict) and set(pins) == {"class", "recovery"}
              and isinstance(pins["class"], str) and bool(_HEX64.match(pins["class"]))
              and isinstance(pins["recovery"], list) and len(pins["recovery"]) <= 64
              and all(isinstance(d, str) and _HEX64.match(d) for d in pins["recovery"]),
              "malformed stanzas")
        kept = {"class": pins["class"], "recovery": sorted(pins["recovery"]),
                "set": self._recovery_set()}
        if prev is not None and prev.pins is not None:
            if prev.pins["set"] == kept["set"]:
                _need(kept["recovery"] == prev.pins["recovery"], "the new version does not "
                      "carry the recovery stanzas of the one it replaces, though the recovery "
                      "recipients are the same")
            elif kept["recovery"] == prev.pins["recovery"]:
                # The same stanzas, made for the recipients before a change:
                # still to be rewrapped to the new ones (`set` says which a
                # version's stanzas were made for, not when it was recorded).
                kept["set"] = prev.pins["set"]
        return kept

    def _recovery_set(self) -> str:
        from vault._sealed.recipients import recovery_set
        from vault._trust.trusted import recovery_for

        assert self.policy is not None
        hit = self._recovery
        if hit is None or hit[0] != self.policy.hash:
            hit = self._recovery = (self.policy.hash, recovery_set(
                recovery_for(self.policy, self.manifest.recovery)))
        return hit[1]

    def _entitled(self, rec: AuditRecord, st: dict[str, Any], label: Label,
                  prev: DocRow | None, inputs: Mapping[str, Any]) -> None:
        from vault.policy import Label

        action = st.get("action")
        _need(action in _CHANGES, "unknown label action")
        _need(label.classified_by == rec.actor, "the label names another classifier")
        # A declassify-on duration counts from the label's 'created', which
        # no approval binds: dated back (an approved "P25Y" relabel made due
        # at once), it would bring a due date forward unseen. An honest label
        # is made within the operation its record completes (FORMAT.md §14.6).
        # A difference, never a sum: a time of year 1 or 9999 is valid, and
        # adding a day to it would overflow.
        _need(label.created is None or abs(label.created - rec.datetime) <= _LABEL_AGE,
              "the label's 'created' time is not the time of the operation that recorded it")
        if prev is None:
            _need(action == "seal" and st.get("sealed_by") == rec.actor,
                  "a new document must be sealed by its signer")
            content = st.get("content")
            _need(isinstance(content, dict) and set(content) == {"meta", "payload", "size"}
                  and all(isinstance(content[k], str) and _HEX64.match(content[k])
                          for k in ("meta", "payload"))
                  and isinstance(content["size"], int) and content["size"] >= 16,
                  "the label does not commit to the content")
            # The file its approved request names, by the digest the seal
            # records (FORMAT.md §16.2, §16.4 step 6).
            self._allowed(rec, "seal", label, inputs, {"label": label,
                                                      "below_floor": self._below(label, inputs),
                                                      "file": inputs.get("file")})
            return
        _need(action != "seal", f"document {prev.doc_id} exists already")
        old = prev.statement
        _need(st.get("sealed_at") == old["sealed_at"] and st.get("sealed_by") == old["sealed_by"]
              and st.get("content") == old.get("content"),
              "a relabelled document keeps its sealing and its content")
        before = Label.from_dict(old["label"])
        assert self.policy is not None
        if action == "declassify":
            target = self.policy.declassified_label(before)
            _need(_class_fields(label) == _class_fields(target),
                  "not the label the policy declassifies to")
        self._allowed(rec, str(action), before, {**inputs, "new_label": label},
                      {"new_label": label})

    def _shred(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        from vault.policy import Label

        doc_id = st["doc"]
        prev = self.store.doc(str(doc_id))
        _need(prev is not None and not prev.shredded, f"no document {doc_id} to shred")
        assert prev is not None
        self._allowed(rec, "shred", Label.from_dict(prev.statement["label"]),
                      st.get("inputs") or {})
        self._completion(rec, "shred", prev.doc_id)
        self.store.shred(prev.doc_id, rec.seq)

    def _incident(self, rec: AuditRecord, st: Mapping[str, Any]) -> None:
        first, last = st["from"], st["to"]
        _need(isinstance(first, int) and isinstance(last, int) and 0 <= first <= last < rec.seq
              and last - first < MAX_INCIDENT, "malformed incident range")
        leaves = st.get("leaves", ())
        _need("leaves" not in st or (
            type(leaves) is list and len(leaves) == last - first + 1 <= MAX_INCIDENT_LEAVES
            and all(type(h) is str and _HEX64.match(h) for h in leaves)),
            "malformed incident leaves")
        self._allowed(rec, "administer", None, made={"details": {"from": first, "to": last}})
        for seq in range(first, last + 1):
            self.store.seal_off(seq, rec.seq)
        for seq, leaf in enumerate(leaves, first):
            self.store.keep_original(seq, bytes.fromhex(leaf), rec.seq)


def _class_fields(label: Label) -> tuple[Any, ...]:
    return (label.level, label.compartments, label.caveats, label.embargo_until,
            label.declassify_on)

