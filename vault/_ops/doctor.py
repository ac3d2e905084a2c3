"""``doctor``: does everything in the store agree with the verified audit
log? (docs/DESIGN.md §6.7)

Read-only checks need no identity (and then leave no audit record: records
are signed by their actor). They compare the store with the trusted state:

* every record the replay refused (a forged or unentitled state change),
  the audit log's own verification, the checkpoint key;
* documents: the log's current version of each is present and is the
  recorded bytes (header digest); nothing the log never saw; no version of
  a shredded document left; with ``deep``, every payload against its
  label's commitment (no key needed: the digest is over ciphertext), and,
  for a key holder, every recipient stanza;
* keyring entries: each is the one the log granted (digest), none is
  missing or planted; the caller's own open and hold what they should;
* class keys nobody should hold any more (revocations pending), grants
  pending;
* what interrupted writes left (each named: where, how large, whether it
  could hold anything secret); a shred's tombstone only where the log
  records that shred (anyone who can write the folder can plant the name,
  as a hard link to a live document or to the log);
* the store's own structure (a keyring or checkpoint folder replaced by a
  link or a file, or one that cannot be listed), and requests and
  approvals left that cannot be read.

``repair`` (an administrator) removes what interrupted writes left, the
versions and entries the log does not count, finishes interrupted shreds
and writes pending grants of keys the repairer holds. It never rewrites a
document the log counts, and leaves a document the log never saw in place
(reported) for people to investigate.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from vault._ops.discipline import attempt, authorise, record, refuse_out_of_place
from vault._ops.keys import grant_missing, lacking
from vault._results import DoctorReport
from vault._sealed.reading import Sealed, check_payload, read_sealed, unlock
from vault.age import hash_payload, unwrap_file_key
from vault.errors import IntegrityError, NoKeyError, UsageError, VaultError
from vault.store.base import Leftover, owner_key

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault._trust.classes import ClassKey
    from vault._trust.keyring import Keyring
    from vault._trust.state import DocRow
    from vault.age import Identity

__all__ = ["doctor", "evidence_versions"]


def doctor(s: Session, repair: bool, deep: bool = False, approved: Approved | None = None,
           recovery: Sequence[Identity] = ()) -> DoctorReport:
    if repair and s.identity is None:
        raise UsageError("repairing needs your identity",
                         hint="pass --identity FILE or set VAULT_IDENTITY")
    report = DoctorReport()
    if s.identity is None:
        _check(s, report, repair=False, deep=deep, recovery=recovery)
        return report
    with attempt(s, "doctor") as att:
        if repair:
            refuse_out_of_place(s)  # a repair writes what the hidden records may deny
        if repair and approved is None \
                and not s.trusted.policy.may_administer(s.actor().decides_as):
            # Not an administrator: the repair of what is theirs alone to
            # end -- their own decisions whose process died on this host,
            # which nobody else's record can end (DESIGN.md §6).
            record(s, [att], "allowed", [], "doctor --repair of one's own interrupted changes")
            _check(s, report, repair=False, deep=deep, recovery=recovery, own=True)
            report.notes.append("the rest of a repair is an administrator's "
                                "('vault doctor --repair' as one)")
        elif repair:
            if approved:
                approved.bind("doctor")
            authorise(s, att, "administer", None, approved=approved, note="doctor --repair")
            with s.lock():
                _check(s, report, repair=True, deep=deep, recovery=recovery)
        else:
            record(s, [att], "allowed", [], "read-only check" + (" (deep)" if deep else ""))
            _check(s, report, repair=False, deep=deep, recovery=recovery)
    return report


def _check(s: Session, report: DoctorReport, *, repair: bool, deep: bool,
           recovery: Sequence[Identity], own: bool = False) -> None:
    """``own``: end the caller's own interrupted changes, as a repair does."""
    if s.log_key_problem:
        report.problems.append(f"audit log: {s.log_key_problem}; checkpoints are not being made")
    sealed_off = s.trusted.store.sealed_off()
    for seq, kind, message in s.trusted.store.findings():
        what = f"audit record {seq} ({kind}): {message}"
        if seq in sealed_off:  # an administrator declared it: evidence, not news
            report.notes.append(f"{what} (sealed off by incident record {sealed_off[seq]})")
        elif kind in ("history", "sealed off"):
            # A changed history an incident record explained; a record refused
            # because an incident sealed off what it depends on (its decision).
            report.notes.append(what)
        else:
            report.problems.append(what)
    report.problems += s.backend.layout_problems()
    _leftovers(s, report, repair)
    _shreds(s, report, repair)
    _documents(s, report, repair, deep, recovery)
    _keyrings(s, report, repair)
    _classes(s, report, repair)
    _unfinished(s, report, repair or own)
    _audit(s, report)


