"""Administration: installing a policy version and rotating class keys
(docs/DESIGN.md §6.6).

A policy version is installed by a record in the audit log that carries its
text; from that record on it is in force, for every process. Then the
class keys are reconciled with it:

* a key whose holders are all still cleared is granted to newly cleared
  users (by whoever holds it);
* a key someone no longer cleared could know is *unclean*: never encrypted
  to again. If the installer is cleared for the class, the class gets a new
  generation at once, its documents are rewrapped (header only) and the
  entries nobody should hold any more are retired; otherwise this is
  reported as pending, naming who can finish it with ``vault rotate`` --
  until then the revoked user's old key still opens those documents, which
  they could open before anyway.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vault._ops.discipline import Attempt, attempt, authorise, check_counted, complete, record
from vault._ops.init import read_policy_file
from vault._ops.keys import create_generation, grant_missing, lacking, retire, unopenable_entry
from vault._ops.replaced import remove_version
from vault._ops.seal import doc_state, new_version, rewrap_stanzas
from vault._results import ApplyReport, RotateReport
from vault._sealed.label import LabelStanza
from vault._sealed.reading import read_sealed, unlock
from vault._sealed.writing import write_rewrapped
from vault._trust.classes import ClassKey, LabelClass, cleared_users, may_withdraw, withdrawable
from vault._trust.trusted import recovery_for
from vault.age import Header
from vault.errors import (
    AuditIntegrityError,
    AuditWriteError,
    IntegrityError,
    NoKeyError,
    PartialError,
    StorageError,
    UsageError,
    VaultError,
)

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.approved import Approved
    from vault._ops.session import Session
    from vault._trust.state import DocRow
    from vault.policy import Policy

__all__ = ["apply_policy", "rotate"]

_REWRAP_BATCH = 64  # documents rewrapped per batch of records


def apply_policy(s: Session, policy_path: str | os.PathLike[str], *,
                 justification: str | None = None,
                 approved: Approved | None = None) -> ApplyReport:
    with attempt(s, "policy-apply") as att:
        raw, new = read_policy_file(policy_path)
        old = s.trusted.policy
        if old.may_administer(s.actor().decides_as):
            _check_successor(s, new)  # a non-administrator is simply denied below
        version = s.trusted.policy_version + 1
        if approved:
            approved.bind("policy-apply", details={"policy": new.hash})
            justification = approved.justification(justification)
        authorise(s, att, "administer", None, inputs=_justified(justification),
                  note=f"install policy version {version} (sha256 {new.hash})"
                  + (f"; justification: {justification}" if justification else ""),
                  approved=approved)
        with s.lock():
            if s.trusted.policy_version != version - 1:
                raise StorageError("another policy version was installed meanwhile",
                                   hint="review it, then apply yours again")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError("a policy file must be UTF-8 text") from None
            complete(s, [att], [{"policy": {"version": version, "sha256": new.hash,
                                            "text": text}}])
            if s.trusted.policy_version != version:
                raise IntegrityError("the policy version was recorded but did not come into "
                                     "force", hint="run 'vault doctor': it names the reason")
            report = ApplyReport(version, new.hash)
            reconcile(s, report)
    return report


def _check_successor(s: Session, new: Policy) -> None:
    """The installer stays an administrator, with the same keys, under the
    new version: nobody should lock the vault's last officer out by mistake."""
    me = s.me()
    name = s.actor().name
    user = new.users.get(name or "")
    if user is None or (user.signing_key, user.recipient) != (me.signing_public, me.recipient) \
            or not new.may_administer(user.name):
        raise UsageError(
            "the new policy must keep you an administrator, with the same keys",
            hint="hand over in two steps: add the new officer first, then let them remove you")
    if new.hash == s.trusted.policy.hash:
        raise UsageError("this policy is already the active version")
    _check_nobody_stranded(s, new)
    _check_whole_identities(s, new)
    recovery = recovery_for(new, s.manifest.recovery)
    if new.post_quantum == "required" and not all(r.startswith("age1pq1") for r in recovery):
        raise UsageError("post_quantum is required but this vault's recovery recipient made at "
                         "'vault init' is classical",
                         hint="name a post-quantum recovery recipient in the policy "
                              "('vault age keygen --pq'), docs/POLICY.md §3.12")


