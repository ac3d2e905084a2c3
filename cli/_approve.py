"""The two-person rule on the command line: ``vault request``, ``vault
approve``, ``vault approvals``, and the ``--approval FILE`` / ``--request
ID`` options every action command takes (docs/POLICY.md §4.5,
docs/FORMAT.md §16).

The requester and the approver each run their own process with their own
identity: a request file (or id) goes to the approver, an approval file (or
the approval left in the vault) comes back. No command reads anyone's
private key but the caller's. Data (ids, JSON) goes to stdout; what is
asked, in plain words, and the confirmation prompt go to stderr.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from vault.errors import UsageError

from ._common import echo_json
from ._common import info as tell
from ._vault_common import label_text, open_vault

if TYPE_CHECKING:  # pragma: no cover
    from vault import Request

__all__ = ["approval_options", "approvals", "approve", "approved", "request"]

_META = "vault_cli.approved"
_MAX_FILE = 64 * 1024
_DURATION = re.compile(r"P(?:([0-9]{1,3})W)?(?:([0-9]{1,3})D)?(?:T(?:([0-9]{1,4})H)?"
                       r"(?:([0-9]{1,5})M)?(?:([0-9]{1,7})S)?)?")
_DURATION_HINT = "write an ISO 8601 duration: P7D (7 days), PT12H (12 hours), P1DT6H, PT30M"


def _read_file(path: str, what: str) -> bytes:
    from vault._inputs import open_input

    try:
        # open_input: a FIFO or link another user planted is refused, never
        # waited on; the user's own (an approval piped in) is read.
        with open_input(path) as f:
            data = f.read(_MAX_FILE + 1)
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror}") from None
    return data


# --------------------------------------------------------------------------
# --approval FILE and --request ID on the action commands


def approval_options(*, justification: bool = False,
                     needs_justification: bool = False) -> Callable[[Any], Any]:
    """Add ``--approval FILE`` (repeatable) and ``--request ID`` to an action
    command; the command passes ``**approved()`` to the library. With
    ``justification``, also an optional ``--justification`` passed the same
    way. With ``needs_justification``, the command's own ``--justification``
    may be left out only when approvals are given (then the approved
    request's is used)."""
    def decorate(fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = click.get_current_context()
            files = kwargs.pop("approval_files", ())
            request_id = kwargs.pop("request_id", None)
            given: dict[str, Any] = {}
            if files or request_id is not None:
                given["approvals"] = [_read_file(p, "approval file") for p in files]
                given["request"] = request_id
            if justification:
                text = kwargs.pop("extra_justification", None)
                if text is not None:
                    given["justification"] = text
            if needs_justification and not kwargs.get("justification") and not given:
                param = next(p for p in ctx.command.params if p.name == "justification")
                raise click.MissingParameter(ctx=ctx, param=param)
            ctx.meta[_META] = given
            return fn(*args, **kwargs)

        wrapper = click.option(
            "--request", "request_id", metavar="ID",
            help="Act on approved request ID: use the approvals left in the vault.")(wrapper)
        wrapper = click.option(
            "--approval", "approval_files", multiple=True, metavar="FILE",
            type=click.Path(dir_okay=False),
            help="An approval file ('vault approve' wrote it); repeat for several.")(wrapper)
        if justification:
            wrapper = click.option(
                "--justification", "extra_justification", metavar="TEXT",
                help="Why (recorded; required where a rule says so).")(wrapper)
        return wrapper
    return decorate


def approved() -> dict[str, Any]:
    """The approvals (and justification) the running command was given, as
    keyword arguments for the library."""
    return dict(click.get_current_context().meta.get(_META) or {})


def parse_lifetime(text: str | None) -> timedelta | None:
    if text is None:
        return None
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        raise UsageError(f"--expires: '{text}' is not a duration", hint=_DURATION_HINT)
    w, d, h, mi, sec = (int(x or 0) for x in m.groups())
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=sec)


def _check_output(path: str | None, force: bool) -> None:
    """Refuse an -o FILE that could not be written before anything is asked,
    approved or recorded: once it is, the statement is in force, and an
    error would tell the user it failed."""
    from vault._atomic import output_target

    if path is None:
        return
    if not force and os.path.lexists(path):
        raise UsageError(f"{path} already exists", hint="choose another name, or use --force")
    target = output_target(path, replace=force)  # a missing folder, a planted link, ...
    folder = os.path.dirname(os.path.abspath(target or path))
    if target is not None and not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: its folder is not writable",
                         hint="choose another file")


def _write(path: str, data: bytes, force: bool, what: str) -> None:
    from vault._atomic import write_atomic
    from vault.errors import StorageError

    try:
        write_atomic(path, data, mode=0o644, replace=force)
    except (OSError, UsageError) as e:
        why = e.strerror if isinstance(e, OSError) else e.message
        raise StorageError(f"the {what} is recorded and left in the vault, but {path} could "
                           f"not be written: {why}",
                           hint="the file is only a copy: nothing needs to be done again") \
            from None