def _leftovers(s: Session, report: DoctorReport, repair: bool) -> None:
    found = s.backend.tidy() if repair else s.backend.leftovers()
    for item in found:
        if repair:
            report.repaired.append(f"removed {_described(item)}")
        else:
            report.leftovers.append(_described(item))


def _described(item: Leftover) -> str:
    return (f"{item.where} ({item.size} bytes; {item.what}; "
            f"{'may hold ciphertext or wrapped keys' if item.secret else 'holds no secret'})")


def _shreds(s: Session, report: DoctorReport, repair: bool) -> None:
    """Tombstones of interrupted shreds. One is finished only when the log
    does not count its version as a live document's (a shredded one, or an
    earlier version doctor was destroying) and it is nothing but itself:
    otherwise it is planted, evidence, and never written to or removed."""
    finish: dict[tuple[str, str], Leftover] = {}
    payloads: dict[tuple[str, str], int] = {}
    sealing = _sealing(s)

    def judged(doc_id: str, version: str, changed: bool
               ) -> tuple[Leftover, str | None, DocRow | None]:
        nonlocal sealing
        if changed:
            sealing = _sealing(s)
        return _shred(s, doc_id, version, sealing)

    for doc_id, version in s.backend.interrupted_shreds():
        try:
            # A shred appends its record before its file becomes a tombstone
            # (DESIGN.md §6.5): one started after the log was read is judged
            # by the log read again, never named planted.
            item, problem, row = _settled(s, partial(judged, doc_id, version),
                                          lambda found: found[1] is not None)
        except FileNotFoundError:
            continue  # finished meanwhile
        if problem is not None:
            report.problems.append(f"{item.where}: named like an interrupted shred of {doc_id}, "
                                   f"but {problem}; planted: it is not used or touched, keep it "
                                   "as evidence and remove it once investigated")
        elif repair:
            finish[(doc_id, version)] = item
            size = row.statement.get("content", {}).get("size") if row is not None else None
            if isinstance(size, int):
                payloads[(doc_id, version)] = size
        else:
            report.leftovers.append(_described(item))
    for done in s.backend.finish_shreds(list(finish), payloads):
        report.repaired.append(f"removed {_described(finish[done])}")


def _sealing(s: Session) -> set[str]:
    """Documents of seals allowed and never completed: a repair killed while
    destroying one's stray leaves its tombstone, with nothing on record to
    hold it to."""
    return {str(p[3]) for p in s.trusted.store.pending() if p[2] == "seal"}


def _shred(s: Session, doc_id: str, version: str, sealing: set[str]
           ) -> tuple[Leftover, str | None, DocRow | None]:
    """A tombstone, why it is no interrupted shred (None: it is one) and its
    document's record, by the state as it is; :class:`FileNotFoundError`
    when it is gone."""
    row = s.trusted.doc(doc_id)
    seal = row is None and doc_id in sealing
    item, problem = s.backend.shred_leftover(
        doc_id, version, row.statement.get("content") if row is not None else None,
        known=s.trusted.store.has_header if seal else None)
    if problem is None and seal:
        pass  # what is left of an interrupted seal's file (shred_leftover checked it)
    elif problem is None and (row is None or (row.version == version and not row.shredded)):
        problem = ("the audit log records no shred of it" if row is None else
                   "it is the current version of a live document, which the audit log "
                   "records no shred of")
    # A live document's file renamed under an older version's tombstone
    # name: finishing it would destroy the document.
    if (problem is None and row is not None and not row.shredded
            and not s.backend.has_document(doc_id, row.version)):
        problem = ("the live document's current file is missing, and this may be it "
                   "under another name")
    return item, problem, row


# Whoever can write the folder, or the PostgreSQL role, can store any number
# of files: of each kind that anyone can make, doctor names the first hundred
# (by name) and counts the rest, holding no more than that while it reads.
_NAMED = 100


class _Few:
    """The ``_NAMED`` smallest-keyed lines of one kind, and how many there were."""

    def __init__(self) -> None:
        self._kept: list[tuple[tuple[str, str], str]] = []
        self.count = 0

    def add(self, key: tuple[str, str], line: str) -> None:
        self.count += 1
        self._kept.append((key, line))
        if len(self._kept) >= 2 * _NAMED:  # amortised: sort, keep the first
            self._kept.sort()
            del self._kept[_NAMED:]

    def into(self, out: list[str], more: str) -> None:
        self._kept.sort()
        out += [line for _, line in self._kept[:_NAMED]]
        if self.count > _NAMED:
            out.append(more.format(f"{self.count - _NAMED:,}"))


