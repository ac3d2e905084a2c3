"""Asking for approval and giving it (docs/DESIGN.md §6, docs/FORMAT.md §16).

``request`` binds one precise action to the state the verified audit log
records now -- the document's header digest and label, the new label of a
change, the policy version in force -- signs it with the requester's key,
records it (a ``request`` record) and leaves it in the vault for
approvers to find. ``approve`` checks a request against the same state on
the approver's machine, signs the answer with the approver's own key,
records it (an ``approve`` or ``refuse`` record) and leaves it in the vault
for the requester. Neither ever reads anyone else's private key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vault._ops.approved import refusal
from vault._ops.discipline import attempt, check_free_text, record
from vault._text import printable_lines
from vault._trust._statement import CLOCK_SKEW, bound_label, utc_text
from vault._trust.approvals import (
    ACTIONS,
    Approval,
    ApprovalError,
    Request,
    floor_terms,
    new_request,
    policy_action,
    read_request,
    sign_approval,
)
from vault.errors import DeniedError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault.policy import Label

__all__ = ["answer", "explain", "find", "make_request", "pending", "standing", "target"]

_ON_DOC = ("open", "export", "reclassify", "declassify", "shred")


def _doc_label(s: Session, doc_id: str | None) -> tuple[str, Label]:
    from vault._sealed.reading import check_doc_id
    from vault.policy import Label

    row = s.trusted.doc(check_doc_id(doc_id)) if doc_id is not None else None
    if doc_id is None or row is None or row.shredded:
        raise UsageError(f"no document {doc_id} in this vault",
                         hint="'vault ls' lists the documents you may see")
    return row.header, Label.from_dict(row.statement["label"])


def target(s: Session, action: str, doc_id: str | None, *, level: str | None = None,
           compartments: Sequence[str] | None = None, caveats: Sequence[str] | None = None,
           justification: str | None = None, policy_path: str | os.PathLike[str] | None = None,
           classes: Sequence[str] | None = None,
           lines: tuple[int, int] | None = None,
           destination: str | os.PathLike[str] | None = None,
           file: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """What a request for ``action`` binds, from the trusted state now:
    ``doc``, ``state``, ``label``, ``new_label``, ``details``; and, for a
    seal of ``file``, the ``floor`` intake finds in it (decided with)."""
    policy, actor = s.trusted.policy, s.actor()
    if action not in ACTIONS:
        raise UsageError(f"cannot ask approval to {action!r}",
                         hint=f"actions: {', '.join(ACTIONS)}")
    if (action in _ON_DOC) != (doc_id is not None):
        raise UsageError(f"{action} {'needs' if action in _ON_DOC else 'takes no'} document id")
    out: dict[str, Any] = {"doc": None, "state": None, "label": None, "new_label": None,
                           "details": {}, "floor": None}
    if file is not None and action != "seal":
        raise UsageError(f"{action} takes no file to inspect")
    if action in _ON_DOC:
        from vault.policy._labels import carried_declassify_on

        out["state"], old = _doc_label(s, doc_id)
        out.update(doc=doc_id, label=old)
        if action == "reclassify":
            out["new_label"] = policy.make_label(
                actor=actor.decides_as, level=level or old.level,
                compartments=old.compartments if compartments is None else compartments,
                caveats=old.caveats if caveats is None else caveats,
                classified_by=actor.name, reason=justification or None,
                created=datetime.now(UTC), declassify_on=carried_declassify_on(old),
                embargo_until=old.embargo_until)  # as the reclassify will make it
        elif action == "declassify":
            out["new_label"] = policy.declassified_label(old)
    elif action == "seal":
        out["label"] = policy.make_label(
            actor=actor.decides_as, level=level, compartments=list(compartments or ()),
            caveats=list(caveats or ()), classified_by=actor.name, reason=justification,
            created=datetime.now(UTC))
        if file is not None:
            # The approval serves a seal of this file alone; sealed below
            # what intake finds in it, the approver is shown that floor
            # (FORMAT.md §16.2).
            floor, digest = _inspected(s, file, out["label"])
            out["floor"], out["details"] = floor, {"file": digest}
            if floor is not None and policy.below_floor(out["label"], floor):
                out["details"]["floor"] = floor_terms(floor)
    elif action == "policy-apply":
        if policy_path is None:
            raise UsageError("name the policy file to install")
        from vault._ops.init import read_policy_file

        out["details"] = {"policy": read_policy_file(policy_path)[1].hash}
    elif action == "incident":
        if lines is None:
            raise UsageError("name the lines the incident declares damaged (FIRST-LAST)")
        from vault._ops.incident import check_range

        out["details"] = {"from": lines[0], "to": lines[1]}
        check_range(*lines)
    elif action == "migrate":
        if destination is None:
            raise UsageError("name where the vault is to be moved (DEST)")
        from vault._ops.migrate import destination_digest

        out["details"] = {"to": destination_digest(destination)}
    elif action == "doctor":
        pass  # doctor --repair: nothing more to bind
    else:
        from vault._ops.admin import _select

        out["details"] = {"classes": None if classes is None else
                          sorted(ck.cls.id for ck in _select(s, classes))}
    return out


def _inspected(s: Session, path: str | os.PathLike[str],
               label: Label) -> tuple[Label | None, str]:
    """The floor intake finds in the file at ``path``, dated as a seal of
    ``label`` would date it, and the digest a request names the file by."""
    import contextlib

    from vault._ops import intake
    from vault._ops.seal import open_source
    from vault._trust.requests import file_digest

    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(open_source(os.fspath(path)))
        if not stream.seekable():
            raise UsageError("the file can be read only once: a request names a file the "
                             "seal reads again", hint="copy it into a regular file first")
        start = stream.tell()
        digest = file_digest(s.me(), s.manifest.vault_id, stream)
        stream.seek(start)
        _, found, _ = intake.inspect_all(s.trusted.policy, [(stream, os.path.basename(path))])
        floor = intake.decide_label(s.trusted.policy, found, label, {"created": label.created})[1]
        return floor, digest


def make_request(s: Session, action: str, doc_id: str | None = None, *,
                 justification: str | None = None, lifetime: timedelta | None = None,
                 **what: Any) -> Request:
    """Ask for approval of one action (``what``: see :func:`target`)."""
    check_free_text(justification, "justification")
    me, actor = s.me(), s.actor()
    if actor.name is None:
        raise DeniedError("these keys belong to no user of the policy: nobody can approve "
                          "their requests", hint="ask the officer to add your keys")
    bound = target(s, action, doc_id, justification=justification, **what)
    policy = s.trusted.policy
    decision = policy.decide(actor.name, policy_action(action), bound["label"], inputs={
        "justification": justification, "approvers": [],
        **({"new_label": bound["new_label"]} if bound["new_label"] is not None else {}),
        **({"floor": bound["floor"]} if bound["floor"] is not None else {})})
    if decision.allowed:
        raise UsageError(f"{action} needs no approval here: {'; '.join(decision.reasons)}",
                         hint="act without a request")
    from vault.policy._checks import APPROVER

    with attempt(s, "request", bound["doc"]) as att:
        att.label = bound["label"]
        others = [r for i, r in zip(decision.rule_ids, decision.reasons, strict=False)
                  if i != APPROVER]
        if APPROVER not in decision.rule_ids or others:
            raise DeniedError(f"request denied: even approved, {action} would be refused: "
                              f"{'; '.join(others or decision.reasons)}",
                              decision=decision, hint="run 'vault policy explain' to see "
                              "which rules apply")
        r = new_request(me, vault=s.manifest.vault_id, action=action, doc=bound["doc"],
                        state=bound["state"], label=bound["label"],
                        new_label=bound["new_label"], details=bound["details"],
                        justification=justification, requester=actor.name,
                        policy=policy.hash, lifetime=lifetime)
        rules = [x.id for x in policy.approval_rules(actor.name, policy_action(action),
                                                     bound["label"], inputs={
            k: bound[k] for k in ("new_label", "floor") if bound[k] is not None} or None)]
        record(s, [att], "allowed", rules, f"request {r.id}: {actor.name} asks to {action}"
               + (f" {doc_id}" if doc_id else "") + f", until {r.statement['expires']}"
               + (f"; justification: {justification}" if justification else ""),
               [{"request": {"id": r.id, "digest": r.digest, "statement": r.signed()}}])
    s.backend.put_statement("request", r.to_bytes())
    return r


def _check_asked(s: Session, r: Request, me_name: str) -> None:
    """A request is answered only while it can still be performed."""
    policy = s.trusted.policy
    again = "ask the requester to ask again"
    if r.statement["vault"] != s.manifest.vault_id:
        raise ApprovalError("vault", "the request is for another vault",
                            hint="answer it with --vault set to the vault it names")
    if r.requester.name == me_name:
        raise ApprovalError("self", "you cannot answer your own request; a second person "
                            "must approve it", hint="send it to an approver the rule names")
    user = policy.users.get(r.requester.name)
    if user is None or user.signing_key != r.requester.signing_key:
        raise ApprovalError("requester", f"the request is signed by a key the policy in force "
                            f"does not give {r.requester.name}", hint="treat it as forged")
    if r.created - datetime.now(UTC) > CLOCK_SKEW:
        # Its 90 days run from its 'created': dated ahead, an approval of it
        # would serve for as long past them (and the log does not count it).
        raise ApprovalError("ahead", f"the request is dated ahead of this machine's clock: "
                            f"made {utc_text(r.created)}", hint="ask the requester to check "
                            "their clock and ask again (or check this one)")
    at = s.trusted.store.request_seq(r.digest)
    if r.policy != policy.hash or (at is not None and at < s.trusted.store.policy_seq()):
        raise ApprovalError("policy", "the request was made under another policy version "
                            "than the one in force now", hint=again)
    if (why := r.unknown_to(policy)) is not None:  # the replay does not count it either
        raise ApprovalError("label", f"request {r.id} cannot be answered: {why}",
                            hint="treat it as forged: no rule can ask for its approval, and "
                                 "it can never be performed")
    if r.action == "seal" and "floor" in r.details and "file" not in r.details:
        # An earlier version's: no client seals below a floor with it now.
        raise ApprovalError("file", f"request {r.id} asks to seal below a floor without naming "
                            "the file: an approval of it would serve no seal", hint=again)
    if at is None:  # an approval of it could never be used (FORMAT.md §16.4)
        raise ApprovalError("unrecorded", f"request {r.id} is not on the audit record",
                            hint="ask the requester to ask with 'vault request', which "
                                 "records it")
    if r.doc is not None:
        row = s.trusted.doc(r.doc)
        if row is not None and not row.shredded and row.header == r.state \
                and r.label != bound_label(row.statement["label"]):
            from vault.policy import Label

            has = policy.format_label(Label.from_dict(row.statement["label"]))
            raise ApprovalError("label", f"the request names another label than document "
                                f"{r.doc} has ({has}): what it shows you is not the "
                                "document's", hint="treat it as forged; refuse it")
        if row is None or row.shredded or row.header != r.state:
            raise ApprovalError("state", f"document {r.doc} changed since the request was "
                                "made (or is gone)", hint=again)
    if datetime.now(UTC) >= r.expires:
        raise ApprovalError("expired", "the request has expired", hint=again)
    if (seq := s.trusted.store.used(r.digest)) is not None:
        raise ApprovalError("used", f"the request was already performed (audit record {seq})",
                            hint="nothing to answer")


def standing(s: Session, r: Request, name: str) -> str | None:
    """Why ``name`` may not answer ``r`` under the policy in force, or None."""
    from vault.policy import Label

    label = None if r.label is None else Label.from_dict(r.label)
    return s.trusted.policy.approver_problem(r.requester.name, policy_action(r.action), label,
                                             name, inputs=r.inputs() or None)


def answer(s: Session, data: bytes, *, refuse: bool = False, reason: str | None = None,
           lifetime: timedelta | None = None, policy_path: Any = None,
           destination: Any = None) -> Approval:
    """Approve (or refuse) a request file, with the caller's own key. A
    ``policy-apply`` request is approved only with the file asked to be
    installed (``policy_path``; vault/_ops/policy_changes.py)."""
    check_free_text(reason, "reason")
    r = read_request(data)
    if r.action == "policy-apply" and (not refuse or policy_path is not None):
        from vault._ops.policy_changes import check_policy_file

        check_policy_file(s, r, policy_path)
    if r.action == "migrate" and (not refuse or destination is not None):
        check_destination(r, destination)
    me, actor = s.me(), s.actor()
    with attempt(s, "refuse" if refuse else "approve", r.doc) as att:
        if r.label is not None:
            from vault.policy import Label

            att.label = Label.from_dict(r.label)
        if actor.name is None:
            raise ApprovalError("approver", "these keys belong to no user of the policy",
                                hint="ask the officer to add your keys")
        _check_asked(s, r, actor.name)
        why = standing(s, r, actor.name)
        if why is not None:
            raise ApprovalError("approver", f"your approval would not count: {actor.name} is "
                                f"{why}" if why.startswith("not ") else
                                f"your approval would not count: {why}",
                                hint="the request needs an approver the rule names (above)")
        a = sign_approval(me, r, name=actor.name, refuse=refuse, reason=reason,
                          lifetime=lifetime)
        record(s, [att], "allowed", [], f"{a.decision} request {r.id} of {r.requester.name} "
               f"to {r.action}" + (f" {r.doc}" if r.doc else "")
               + (f"; reason: {reason}" if reason else ""),
               [{"approval": {"id": a.id, "statement": a.to_dict()}}])
    s.backend.put_statement("approval", a.to_bytes())
    return a


def _requests(s: Session) -> Iterator[Request]:
    """Every signed request of this vault left in it, then every one on the
    record (one may come twice), a few at a time: anyone can leave any number
    of valid requests, signed with keys of their own, and a reader keeps only
    what it is looking for."""
    for _, data in s.backend.statements("request"):
        try:
            r = read_request(data)
        except (UsageError, DeniedError):
            continue  # whatever anyone left in the vault: only signed requests count
        if r.statement["vault"] == s.manifest.vault_id:
            yield r
    for _, _, signed in s.trusted.requests_now():
        yield Request.read(signed)


def find(s: Session, request_id: str) -> Request:
    """The request with this id. Anyone can leave a request under an id they
    saw -- signed with a key of their own, or as themselves -- and date it as
    they like: the id names the first request the log recorded under it,
    else (none recorded yet) the earliest signed with the key the policy in
    force gives its requester."""
    recorded = {digest: seq for digest, seq, _ in s.trusted.requests_now()}
    users = s.trusted.policy.users

    def rank(r: Request) -> tuple[int, int, str]:
        u = users.get(r.requester.name)
        genuine = u is not None and u.signing_key == r.requester.signing_key
        return (recorded.get(r.digest, 1 << 62), 0 if genuine else 1, r.statement["created"])

    best: Request | None = None
    for r in _requests(s):
        if r.id == request_id and (best is None or rank(r) < rank(best)):
            best = r
    if best is None:
        raise UsageError(f"no request {request_id} in this vault",
                         hint="give the request file instead; 'vault approvals' lists yours")
    return best


def pending(s: Session) -> list[Request]:
    """Requests the caller may still answer: left in the vault or on the
    record, unexpired, unanswered by them, never performed or refused."""
    name = s.actor().name
    if name is None:
        return []
    refused = refusal(s)
    users = s.trusted.policy.users
    out: dict[str, Request] = {}
    for r in _requests(s):
        u = users.get(r.requester.name)
        if r.digest in out or u is None or u.signing_key != r.requester.signing_key:
            continue  # kept only once, and only if its requester's key is theirs
        try:
            if refused(r.digest) or any(a == name for a, *_ in s.trusted.store.answers(
                    r.digest)):
                continue
            _check_asked(s, r, name)
            if standing(s, r, name) is not None:
                continue
        except (UsageError, DeniedError, KeyError, TypeError, ValueError):
            # A genuine requester's modified client signs whatever it likes:
            # a request the checks cannot answer is skipped, never the
            # listing of everyone's others.
            continue
        out[r.digest] = r
    return sorted(out.values(), key=lambda r: (r.statement["created"], r.id))


def check_destination(r: Request, destination: Any) -> str:
    """A ``migrate`` request is approved only for a destination the approver
    names: it must be the one asked for. Returns where it really is."""
    from vault._ops.migrate import destination_digest

    if destination is None:
        raise UsageError("a move is approved only for a destination you name",
                         hint="add --to DEST, the destination the requester names")
    if r.details.get("to") != destination_digest(destination):
        raise UsageError("the request is not for a move to that destination")
    dest = str(os.fspath(destination))
    return dest if "://" in dest else os.path.realpath(dest)


def explain(s: Session, r: Request, policy_path: Any = None) -> list[str]:
    """The request in plain words, why the policy asks for approval, and
    whether the caller's approval would count; for a ``policy-apply``
    request with the file (``policy_path``), what it changes. One string a
    line, each escaped whole (vault/_text.py): a rule's description, a
    marking or a name holding a line break would otherwise print lines of
    its writer's on the screen the approver decides on."""
    policy = s.trusted.policy
    lines = r.describe_lines(policy)
    if r.action == "policy-apply":
        if policy_path is None:
            lines.append("what it changes: not shown without the file (--policy FILE)")
        else:
            from vault._ops.policy_changes import check_policy_file

            lines.append("what it changes from the version in force:")
            lines += [f"  {line}" for line in check_policy_file(s, r, policy_path)]
    from vault.policy import Label

    label = None if r.label is None else Label.from_dict(r.label)
    rules = policy.approval_rules(r.requester.name, policy_action(r.action), label,
                                  inputs=r.inputs() or None) \
        if r.requester.name in policy.users else []
    lines.append("why approval is needed:")
    for rule in rules:
        who = rule.approvers.describe() if rule.approvers else "anyone cleared for it"
        lines.append(f"  rule {rule.id}: {rule.description or '(no description)'}")
        lines.append(f"    needs {rule.approvals} approval{'s' if rule.approvals != 1 else ''}"
                     f" by {who}, other than {r.requester.name}")
    unknown = r.unknown_to(policy)
    if not rules:
        lines.append(f"  none can: {unknown}" if unknown else
                     "  no rule of the policy in force asks for approval of it")
    name = s.actor().name
    if name is not None:
        why = standing(s, r, name) if rules else unknown or "no rule asks for it"
        lines.append(f"your approval ({name}) " + ("counts" if why is None else
                                                    f"would not count: {why}"))
    return printable_lines(lines)