def _request_json(r: Request) -> dict[str, Any]:
    st = r.statement
    return {"id": r.id, "digest": r.digest, "action": r.action, "doc": r.doc,
            "label": r.label, "new_label": r.new_label, "details": r.details,
            "justification": r.justification, "requester": r.requester.name,
            "created": st["created"], "expires": st["expires"], "policy": r.policy}


# --------------------------------------------------------------------------
# vault request


@click.command("request")
@click.argument("action", type=click.Choice(("open", "export", "seal", "reclassify",
                                             "declassify", "shred", "policy-apply", "rotate",
                                             "incident", "doctor", "migrate")))
@click.argument("target", metavar="[ID|FILE|LINES|DEST]", required=False)
@click.option("--level", metavar="L", help="seal: the label's level; reclassify: the new level.")
@click.option("--compartment", "compartments", multiple=True, metavar="C",
              help="seal, reclassify: compartment; repeat for several.")
@click.option("--caveat", "caveats", multiple=True, metavar="X",
              help="seal, reclassify: caveat; repeat for several.")
@click.option("--clear-compartments", is_flag=True, help="reclassify: remove every compartment.")
@click.option("--clear-caveats", is_flag=True, help="reclassify: remove every caveat.")
@click.option("--class", "classes", multiple=True, metavar="CLASS",
              help="rotate: only this label class; repeat for several.")
@click.option("--justification", metavar="TEXT", help="Why (shown to the approver, recorded).")
@click.option("--expires", metavar="DURATION", help="Lifetime (default P7D, at most P90D).")
@click.option("-o", "--output", metavar="FILE", help="Also write the request file here.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the request as JSON.")
@click.pass_context
def request(ctx: click.Context, action: str, target: str | None, level: str | None,
            compartments: Sequence[str], caveats: Sequence[str], clear_compartments: bool,
            clear_caveats: bool, classes: Sequence[str], justification: str | None,
            expires: str | None, output: str | None, force: bool, as_json: bool) -> None:
    """Ask a second person to approve ACTION (on document ID; for
    policy-apply the policy FILE; for seal the FILE to seal, whose floor the
    approver is then shown (needed to seal below it), and which alone the
    approval serves; for incident the audit LINES, FIRST-LAST; doctor asks
    for 'doctor --repair', migrate for 'migrate --to DEST' with DEST);
    prints the request id.

    The request is signed with your key, recorded in the audit log and left
    in the vault: an approver runs 'vault approve ID' (or gets the file),
    then you act with '--request ID'."""
    if clear_compartments and compartments:
        raise UsageError("--compartment and --clear-compartments contradict each other")
    if clear_caveats and caveats:
        raise UsageError("--caveat and --clear-caveats contradict each other")
    _check_output(output, force)
    if action == "policy-apply" and target is None:
        raise UsageError("policy-apply needs the policy FILE to install")
    if action == "migrate" and target is None:
        raise UsageError("migrate needs DEST, where the vault is to be moved")
    doc = target if action not in ("policy-apply", "seal", "rotate", "incident",
                                   "doctor", "migrate") else None
    if action in ("rotate", "doctor") and target is not None:
        raise UsageError(f"{action} takes no ID")
    lines = _lines(target) if action == "incident" else None
    # A whole label (LEVEL//COMPARTMENT/...//CAVEAT) replaces the sets, as
    # 'vault reclassify --level' takes it: else the request asked for
    # another label than the command then makes, and its approval never fit.
    whole = action == "reclassify" and level is not None and "/" in level
    new_comps = () if clear_compartments else (tuple(compartments) or (() if whole else None))
    new_cavs = () if clear_caveats else (tuple(caveats) or (() if whole else None))
    r = open_vault(ctx).request(
        action, doc, level=level, compartments=new_comps, caveats=new_cavs,
        justification=justification, expires=parse_lifetime(expires),
        policy_path=target if action == "policy-apply" else None,
        classes=list(classes) or None, lines=lines,
        destination=target if action == "migrate" else None,
        file=target if action == "seal" else None)
    if output:
        _write(output, r.to_bytes(), force, "request")
    if as_json:
        echo_json({**_request_json(r), "file": output})
    else:
        click.echo(r.id)
    tell(f"request {r.id} recorded and left in the vault until {r.statement['expires']}")
    needs = {"policy-apply": " --policy FILE", "migrate": " --to DEST"}.get(action, "")
    tell(f"an approver runs 'vault approve {r.id}{needs}'"
         + (f" (or 'vault approve {output}{needs}' on their machine)" if output else "")
         + (" with the file you send them" if action == "policy-apply" else "")
         + f"; then act with --request {r.id}")