def _check_whole_identities(s: Session, new: Policy) -> None:
    """A recipient and a signing key come from one identity (one secret):
    a version pairing either with another than it ever had is a typing
    mistake or a trick, and its person's client would then be no user --
    an honest attempt recorded with no name under a key the policy gives a
    name, which verification must call a finding."""
    recipient_of: dict[str, str] = {}
    signing_of: dict[str, str] = {}
    for _, sha, *_ in s.trusted.policy_versions():
        for u in s.trusted.policy_by_hash(sha).users.values():
            recipient_of.setdefault(u.signing_key, u.recipient)
            signing_of.setdefault(u.recipient, u.signing_key)
    for u in new.users.values():
        if recipient_of.get(u.signing_key, u.recipient) != u.recipient or \
                signing_of.get(u.recipient, u.signing_key) != u.signing_key:
            raise UsageError(
                f"user {u.name}: a recipient and a signing key come from one identity, but "
                "this version pairs one of them with another than it had",
                hint="give both keys of the person's identity ('vault identity show FILE' "
                     "prints them), or neither")


def _check_nobody_stranded(s: Session, new: Policy) -> None:
    """A version that clears none of the holders of a class's current key,
    for a class with live documents (a level or compartment renamed, its
    holders lowered or removed), would withdraw the key from every holder:
    nobody could open, rotate or be granted those documents through the
    vault again, whatever version came next. Refused before anything is
    recorded."""
    stranded = []
    entries = s.trusted.store.entries()
    # Whose each recipient was, under any version: a user given new keys is
    # still a holder by name (DESIGN.md §10.3) -- matched against the
    # version in force alone, one such change refused every later version.
    named = {u.recipient: u.name for _, sha, *_ in s.trusted.policy_versions()
             for u in s.trusted.policy_by_hash(sha).users.values()}
    for gens in s.trusted.classes():
        cls = gens[-1].cls
        # Someone who holds its current key must stay cleared -- else nobody
        # is left to grant it to those cleared, or to rotate.
        holders = {named[owner] for kid, owner in entries
                   if kid == gens[-1].key_id and owner in named}
        # ... and by the names the new version gives their recipients (a
        # holder renamed, keys kept).
        holders |= {u.name for u in new.users.values()
                    if (gens[-1].key_id, u.recipient) in entries}
        # None left already (doctor names such a class): this version cannot
        # make it worse, and refusing would freeze the policy for good.
        if not holders or holders & {u.name for u in cleared_users(new, cls)}:
            continue
        count = sum(len(s.trusted.docs(key_id=g.key_id)) for g in gens)
        if count:
            stranded.append(f"{cls} ({count} document{'s' if count != 1 else ''})")
    if stranded:
        more = f" and {len(stranded) - 5} more classes" if len(stranded) > 5 else ""
        raise UsageError(
            f"the new policy clears nobody who holds the key of {', '.join(stranded[:5])}"
            f"{more}: its key would be withdrawn from every holder, and nobody could open, "
            "grant or rotate those documents through the vault again",
            hint="keep one of its holders cleared until someone newly cleared holds it "
                 "(was a level or compartment renamed?), or reclassify, declassify or shred "
                 "those documents first")


def _holding(s: Session, ck: ClassKey) -> str:
    entries = s.trusted.store.entries()
    names = sorted(u.name for u in s.trusted.policy.users.values()
                   if (ck.key_id, u.recipient) in entries)
    return ", ".join(names) if names else "nobody yet"


