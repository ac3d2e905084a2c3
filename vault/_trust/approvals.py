"""Approvals: a second person's signed answer to one request
(docs/FORMAT.md §16.3), and the checks that decide whether approvals count
for one attempt (§13.4).

An approval answers one request by the SHA-256 of its statement and is
signed by the approver, on their own machine, with their own key: the
requester's process only ever reads signed public statements. An approval
*file* carries its request, so it stands alone. Its id, the SHA-256 of its
statement (not of its signature, which another encoding could change), is
what single use is enforced on, through the audit log: the trusted state's
``used`` table (docs/AUDIT.md §17).

:func:`check_request` and :func:`check_outcome` are the one definition of
"this approval counts for this attempt": the operations call them before
they decide, and the replay of the log calls them again on the records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vault._primitives import b64, canonical_json, parse_signing_key
from vault._primitives import sha256_hex as _sha
from vault._primitives import sign as _sign
from vault._primitives import verify as _verify
from vault._trust._statement import (
    ACTIONS,
    APPROVAL_MEMBERS,
    CLOCK_SKEW,
    HEX32,
    HEX64,
    MAX_FILE,
    MAX_LIFETIME,
    ApprovalError,
    Party,
    SignedStatement,
    StatementError,
    bound_label,
    encode,
    parse_file,
    policy_action,
    read_signed,
    read_text,
    read_time,
    utc_text,
)
from vault._trust.requests import Request, new_request, read_request
from vault.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.policy import Policy

__all__ = ["ACTIONS", "MAX_FILE", "Approval", "ApprovalError", "Party", "Request",
           "StatementError", "Verified", "bound_label", "check_dated", "check_outcome",
           "check_request",
           "floor_terms",
           "new_request", "policy_action", "read_approval", "read_request", "sign_approval"]

MAX_APPROVALS = 16  # approvals one attempt may carry (docs/POLICY.md §4.5)


@dataclass(frozen=True)
class Approval(SignedStatement):
    """A signed answer to ``request``: ``approve`` or ``refuse``."""

    request: Request

    @property
    def id(self) -> str:
        return _sha(canonical_json(self.statement))

    @property
    def approver(self) -> Party:
        return Party(**self.statement["approver"])

    @property
    def decision(self) -> str:
        return str(self.statement["decision"])

    @property
    def reason(self) -> str | None:
        return self.statement["reason"]  # type: ignore[no-any-return]

    @property
    def ends(self) -> datetime:
        """When it stops counting: its ``expires``, and never later than
        90 days after it was made -- the request's own 90 days run from a
        ``created`` its requester chose (docs/FORMAT.md §16.3)."""
        created, expires = self.created, self.expires
        # No sum unless it is earlier than ``expires``: year 9999.
        return expires if expires - created <= MAX_LIFETIME else created + MAX_LIFETIME

    def to_dict(self) -> dict[str, Any]:
        """The approval file's content: the approval and its request."""
        return {"approval": self.signed(), "request": self.request.signed()}

    def to_bytes(self) -> bytes:
        return encode(self.to_dict())

    @classmethod
    def read(cls, obj: Any) -> Approval:
        """Check an approval file's content: both statements, both signatures."""
        if not isinstance(obj, dict) or set(obj) != {"approval", "request"}:
            raise StatementError("not an approval file ({approval, request})")
        request = Request.read(obj["request"])
        st, sig = read_signed(obj["approval"], "approval")
        if set(st) != APPROVAL_MEMBERS:
            raise StatementError("the approval does not have exactly the members of "
                                 "docs/FORMAT.md §16.3")
        if not isinstance(st["vault"], str) or not HEX32.match(st["vault"]) \
                or not isinstance(st["request"], str) or not HEX64.match(st["request"]):
            raise StatementError("the approval's vault or request is malformed")
        if st["vault"] != request.statement["vault"] or st["request"] != request.digest:
            raise StatementError("the approval does not answer the request it carries")
        if st["decision"] not in ("approve", "refuse"):
            raise StatementError("the approval's decision is neither approve nor refuse")
        read_text(st["reason"], "reason")
        who = Party.read(st["approver"], "approver")
        created, expires = read_time(st["created"], "created"), read_time(st["expires"],
                                                                          "expires")
        if not created < expires <= request.expires:
            raise StatementError("the approval must expire after it was made, and no later "
                                 "than its request")
        if not _verify(parse_signing_key(who.signing_key), "approval", canonical_json(st), sig):
            raise ApprovalError("forged", f"the approval's signature does not verify with the "
                                f"key it names for {who.name}: it was forged or altered",
                                hint="ask the approver for the file they signed")
        return cls(st, sig, request)


def read_approval(data: bytes) -> Approval:
    """An approval file (canonical JSON and a newline)."""
    return Approval.read(parse_file(data, "approval"))