def _documents(s: Session, report: DoctorReport, repair: bool, deep: bool,
               recovery: Sequence[Identity]) -> None:
    live = {r.doc_id: r for r in s.trusted.docs()}
    shredded = {r.doc_id for r in s.trusted.docs(live=False) if r.shredded}
    decided = _decided(s)
    pending = {p[3] for p in decided}
    # Versions an incident may have taken the record of (docs/AUDIT.md §11.3):
    # evidence, never leftovers -- but only those, each checked.
    shadowed, orphaned, absent = _sealed_evidence(s, decided)
    found: set[str] = set()  # live documents whose current file is stored
    planted, stray, refused, removed, kept = _Few(), _Few(), _Few(), _Few(), _Few()
    # Versions kept for a decision whose completion an incident may have
    # sealed off: every one that passes the check, never just the first met
    # (a folder writer's copies, met first, would cost the honest file).
    kept_for: dict[str, list[str]] = {}
    in_place: dict[str, bool] = {}  # live documents whose current file has its header
    started = live  # the documents checked for: those live before the listing
    for doc_id, version, caught_up in _listed_then_caught_up(
            s, s.backend.iter_document_files(),
            lambda d, v: d in started and started[d].version == v):
        if caught_up:  # judged by what the log says now
            live = {r.doc_id: r for r in s.trusted.docs()}
            shredded = {r.doc_id for r in s.trusted.docs(live=False) if r.shredded}
            pending = {p[3] for p in _decided(s)}
        current = live.get(doc_id)
        if current is not None and current.version == version:
            found.add(doc_id)
            continue
        key, where = (doc_id, version), f"docs/{doc_id}.{version}.age"
        if doc_id in shredded:
            what = f"{where}: a version of shredded document {doc_id} is still stored"
        elif key in orphaned:
            kept.add(key, f"{where}: the version of {doc_id} record {orphaned[key]} names, "
                          "whose decision an incident sealed off: kept as evidence, never "
                          "removed by a repair; it does not count -- to record it again, "
                          "open it with the recovery identity ('vault age decrypt -i') and "
                          "seal it again")
            continue
        elif doc_id in shadowed and _is_version_of(s, doc_id, version):
            kept_for.setdefault(doc_id, []).append(where)
            kept.add(key, f"{where}: a version of {doc_id} whose completion an incident may "
                          f"have sealed off (its decision is record {shadowed[doc_id][0]}, "
                          f"sealed-off line {shadowed[doc_id][1]} follows it before its "
                          "maker's next record): kept as evidence, never removed by a repair")
            continue
        elif current is not None or doc_id in pending:
            what = f"{where}: a version of {doc_id} the audit log does not count (an " \
                   "interrupted write, or an old version a change left over)"
        else:
            planted.add(key, f"{where}: a document the audit log never saw (planted, or "
                             "copied in); it is not used; remove it once investigated")
            continue
        # Judged alike with or without --repair: the leftovers a read-only
        # run lists are what a repair removes, and evidence is named so by
        # whoever runs it.
        kept_as = "it was not removed" if repair else "a repair does not remove it"
        if current is not None and doc_id not in in_place:
            in_place[doc_id] = (_header_sha(s, doc_id, current.version) == current.header
                                and _ends_with_payload(s, doc_id, current.version,
                                                       current.statement.get("content")))
        if current is not None and not in_place[doc_id]:
            # The live document's current file is missing (or something else
            # is in its place): this may be it, renamed. Destroying it would
            # lose what a rename could restore.
            refused.add(key, f"{where}: a version of {doc_id} the audit log does not count, "
                             "while its current file is missing: this may be it under "
                             f"another name; {kept_as}, keep it as evidence")
            continue
        if not _is_version_of(s, doc_id, version):
            # Another document, a keyring entry or a checkpoint renamed to a
            # stray version's name: a rename back would restore it.
            refused.add(key, f"{where}: named like a version of {doc_id}, but it is not one "
                             f"(not its payload); {kept_as}, keep it as evidence")
            continue
        if not repair:
            stray.add(key, what)
            continue
        try:
            _destroy(s, doc_id, version)
        except IntegrityError as e:  # not the file it is named as (a hard link to another)
            refused.add(key, f"{where}: {e.message}")
        except FileNotFoundError:
            pass  # gone meanwhile
        except (OSError, VaultError) as e:
            # Never silently: a shredded document's version that stays
            # keeps its wrapped file key (a row the role holds locked).
            why = e.message if isinstance(e, VaultError) else e.strerror or type(e).__name__
            refused.add(key, f"{what}; the repair could not destroy it ({why})")
        else:
            removed.add(key, f"removed {where}")
    for doc_id in sorted(started):
        if doc_id not in found:
            row = _missing(s, doc_id)
            if row is not None:
                report.problems.append(f"document {doc_id}: missing, although the audit log "
                                       f"records it (record {row.seq}) and no shred")
                continue
        _check_document(s, report, doc_id, deep, recovery)  # nothing if shredded meanwhile
    for (doc_id, version), seq in sorted(absent.items()):
        # Evidence a move left behind, or someone removed: the notes of the
        # incident say it is kept.
        report.problems.append(
            f"docs/{doc_id}.{version}.age: the version of {doc_id} record {seq} names, whose "
            "decision an incident sealed off, is not stored: it is kept as evidence, the only "
            "copy to seal again -- restore it from a backup")
    for doc_id, wheres in sorted(kept_for.items()):
        if len(wheres) > 1:
            # At most one is the version the decision sealed; nothing short
            # of the file key tells which (a copy with its header MAC changed
            # passes every other check): the officer chooses.
            report.problems.append(
                f"{len(wheres)} stored versions of {doc_id} could be the one whose completion "
                f"an incident may have sealed off (its decision is record "
                f"{shadowed[doc_id][0]}): {_named(sorted(wheres))}; all kept, none removed "
                "by a repair -- open each with the recovery identity ('vault age decrypt -i') "
                "to tell which is the document, seal that one again and keep the others as "
                "evidence")
    report.documents = len(live)
    planted.into(report.problems, "{} more stored documents the audit log never saw "
                                  "(planted, or copied in); not used")
    refused.into(report.problems, "{} more stored versions not removed: not the files they "
                                  "are named as, or not to be destroyed")
    kept.into(report.notes, "{} more stored versions whose record an incident may have "
                            "sealed off: kept as evidence")
    stray.into(report.leftovers, "{} more stored versions the audit log does not count")
    removed.into(report.repaired, "removed {} more stored versions the audit log does not count")


