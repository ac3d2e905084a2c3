"""Reading operations: ls, info, open, export (docs/DESIGN.md §6.3).

Documents are listed from the trusted state (the verified audit log's
record of each document's current label), never from an index anyone could
edit. ``open`` and ``export`` read the version the log records, check its
header against the recorded digest before anything else, record the
decision, and check the payload against the label's content commitment as
they stream it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._atomic import atomic_writer, open_output, output_target
from vault._ops import marking
from vault._ops.discipline import OutOfPlace, attempt, authorise, check_free_text, record
from vault._results import LISTED_WITHOUT_TITLES, DocumentInfo, listing_entry
from vault._sealed.meta import Metadata
from vault._sealed.reading import PayloadDigest, Sealed, read_sealed, unlock
from vault.age import decrypt_payload
from vault.errors import IntegrityError, UsageError, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault.identity import AgeKeyPair
    from vault.policy import Label, Policy

__all__ = ["HIDDEN_NO_KEY", "HIDDEN_POLICY", "export", "hidden_by_policy", "info", "ls", "ls_json",
           "open_document", "open_into"]

Destination = str | os.PathLike[str] | BinaryIO
# Why a title and file name are not shown (DocumentInfo.hidden).
HIDDEN_POLICY = "the policy does not let you open it"
HIDDEN_NO_KEY = ("you hold no key for its class yet (someone who holds it grants it when "
                 "they next use it, or with 'vault rotate')")
CHANGED_WHILE_LISTED = "it was relabelled while it was listed (list again)"
POLICY_CHANGED_WHILE_LISTED = "the policy changed while it was listed (list again)"
HIDDEN_OUT_OF_PLACE = "records of the audit log are out of place: nothing is opened until " \
    "they are put back"


_DECODE = json.JSONDecoder().decode


def _listed(s: Session, *, metadata: bool = False,
            where: Callable[[DocumentInfo], bool] | None = None,
            as_json: bool = False) -> list[Any]:
    """The documents the caller may list (and ``where`` accepts):
    :class:`DocumentInfo` objects, or (``as_json``, without ``metadata`` or
    ``where``) the JSON texts of their ``to_dict()`` forms; with
    ``metadata``, titles and file names where the caller may open the
    document and holds its key."""
    if as_json and (metadata or where is not None):
        raise ValueError("as_json lists without metadata or filters")
    actor = s.actor()
    with attempt(s, "ls") as att:
        if actor.name is None or actor.name not in s.trusted.policy.users:
            from vault.policy import Label

            authorise(s, att, "list", Label(level=s.trusted.policy.levels[0].name))
        policy = s.trusted.policy  # until a document's read installs a newer version
        allowed = policy.decider(actor.decides_as, "list")  # one moment for all
        # Documents sealed together share their label: each distinct one is
        # read (and written back canonically) once.
        labels: dict[str, Label] = {}
        out: list[Any] = []
        if as_json:  # 'vault ls --json': the entries made when the log was replayed
            verdicts: dict[str, bool] = {}
            for _, text, label_text, entry in s.trusted.store.listing_entries():
                with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                    if label_text is None or entry is None:  # as the slow path would fail
                        label_text, entry = listing_entry(_DECODE(text or ""))
                    ok = verdicts.get(label_text)
                    if ok is None:  # one decision per distinct label, at one moment
                        ok = verdicts[label_text] = bool(allowed(_DECODE(label_text)))
                    if ok:
                        out.append(entry)
        for _, text, _, _ in () if as_json else s.trusted.store.listing():
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                statement = _DECODE(text)
                raw = statement["label"]
                if not allowed(raw):
                    continue
                # The statement is canonical JSON (keys sorted), so equal labels
                # decode to equal dicts in the same order: repr tells them apart
                # several times faster than encoding them again.
                key = repr(raw)
                known = labels.get(key)
                if known is None:
                    from vault.policy import Label

                    known = labels[key] = Label.from_dict(raw)
                content = statement.get("content") or {}
                doc = DocumentInfo(
                    label=known, id=str(statement["doc"]),
                    sealed_at=str(statement["sealed_at"]), sealed_by=str(statement["sealed_by"]),
                    size=int(content.get("size", 0)), classified_by=raw.get("classified_by"),
                    policy=statement.get("policy"), payload_sha256=content.get("payload"),
                    title=None, filename=None, content_type=None, plaintext_size=None,
                    hidden=LISTED_WITHOUT_TITLES)
                if where is None or where(doc):
                    out.append(doc)
        if metadata:
            out = _with_metadata(s, out, policy)
        count = len(out)
        shown = sum(d.hidden is None for d in out) if metadata else 0
        record(s, [att], "allowed", [], f"{count} document{'s' if count != 1 else ''} listed"
               + (f", {shown} with titles" if metadata else ""))
    return out


def _with_metadata(s: Session, infos: list[DocumentInfo],
                   policy: Policy) -> list[DocumentInfo]:
    """Titles and file names of the documents the caller may open and holds
    the key of (as :func:`info` shows them); for the rest, why not. The
    documents were listed under ``policy``; what is shown is decided under
    the version the listing's record names, the one in force at its end."""
    if s.trusted.out_of_place() is not None:
        # Opening is decided under a policy the records out of place may
        # have changed (a revocation): nothing is opened meanwhile.
        return _out_of_place(infos)
    try:
        shown = _titled(s, infos)
    except OutOfPlace:  # a document's read caught up and met them
        return _out_of_place(infos)
    if s.trusted.out_of_place() is not None:
        # Met by any other catch-up during the reads: the titles were
        # decided without the records they moved.
        return _out_of_place(infos)
    if s.trusted.policy is policy:
        return shown
    # Reading a document another process had changed caught the state up
    # with the log, and with it a policy version installed since: the
    # listing is decided again under that one, reading nothing more (so
    # nothing catches up again before the record).
    return _decided_again(s, infos, shown)