def _cleared_names(policy: Policy, cls: LabelClass) -> str:
    names = [u.name for u in cleared_users(policy, cls)]
    return ", ".join(names) if names else "nobody (no user is cleared for it)"


def reconcile(s: Session, report: ApplyReport | RotateReport,
              *, force: Sequence[LabelClass] = (), only: set[str] | None = None) -> None:
    """Under the write lock: bring the class keys (of the classes ``only``
    names, default all) in line with the policy in force (after an install,
    or for ``rotate``).

    A class that cannot be finished (something planted in its way) keeps
    no other on a key a revoked user kept: every class is tried, each on
    its own records, and then those that failed are raised together
    (PartialError, ``done`` holding ``report``). Only a failure of the
    audit log itself stops the rest: nothing more could be recorded."""
    failed: list[tuple[str, VaultError]] = []
    for gens in s.trusted.classes():
        cls = gens[-1].cls
        if only is not None and cls.id not in only:
            continue
        try:
            _reconcile_class(s, gens, report, force)
        except (AuditWriteError, AuditIntegrityError):
            raise
        except VaultError as e:
            failed.append((str(cls), e))
        except OSError as e:
            failed.append((str(cls), StorageError(e.strerror or type(e).__name__)))
    if failed:
        names = ", ".join(c for c, _ in failed)
        raise PartialError(f"{len(failed)} class{'es' if len(failed) != 1 else ''} not brought "
                           f"in line with the policy: {names}; the others were", [report],
                           failed, hint="'vault doctor' names what is in the way; once it is "
                           "set right, run 'vault rotate' again")


def _reconcile_class(s: Session, gens: list[ClassKey], report: ApplyReport | RotateReport,
                     force: Sequence[LabelClass]) -> None:
    """:func:`reconcile` of one class, whose generations are ``gens``."""
    policy = s.trusted.policy
    current = gens[-1]
    cls = current.cls
    unclean = current.unclean_holders(policy)
    # A key of the wrong kind (classical where the policy's recipients
    # are hybrid, or the reverse) cannot share a header with them.
    pq = s.trusted.post_quantum_keys()
    wrong_kind = ("hybrid" if pq else "classical") if current.post_quantum != pq else None
    if isinstance(report, ApplyReport):
        report.revoked += [f"{h.name or 'an unknown recipient'}: {cls}" for h in unclean]
    # Someone granted an entry for the current key that does not open (a
    # junk entry from its maker) makes a new one they hold, if cleared.
    unheld = unopenable_entry(s, current)
    if unclean or wrong_kind or unheld or cls in force:
        me = policy.users.get(s.actor().name or "")
        if me is None or not policy.dominates(me.clearance, cls.label()):
            report.pending.append(_pending_rotation(policy, cls, unclean, wrong_kind))
            _retire_unclean(s, gens, policy, report)
            return
        made = create_generation(s, cls)
        why = (f" (your entry for generation {current.generation} does not give you its key)"
               if unheld and not (unclean or wrong_kind or cls in force) else "")
        report.rotated.append(f"{cls} -> generation {made.generation}{why}")
    else:
        report.granted += grant_missing(s, current)
        waiting = [u.name for u in lacking(s, current)]
        if waiting:
            report.pending.append(
                f"grant {cls} to {', '.join(waiting)}: needs someone who holds its key "
                f"({_holding(s, current)}) to seal at it or to run 'vault rotate'")
    _rewrap_class(s, cls, report)
    _retire_unclean(s, s.trusted.generations(cls), policy, report)