#: How many times a problem found is judged again, each time by a state
#: that caught up with lines appended since (others at work meanwhile).
_TRIES = 3

_T = TypeVar("_T")


def _settled(s: Session, judge: Callable[[bool], _T], failed: Callable[[_T], bool]) -> _T:
    """What ``judge`` finds, a problem standing only once judged again by
    the trusted state caught up after it was found. Every writer appends
    its record before it changes what the record names (a new version or
    entry before the old one is removed, a shred's record before its
    tombstone, a retirement's before the entries go; DESIGN.md §6), so a
    file or entry changed by others while doctor read is judged by a state
    that counts the change -- a state that did not change since stands. A
    few times at most; ``judge`` is told whether the state changed since
    its last call."""
    found = judge(False)
    for _ in range(_TRIES):
        if not failed(found) or not s.trusted.catch_up():
            break
        found = judge(True)
    return found


#: Stored files the trusted state does not count, judged a batch at a time.
_BATCH = 1024


def _decided(s: Session) -> list[tuple[Any, ...]]:
    """Open decisions that make a document version."""
    return [p for p in s.trusted.store.pending()
            if p[3] is not None and p[2] in ("seal", "reclassify", "declassify")]


def _listed_then_caught_up(s: Session, listing: Iterable[tuple[str, str]],
                           counted: Callable[[str, str], bool]
                           ) -> Iterator[tuple[str, str, bool]]:
    """``listing``'s files (document versions, keyring entries), each with
    whether the trusted state caught up (and changed) just before it. A
    file the state read first does not ``count`` is judged only once the
    state has caught up after it was listed: a writer appends its decision
    before it writes a document's file (DESIGN.md §6), so a document sealed
    or changed while doctor reads -- its decision appended after the state
    was read, its file there when listed -- is then counted, never called
    planted or stray (as is an entry whose grant was appended by then). A
    batch at a time: one catch-up for many files, and no more held."""
    batch: list[tuple[str, str]] = []

    def judged() -> Iterator[tuple[str, str, bool]]:
        changed = s.trusted.catch_up()
        for i, (a, b) in enumerate(batch):
            yield a, b, changed and i == 0
        batch.clear()

    for a, b in listing:
        if counted(a, b):
            yield a, b, False
            continue
        batch.append((a, b))
        if len(batch) >= _BATCH:
            yield from judged()
    yield from judged()


def _missing(s: Session, doc_id: str) -> DocRow | None:
    """The record of a live document whose current file the listing did
    not meet and is not stored now, by the state caught up after the
    listing; None when it is stored, or was shredded meanwhile. A document
    changed while doctor listed (a new version written, the old removed)
    is looked for again at its version then, a few times at most."""
    row = s.trusted.doc(doc_id)
    for _ in range(3):
        if row is None or row.shredded or s.backend.has_document(doc_id, row.version):
            return None
        s.trusted.catch_up()
        now = s.trusted.doc(doc_id)
        if now is None or (now.seq, now.version, now.shredded) == (row.seq, row.version,
                                                                    row.shredded):
            return row
        row = now
    return row