def _out_of_place(infos: list[DocumentInfo]) -> list[DocumentInfo]:
    return [dataclasses.replace(doc, hidden=HIDDEN_OUT_OF_PLACE) for doc in infos]


def _decided_again(s: Session, listed: list[DocumentInfo],
                   shown: list[DocumentInfo]) -> list[DocumentInfo]:
    """``shown`` (what was read for ``listed``, in order) under the policy
    version in force now: a document it does not let the caller list is
    left out, the title of one it does not let them open hidden, and one
    hidden by the earlier version's decision said to be worth listing again."""
    decides_as = s.actor().decides_as
    may_list = s.trusted.policy.decider(decides_as, "list")
    may_open = s.trusted.policy.decider(decides_as, "open")
    out = []
    for doc, got in zip(listed, shown, strict=True):
        raw = doc.label.to_dict()
        if not may_list(raw):
            continue
        if not may_open(raw):
            got = dataclasses.replace(doc, hidden=HIDDEN_POLICY)
        elif got.hidden == HIDDEN_POLICY:
            got = dataclasses.replace(doc, hidden=POLICY_CHANGED_WHILE_LISTED)
        out.append(got)
    return out


def _titled(s: Session, infos: list[DocumentInfo]) -> list[DocumentInfo]:
    """:func:`_with_metadata` under the policy version in force when it
    starts: one entry for each of ``infos``, in order."""
    may_open = s.trusted.policy.decider(s.actor().decides_as, "open")
    keys: dict[str, list[AgeKeyPair]] = {}
    out = []
    for doc in infos:
        if not may_open(doc.label.to_dict()):
            out.append(dataclasses.replace(doc, hidden=HIDDEN_POLICY))
            continue
        try:
            sealed, f = read_sealed(s.backend, s.trusted, doc.id, current=True)
            f.close()
            if sealed.label.label != doc.label:
                # Relabelled since it was listed: decided on its old label,
                # it shows nothing of the new version.
                out.append(dataclasses.replace(doc, hidden=CHANGED_WHILE_LISTED))
                continue
            kid = sealed.row.key_id
            if kid not in keys:
                keys[kid] = class_identities(s, sealed)
            if not keys[kid]:
                out.append(dataclasses.replace(doc, hidden=HIDDEN_NO_KEY))
                continue
            _, meta = unlock(sealed, keys[kid], s.trusted)
        except OutOfPlace:
            raise  # nothing more is read: every title is hidden (_with_metadata)
        except VaultError as e:  # one damaged document does not hide the others
            out.append(dataclasses.replace(doc, hidden=f"cannot be read: {e.message}"))
            continue
        out.append(DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size))
    return out


def ls(s: Session, metadata: bool = False,
       where: Callable[[DocumentInfo], bool] | None = None) -> list[DocumentInfo]:
    return _listed(s, metadata=metadata, where=where)


def ls_json(s: Session) -> str:
    # Each entry is encoded as json.dumps(..., sort_keys=True, separators=(",", ":"),
    # ensure_ascii=False) encodes it (vault._results.listing_entry), so the
    # joined list is exactly that encoding of the whole listing.
    return "[" + ",".join(_listed(s, as_json=True)) + "]"


