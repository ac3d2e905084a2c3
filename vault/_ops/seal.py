"""Sealing documents (docs/DESIGN.md §6.2).

A document's header carries, in this order: one stanza for the current
(clean) key of its label class, one per recovery recipient, the signed
label stanza and the encrypted metadata stanza. The label commits to the
payload's digest, known only once the plaintext was read: the payload is
written first and the header last (:mod:`vault._sealed.writing`), so the
plaintext is read once and never touches the disk.

Order: sources opened and values checked, one policy decision for all the
files, their decision records appended in one batch (fail closed); then,
under the sealers' shared lock (no rotation meanwhile), the documents are
written as new stored versions that count for nothing yet; then one batch
of completion records names each document's version, header digest and
signed label -- from then on they exist. A crash before that leaves files
the log never recorded, which ``doctor --repair`` removes.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import hmac
import io
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from vault._inputs import open_input
from vault._ops import intake
from vault._ops.discipline import (
    Attempt,
    approvers,
    attempts,
    authorise,
    check_free_text,
    complete_wrapped,
)
from vault._ops.filenames import content_type_of
from vault._ops.keys import still_current, usable_key
from vault._results import DocumentInfo
from vault._sealed.label import LabelStanza, content_of
from vault._sealed.meta import Metadata
from vault._sealed.recipients import recipient_stanzas, vault_recipient
from vault._sealed.writing import size_hint, write_sealed
from vault._trust.approvals import floor_terms
from vault._trust.classes import ClassKey, LabelClass
from vault._trust.requests import file_digest, file_mac
from vault.age import Header, Stanza
from vault.errors import IntegrityError, StorageError, UsageError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.seal_workers import Task
    from vault._ops.session import Session
    from vault._sealed.reading import Sealed
    from vault.age import Recipient
    from vault.identity import UserIdentity
    from vault.policy import Label
    from vault.store._batch import DocumentBatch

__all__ = ["doc_state", "new_doc_id", "new_version", "seal_many", "wrap_recipients"]

Source = str | os.PathLike[str] | BinaryIO


def new_doc_id() -> str:
    """80 random bits, base32: 16 lowercase letters and digits."""
    return base64.b32encode(os.urandom(10)).decode("ascii").lower()


def new_version() -> str:
    return secrets.token_hex(4)


def wrap_recipients(s: Session, ck: ClassKey) -> list[Recipient]:
    """The class key and the recovery recipients of a new header: never a
    mix of hybrid and classical ones (FORMAT.md §5.3)."""
    recovery = s.trusted.recovery_now()
    if any(r.startswith("age1pq1") != ck.post_quantum for r in recovery):
        raise UsageError(f"the key of {ck.cls} is {'hybrid' if ck.post_quantum else 'classical'}"
                         " but the recovery recipients are not: one header cannot mix them",
                         hint="someone cleared for the class runs 'vault rotate --post-quantum'")
    return [vault_recipient(ck.recipient), *(vault_recipient(r) for r in recovery)]


def rewrap_stanzas(s: Session, ck: ClassKey, file_key: bytes, sealed: Sealed) -> list[Stanza]:
    """The recipient stanzas of a new header for ``sealed``: the class key's
    made now, and its recovery stanzas copied while the recovery recipients
    are the ones they were made for -- a new version must carry them
    unchanged then (FORMAT.md §14.6) -- else made now as well."""
    from vault._sealed.recipients import keep_recovery, recovery_set

    pins = sealed.row.pins
    made = [st for r in wrap_recipients(s, ck) for st in r.wrap(file_key)]
    if pins is None or pins["set"] != recovery_set(s.trusted.recovery_now()):
        return made
    kept = keep_recovery(recipient_stanzas(sealed.header), pins)
    if kept is None:  # the reader checked them: not reached unless the header changed
        raise IntegrityError(f"document {sealed.doc_id} lacks a recovery stanza its record "
                             "names", hint="run 'vault doctor'")
    return [made[0], *kept]


def doc_state(doc_id: str, version: str, header: Header, ck: ClassKey,
              statement: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """The ``document`` state a completion record carries (docs/FORMAT.md
    §14.6), naming its recipient stanzas, the class key's first."""
    from vault._sealed.recipients import pins_of

    return {"document": {"doc": doc_id, "version": version, "key_id": ck.key_id,
                         "header": hashlib.sha256(header.encode()).hexdigest(),
                         "statement": statement, "inputs": inputs,
                         "stanzas": pins_of(recipient_stanzas(header))}}