def _named(wheres: Sequence[str], most: int = 32) -> str:
    more = len(wheres) - most
    return ", ".join(wheres[:most]) + (f" and {more} more" if more > 0 else "")


def evidence_versions(s: Session) -> list[tuple[str, str]]:
    """The stored versions doctor keeps as evidence, never removed by a
    repair (docs/DEPLOYMENT.md §14), as ``(document id, version)``, sorted:
    judged as :func:`_documents` judges them. A move takes them along."""
    shadowed, orphaned, _ = _sealed_evidence(s, _decided(s))
    if not shadowed and not orphaned:
        return []
    live = {r.doc_id: r.version for r in s.trusted.docs()}
    shredded = {r.doc_id for r in s.trusted.docs(live=False) if r.shredded}
    candidates = [(d, v) for d, v in s.backend.iter_document_files()
                  if (d in shadowed or (d, v) in orphaned) and live.get(d) != v
                  and d not in shredded]
    return sorted(key for key in candidates
                  if key in orphaned or _is_version_of(s, key[0], key[1]))


def _sealed_evidence(s: Session, decided: Sequence[tuple[Any, ...]]
                     ) -> tuple[dict[str, tuple[int, int]], dict[tuple[str, str], int],
                                dict[tuple[str, str], int]]:
    """Stored versions an incident may have taken the record of: (1) by
    document, an open decision's (its line, the sealed-off line) when a
    sealed-off line lies between it and its maker's next completion (of any
    decision, on a line not sealed off; none: the log's end) -- the
    completion that would have counted it was there, if that line now reads
    as no record or as one of the maker's (a batch completes its decisions
    in order, after them); (2) by
    (document, version), the completion record refused because an incident
    sealed off its decision (a "sealed off" finding on a line not sealed
    off), whose stored version is the one with the header it names; and
    (3) such a completion's version that is not stored at all. Read from
    the log only when there is any."""
    sealed = s.trusted.store.sealed_off()
    refused = {seq for seq, kind, _ in s.trusted.store.findings()
               if kind == "sealed off" and seq not in sealed}
    watch = {p[3]: (p[1], p[4]) for p in decided if any(i > p[1] for i in sealed)}
    shadowed: dict[str, tuple[int, int]] = {}
    orphaned: dict[tuple[str, str], int] = {}
    absent: dict[tuple[str, str], int] = {}
    if not watch and not refused:
        return shadowed, orphaned, absent
    headers: dict[tuple[str, str], tuple[int, str]] = {}
    done: set[str] = set()  # decisions whose maker completed again, on a line not sealed off
    with s.log.scan() as scan:
        for item in scan:
            rec, lines = item.record, range(item.seq, item.seq + item.count)
            for doc_id, (at, maker) in watch.items():
                if doc_id in done or doc_id in shadowed or item.seq + item.count <= at + 1:
                    continue
                hit = next((i for i in sorted(sealed) if i in lines and i > at), None)
                if hit is not None:
                    if rec is None or rec.actor == maker:
                        shadowed[doc_id] = (at, hit)
                elif rec is not None and rec.actor == maker \
                        and rec.outcome in ("done", "failed"):
                    done.add(doc_id)
            if rec is not None and item.seq in refused and isinstance(rec.state, dict):
                st = rec.state.get("document")
                if isinstance(st, dict) and isinstance(st.get("doc"), str) \
                        and isinstance(st.get("version"), str) \
                        and isinstance(st.get("header"), str):
                    headers[(st["doc"], st["version"])] = (item.seq, st["header"])
    for (doc_id, version), (seq, header) in headers.items():
        found = _header_sha(s, doc_id, version)
        if found == header:
            orphaned[(doc_id, version)] = seq
        elif found is None and not _stored(s, doc_id, version):
            absent[(doc_id, version)] = seq
    return shadowed, orphaned, absent


def _stored(s: Session, doc_id: str, version: str) -> bool:
    try:
        s.backend.open_document(doc_id, version).close()
    except FileNotFoundError:
        return False
    except (OSError, VaultError):
        pass  # something is there: judged with the other stored versions
    return True


def _is_version_of(s: Session, doc_id: str, version: str) -> bool:
    """Is this stored version one of ``doc_id``'s? With the document's
    content on the record (live or shredded), it must end with that payload;
    an interrupted seal's (nothing recorded yet) must at least be a
    document: an age header with a label stanza."""

    row = s.trusted.doc(doc_id)
    if row is None:
        # Nothing recorded yet: a document's header, but none the log
        # records (another document's file renamed to this name).
        sha = _header_sha(s, doc_id, version, label=True)
        return sha is not None and not s.trusted.store.has_header(sha)
    return _ends_with_payload(s, doc_id, version, row.statement.get("content"))