def _pending_rotation(policy: Policy, cls: LabelClass, unclean: Sequence[Any],
                      wrong_kind: str | None) -> str:
    """Why a class keeps its key for now, and who can change that: only
    someone cleared for a class ever makes its key (docs/DESIGN.md §3.5)."""
    if unclean:
        who = ", ".join(h.name or "an unknown recipient" for h in unclean)
        return (f"rotate {cls}: needs someone cleared for it ({_cleared_names(policy, cls)}) "
                f"to run 'vault rotate'; until then {who} could still open its documents "
                "with the old key, as before the change")
    if wrong_kind:
        return (f"rotate {cls}: its key is not {wrong_kind} like the recovery recipients; "
                f"needs someone cleared for it ({_cleared_names(policy, cls)}) to run "
                "'vault rotate --post-quantum'")
    admins = [u for u in policy.administrators()
              if policy.dominates(policy.users[u].clearance, cls.label())]
    if admins:
        return (f"rotate {cls}: you are not cleared for it; ask {', '.join(admins)} "
                "(administrators cleared for it) to run 'vault rotate'")
    return (f"rotate {cls}: you are not cleared for it and no administrator is, so its key "
            "changes only after a revocation, by someone cleared for it "
            f"({_cleared_names(policy, cls)}) running 'vault rotate'")


def _retire_unclean(s: Session, gens: list[ClassKey], policy: Policy,
                    report: ApplyReport | RotateReport) -> None:
    """Entries of people no longer cleared, and of old generations no
    document needs any more, are removed (on the record) -- by a caller the
    replay lets withdraw them, under the rule it counts a ``retire`` by
    (classes.may_withdraw). Anyone else leaves them, reported pending: a
    record the replay ignores would not withdraw them, and the entries
    deleted under it would be missing on every machine."""
    current = gens[-1]
    entries = s.trusted.store.entries()
    actor = s.actor().name
    for ck in gens:
        unused = ck is not current and not s.trusted.docs(key_id=ck.key_id)
        owners = sorted(o for (k, o) in entries if k == ck.key_id
                        and withdrawable(policy, ck.cls, o, unused))
        if not owners:
            continue
        what = (f"{len(owners)} entr{'y' if len(owners) == 1 else 'ies'} of {ck.cls} "
                f"generation {ck.generation}")
        holder = any(h.name == actor for h in ck.holders)
        if not may_withdraw(policy, ck.cls, actor, holder):
            they = "it awaits" if len(owners) == 1 else "they await"
            report.pending.append(f"retire {what}: {they} {_withdrawers(policy, ck)} "
                                  "running 'vault rotate'")
            continue
        retire(s, ck, owners, f"retire {what}")
        if isinstance(report, RotateReport):
            report.retired += [f"{ck.cls} generation {ck.generation}: {len(owners)} entries"]


def _withdrawers(policy: Policy, ck: ClassKey) -> str:
    """Who may withdraw entries of ``ck``, named (classes.may_withdraw)."""
    admins = policy.administrators()
    holders = sorted({h.name for h in ck.holders if h.name is not None and h.name not in admins
                      and may_withdraw(policy, ck.cls, h.name, True)})
    return (f"an administrator ({', '.join(admins) or 'none'}) or a holder of the key cleared "
            f"for it ({', '.join(holders) or 'none left'})")


def _rewrap_class(s: Session, cls: LabelClass, report: ApplyReport | RotateReport) -> None:
    """Rewrap the documents of ``cls`` not wrapped to its current key or to
    the current recovery recipients, that the caller can open."""
    current = s.trusted.current(cls)
    assert current is not None
    # The replay counts a rewrap only from someone cleared for the class
    # (FORMAT.md §14.6): anyone else, even holding an older key, leaves it
    # pending, as one holding none does.
    me = s.trusted.policy.users.get(s.actor().name or "")
    keyring = s.my_keyring() if me is not None and s.trusted.policy.dominates(
        me.clearance, cls.label()) else None
    todo = [row for row in s.trusted.docs() if row.class_id == cls.id
            and (row.key_id != current.key_id or recovery_behind(s, row))]
    for start in range(0, len(todo), _REWRAP_BATCH):
        _rewrap_batch(s, todo[start:start + _REWRAP_BATCH], current, keyring, report)


