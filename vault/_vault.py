"""The :class:`Vault`: policy, keys, labels and the audit log around age
files -- the one high-level recipe (docs/DESIGN.md).

Every operation follows the audit discipline of :mod:`vault._ops.discipline`
(decide, record durably, only then act; completion records for changes),
for the actor the caller's keys make them, against the state the verified
audit log records (:mod:`vault._trust`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, BinaryIO

# The other operations are imported by the methods that use them: a command
# loads only what it runs (start-up and peak RSS, docs/PERFORMANCE.md).
from vault._ops.approved import Approved
from vault._ops.session import Session
from vault._results import ApplyReport, DoctorReport, DocumentInfo, PolicyVersion, RotateReport
from vault.errors import UsageError
from vault.store import Backend, open_backend

if TYPE_CHECKING:  # pragma: no cover
    from datetime import timedelta

    from vault._trust.approvals import Approval, Request
    from vault._trust.manifest import Manifest
    from vault.age import Identity
    from vault.audit import AuditLog, AuditRecord, NoteVerifier, VerifyReport
    from vault.identity import UserIdentity
    from vault.policy import Policy

__all__ = ["Vault"]

Source = str | os.PathLike[str] | BinaryIO
Destination = str | os.PathLike[str] | BinaryIO
When = str | date | datetime
Approvals = Sequence[bytes]


class Vault:
    """An open vault.

    ``identity`` is needed for everything but read-only checks
    (:meth:`doctor` without repair). Who acts is decided by its keys: the
    policy user whose recipient and signing key it holds (its file's
    ``# name:`` is only a hint). ``state_dir`` is where this machine user
    keeps the verified replay of the vault's audit log (default
    ``$VAULT_STATE_DIR``, else ``~/.local/state/vault``).
    """

    def __init__(self, path: str | os.PathLike[str] | Backend,
                 identity: UserIdentity | None = None, *,
                 state_dir: str | os.PathLike[str] | None = None,
                 on_wait: Callable[[str], None] | None = None,
                 vault_id: str | None = None, for_incident: bool = False) -> None:
        """``on_wait(why)`` is called when an operation has to wait for the
        vault's lock, which another process holds. ``vault_id``: the id the
        caller knows the vault by (checked out of band), refused if it is
        another; it also confirms a new vault at a place that held another
        (IntegrityError otherwise: docs/DESIGN.md §8.3). ``for_incident``:
        open it even when the audit log no longer extends what this machine
        verified, to :meth:`declare_incident` the damage (docs/AUDIT.md
        §11.3); anything else still raises AuditIntegrityError until an
        incident explains the change."""
        from vault._trust.places import confirmed_id

        backend = open_backend(path)
        if not backend.exists():
            if backend.unfinished():  # no place for a new vault either
                raise UsageError(f"no vault at {backend.location}: it holds vault data but no "
                                 "manifest",
                                 hint="an init or a move that did not finish leaves this: make "
                                      "it again in a new folder or database; if a vault was "
                                      "there, its manifest was removed -- restore it from a "
                                      "backup, and treat it as an incident")
            raise UsageError(f"no vault at {backend.location}",
                             hint="create one with 'vault init DIR --policy FILE'")
        backend.on_wait = on_wait
        self._s = Session(backend, identity,
                          state_dir=None if state_dir is None else os.fspath(state_dir),
                          vault_id=confirmed_id(vault_id), for_incident=for_incident)

    # -- creating ------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] | Backend, policy_path: str | os.PathLike[str],
             officer: UserIdentity, *, recovery_out: str | os.PathLike[str] | None = None,
             recovery_passphrase: str | None = None) -> Vault:
        """Create a vault under the policy file ``policy_path``; ``officer``
        must be an administrator under it. ``recovery_out`` writes a new
        recovery identity file (0600; encrypted with ``recovery_passphrase``
        if given, which stock age also reads)."""
        from vault._ops.init import init_vault
        from vault._trust.state import state_base

        state_base()  # a state folder refused is refused before anything is made
        backend, vault_id = init_vault(path, policy_path, officer, recovery_out,
                                       recovery_passphrase)
        # The officer made this vault: a place that held another vault is
        # pinned to it anew on this machine (docs/DESIGN.md §8.3).
        return cls(backend, officer, vault_id=vault_id)

    # -- what it is ------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._s.manifest.vault_id

    @property
    def manifest(self) -> Manifest:
        """The verified ``vault.json``: pin ``manifest.officer`` and the
        vault id out of band."""
        return self._s.manifest

    @property
    def location(self) -> str:
        return self._s.backend.location

    @property
    def policy(self) -> Policy:
        """The policy version in force (the latest the audit log installed)."""
        self._s.trusted.catch_up()
        return self._s.trusted.policy

    @property
    def policy_version(self) -> int:
        self._s.trusted.catch_up()
        return self._s.trusted.policy_version

    @property
    def policy_versions(self) -> list[PolicyVersion]:
        """Every policy version installed, oldest first: the last is in force."""
        self._s.trusted.catch_up()
        return [PolicyVersion(*row) for row in self._s.trusted.policy_versions()]

    def policy_text(self, version: int | None = None) -> str:
        """The exact text of a policy version (default: the one in force)."""
        versions = self.policy_versions
        chosen = versions[-1] if version is None else next(
            (v for v in versions if v.version == version), None)
        if chosen is None:
            raise UsageError(f"no policy version {version} was installed in this vault",
                             hint=f"versions: 1 to {len(versions)}")
        text = self._s.trusted.store.policy_text(chosen.sha256)
        assert text is not None  # every version the log installed is kept
        return text

    @property
    def actor(self) -> str | None:
        """The policy user the identity's keys make the caller (None: a key
        the policy does not know)."""
        return self._s.actor().name

    @property
    def audit(self) -> AuditLog:
        """The vault's audit log (``vault.audit.AuditLog``), for reading. On
        a machine opened ``for_incident`` that stopped at damage, refused
        (AuditIntegrityError) until an incident explains the change: its
        checkpoint would sign, its proofs vouch for, a log it does not trust."""
        if self._s.trusted.refused is not None:
            self._s.trusted.catch_up(force=True)
        return self._s.log

    def audit_key_bindings(self) -> list[tuple[str | None, int, int | None, Any]]:
        """The keys a record is held to, as a third party's keys file gives
        them (docs/AUDIT.md §15): ``(name, first, end, public key)`` -- the
        key the policy gave ``name`` (None: a registered key, for records
        that carry no name) for the runs starting at lines ``first`` to
        ``end - 1`` (None: still in force)."""
        from vault._ops.verify import key_bindings

        return key_bindings(self._s)

    def audit_records(self, **filters: Any) -> Iterator[tuple[AuditRecord, bool, str | None]]:
        """The records ``audit.records(**filters)`` gives, oldest first, each
        with whether it is its actor's -- signed, with its run, by the key the
        policy in force then gave the name it carries -- and who signed it.
        One that is not its actor's is only a claim: anyone who can append
        can write another's name; the signer is then the user whose key
        verifies it, if any (None: nobody the policy knows). ``actor=NAME``
        gives the records NAME signed, under any name, and those carrying
        NAME (docs/AUDIT.md §14)."""
        from vault._ops.verify import key_lookup, signer_lookup

        lookup, fingerprints = signer_lookup(self._s)
        actor = filters.get("actor")
        return self._s.log.attributed_records(
            key_lookup(self._s), lookup,
            fingerprints(actor) if isinstance(actor, str) else set(),
            frozenset(self._s.trusted.sealed_off_now()), **filters)

    def audit_to_sign(self) -> AuditLog:
        """The vault's audit log, to sign a checkpoint of: refused
        (AuditIntegrityError) while this machine's replay finds records out
        of place (docs/AUDIT.md §8), as every decision is -- a checkpoint
        over them would disagree with the log once the lines are put back
        as written, on every machine."""
        from vault._ops.discipline import refuse_out_of_place

        log = self.audit
        refuse_out_of_place(self._s)
        return log

    def warnings(self) -> list[str]:
        """What this machine's replay of the audit log found that every
        command should say (records out of place, docs/AUDIT.md §11.3),
        without replaying again, what opening the vault set right in this
        machine's private state (a folder of the user's own made private),
        what reading the store passed over (a folder of statements that
        cannot be listed), and what changes made through this object
        recorded done but could not remove from the store (an old version
        left over, DESIGN.md §6.4); empty when there is nothing to say."""
        return [*self._s.notices, *self._s.backend.notices(), *self._s.left_over,
                *self._s.trusted.warnings()]

    def verify_audit(self, *, trusted_checkpoint: bytes | None = None,
                     verifier: NoteVerifier | None = None) -> VerifyReport:
        """Verify the audit log: Merkle tree, checkpoints (against
        ``verifier``, default the key pinned in ``vault.json``) and every
        record's signature by the key the policy in force then gave its
        actor."""
        from vault._ops.verify import verify_audit

        return verify_audit(self._s, trusted_checkpoint=trusted_checkpoint, verifier=verifier)

    def close(self) -> None:
        self._s.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault({self.location!r}, id={self.id!r})"

    # -- reading ---------------------------------------------------------------

    def ls(self, *, metadata: bool = False,
           where: Callable[[DocumentInfo], bool] | None = None) -> list[DocumentInfo]:
        """The documents the policy lets you list (``list`` action), those
        ``where`` accepts (it sees labels, ids and sealers, never titles).
        With ``metadata``, titles and file names of the ones you may open
        and hold the key of; ``hidden`` says why for the others. One audit
        record either way."""
        from vault._ops import read  # loaded when used, as seal: each process needs one

        return read.ls(self._s, metadata, where)

    def ls_json(self) -> str:
        """:meth:`ls` as JSON text (``[d.to_dict() for d in ls()]``), its
        characters as the signed labels hold them: whoever prints it escapes
        what is not printable, as the command line does (``vault ls --json``)."""
        from vault._ops import read

        return read.ls_json(self._s)

    def info(self, doc_id: str) -> DocumentInfo:
        """Label and, if you may open it and hold its key, its metadata."""
        from vault._ops import read

        return read.info(self._s, doc_id)

    def open(self, doc_id: str, dst: Destination, *, overwrite: bool = False,
             mark: bool = False, justification: str | None = None,
             approvals: Approvals = (), request: str | None = None) -> DocumentInfo:
        """Decrypt a document into ``dst`` (a path, written atomically and
        never over an existing file unless ``overwrite``, or a binary stream).
        A path is the user's output, as ``vault open -o`` takes it: a link of
        their own is followed, never replaced (one another user made is
        refused), a device or FIFO of theirs is written in place; it is
        written inside the attempt, so a failure to write it is recorded.
        With ``mark``, an Office or PDF document leaves with the vault's
        current label written into its sensitivity-label properties
        (docs/POLICY.md §11.6); the sealed bytes are not changed.

        Every action takes ``approvals`` (approval files' bytes) and
        ``request`` (a request id whose approvals were left in the vault)
        where a rule requires approval (docs/POLICY.md §4.5)."""
        from vault._ops import read

        return read.open_document(self._s, doc_id, dst, overwrite=overwrite, mark=mark,
                                  justification=justification,
                                  approved=self._approved(approvals, request))

    def open_into(self, doc_id: str, folder: str | os.PathLike[str] = ".", *,
                  overwrite: bool = False, mark: bool = False,
                  justification: str | None = None, approvals: Approvals = (),
                  request: str | None = None) -> tuple[str, DocumentInfo]:
        """Decrypt a document into ``folder`` under its stored file name
        (only its last part, cleaned; the id when none is usable): never
        outside the folder. Returns the path written and the document."""
        from vault._ops import read

        return read.open_into(self._s, doc_id, folder, overwrite=overwrite, mark=mark,
                              justification=justification,
                              approved=self._approved(approvals, request))

    def export(self, doc_id: str, dst: Destination, *, overwrite: bool = False,
               justification: str | None = None, approvals: Approvals = (),
               request: str | None = None) -> DocumentInfo:
        """Write the sealed document, a standard age file, to ``dst``. The
        result holds its title and file name only if you may also open it
        and hold its key (as :meth:`info`)."""
        from vault._ops import read

        return read.export(self._s, doc_id, dst, overwrite=overwrite,
                           justification=justification,
                           approved=self._approved(approvals, request))

    # -- writing ---------------------------------------------------------------

    def seal(self, src: Source, *, level: str | None = None, compartments: Sequence[str] = (),
             caveats: Sequence[str] = (), title: str | None = None, filename: str | None = None,
             declassify_on: When | None = None, embargo_until: When | None = None,
             justification: str | None = None, reason: str | None = None,
             content_type: str | None = None, approvals: Approvals = (),
             request: str | None = None) -> DocumentInfo:
        """Seal one file or stream; returns the new document."""
        (info,) = self.seal_many([src], level=level, compartments=compartments,
                                 caveats=caveats, title=title, filename=filename,
                                 declassify_on=declassify_on, embargo_until=embargo_until,
                                 justification=justification, reason=reason,
                                 content_type=content_type, approvals=approvals,
                                 request=request)
        return info

    def seal_many(self, srcs: Sequence[Source], *, level: str | None = None,
                  compartments: Sequence[str] = (), caveats: Sequence[str] = (),
                  title: str | None = None, filename: str | None = None,
                  declassify_on: When | None = None, embargo_until: When | None = None,
                  justification: str | None = None, reason: str | None = None,
                  content_type: str | None = None, approvals: Approvals = (),
                  request: str | None = None) -> list[DocumentInfo]:
        """Seal several sources under one label: one decision, one batch of
        decision records and one of completion records (approvals cover
        one source). Paths are all opened before the decision and stay open
        until the end: a call cannot take more files than the process may
        open (a usage error says so; ``vault seal`` splits its files to fit)."""
        from vault._ops import seal  # with intake: loaded by the processes that seal

        return seal.seal_many(self._s, list(srcs), level=level, compartments=compartments,
                              caveats=caveats, title=title, filename=filename,
                              declassify_on=declassify_on, embargo_until=embargo_until,
                              justification=justification, reason=reason,
                              content_type=content_type,
                              approved=self._approved(approvals, request))

    def reclassify(self, doc_id: str, *, level: str | None = None,
                   compartments: Sequence[str] | None = None,
                   caveats: Sequence[str] | None = None, justification: str | None = None,
                   declassify_on: When | None = None, embargo_until: When | None = None,
                   add_compartments: Sequence[str] = (),
                   remove_compartments: Sequence[str] = (),
                   add_caveats: Sequence[str] = (),
                   remove_caveats: Sequence[str] = (),
                   approvals: Approvals = (), request: str | None = None) -> DocumentInfo:
        """Give a document a new label, signed by you. ``compartments`` and
        ``caveats`` replace the current sets; ``add_…``/``remove_…`` change
        them instead (not both for one set). The result's ``previous`` and
        ``changes()`` say what was added and dropped; its title and file
        name are there only if you may open the document as relabelled (as
        :meth:`info`). A declassify-on duration not given anew is carried
        as the instant it falls due; a new label that reads as the current
        one (the same level, compartments, caveats, embargo and due
        instant) raises :class:`UsageError`. With approvals, the
        justification defaults to the approved request's."""
        from vault._ops import change

        changes = change.Changes(compartments, caveats, add_compartments, remove_compartments,
                                 add_caveats, remove_caveats)
        return change.reclassify(self._s, doc_id, level=level, changes=changes,
                                 justification=justification,
                                 declassify_on=declassify_on, embargo_until=embargo_until,
                                 approved=self._approved(approvals, request))

    def declassify(self, doc_ids: Sequence[str] | None = None, *, due: bool = False,
                   justification: str | None = None, approvals: Approvals = (),
                   request: str | None = None) -> list[DocumentInfo]:
        """Declassify ``doc_ids``, or (``due=True``) every document whose
        declassify-on instant is now or before (POLICY.md §5.3; approvals
        cover one document)."""
        from vault._ops import change

        return change.declassify(self._s, doc_ids, due=due, justification=justification,
                                 approved=self._approved(approvals, request))

    def shred(self, doc_id: str, *, justification: str | None = None,
              approvals: Approvals = (), request: str | None = None) -> None:
        """Destroy a document: recorded first, then every wrapped file key."""
        from vault._ops import change

        change.shred(self._s, doc_id, justification=justification,
                     approved=self._approved(approvals, request))

    # -- administration ----------------------------------------------------------

    def apply_policy(self, policy_path: str | os.PathLike[str], *,
                     justification: str | None = None, approvals: Approvals = (),
                     request: str | None = None) -> ApplyReport:
        """Install a new policy version, then reconcile the class keys."""
        from vault._ops import admin

        return admin.apply_policy(self._s, policy_path, justification=justification,
                                  approved=self._approved(approvals, request))

    def rotate(self, classes: Sequence[str] | None = None, *,
               post_quantum: bool = False, justification: str | None = None,
               approvals: Approvals = (), request: str | None = None) -> RotateReport:
        """Give label classes new keys and rewrap their documents (headers
        only). ``post_quantum``: only the classes whose key is classical,
        moving a vault to hybrid keys; run again to resume."""
        from vault._ops import admin

        return admin.rotate(self._s, classes, post_quantum=post_quantum,
                            justification=justification,
                            approved=self._approved(approvals, request))

    def declare_incident(self, first: int, last: int, *, reason: str,
                         approvals: Approvals = (), request: str | None = None,
                         checkpoint: bytes | None = None) -> int:
        """An administrator seals off audit lines ``first``..``last`` as
        damaged, keeping them as evidence (docs/AUDIT.md §11.3); returns the
        incident record's number. ``approvals``/``request``: where the
        policy asks a second person to approve administering. On a machine
        whose trusted tip covers a declared line (one that stopped at the
        damage, opened ``for_incident``, or one that did not notice it), the
        lines must explain the whole change below what it verified, the
        leaves they had when written reproducing its root:
        AuditIntegrityError otherwise, and no incident is recorded (the
        attempt is). Every declared line must show damage on this machine
        (not verifying as it stands, out of place, in the run of a
        signature that fails, differing from what it verified or from
        ``checkpoint``, or a record the replay refused): UsageError
        otherwise, likewise recorded.
        ``checkpoint``: a signed checkpoint note kept outside the vault, held
        to as that machine's tip is (and, if it covers them, where the
        leaves the lines had when written are established from)."""
        import tempfile

        from vault._ops.incident import declare_incident

        # The damage may be below what this machine verified, which refuses
        # to go on: the declaration is made from a fresh replay of the log,
        # held to what this machine verified -- whether that stopped it or
        # not: a change below its tip that keeps the lines' lengths is not
        # seen at opening, and a declaration over lines it verified must
        # still explain the whole change below its tip.
        # What this machine's own state trusts (not the fresh replay's tip,
        # the log as it is now): the leaves the declared lines had when
        # written are believed if they reproduce its root, or the root of
        # the checkpoint given -- never a stored checkpoint's.
        known = self._s.trusted.refused or self._s.log._tip
        verified = known if known is not None and known.size > first else None
        # And the leaves its tree holds at the lines sealed off here: a tip
        # made from such a line as this machine read it is held to those,
        # never to what the line says now -- anyone may have rewritten it
        # since -- nor to the fresh replay's (AUDIT.md §11.3).
        held = self._s.trusted.tip_leaves()
        with tempfile.TemporaryDirectory() as fresh:
            s = Session(self._s.backend, self._s.identity, state_dir=fresh,
                        vault_id=self._s.manifest.vault_id)
            try:
                return declare_incident(s, first, last, reason,
                                        approved=self._approved(approvals, request, s),
                                        verified=verified, known=known,
                                        checkpoint=checkpoint, held=held)
            finally:
                s.trusted.close()

    # -- two-person rule (docs/POLICY.md §4.5, docs/FORMAT.md §16) ---------------

    def _approved(self, approvals: Approvals, request: str | None,
                  session: Session | None = None) -> Approved | None:
        if not approvals and request is None:
            return None
        if isinstance(approvals, bytes | str):
            raise TypeError("approvals is a sequence of approval files' bytes")
        return Approved(session or self._s, list(approvals), request)

    def request(self, action: str, doc_id: str | None = None, *, level: str | None = None,
                compartments: Sequence[str] | None = None,
                caveats: Sequence[str] | None = None, justification: str | None = None,
                expires: timedelta | None = None, policy_path: str | os.PathLike[str] | None = None,
                classes: Sequence[str] | None = None,
                lines: tuple[int, int] | None = None,
                destination: str | os.PathLike[str] | None = None,
                file: str | os.PathLike[str] | None = None) -> Request:
        """Ask for approval of one action: ``open``, ``export``, ``shred``,
        ``reclassify`` (``level``, ``compartments``, ``caveats``: the new
        label, unchanged when None), ``declassify`` (of ``doc_id``);
        ``seal`` (the proposed label; with ``file``, the file to be sealed,
        whose floor intake finds: an approval to seal below it needs it, and
        serves a seal of that file alone);
        ``policy-apply`` (``policy_path``);
        ``rotate`` (``classes``, default all); ``incident`` (``lines``,
        first and last); ``doctor`` (``doctor --repair``); ``migrate`` (a
        move to ``destination``, ``migrate --to``). Signed with your key,
        recorded, and left in the vault for approvers; expires after
        ``expires`` (default 7 days, at most 90). ``Request.to_bytes()`` is
        the request file."""
        from vault._ops import approve

        return approve.make_request(self._s, action, doc_id, justification=justification,
                                    lifetime=expires, level=level, compartments=compartments,
                                    caveats=caveats, policy_path=policy_path, classes=classes,
                                    lines=lines, destination=destination, file=file)

    def approve(self, request: bytes, *, refuse: bool = False, reason: str | None = None,
                expires: timedelta | None = None,
                policy: str | os.PathLike[str] | None = None,
                destination: str | os.PathLike[str] | None = None) -> Approval:
        """Answer a request file with your own key, after checking it against
        the vault as it is now; recorded, and left in the vault for the
        requester. ``Approval.to_bytes()`` is the approval file. Approving a
        new policy version needs its file, ``policy`` (the one asked for);
        approving a move, its ``destination``."""
        from vault._ops import approve

        return approve.answer(self._s, request, refuse=refuse, reason=reason, lifetime=expires,
                              policy_path=policy, destination=destination)

    def find_request(self, request_id: str) -> Request:
        """A request left in the vault or on the record, by its id."""
        from vault._ops import approve

        return approve.find(self._s, request_id)

    def approvals(self) -> list[Request]:
        """Requests you may still answer: unexpired, unanswered by you."""
        from vault._ops import approve

        return approve.pending(self._s)

    def explain_request(self, request: Request,
                        policy: str | os.PathLike[str] | None = None) -> str:
        """A request in plain words, why the policy needs approval, and
        whether yours would count; for a new policy version, with its file
        ``policy``, what it changes from the version in force:
        :meth:`explain_request_lines` as one text."""
        return "\n".join(self.explain_request_lines(request, policy))

    def explain_request_lines(self, request: Request,
                              policy: str | os.PathLike[str] | None = None) -> list[str]:
        """:meth:`explain_request`, one string a line: every value it quotes
        (a rule's description, a marking, a name) is escaped in its line,
        so that none adds a line to the screen the approver decides on."""
        self._s.trusted.catch_up()
        from vault._ops import approve

        return approve.explain(self._s, request, policy)

    def doctor(self, repair: bool = False, *, deep: bool = False, approvals: Approvals = (),
               request: str | None = None,
               recovery: Sequence[Identity] = ()) -> DoctorReport:
        """Check that the store agrees with the verified audit log;
        ``repair`` (an administrator) mends what can be mended, with
        ``approvals``/``request`` where the policy asks for them. With
        ``recovery`` (the recovery identities, :func:`vault.age.load_identities`),
        also check that they open every document: only their holder can."""
        from vault._ops import doctor

        return doctor.doctor(self._s, repair, deep,
                             approved=self._approved(approvals, request) if repair else None,
                             recovery=recovery)