def _ends_with_payload(s: Session, doc_id: str, version: str, content: object) -> bool:
    from vault._sealed.reading import holds_payload

    try:
        with s.backend.open_document(doc_id, version) as f:
            return holds_payload(f, content)
    except (OSError, VaultError):
        return False


def _header_sha(s: Session, doc_id: str, version: str, *, label: bool = False) -> str | None:
    """SHA-256 (hex) of a stored version's age header, as records name it;
    None if it has none (or, with ``label``, one without a label stanza)."""
    from vault._sealed.reading import labelled_header_sha
    from vault.age import read_header

    try:
        with s.backend.open_document(doc_id, version) as f:
            if label:
                return labelled_header_sha(f)
            return hashlib.sha256(read_header(f).encode()).hexdigest()
    except (OSError, VaultError, ValueError):
        return None


def _destroy(s: Session, doc_id: str, version: str) -> None:
    # The header only (every wrapped file key): the payload it ends with
    # stays, so that a repair killed half way leaves a tombstone that still
    # shows whose it is, and the next repair finishes it.
    row = s.trusted.doc(doc_id)
    payload = row.statement.get("content", {}).get("size") if row is not None else None
    with s.backend.open_document(doc_id, version) as f:
        end = f.seek(0, 2)
    size = end - payload if isinstance(payload, int) and payload <= end else min(end, 1 << 20)
    s.backend.shred_document(doc_id, version, size, stray=True)


def _check_document(s: Session, report: DoctorReport, doc_id: str, deep: bool,
                    recovery: Sequence[Identity]) -> None:
    # Rewrapped (reclassified, its key rotated) or shredded by others after
    # the log was read, before its file was: judged by the log read again.
    report.problems += _settled(
        s, lambda _changed: _document_problems(s, doc_id, deep, recovery), bool)


def _document_problems(s: Session, doc_id: str, deep: bool,
                       recovery: Sequence[Identity]) -> list[str]:
    """What is wrong with a document's recorded version, by the state as it
    is: nothing for one shredded by then."""
    row = s.trusted.doc(doc_id)
    if row is None or row.shredded:
        return []
    problems: list[str] = []
    try:
        sealed, f = read_sealed(s.backend, s.trusted, doc_id)
    except (VaultError, OSError) as e:
        return [f"document {doc_id}: {getattr(e, 'message', e)}"]
    if recovery:
        problems += _recovers(s, sealed, recovery)
    with f:
        try:
            if s.identity is not None:
                from vault._ops.read import class_identities

                ids = class_identities(s, sealed)
                if ids:
                    unlock(sealed, ids, s.trusted)
            if deep:
                check_payload(sealed, *hash_payload(f))
        except NoKeyError:
            pass
        except (IntegrityError, OSError) as e:
            problems.append(f"document {doc_id}: {getattr(e, 'message', e)}")
    return problems


def _recovers(s: Session, sealed: Sealed, recovery: Sequence[Identity]) -> list[str]:
    """Does the recovery identity given open the document? Nobody but its
    holder can tell: a recovery stanza made after a change of recovery
    recipients is counted, not checked (docs/DESIGN.md §4.3), so a cleared
    insider who rewraps in that window can make it to another key."""
    from vault._ops.admin import recovery_behind
    from vault.errors import HeaderError, HMACError, NoIdentityMatchError

    try:
        unwrap_file_key(sealed.header, recovery)
    except (NoIdentityMatchError, HeaderError, HMACError):
        why = ("its rotation to the recovery recipients in force is still to be run: "
               "'vault rotate'" if recovery_behind(s, sealed.row) else
               f"the version recorded in audit record {sealed.row.seq} holds recovery "
               "stanzas for another key: whoever recorded it chose them")
        return [f"document {sealed.doc_id}: the recovery identity given does not open it "
                f"({why})"]
    return []