def recovery_behind(s: Session, row: DocRow) -> bool:
    """Is the document's header wrapped to other recovery recipients than
    today's (a change still to be carried out)? Its record says for which
    its recovery stanzas were made (FORMAT.md §14.6); one recorded without
    that, the recipients in force when it was recorded."""
    from vault._sealed.recipients import recovery_set

    if row.pins is not None:
        return bool(row.pins["set"] != recovery_set(s.trusted.recovery_now()))
    return set(s.trusted.recovery_at(row.seq)) != set(s.trusted.recovery_now())


def _damaged(doc_id: str, e: IntegrityError) -> str:
    return (f"rewrap {doc_id}: it cannot be rewrapped ({e.message}); whoever held its older "
            "key can still open it: see 'vault doctor', restore it or shred it")


def _rewrap_batch(s: Session, rows: list[Any], current: ClassKey, keyring: Any,
                  report: ApplyReport | RotateReport) -> None:
    written: list[tuple[str, str, str, dict[str, Any]]] = []
    tried = False
    try:
        for row in rows:
            try:
                sealed, f = read_sealed(s.backend, s.trusted, row.doc_id)
            except IntegrityError as e:
                report.pending.append(_damaged(row.doc_id, e))
                continue
            with f:
                ck = s.trusted.key(row.key_id)
                ids = [i for i in ([keyring.identity(ck)] if ck and keyring else [])
                       if i is not None]
                try:
                    file_key, _ = unlock(sealed, ids, s.trusted)
                except NoKeyError:
                    report.pending.append(
                        f"rewrap {row.doc_id} ({current.cls}): needs someone who holds its "
                        f"current key ({_cleared_names(s.trusted.policy, current.cls)}) to "
                        "run 'vault rotate'; until then whoever held its older key can "
                        "still open it")
                    continue
                except IntegrityError as e:
                    # One damaged document must not keep every other of its
                    # class on a key a revoked user kept.
                    report.pending.append(_damaged(row.doc_id, e))
                    continue
                stanzas = rewrap_stanzas(s, current, file_key, sealed)
                label = LabelStanza.carry(sealed.label).wrap(file_key)
                header = Header.seal([*stanzas, *label, sealed.meta], file_key)
                version = new_version()
                try:
                    with s.backend.write_document(row.doc_id, version) as out:
                        write_rewrapped(f, out, header, sealed.label.content)
                except IntegrityError as e:  # its payload, damaged (a chunk cut short)
                    report.pending.append(_damaged(row.doc_id, e))
                    continue
                state = doc_state(row.doc_id, version, header, current,
                                  sealed.label.statement, {})
                written.append((row.doc_id, version, row.version, state))
        if written:
            atts = [Attempt("rewrap", doc_id) for doc_id, *_ in written]
            states = [st for *_, st in written]
            tried = True  # from here on the new versions may count
            record(s, atts, "allowed", [], f"rewrapped to {current.cls} generation "
                   f"{current.generation}", states)
            check_counted(s, states)
    except BaseException:
        if not tried:  # after, they stay: 'doctor --repair' removes any that do not count
            for doc_id, version, _, _ in written:
                with contextlib.suppress(VaultError, OSError):
                    s.backend.delete_document(doc_id, version)
        raise
    for doc_id, _, old_version, _ in written:
        remove_version(s, doc_id, old_version)  # they count: left over, said, if it stays
        report.rewrapped.append(doc_id)


def _justified(justification: str | None) -> dict[str, Any] | None:
    return {"justification": justification} if justification else None