def seal_many(s: Session, srcs: Sequence[Source], *, level: str | None = None,
              compartments: Sequence[str] = (), caveats: Sequence[str] = (),
              title: str | None = None, filename: str | None = None,
              declassify_on: Any = None, embargo_until: Any = None,
              justification: str | None = None, reason: str | None = None,
              content_type: str | None = None,
              approved: Approved | None = None) -> list[DocumentInfo]:
    if not srcs:
        raise ValueError("give at least one file or stream to seal")
    check_free_text(justification, "justification")
    check_free_text(reason, "reason")
    if approved and len(srcs) > 1:
        raise UsageError("approvals cover one document", hint="seal the files one at a time")
    created = datetime.now(UTC)
    with attempts(s, "seal", [new_doc_id() for _ in srcs]) as atts, \
            contextlib.ExitStack() as stack:
        actor = s.actor()
        policy = s.trusted.policy
        if approved:
            justification = approved.justification(justification)
        # Sources are opened and values checked before the decision: an
        # unreadable file or an oversized title is an error on the record,
        # never an "allowed" that did nothing.
        sources = [_open_source(stack, src, filename) for src in srcs]
        templates = [_template(name, title, content_type) for _, name in sources]
        fields: dict[str, Any] = {
            "actor": actor.decides_as, "classified_by": actor.name,
            "reason": reason or justification, "created": created,
            "declassify_on": declassify_on, "embargo_until": embargo_until}
        given = level is not None or bool(compartments) or bool(caveats)
        proposed = policy.make_label(level=level, compartments=list(compartments),
                                     caveats=list(caveats), **fields) if given else None
        sources, found, seen = intake.inspect_all(policy, sources)
        label, floor, note = intake.decide_label(policy, found, proposed, fields)
        inputs: dict[str, Any] = {"justification": justification} if justification else {}
        if floor is not None:
            inputs["floor"] = floor
        bound = None
        if approved:
            below = floor is not None and policy.below_floor(label, floor)
            bound = _bound_file(s, approved, sources)
            approved.bind("seal", label=label, file=bound,
                          below_floor=floor_terms(floor) if below and floor else None)
        decision = authorise(s, atts, "seal", label, inputs=inputs, note=note, approved=approved)
        decided = {**inputs, "approvers": approvers(decision)}
        cls = LabelClass.of(label)
        for _ in range(3):
            ck = usable_key(s, cls)
            # No rotation runs while the documents are written: each is
            # wrapped to the key that is current when it appears.
            with s.lock(shared=True):
                if not still_current(s, ck):
                    continue  # rotated or revoked meanwhile: take the new key
                _recheck(s, atts, label, decided)
                recorded = {**inputs, **({"floor": floor.to_dict()} if floor else {}),
                            **({"file": bound} if bound else {})}
                return _write_all(s, atts, sources, templates, label, ck, recorded, seen,
                                  bound)
        raise StorageError("the class key kept changing while sealing",
                           hint="run the command again")
    raise AssertionError("unreachable")  # pragma: no cover


def _bound_file(s: Session, approved: Approved,
                sources: Sequence[tuple[BinaryIO, str | None]]) -> str | None:
    """The digest of the file to seal, when the approved request names the
    file it is for (FORMAT.md §16.2): compared before the approvals are
    used, and held to the bytes sealed (:func:`_seal_one`)."""
    if not any("file" in a.request.details for a in approved.approvals):
        return None
    ((stream, _),) = sources  # approvals cover one document
    if not intake.seekable(stream):
        raise UsageError("a seal under a request that names its file reads the file twice, "
                         "and this stream can be read once", hint="seal the file by its path")
    start = stream.tell()
    digest = file_digest(s.me(), s.manifest.vault_id, stream)
    stream.seek(start)
    return digest