def _lines(text: str | None) -> tuple[int, int]:
    """An incident request's LINES: FIRST-LAST, or one line."""
    m = re.fullmatch(r"([0-9]{1,12})(?:-([0-9]{1,12}))?", text or "")
    if m is None:
        raise UsageError("incident needs the audit LINES it declares damaged, as FIRST-LAST",
                         hint="for example: vault request incident 120-131")
    return int(m.group(1)), int(m.group(2) or m.group(1))


# --------------------------------------------------------------------------
# vault approve


def _confirm(refuse: bool) -> None:
    if not sys.stdin.isatty():
        raise UsageError(f"will not {'refuse' if refuse else 'approve'} without confirmation, "
                         "and there is no terminal to ask on",
                         hint="read the request ('vault approvals'), then pass --yes")
    if not click.confirm(f"{'Refuse' if refuse else 'Approve'} this request?", default=False,
                         err=True):
        raise UsageError("nothing signed: not confirmed")


@click.command("approve")
@click.argument("source", metavar="REQUEST_FILE_OR_ID")
@click.option("--refuse", is_flag=True, help="Refuse the request instead (on the record).")
@click.option("--reason", metavar="TEXT", help="Why (shown to the requester, recorded).")
@click.option("--expires", metavar="DURATION", help="Approval lifetime (default: the request's).")
@click.option("-o", "--output", metavar="FILE", help="Also write the approval file here.")
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (you read the request).")
@click.option("--policy", "policy_file", metavar="FILE",
              help="For a new policy version: its file, to see what it changes (needed to "
                   "approve).")
@click.option("--to", "destination", metavar="DEST",
              help="For a move: its destination, to check (needed to approve; the request "
                   "names it by digest).")
@click.option("--json", "as_json", is_flag=True, help="Print the approval as JSON.")
@click.pass_context
def approve(ctx: click.Context, source: str, refuse: bool, reason: str | None,
            expires: str | None, output: str | None, force: bool, yes: bool,
            policy_file: str | None, destination: str | None, as_json: bool) -> None:
    """Approve (or refuse) a request, signed with your own key.

    Shows what is asked in plain words and why the policy needs approval,
    then asks for confirmation. The approval is recorded and left in the
    vault for the requester; prints its id."""
    _check_output(output, force)
    v = open_vault(ctx)
    if os.path.isfile(source):
        data = _read_file(source, "request file")
        from vault import read_request

        r = read_request(data)
    elif re.fullmatch(r"[0-9a-f]{32}", source):
        r = v.find_request(source)
        data = r.to_bytes()
    else:
        raise UsageError(f"{source} is neither a request file nor a request id",
                         hint="'vault approvals' lists the requests waiting for you")
    if destination is not None and r.action != "migrate":
        raise UsageError("--to is for a move (migrate)")
    if r.action == "policy-apply" and policy_file is None and not refuse:
        tell(v.explain_request_lines(r))
        v.approve(data)  # a usage error naming --policy FILE, before any confirmation
    tell(v.explain_request_lines(r, policy_file))
    if r.action == "migrate" and not refuse:
        from vault._ops.approve import check_destination

        tell(f"the move is to {check_destination(r, destination)}")
    if not yes:
        _confirm(refuse)
    a = v.approve(data, refuse=refuse, reason=reason, expires=parse_lifetime(expires),
                  policy=policy_file, destination=destination)
    if output:
        _write(output, a.to_bytes(), force, "answer")
    if as_json:
        echo_json({"id": a.id, "request": r.id, "decision": a.decision, "reason": a.reason,
                   "approver": a.approver.name, "expires": a.statement["expires"],
                   "file": output})
    else:
        click.echo(a.id)
    done = "refused" if refuse else "approved"
    tell(f"{done} request {r.id} of {r.requester.name}; the answer is recorded and left in the "
         f"vault" + (f" and in {output}" if output else ""))


# --------------------------------------------------------------------------
# vault approvals


@click.command("approvals")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def approvals(ctx: click.Context, as_json: bool) -> None:
    """List the requests waiting for your approval."""
    v = open_vault(ctx)
    pending = v.approvals()
    if as_json:
        echo_json([_request_json(r) for r in pending])
        return
    if not pending:
        tell("no requests wait for your approval")
        return
    from vault._trust._label_dates import date_changes
    from vault.policy import Label

    rows = [("ID", "REQUESTER", "ACTION", "DOCUMENT", "LABEL", "EXPIRES")]
    for r in pending:
        label = r.new_label or r.label
        shown = "-" if label is None else label_text(v.policy, Label.from_dict(label))
        if r.new_label is not None and r.label is not None:
            shown = f"{label_text(v.policy, Label.from_dict(r.label))} -> {shown}"
            # Banners show no dates: a change that lifts an embargo or
            # brings declassification forward reads like one that keeps them.
            if changes := date_changes(r.label, r.new_label, r.created):
                shown += f" ({', '.join(changes)})"
        rows.append((r.id, r.requester.name, r.action, r.doc or "-", shown,
                     r.statement["expires"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