def sign_approval(identity: Any, request: Request, *, name: str, refuse: bool = False,
                  reason: str | None = None, lifetime: timedelta | None = None,
                  now: datetime | None = None) -> Approval:
    """Answer ``request`` with ``identity``, the approver's own keys; it
    expires with the request, or earlier with ``lifetime``, and at most 90
    days after it is made, however far ahead the request is dated."""
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    expires = min(request.expires, created + (MAX_LIFETIME if lifetime is None
                                              else min(lifetime, MAX_LIFETIME)))
    if expires <= created:
        raise ApprovalError("expired", f"the request expired at {utc_text(request.expires)}",
                            hint="ask the requester to make a new request")
    st = {"vault": request.statement["vault"], "request": request.digest,
          "decision": "refuse" if refuse else "approve", "reason": reason,
          "approver": {"name": name, "signing_key": identity.signing_public},
          "created": utc_text(created), "expires": utc_text(expires)}
    sig = _sign(identity.signing_key, "approval", canonical_json(st))
    return Approval.read({"approval": {"sig": b64(sig), "statement": st},
                          "request": request.signed()})


@dataclass(frozen=True)
class Verified:
    """Approvals that count for one attempt: the request they answer, the
    distinct approvers (for ``inputs["approvers"]``), the ids to mark used."""

    request: Request
    names: tuple[str, ...]
    ids: tuple[str, ...]


_AGAIN = "ask the requester to make a new request ('vault request') and have it approved"


def check_request(approvals: Sequence[Approval], *, vault: str, action: str,
                  doc: str | None, state: str | None, requester: Party, policy: Policy,
                  now: datetime, used: Callable[[str], int | None],
                  refused: Callable[[str], str | None],
                  recorded: Callable[[str], int | None], installed: int,
                  label: Mapping[str, Any] | None = None) -> Verified:
    """docs/FORMAT.md §16.4: the approvals answer one request, made by
    ``requester`` for exactly this action on this document state under the
    policy in force, unexpired, never used or refused; each is an approval
    by a user of that policy, with the key it gives them, not the
    requester. Raises :class:`ApprovalError` naming the first reason.

    ``recorded`` gives the audit record that first recorded a request (by
    digest), ``installed`` the record that installed the policy in force:
    a request names its policy by the text's SHA-256, and the same text
    may be installed again later, so the request must also be on the
    record since that version's install."""
    if not approvals:
        raise UsageError("no approvals given")
    if len(approvals) > MAX_APPROVALS:
        raise UsageError(f"at most {MAX_APPROVALS} approvals per action")
    unique = list({a.id: a for a in approvals}.values())
    r = unique[0].request
    if any(a.request.digest != r.digest for a in unique):
        raise ApprovalError("mixed", "the approvals answer different requests",
                            hint="give the approvals of one request")
    if r.statement["vault"] != vault:
        raise ApprovalError("vault", "the approval is for another vault",
                            hint="act on the vault it names (--vault)")
    if r.action != action:
        raise ApprovalError("action", f"the approval is for a request to {r.action}, not to "
                            f"{action}", hint=_AGAIN)
    if r.doc != doc:
        raise ApprovalError("document", f"the approval is for document {r.doc}, not {doc}",
                            hint=_AGAIN)
    who = r.requester
    if who != requester:
        raise ApprovalError("requester", f"the approval answers {who.name}'s request; it counts "
                            f"only for {who.name}, with the keys that asked", hint=_AGAIN)
    if r.policy != policy.hash:
        raise ApprovalError("policy", "the request was made under another policy version than "
                            "the one in force now (a new version was installed since)",
                            hint=_AGAIN)
    if r.state != state:
        raise ApprovalError("state", f"document {doc} changed since the request was made: the "
                            "approval is for an earlier version of it", hint=_AGAIN)
    # The label a request names for its document is what its approver was
    # shown: it must be the label the document has (``label``, as the log
    # records it), or the approver approved another document's change.
    if doc is not None and label is not None and r.label != bound_label(label):
        raise ApprovalError("label", f"the request names another label than document {doc} "
                            "has: its approver was shown a label that is not the document's",
                            hint="treat it as forged; ask again")
    if now >= r.expires:
        raise ApprovalError("expired", f"the request expired at {utc_text(r.expires)}",
                            hint=_AGAIN)
    if (seq := used(r.digest)) is not None:
        raise ApprovalError("used", f"request {r.id} was already performed (audit record "
                            f"{seq}); an approval counts once", hint=_AGAIN)
    if (why := refused(r.digest)) is not None:
        raise ApprovalError("refused", f"request {r.id} was refused on the record: {why}",
                            hint=_AGAIN)
    for a in unique:
        _check_one(a, who, policy, now, used)
    if (at := recorded(r.digest)) is None:
        raise ApprovalError("unrecorded", f"request {r.id} is not on the audit record",
                            hint="ask with 'vault request', which records it")
    if at < installed:
        raise ApprovalError("policy", "the request was made under another policy version than "
                            "the one in force now (the same text, installed again since, is "
                            "another version)", hint=_AGAIN)
    names = tuple(dict.fromkeys(a.approver.name for a in unique))
    return Verified(r, names, tuple(a.id for a in unique))