def _recheck(s: Session, atts: list[Attempt], label: Label, inputs: dict[str, Any]) -> None:
    """A policy installed between the decision and the lock decides again:
    the documents are signed under the version in force when they appear."""
    decision = s.trusted.policy.decide(s.actor().decides_as, "seal", label, inputs=inputs)
    if not decision.allowed:
        from vault.errors import DeniedError

        raise DeniedError(f"seal denied by the policy installed meanwhile: "
                          f"{'; '.join(decision.reasons)}", decision=decision)


def _template(name: str | None, title: str | None, content_type: str | None) -> Metadata:
    if content_type is None and name:
        content_type = content_type_of(name)
    return Metadata(name, title, content_type or "application/octet-stream", 0).check()


def _open_source(stack: contextlib.ExitStack, src: Source,
                 filename: str | None) -> tuple[BinaryIO, str | None]:
    if not isinstance(src, str | os.PathLike):
        return src, filename
    path = os.fspath(src)
    stream = stack.enter_context(open_source(path))
    return stream, filename if filename is not None else os.path.basename(path)


def open_source(path: str) -> BinaryIO:
    """Open a file to seal, by its path (UsageError if it cannot be read),
    refusing a path that passes through a symbolic link another user made
    (docs/THREAT-MODEL.md §10). In a folder others can write -- a shared
    inbox -- such a link would make the sealer read a file only they can
    read, and seal it where the link's maker may open it. The sealer's own
    links and the system's (root's) are followed. For the same reason a FIFO
    or device another user made is refused: a FIFO would stall the sealer.
    """
    try:
        return _open_unplanted(path)
    except OSError as e:
        hint = None
        if e.errno in (errno.EMFILE, errno.ENFILE):  # a batch holds its files until the end
            hint = ("a call holds all its files open: seal fewer at once, or raise the "
                    "open-file limit ('ulimit -n')")
        raise UsageError(f"cannot read {path}: {e.strerror}", hint=hint) from None


def _open_unplanted(path: str) -> BinaryIO:
    return open_input(
        path, link_hint="seal the file by a path of its own, without that link, if you mean to",
        foreign_hint="seal a regular file, or copy the data into one of your own")


