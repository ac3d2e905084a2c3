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
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from vault._atomic import atomic_writer
from vault._ops.discipline import attempt, authorise, record
from vault._results import DocumentInfo
from vault._sealed.meta import Metadata
from vault._sealed.reading import PayloadDigest, Sealed, read_sealed, unlock
from vault.age import decrypt_payload
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault.identity import AgeKeyPair
    from vault.policy import Label

__all__ = ["export", "info", "ls", "ls_json", "open_document"]

Destination = str | os.PathLike[str] | BinaryIO


_HIDDEN = "not opened by 'ls'"


def _listed(s: Session, *, as_dicts: bool = False) -> list[Any]:
    """The documents the caller may list: :class:`DocumentInfo` objects, or
    (``as_dicts``) their ``to_dict()`` forms, made without the objects."""
    actor = s.actor()
    with attempt(s, "ls") as att:
        if actor.name is None or actor.name not in s.trusted.policy.users:
            from vault.policy import Label

            authorise(s, att, "list", Label(level=s.trusted.policy.levels[0].name))
        allowed = s.trusted.policy.decider(actor.decides_as, "list")  # one moment for all
        # Documents sealed together share their label: each distinct one is
        # read (and written back canonically) once.
        labels: dict[str, tuple[Label, dict[str, Any]]] = {}
        out: list[Any] = []
        for _, text, _, _ in s.trusted.store.listing():
            with contextlib.suppress(ValueError, TypeError, KeyError, AttributeError):
                statement = json.loads(text)
                raw = statement["label"]
                if not allowed(raw):
                    continue
                key = json.dumps(raw, sort_keys=True)
                known = labels.get(key)
                if known is None:
                    from vault.policy import Label

                    label = Label.from_dict(raw)
                    known = labels[key] = (label, label.to_dict())
                content = statement.get("content") or {}
                fields = {"id": str(statement["doc"]), "sealed_at": str(statement["sealed_at"]),
                          "sealed_by": str(statement["sealed_by"]),
                          "size": int(content.get("size", 0)),
                          "classified_by": raw.get("classified_by"),
                          "policy": statement.get("policy"),
                          "payload_sha256": content.get("payload"), "title": None,
                          "filename": None, "content_type": None, "plaintext_size": None,
                          "hidden": _HIDDEN}
                out.append({**fields, "label": known[1]} if as_dicts
                           else DocumentInfo(label=known[0], **fields))
        count = len(out)
        record(s, [att], "allowed", [], f"{count} document{'s' if count != 1 else ''} listed")
    return out


def ls(s: Session) -> list[DocumentInfo]:
    return _listed(s)


def ls_json(s: Session) -> str:
    return json.dumps(_listed(s, as_dicts=True), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def class_identities(s: Session, sealed: Sealed) -> list[AgeKeyPair]:
    ck = s.trusted.key(sealed.row.key_id)
    if ck is None:
        return []
    found = s.my_keyring().identity(ck)
    return [found] if found is not None else []


def info(s: Session, doc_id: str) -> DocumentInfo:
    actor = s.actor()
    with attempt(s, "info", doc_id) as att:
        sealed, f = read_sealed(s.backend, s.trusted, doc_id)
        f.close()
        att.label = label = sealed.label.label
        authorise(s, att, "list", label)
        meta: Metadata | None = None
        hidden = None
        if not s.trusted.policy.decide(actor.decides_as, "open", label).allowed:
            hidden = "the policy does not let you open it"
        else:
            ids = class_identities(s, sealed)
            if not ids:
                hidden = "you hold no key for its class yet"
            else:
                _, meta = unlock(sealed, ids, s.trusted)
    return DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size,
                           hidden=hidden)


def _check_destination(dst: Destination, overwrite: bool) -> None:
    # Before anything is recorded or decrypted: refuse an impossible request.
    if isinstance(dst, str | os.PathLike) and not overwrite and os.path.lexists(dst):
        raise UsageError(f"{os.fspath(dst)} already exists",
                         hint="choose another name, or overwrite it")
    if isinstance(dst, str | os.PathLike) and os.path.isdir(dst):
        raise UsageError(f"{os.fspath(dst)} is a folder",
                         hint="give a file name inside it")


@contextlib.contextmanager
def _destination(dst: Destination, overwrite: bool) -> Iterator[BinaryIO]:
    if not isinstance(dst, str | os.PathLike):
        yield dst
        return
    path = os.fspath(dst)
    try:
        # sweep: a killed earlier run may have left its partial plaintext in
        # that folder (docs/THREAT-MODEL.md, "Temporary files").
        with atomic_writer(path, mode=0o600, replace=overwrite, sweep=True) as out:
            yield out
    except FileExistsError:
        raise UsageError(f"{path} already exists",
                         hint="choose another name, or overwrite it") from None
    except FileNotFoundError:
        raise UsageError(f"cannot write {path}: its folder does not exist") from None


@contextlib.contextmanager
def _authorised(s: Session, action: str, doc_id: str, dst: Destination,
                overwrite: bool) -> Iterator[tuple[Sealed, BinaryIO]]:
    """The first steps of open and export, in the order that keeps the
    promise "recorded before anything leaves" (docs/DESIGN.md §6)."""
    with attempt(s, action, doc_id) as att:
        _check_destination(dst, overwrite)
        sealed, f = read_sealed(s.backend, s.trusted, doc_id)
        with f:
            att.label = sealed.label.label
            authorise(s, att, action, sealed.label.label)
            yield sealed, f


def open_document(s: Session, doc_id: str, dst: Destination, *,
                  overwrite: bool) -> DocumentInfo:
    with _authorised(s, "open", doc_id, dst, overwrite) as (sealed, f):
        file_key, meta = unlock(sealed, class_identities(s, sealed), s.trusted)
        digest = PayloadDigest()
        with _destination(dst, overwrite) as out:
            decrypt_payload(_Tee(f, digest), out, file_key)  # type: ignore[arg-type]
            digest.check(sealed)  # before the destination appears
    return DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size)


def export(s: Session, doc_id: str, dst: Destination, *, overwrite: bool) -> DocumentInfo:
    with _authorised(s, "export", doc_id, dst, overwrite) as (sealed, f):
        meta = None
        ids = class_identities(s, sealed)
        if ids:  # verify all that the file key shows before it leaves the vault
            _, meta = unlock(sealed, ids, s.trusted)
        digest = PayloadDigest()
        with _destination(dst, overwrite) as out:
            out.write(sealed.header.encode())
            tee = _Tee(f, digest)
            while chunk := tee.read(1 << 20):
                out.write(chunk)
            digest.check(sealed)
    return DocumentInfo.of(sealed.label.statement, meta, header_size=sealed.header_size)


class _Tee:
    """A readable that hands every byte read to a digest (the payload
    commitment is checked as the payload streams by)."""

    def __init__(self, f: BinaryIO, digest: PayloadDigest) -> None:
        self._f = f
        self._digest = digest

    def readinto(self, buf: memoryview | bytearray) -> int:
        n = self._f.readinto(buf)  # type: ignore[attr-defined]
        if n:
            self._digest(memoryview(buf)[:n])
        return int(n or 0)

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if data:
            self._digest(data)
        return data