def _keyrings(s: Session, report: DoctorReport, repair: bool) -> None:
    policy = s.trusted.policy
    logged = started = s.trusted.store.entries()  # the entries checked for: granted before
    listed_as = {(owner_key(o), k) for k, o in started}
    names = {u.recipient: u.name for u in policy.users.values()}
    owners = {owner_key(o): o for _, o in logged} | {owner_key(r): r for r in names}
    found: set[tuple[str, str]] = set()  # (owner key, key id) of entries granted and stored
    granted = {digest: (kid, owner) for (kid, owner), digest in logged.items()}
    stray, removed, misfiled, odd = _Few(), _Few(), _Few(), _Few()
    for okey, kid, caught_up in _listed_then_caught_up(
            s, s.backend.iter_keyring_files(),
            lambda o, k: (o, k) in listed_as):
        if caught_up:  # judged by what the log says now
            logged = s.trusted.store.entries()
            owners |= {owner_key(o): o for _, o in logged}
            granted = {digest: (kid, owner) for (kid, owner), digest in logged.items()}
        known = owners.get(okey)
        if known is not None and (kid, known) in logged:
            found.add((okey, kid))
            continue
        what = f"keyrings/{okey}/{kid}.age"
        data = None
        if repair:
            # A link, a pipe or a folder planted under an entry's name is
            # no entry: removed as before, and it stops nothing.
            with contextlib.suppress(VaultError, OSError):
                data = s.backend.read_keyring_file(okey, kid)
        whose = granted.get(hashlib.sha256(data).hexdigest()) if data is not None else None
        if whose is not None:
            # An entry the log granted, filed under another owner or key:
            # moving it back restores it -- destroyed, it might be the last.
            ck = s.trusted.key(whose[0])
            misfiled.add((okey, kid), f"{what}: the entry the audit log granted "
                         f"{names.get(whose[1], 'a former user')} for "
                         f"{ck.cls if ck else whose[0]}, filed under another name; it was not "
                         "removed, keep it as evidence")
            continue
        if repair:
            try:
                s.backend.delete_keyring_entry(okey, kid)
            except (OSError, VaultError) as e:  # a folder planted at its name, a row held
                # locked by another session: named, with what kept it, and left
                why = e.message if isinstance(e, VaultError) else "not a file (planted)"
                said = why if why.startswith(what) else f"{what}: {why}"  # named once
                odd.add((okey, kid), f"{said}; it was not removed")
                continue
            removed.add((okey, kid), f"removed {what}: no grant in the audit log")
        else:
            stray.add((okey, kid), f"{what}: no grant in the audit log (an interrupted grant, "
                                   "a retired entry or a planted file); it is not used")
    for kid, owner in sorted(started):
        # Retired or granted again by others while doctor read (a
        # revocation, a move to post-quantum keys): judged by the log read
        # again -- a retirement is recorded before its entries go.
        listed = (owner_key(owner), kid) in found
        problem = _settled(s, partial(_entry_problem, s, kid, owner, names, listed),
                           lambda p: p is not None)
        if problem is not None:
            report.problems.append(problem)
    stray.into(report.leftovers, "{} more keyring entries with no grant in the audit log; "
                                 "not used")
    misfiled.into(report.problems, "{} more granted keyring entries filed under another name")
    odd.into(report.problems, "{} more keyring names that are not files (planted); not removed")
    removed.into(report.repaired, "removed {} more keyring entries with no grant in the "
                                  "audit log")
    if s.identity is not None:
        keyring = s.my_keyring()
        for gens in s.trusted.classes():
            for ck in gens:
                problem = _settled(s, partial(_own_problem, keyring, ck),
                                   lambda p: p is not None)
                if problem:
                    report.problems.append(f"your keyring entry for {ck.cls} generation "
                                           f"{ck.generation}: {problem}")


def _entry_problem(s: Session, kid: str, owner: str, names: Mapping[str, str],
                   listed: bool, changed: bool) -> str | None:
    """What is wrong with a granted keyring entry, by the state as it is:
    nothing for one retired by then. ``listed``: whether the listing met
    it; once the state ``changed``, it is looked up again."""
    listed_: bool | None = None if changed else listed
    digest = s.trusted.entry_digest(kid, owner)
    if digest is None:
        return None
    ck = s.trusted.key(kid)
    what = f"{names.get(owner, 'a former user')}'s keyring entry for {ck.cls if ck else kid}"
    try:
        data = s.backend.read_keyring_entry(owner, kid) if listed_ is not False else None
    except IntegrityError as e:  # made unreadable, or something else planted at its name
        return f"{what}: {e.message}; it is not used"
    if data is None and not listed_:
        return f"{what} is missing (the audit log granted it)"
    if data is None or hashlib.sha256(data).hexdigest() != digest:
        return (f"{what} is not the one the audit log granted (changed or replaced); it is "
                "not used")
    return None


def _own_problem(keyring: Keyring, ck: ClassKey, _changed: bool) -> str | None:
    """Why the caller's own entry for ``ck`` does not count; an entry with
    no grant is another check's (a leftover, named by file)."""
    problem = keyring.check(ck)
    return None if problem == "not granted in the audit log" else problem