def _write_all(s: Session, atts: list[Attempt], sources: list[tuple[BinaryIO, str | None]],
               templates: list[Metadata], label: Label, ck: ClassKey,
               inputs: dict[str, Any], seen: Sequence[intake.Seen | None],
               bound: str | None = None) -> list[DocumentInfo]:
    recipients = wrap_recipients(s, ck)
    me = s.me()
    name = s.actor().name
    label_dict = label.to_dict()
    # What every document's statement shares (one label, signer and policy).
    common = {"vault": s.manifest.vault_id, "label": label_dict,
              "sealed_at": label_dict["created"], "sealed_by": name,
              "signer": {"name": name, "signing_key": me.signing_public},
              "policy": s.trusted.policy.hash, "action": "seal"}
    versions = os.urandom(4 * len(atts)).hex()
    jobs = [(i, att.doc, versions[8 * i:8 * i + 8], template, stream)
            for i, ((stream, _), att, template) in enumerate(
                zip(sources, atts, templates, strict=True))]
    # A file someone else may write is sealed here, its bytes held to what
    # intake read (the workers read sources themselves).
    digests = [saw.digest if saw else None for saw in seen]
    # So is the file an approved request names (one), its bytes held to it.
    held = [d is not None or bound is not None for d in digests]
    tasks, inline = _share_out([j for j in jobs if not held[j[0]]])
    inline += [j for j in jobs if held[j[0]]]
    named = None if bound is None else (file_mac(me, s.manifest.vault_id), bound)
    written: list[tuple[str, str, Header, dict[str, Any], Metadata]] = []
    order: list[int] = []
    try:
        with contextlib.ExitStack() as stack:
            batch = stack.enter_context(s.backend.document_batch(len(jobs)))
            if tasks:  # forked before the batch starts any thread
                from vault._ops.seal_workers import Workers, workers_for

                put = batch.committer()

                def seal(k: int) -> tuple[bytes | None, Header, dict[str, Any], Metadata, int]:
                    return *_seal_task(tasks[k], me, common, recipients), k

                def commit(prepared: tuple[bytes, Header, dict[str, Any], Metadata, int]
                           ) -> tuple[bytes | None, Header, dict[str, Any], Metadata, int]:
                    sealed, header, statement, meta, k = prepared
                    assert put is not None
                    put(tasks[k][1], tasks[k][2], sealed)
                    return None, header, statement, meta, k  # in place: the bytes stay here

                try:
                    workers = stack.enter_context(
                        Workers(workers_for(len(tasks)), seal, [t[4] for t in tasks],
                                commit if put is not None else None))
                except OSError:  # no process to spare (EAGAIN, ENOMEM): all sealed here
                    tasks, inline = [], jobs
                for task, (sealed, header, statement, meta, _) in zip(
                        tasks, workers.run(len(tasks)) if tasks else (), strict=True):
                    if sealed is not None:
                        with batch.write(task[1], task[2], len(sealed)) as out:
                            out.write(sealed)
                    written.append((task[1], task[2], header, statement, meta))
                    order.append(task[0])
            for i, doc_id, version, template, stream in inline:
                assert doc_id is not None
                written.append(_seal_one(batch, stream, doc_id, version, me, common,
                                         recipients, template, digests[i], (i + 1, len(jobs)),
                                         named))
                order.append(i)
        written = [w for _, w in sorted(zip(order, written, strict=True), key=lambda x: x[0])]
        _unchanged(sources, seen)
        states = [doc_state(d, v, h, ck, st, inputs) for d, v, h, st, _ in written]
        n = len(written)
        complete_wrapped(s, atts, states, ck,
                         reason=f"{n} document{'s' if n != 1 else ''} sealed")
    except BaseException:
        # Until their completion records are tried, they never counted: taken
        # away. After (an interrupt during the replay), they may count: they
        # stay, and 'doctor --repair' removes any the log does not count.
        # Every job's, not only those written here: a worker (stopped by now)
        # may have put one in place that it never got to report.
        if not any(a.completed for a in atts):
            for _, doc_id, version, *_ in jobs:
                with contextlib.suppress(VaultError, OSError):
                    s.backend.delete_document(str(doc_id), version)
        raise
    return [DocumentInfo.of(st, meta, header_size=len(h.encode()))
            for _, _, h, st, meta in written]


Job = tuple[int, "str | None", str, Metadata, BinaryIO]


def _unchanged(sources: Sequence[tuple[BinaryIO, str | None]],
               seen: Sequence[intake.Seen | None]) -> None:
    """Intake classified each file, then the sealer read it again: a file
    written in between (by whoever can write it, in a shared inbox) would be
    sealed under the label decided for other bytes. Checked after the last
    read, before anything counts: such a batch seals nothing."""
    for n, ((stream, _), saw) in enumerate(zip(sources, seen, strict=True), 1):
        if saw is not None and intake.stamp(stream) != saw.stamp:
            raise _changed(n, len(sources))


def _changed(n: int, of: int) -> IntegrityError:
    return IntegrityError(f"file {n} of {of} changed while it was being sealed: what was "
                          "sealed may not be what was classified; nothing was sealed",
                          hint="seal it again once nobody is writing it; if you did not "
                               "expect it to change, someone else can write it")


def _share_out(jobs: list[Job]) -> tuple[list[Task], list[Job]]:
    """The documents forked workers seal (small regular files, when there
    are enough of them, more than one core and no other thread in this
    process), and those sealed here."""
    if len(jobs) < 2 or not hasattr(os, "fork"):
        return [], jobs
    import threading

    if threading.active_count() > 1:
        # A thread of the caller's could hold a lock (OpenSSL's, the
        # allocator's) at the fork, which the child would then wait on forever.
        return [], jobs
    from vault._ops import seal_workers

    if len(jobs) < seal_workers.MIN_TASKS or seal_workers.cores() < 2:
        return [], jobs
    tasks: list[Task] = []
    inline: list[Job] = []
    for job in jobs:
        i, doc_id, version, template, stream = job
        spec = seal_workers.source_task(stream, size_hint(stream))
        if spec is None or doc_id is None:
            inline.append(job)
        else:
            tasks.append((i, doc_id, version, template, *spec))
    if len(tasks) < seal_workers.MIN_TASKS:
        return [], jobs
    return tasks, inline