def class_identities(s: Session, sealed: Sealed) -> list[AgeKeyPair]:
    """The caller's identity of the document's class key, if they hold it.
    An entry of theirs the store cannot hand over (made unreadable, or
    something else planted at its name) fails what needs it, naming it."""
    ck = s.trusted.key(sealed.row.key_id)
    if ck is None:
        return []
    keyring = s.my_keyring()
    found = keyring.identity(ck)
    why = keyring.damage(ck) if found is None else None
    if why is not None:
        raise IntegrityError(f"your keyring entry for {ck.cls} generation {ck.generation}: "
                             f"{why}", hint="it gives you nothing: 'vault doctor' names it; "
                             "treat it as an incident")
    return [found] if found is not None else []


def hidden_by_policy(s: Session, label: Label) -> str | None:
    """Why the policy keeps the caller from seeing the title and file name
    of a document under ``label`` (:data:`HIDDEN_POLICY`), or None when it
    lets them ``open`` it: whoever may not open a document is shown none
    of its metadata, whatever else they may do with it. Decided for the
    actor under the policy version in force now (after any catch-up of
    the read)."""
    if s.trusted.policy.decide(s.actor().decides_as, "open", label).allowed:
        return None
    return HIDDEN_POLICY


def info(s: Session, doc_id: str) -> DocumentInfo:
    with attempt(s, "info", doc_id) as att:
        sealed, f = read_sealed(s.backend, s.trusted, doc_id, current=True)
        f.close()
        att.label = label = sealed.label.label
        authorise(s, att, "list", label)
        meta: Metadata | None = None
        hidden = hidden_by_policy(s, label)
        if hidden is None:
            ids = class_identities(s, sealed)
            if not ids:
                hidden = HIDDEN_NO_KEY
            else:
                _, meta = unlock(sealed, ids, s.trusted)
    return DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size,
                           hidden=hidden)


def _check_destination(dst: Destination, overwrite: bool, *, given: bool = True) -> None:
    """Before anything is recorded or decrypted: refuse an impossible
    request. A path the caller ``given`` is the user's own output
    (vault._atomic.output_target): a file replaced only with ``overwrite``,
    a device or FIFO of theirs written in place, a link never replaced and
    refused if another user made it. A name the vault made up (open_into)
    must be a new file, or one to replace."""
    if not isinstance(dst, str | os.PathLike):
        return
    path = os.fspath(dst)
    if given:
        try:
            output_target(path, replace=overwrite)
        except FileExistsError as e:  # names the file a link leads to
            raise UsageError(f"{e.filename or path} already exists",
                             hint="choose another name, or overwrite it (--force)") from None
        return
    if not overwrite and os.path.lexists(path):
        raise UsageError(f"{path} already exists", hint="choose another name, or overwrite it")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder", hint="give a file name inside it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: its folder does not exist",
                         hint=f"create {folder} first, or choose another file")


@contextlib.contextmanager
def _destination(dst: Destination, overwrite: bool, *, given: bool = True
                 ) -> Iterator[BinaryIO]:
    """Where the output goes, written inside the attempt: a file appears
    whole or not at all, and a failure to commit it (a full disk, a signal)
    is the attempt's outcome, on the record."""
    if not isinstance(dst, str | os.PathLike):
        yield dst
        return
    path = os.fspath(dst)
    try:
        if given:
            with open_output(path, mode=0o600, replace=overwrite) as out:
                yield out
        else:
            # sweep: a killed earlier run may have left its partial plaintext
            # in that folder (docs/THREAT-MODEL.md, "Temporary files").
            with atomic_writer(path, mode=0o600, replace=overwrite, sweep=True) as out:
                yield out
    except FileExistsError as e:  # link(2) names the new file second
        raise UsageError(f"{e.filename2 or e.filename or path} already exists",
                         hint="choose another name, or overwrite it (--force)"
                         ) from None
    except FileNotFoundError:
        raise UsageError(f"cannot write {path}: its folder does not exist") from None


@contextlib.contextmanager
def _authorised(s: Session, action: str, doc_id: str, dst: Destination | None, overwrite: bool,
                justification: str | None,
                approved: Approved | None) -> Iterator[tuple[Sealed, BinaryIO]]:
    """The first steps of open and export, in the order that keeps the
    promise "recorded before anything leaves" (docs/DESIGN.md §6)."""
    check_free_text(justification, "justification")
    if dst is not None:
        _check_destination(dst, overwrite)  # an impossible request is no attempt
    with attempt(s, action, doc_id) as att:
        sealed, f = read_sealed(s.backend, s.trusted, doc_id, current=True)
        with f:
            att.label = sealed.label.label
            if approved:
                approved.bind(action, doc_id, sealed.row.header)
                justification = approved.justification(justification)
            authorise(s, att, action, sealed.label.label,
                      inputs={"justification": justification} if justification else None,
                      note=f"justification: {justification}" if justification else "",
                      approved=approved)
            yield sealed, f