def rotate(s: Session, classes: Sequence[str] | None, *, post_quantum: bool = False,
           justification: str | None = None, approved: Approved | None = None) -> RotateReport:
    """An administrator gives the classes (default: all) new keys and
    rewraps their documents -- for the classes they are cleared for. Anyone
    cleared may finish what a revocation left pending: new keys for unclean
    classes, rewraps to the current key. Both grant nothing new.

    With ``post_quantum`` only the classes whose key is still classical get
    a new (hybrid) key; the report says what stays classical. Run again, it
    resumes where an interrupted run stopped (docs/POLICY.md §3.12)."""
    actor = s.actor()
    with attempt(s, "rotate") as att:
        if post_quantum and not s.trusted.post_quantum_keys():
            raise UsageError("the policy in force keeps class keys classical",
                             hint="set 'post_quantum: required' with post-quantum recovery "
                                  "recipients, 'vault policy apply' it, then run this again "
                                  "(docs/POLICY.md §3.12)")
        targets = _select(s, classes)
        if post_quantum:
            targets = [ck for ck in targets if not ck.post_quantum]
        names = ", ".join(str(ck.cls) for ck in targets) or "no classes"
        admin = s.trusted.policy.may_administer(actor.decides_as)
        if approved:
            ids = None if classes is None else sorted(ck.cls.id for ck in targets)
            approved.bind("rotate", details={"classes": ids})
            justification = approved.justification(justification)
        if admin:
            authorise(s, att, "administer", None, inputs=_justified(justification),
                      note=f"rotate {names}", approved=approved)
        elif approved:
            raise UsageError("finishing pending rotations needs no approval",
                             hint="run 'vault rotate' without approvals")
        elif actor.name is None:
            authorise(s, att, "administer", None)  # records the denial and raises
        else:
            record(s, [att], "allowed", [], f"finish pending rotations and rewraps of {names} "
                   "(grants nothing)")
        report = RotateReport()
        with s.lock():
            force = [ck.cls for ck in targets] if admin else []
            only = None if classes is None else {ck.cls.id for ck in _select(s, classes)}
            reconcile(s, report, force=force, only=only)
            if s.trusted.post_quantum_keys():
                report.classical = classical_left(s)
            complete(s, [att], [None], reason=f"{len(report.rotated)} rotated, "
                     f"{len(report.rewrapped)} rewrapped")
    return report


def classical_left(s: Session) -> list[str]:
    """What a copy of the vault taken now would still leave to a future
    quantum computer: classical class keys and the documents wrapped to
    them, and classical user identities (their keyring entries)."""
    out = []
    for gens in s.trusted.classes():
        current = gens[-1]
        old = {ck.key_id for ck in gens if not ck.post_quantum}
        docs = [row.doc_id for row in s.trusted.docs() if row.key_id in old]
        if not current.post_quantum:
            out.append(f"{current.cls}: its current key is classical")
        if docs:
            out.append(f"{current.cls}: {len(docs)} document(s) wrapped to a classical key")
    users = sorted(u.name for u in s.trusted.policy.users.values()
                   if not u.recipient.startswith("age1pq1"))
    if users:
        out.append(f"classical identities (their keyring entries are classical): "
                   f"{', '.join(users)}")
    return out


def _select(s: Session, classes: Sequence[str] | None) -> list[ClassKey]:
    current = [gens[-1] for gens in s.trusted.classes()]
    if classes is None:
        return current
    by_id = {ck.cls.id: ck for ck in current}
    chosen = {}
    for text in classes:
        ck = by_id.get(text) or by_id.get(_class_id(s.trusted.policy, text) or "")
        if ck is None:
            known = ", ".join(sorted(str(ck.cls) for ck in current)) or "none yet"
            raise UsageError(f"no label class {text!r} has a key in this vault",
                             hint=f"name a class by id or as LEVEL//COMPARTMENT/...; "
                                  f"classes with keys: {known}")
        chosen[ck.cls.id] = ck
    return list(chosen.values())


def _class_id(policy: Policy, text: str) -> str | None:
    """The class a label written as a banner falls in (caveats aside)."""
    try:
        return LabelClass.of(policy.parse_label(text)).id
    except VaultError:
        return None