def _check_one(a: Approval, requester: Party, policy: Policy, now: datetime,
               used: Callable[[str], int | None]) -> None:
    name = a.approver.name
    if a.decision != "approve":
        raise ApprovalError("refused", f"{name} refused this request"
                            + (f": {a.reason}" if a.reason else ""), hint=_AGAIN)
    if now >= a.ends:
        raise ApprovalError("expired", f"{name}'s approval expired at {utc_text(a.ends)}",
                            hint=_AGAIN)
    if name == requester.name:
        raise ApprovalError("self", f"{name} approved their own request; a second person must "
                            "approve it", hint="ask another approver")
    user = policy.users.get(name)
    if user is None:
        raise ApprovalError("approver", f"the approver {name} is not a user of the policy in "
                            "force", hint="ask an approver the policy names")
    if user.signing_key != a.approver.signing_key:
        raise ApprovalError("key", f"the approval is signed by a key the policy does not give "
                            f"{name}", hint="ask the approver to sign with their own identity")
    if (seq := used(a.id)) is not None:
        raise ApprovalError("used", f"{name}'s approval was already used (audit record {seq}); "
                            "an approval counts once", hint=_AGAIN)


def check_dated(request: Request, approvals: Sequence[Approval], at: datetime, *,
                against: str = "this machine's clock") -> None:
    """docs/FORMAT.md §16.4 step 7: a use recorded at ``at`` comes after the
    request and every approval it uses were made, give or take the clock
    skew. An approver whose clock runs fast (or who dates it so) signs an
    approval a use recorded now would be dated before: the replay would
    count that use for nothing, and the action done with it with no
    approvers."""
    latest = max(approvals, key=lambda a: a.created, default=None)
    if latest is not None and latest.created >= request.created:
        if latest.created - at > CLOCK_SKEW:  # no difference of a time and the skew: year 1
            name = latest.approver.name
            raise ApprovalError("ahead", f"{name}'s approval is dated ahead of {against}: "
                                f"valid from {utc_text(latest.created)}",
                                hint=f"ask {name} to check their clock (or check this one)")
    elif request.created - at > CLOCK_SKEW:
        raise ApprovalError("ahead", f"the request is dated ahead of {against}: valid from "
                            f"{utc_text(request.created)}", hint="check this machine's clock")


def check_outcome(request: Request, *, label: Any = None, new_label: Any = None,
                  details: dict[str, Any] | None = None,
                  below_floor: dict[str, Any] | None = None,
                  file: str | None = None, named: bool = False) -> None:
    """docs/FORMAT.md §16.4: what the action produces is what was approved:
    the label a seal signs, a change's new label, an administrative
    action's details. ``below_floor``: the floor (:func:`floor_terms`) a
    seal's label is below -- which its approver must have been shown;
    ``file``: the sealed file's digest as its request names a file
    (:func:`vault._trust.requests.file_digest`). ``named``: a seal below a
    floor needs a request naming its file (the client asks it; the replay
    counts what approvals of requests made before they named it served)."""
    expect = request.label if request.action == "seal" else request.new_label
    made = label if request.action == "seal" else new_label
    if expect is not None and (made is None or bound_label(made) != expect):
        raise ApprovalError("label", "the approval is for another label "
                            f"({_show(expect)}, not {_show(made)})", hint=_AGAIN)
    asked = request.details.get("file") if request.action == "seal" else None
    if asked is not None and file != asked:
        # The approver was shown what intake found in one file: an approval
        # of it is no approval to seal another with the same floor.
        raise ApprovalError("file", "the approval is for sealing another file: its request "
                            "names the file it was asked for, and this is not it (or it "
                            "changed since)", hint="seal the file the request was made with, "
                            "or ask again with this one: 'vault request seal FILE --level ...'")
    if below_floor is not None and request.details.get("floor") != below_floor:
        # An approval of an ordinary seal is no approval to seal a file
        # below what intake found in it: the approver saw no such file.
        raise ApprovalError("floor", f"the seal is below the floor intake found "
                            f"({_show(below_floor)}), and the approval is not for sealing "
                            "that below it", hint="ask again with the file: 'vault request "
                            "seal FILE --level ...' shows the approver its floor")
    if named and below_floor is not None and asked is None:
        raise ApprovalError("file", "the seal is below the floor intake found, and the "
                            "approval's request does not name the file (it was made by an "
                            "earlier version of vault)", hint="ask again with the file: "
                            "'vault request seal FILE --level ...'")
    if details is not None and details != request.details:
        raise ApprovalError("details", "the approval is for another " + {
            "policy-apply": "policy file", "incident": "range of lines"}.get(
                request.action, "set of label classes"), hint=_AGAIN)


def floor_terms(floor: Any) -> dict[str, Any]:
    """What a seal request binds of a floor (FORMAT.md §16.2): its level,
    compartments and caveats (the floor's dating is the seal's)."""
    d = floor if isinstance(floor, dict) else floor.to_dict()
    return {"level": d["level"], "compartments": sorted(d.get("compartments") or ()),
            "caveats": sorted(d.get("caveats") or ())}


def _show(label: Any) -> str:
    if label is None:
        return "none"
    d = bound_label(label)
    return "/".join([d["level"], *d["compartments"]]) + (
        f" ({', '.join(d['caveats'])})" if d["caveats"] else "")