def _classes(s: Session, report: DoctorReport, repair: bool) -> None:
    policy = s.trusted.policy
    for gens in s.trusted.classes():
        for old in gens[:-1]:
            docs = s.trusted.docs(key_id=old.key_id)
            if not docs:
                continue
            unclean = old.unclean_holders(policy)
            what = (f"{len(docs)} document{'s' if len(docs) != 1 else ''} of {old.cls} "
                    f"({', '.join(r.doc_id for r in docs[:3])}{', …' if len(docs) > 3 else ''})"
                    f" still wrapped to generation {old.generation}")
            if unclean:
                who = ", ".join(h.name or "an unknown recipient" for h in unclean)
                report.problems.append(f"{what}, which {who} could keep; " + (
                    "someone cleared must run 'vault rotate'" if _held_cleared(s, old) else
                    # A rotation unwraps with the old key: nobody cleared can.
                    "nobody cleared holds that key to rewrap them: open them with the "
                    "recovery identity and seal them again"))
            else:
                report.notes.append(f"{what} (a pending rewrap: 'vault rotate')")
        ck = gens[-1]
        unclean = ck.unclean_holders(policy)
        if unclean:
            who = ", ".join(h.name or "an unknown recipient" for h in unclean)
            report.problems.append(
                f"class {ck.cls}: its current key could be known to {who}, who is not (or no "
                "longer) cleared for it; someone cleared must run 'vault rotate'" + (
                    "" if _held_cleared(s, ck) or not s.trusted.docs(key_id=ck.key_id) else
                    ", and since nobody cleared holds it, open its documents with the "
                    "recovery identity and seal them again"))
            continue
        if repair:
            report.repaired += [f"granted {g}" for g in grant_missing(s, ck)]
        waiting = lacking(s, ck)
        if waiting and not _held(s, ck):
            count = sum(len(s.trusted.docs(key_id=g.key_id)) for g in gens)
            if count:  # nobody can grant it, rotate it or open these through the vault
                report.problems.append(
                    f"class {ck.cls}: nobody holds its current key, so nobody can open its "
                    f"{count} document{'s' if count != 1 else ''} through the vault or be "
                    "granted it; open them with the recovery identity and seal them again")
                continue
        for user in waiting:
            report.notes.append(f"{user.name} is cleared for {ck.cls} but holds no key for it "
                                "yet (a pending grant: 'vault rotate' or 'vault doctor "
                                "--repair' by someone who holds it writes it)")
    if s.trusted.post_quantum_keys():
        from vault._ops.admin import classical_left

        report.notes += [f"{what} ('vault rotate --post-quantum' by someone cleared)"
                         for what in classical_left(s) if "identities" not in what]


def _held_cleared(s: Session, ck: ClassKey) -> bool:
    """Does a user cleared for ``ck``'s class hold an entry for it?"""
    from vault._trust.classes import cleared_users

    entries = s.trusted.store.entries()
    return any((ck.key_id, u.recipient) in entries
               for u in cleared_users(s.trusted.policy, ck.cls))


def _held(s: Session, ck: ClassKey) -> bool:
    """Does a user of the policy in force hold an entry for ``ck``?"""
    entries = s.trusted.store.entries()
    return any((ck.key_id, u.recipient) in entries for u in s.trusted.policy.users.values())


def _unfinished(s: Session, report: DoctorReport, repair: bool) -> None:
    """Allowed changes never completed: a writer that died on this host is
    completed as ``failed`` by repair (its process is gone); others are
    named, since they may still be running elsewhere."""

    import os

    from vault._ops.discipline import Attempt, record

    here = os.uname().nodename
    dead = []
    for request, seq, action, doc, actor, host, pid in s.trusted.store.pending():
        what = (f"record {seq}: {actor or 'someone'}'s {action}"
                f"{' of ' + doc if doc else ''} was allowed but never completed")
        # Only its maker's record ends a decision (DESIGN.md §6): one of
        # someone else's is named, never "completed" with a record that
        # would count for nothing, again at every repair.
        if repair and host == here and not _alive(pid) and actor == s.actor().name:
            dead.append(Attempt(action, doc, request=request, recorded=True, allowed=True))
            report.repaired.append(f"{what}: recorded as failed (its process ended)")
        else:
            ended = " (its process ended; only a record of its maker's ends it)" \
                if host == here and not _alive(pid) else ""
            report.notes.append(f"{what} (request {request[:8]}, {host} pid {pid}){ended}")
    if dead:
        record(s, dead, "failed", [], "interrupted: the process ended before it finished",
               completion=True)


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _audit(s: Session, report: DoctorReport) -> None:
    from vault._ops.verify import verify_audit

    try:
        result = verify_audit(s)
    except VaultError as e:
        report.problems.append(f"audit log: {e.message}")
        return
    report.notes += [f"audit log: {n}" for n in getattr(result, "findings", [])]