def _seal_task(task: Task, me: UserIdentity, common: dict[str, Any],
               recipients: list[Recipient]) -> tuple[bytes, Header, dict[str, Any], Metadata]:
    """One task in a worker: the source read with ``pread`` (the parent's
    offset untouched), sealed in memory (docs/DESIGN.md §6.2)."""
    _, doc_id, _, template, fd, offset, size = task
    parts, got = [], 0
    while got <= size:  # one byte more than announced: a source that grew is seen
        chunk = os.pread(fd, size + 1 - got, offset + got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    out = io.BytesIO()
    header, statement, meta = _seal_into(out, io.BytesIO(b"".join(parts)), size, doc_id, me,
                                         common, recipients, template)
    return out.getvalue(), header, statement, meta


def _seal_one(batch: DocumentBatch, stream: BinaryIO, doc_id: str, version: str,
              me: UserIdentity, common: dict[str, Any], recipients: list[Recipient],
              template: Metadata, guard: tuple[int, bytes] | None = None,
              which: tuple[int, int] = (1, 1), named: tuple[hmac.HMAC, str] | None = None,
              ) -> tuple[str, str, Header, dict[str, Any], Metadata]:
    size = size_hint(stream)
    mac = named[0] if named is not None else None
    hashed = _Hashed(stream, mac) if guard is not None or named is not None else None
    with batch.write(doc_id, version, size) as out:
        header, statement, meta = _seal_into(out, cast(BinaryIO, hashed or stream), size,
                                             doc_id, me, common, recipients, template)
        if hashed is not None and guard is not None and not hashed.matches(guard):
            raise _changed(*which)  # before the document is in place
        if mac is not None and named is not None and not hmac.compare_digest(
                mac.hexdigest(), named[1]):
            raise _changed(*which)  # not the file its approved request names
    return doc_id, version, header, statement, meta


class _Hashed(io.RawIOBase):
    """A source read through, its bytes hashed (see intake.Seen), and fed
    to ``mac`` (a request's digest of its file) when given."""

    def __init__(self, raw: BinaryIO, mac: hmac.HMAC | None = None) -> None:
        self._raw, self._sha, self._n, self._mac = raw, hashlib.sha256(), 0, mac

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        got = cast(Any, self._raw).readinto(b)
        if got:
            self._sha.update(memoryview(b)[:got])
            if self._mac is not None:
                self._mac.update(memoryview(b)[:got])
            self._n += got
        return int(got or 0)

    def matches(self, guard: tuple[int, bytes]) -> bool:
        return (self._n, self._sha.digest()) == guard


def _seal_into(out: BinaryIO, stream: BinaryIO, size: int | None, doc_id: str,
               me: UserIdentity, common: dict[str, Any], recipients: list[Recipient],
               template: Metadata) -> tuple[Header, dict[str, Any], Metadata]:
    file_key = os.urandom(16)
    # The recipient stanzas do not depend on the content: made once.
    stanzas = [st for r in recipients for st in r.wrap(file_key)]
    made: dict[str, Any] = {}

    def header_for(plain: int, payload_sha: str, payload_len: int) -> Header:
        meta = Metadata(template.filename, template.title, template.content_type, plain)
        meta_stanza: Stanza = meta.seal(file_key, doc_id)
        statement = {**common, "doc": doc_id,
                     "content": content_of(payload_sha, payload_len, meta_stanza)}
        made.update(statement=statement, meta=meta)
        label_stanza = LabelStanza(statement, me).wrap(file_key)[0]
        return Header.seal([*stanzas, label_stanza, meta_stanza], file_key)

    header, _ = write_sealed(stream, out, file_key, header_for, template.filename, size=size)
    return header, made["statement"], made["meta"]