def open_document(s: Session, doc_id: str, dst: Destination, *, overwrite: bool,
                  mark: bool = False, justification: str | None = None,
                  approved: Approved | None = None) -> DocumentInfo:
    with _authorised(s, "open", doc_id, dst, overwrite, justification,
                     approved) as (sealed, f):
        meta = _deliver(s, sealed, f, lambda _: dst, overwrite, mark)
    return DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size)


def _deliver(s: Session, sealed: Sealed, f: BinaryIO,
             destination: Callable[[Metadata], Destination], overwrite: bool,
             mark: bool, *, given: bool = True) -> Metadata:
    """Decrypt an authorised document to where ``destination`` says (told
    its metadata), checking the payload against the label's commitment
    before the destination appears; marked on the way out with ``mark``."""
    mapping = marking.mapping_for(s.trusted.policy, sealed.label.label) if mark else None
    file_key, meta = unlock(sealed, class_identities(s, sealed), s.trusted)
    dst = destination(meta)
    digest = PayloadDigest()
    if mapping is not None:
        plain = marking.Plaintext()
        decrypt_payload(f, plain, file_key, payload_sink=digest)
        digest.check(sealed)
        with _destination(dst, overwrite, given=given) as out:
            marking.write_marked(plain.getvalue(), out, mapping)
    else:
        with _destination(dst, overwrite, given=given) as out:
            decrypt_payload(f, out, file_key, payload_sink=digest)
            digest.check(sealed)  # before the destination appears
    return meta


_FOREIGN_HINT = ("open into a folder of your own: its owner would see the file's name and "
                 "size, and could move it")


def open_into(s: Session, doc_id: str, folder: str | os.PathLike[str], *,
              overwrite: bool, mark: bool = False, justification: str | None = None,
              approved: Approved | None = None) -> tuple[str, DocumentInfo]:
    """Open a document into ``folder`` under its stored file name, made
    safe (:func:`vault._ops.filenames.safe_filename`): never outside it."""
    from vault._inputs import refuse_foreign_folders, refuse_planted_links
    from vault._ops.filenames import safe_filename

    where = os.fspath(folder)
    # A link another user made at the folder (or on its way) would put the
    # plaintext in a folder of theirs, as for -o FILE (THREAT-MODEL §13.2).
    refuse_planted_links(where, "open into a folder of your own, without that link",
                         new=True)
    if not os.path.isdir(where):
        raise UsageError(f"{where} is not a folder", hint="create it first, or give -o FILE")
    # So would a folder of theirs, made where the user meant a new file to
    # go (-o shared/report.txt): its owner would learn the stored file name
    # and size, and could move the file. Nor may one of theirs lie on the
    # way: they could move the user's folder out of it and put theirs there.
    refuse_foreign_folders(where, _FOREIGN_HINT)
    with _authorised(s, "open", doc_id, None, overwrite, justification,
                     approved) as (sealed, f):
        path = ""

        def named(meta: Metadata) -> str:
            nonlocal path
            path = os.path.join(where, safe_filename(meta.filename, doc_id, meta.content_type))
            refuse_planted_links(path, "open into a folder of your own, without that link",
                                 new=True)  # again: the folder may have been swapped since
            refuse_foreign_folders(where, _FOREIGN_HINT)
            _check_destination(path, overwrite, given=False)
            return path

        meta = _deliver(s, sealed, f, named, overwrite, mark, given=False)
    return path, DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size)


def export(s: Session, doc_id: str, dst: Destination, *, overwrite: bool,
           justification: str | None = None, approved: Approved | None = None) -> DocumentInfo:
    with _authorised(s, "export", doc_id, dst, overwrite, justification,
                     approved) as (sealed, f):
        meta = None
        ids = class_identities(s, sealed)
        if ids:  # verify all that the file key shows before it leaves the vault
            _, meta = unlock(sealed, ids, s.trusted)
        # Conveying a document is no leave to read its title (as info).
        hidden = hidden_by_policy(s, sealed.label.label) if meta is not None else None
        digest = PayloadDigest()
        with _destination(dst, overwrite) as out:
            out.write(sealed.header.encode())
            while chunk := f.read(1 << 20):
                digest(memoryview(chunk))
                out.write(chunk)
            digest.check(sealed)
    return DocumentInfo.of(sealed.label.statement, None if hidden else meta,
                           header_size=sealed.header_size, hidden=hidden)
