"""``vault audit``: review and verify the audit log (docs/AUDIT.md §14).

Data goes to stdout (a table, one JSON document, JSON lines or CSV;
checkpoints, proofs and keys as text), diagnostics to stderr. A damaged log
exits 4 with the kind of damage named.
"""

from __future__ import annotations

import base64
import difflib
import itertools
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault._inputs import open_input, quoted_name, text_holds_secret
from vault._primitives import loads_json
from vault.audit import OUTCOMES, VAULT_ACTIONS, AuditLog, NoteVerifier, VerifyReport
from vault.audit._storage import MAX_CHECKPOINT
from vault.errors import AuditIntegrityError, UsageError

from . import _audit_output as out
from ._approve import approval_options, approved
from ._common import echo_json, info, printable, warn
from ._complete import complete_doc_ids
from ._vault_common import (
    vault_audit_log,
    vault_audit_verifier,
    vault_audit_verify,
    vault_for_audit,
)

KeyLookup = Callable[[str | None, str, int], Ed25519PublicKey | None]


def _resolve_log(ctx: click.Context, log: str | None) -> Path:
    """The log directory a command works on."""
    if log is None:
        raise UsageError(
            "no audit log given",
            hint="pass --vault DIR (or set VAULT_DIR), or --log DIR for a standalone audit log",
        )
    return Path(log)


def _open_log(ctx: click.Context, log: str | None) -> AuditLog:
    """The log a command works on: ``--log DIR``, else the vault's own log."""
    if log is None and (vault_log := vault_audit_log(ctx)) is not None:
        return vault_log  # type: ignore[no-any-return]
    return AuditLog.open(_resolve_log(ctx, log))


_log_option = click.option(
    "--log",
    "log_dir",
    type=click.Path(file_okay=False),
    help="Audit log directory.",
)


def _parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


MIN_INTERVAL, MAX_INTERVAL = 0.01, 3600
_SECONDS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")


def _check_interval(ctx: click.Context, param: click.Parameter, value: str) -> float:
    """Decimal seconds, a few digits: a float would take 'nan', 'inf' or
    '1e400', and time.sleep refuses each of them after the first look."""
    seconds = float(value) if _SECONDS.fullmatch(value) else None
    if seconds is None or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise UsageError(f"--interval: {value!r} is not a number of seconds from "
                         f"{MIN_INTERVAL} to {MAX_INTERVAL:,}", hint="for example: --interval 2")
    return seconds


def _check_action(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Only the vault's action names: a typo would silently match nothing."""
    if value is None or value in VAULT_ACTIONS:
        return value
    close = difflib.get_close_matches(value, VAULT_ACTIONS, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(f"unknown action {value!r}",
                     hint=f"{hint}actions: {', '.join(VAULT_ACTIONS)}")


@click.group("audit")
def audit() -> None:
    """Review and verify the audit log (docs/AUDIT.md)."""


@audit.command("log")
@_log_option
@click.option("--actor", help="Only records by this user (a user of any policy version).")
@click.option("--doc", shell_complete=complete_doc_ids,
              help="Only records about this document id.")
@click.option("--action", callback=_check_action, help="Only this action (open, seal, ...).")
@click.option("--outcome", type=click.Choice(OUTCOMES))
@click.option("--since", callback=_parse_time, help="From this time on (UTC unless given).")
@click.option("--until", callback=_parse_time, help="Before this time.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: an array of records.")
@click.option("--jsonl", "as_jsonl", is_flag=True,
              help="JSON Lines: one record per line (for a SIEM), every character that "
                   "is not printable as a \\u escape.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line.")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new records as they are written (with --jsonl or --csv; "
                   "Ctrl-C stops, exit 130).")
@click.option("--interval", callback=_check_interval, default="1", show_default=True,
              metavar="SECONDS",
              help=f"With --follow: seconds between looks at the log ({MIN_INTERVAL} to "
                   f"{MAX_INTERVAL:,}).")
@click.pass_context
def log_(
    ctx: click.Context,
    /,
    log_dir: str | None,
    as_json: bool,
    as_jsonl: bool,
    as_csv: bool,
    follow: bool,
    interval: float,
    **filters: Any,
) -> None:
    """Show audit records, oldest first.

    On a vault's log, a record not signed by the key the policy gave the
    name it carries is shown as a claim, and a warning names it.
    """
    if as_json + as_jsonl + as_csv > 1:
        raise click.UsageError("choose one of --json, --jsonl and --csv")
    if follow and not (as_jsonl or as_csv):
        raise click.UsageError("--follow needs --jsonl or --csv (a stream)")
    log = _open_log(ctx, log_dir)
    vault = vault_for_audit(ctx) if log_dir is None else None
    if follow:
        if vault is not None:
            _check_known(vault, filters, None)
        out.follow(ctx, log, interval, as_csv, filters)
    claims = _Claims()
    records = iter(log.records(**filters) if vault is None else
                   claims.sift(vault.audit_records(**filters)))
    first = next(records, None)
    if first is None and vault is not None:
        # Before a byte is written: an unknown --actor or --doc is an error,
        # never an empty '[]' or CSV header followed by one.
        _check_known(vault, filters, log)
    if first is not None:
        records = itertools.chain((first,), records)
    if as_json:
        shown = out.write_json(records)
    elif as_jsonl:
        shown = out.write_jsonl(records)
    elif as_csv:
        shown = out.write_csv(records, claims.claim)
    else:
        shown = out.write_table(records, _label_writer(vault), claims.claim)
    if not shown:
        info("no matching records")
    claims.report()


class _Claims:
    """Records whose name is only a claim: their run is not signed by the
    key the policy then gave that name (anyone who can append can write
    another's). The table shows them as claims; every form warns."""

    def __init__(self) -> None:
        self.first: list[int] = []  # the first few, to name
        self.count = 0
        self._last: Any = None  # the record just given out, if it is a claim

    def sift(self, triples: Any) -> Any:
        for record, attributed, signer in triples:
            self._last = None if attributed else (record, signer)
            if not attributed:
                self.count += 1
                if len(self.first) < 5:
                    self.first.append(record.seq)
            yield record

    def claim(self, record: Any) -> str | None:
        """The actor cell of ``record`` -- the one just given out: each row
        is written as it comes, and nothing is kept per record -- if its
        name is only a claim: who signed it, if a user of the policy did."""
        if self._last is None or self._last[0] is not record:
            return None
        signer, name = self._last[1], record.actor
        if name is None:  # no name, but signed by a user's key: theirs
            return f"{signer} (claims no name)" if signer else None
        return f"{signer} (claims {name})" if signer else f"(claims {name})"

    def report(self) -> None:
        if self.count:
            first = ", ".join(map(str, self.first))
            warn(f"{self.count} record{'s' if self.count != 1 else ''} shown "
                 f"{'are' if self.count != 1 else 'is'} not signed by the key the policy "
                 f"gave the name {'they carry' if self.count != 1 else 'it carries'} "
                 f"(seq {first}{', ...' if self.count > 5 else ''}): that name is only a "
                 "claim (the table and CSV name who signed, where a user of the policy did); "
                 "run 'vault audit verify'")


def _label_writer(vault: Any) -> out.LabelWriter:
    """Labels as the vault's policy writes them, or by names for a
    standalone log."""
    if vault is None:
        return out.banner
    from vault.policy import Label

    policy = vault.policy

    def write(level: str, compartments: Sequence[str], caveats: Sequence[str]) -> str:
        return str(policy.format_label(Label(level, frozenset(compartments),
                                             frozenset(caveats))))

    return write


def _check_known(vault: Any, filters: dict[str, Any], log: AuditLog | None) -> None:
    """An --actor or --doc the vault never knew is a typo, not an empty
    answer: say so (exit 2), with the closest name known."""
    actor, doc = filters.get("actor"), filters.get("doc")
    if actor is not None:
        from vault.policy._loader import load_installed_policy

        known = set()
        for version in vault.policy_versions:
            text = vault.policy_text(version.version).encode("utf-8")
            known |= set(load_installed_policy(text, "policy").users)
        if log is not None:
            known |= {r.actor for r in log.records() if r.actor}
        if actor not in known:
            close = difflib.get_close_matches(actor, sorted(known), n=1, cutoff=0.6)
            shown = quoted_name(actor) if text_holds_secret(actor) else repr(actor)
            raise UsageError(f"no user {shown} in any policy version of this vault",
                             hint=(f"did you mean '{close[0]}'? " if close else "")
                             + f"users: {', '.join(sorted(known))}")
    if doc is not None and log is not None and not any(True for _ in log.records(doc=doc)):
        from vault.store.base import DOC_ID

        why = "is not a document id (16 letters and digits)" if not DOC_ID.match(doc) \
            else "was never in this vault"
        raise UsageError(f"document {doc!r} {why}",
                         hint="'vault ls' lists the documents you may see")


_MAX_KEY_FILE = 4096  # a verifier key is one line of about 100 characters


def _read_key(text: str) -> NoteVerifier:
    source = Path(text)
    if "+" not in text or source.is_file():
        try:
            with open_input(text) as f:  # never blocks on a FIFO another user planted
                data = f.read(_MAX_KEY_FILE + 1)
            if len(data) > _MAX_KEY_FILE:
                raise UsageError(f"key file {text} is too large to be a verifier key",
                                 hint="use the output of 'vault audit key'")
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UsageError(f"key file {text} is not UTF-8 text",
                             hint="use the output of 'vault audit key'") from None
        except OSError as e:
            raise UsageError(f"cannot read key file {text}: {e.strerror}") from None
    try:
        return NoteVerifier.from_key(text)
    except ValueError as e:
        raise UsageError(
            f"bad verifier key: {e}", hint="use the output of 'vault audit key'"
        ) from None


def _read_checkpoint(path: str) -> bytes:
    """A checkpoint note kept outside, read from ``path``."""
    with open_input(path) as f:
        note = f.read(MAX_CHECKPOINT + 1)  # /dev/zero must not fill the memory
    if len(note) > MAX_CHECKPOINT:
        raise UsageError(f"{path} is larger than any checkpoint "
                         f"({MAX_CHECKPOINT // 1024} KiB at most)",
                         hint="give the note 'vault audit checkpoint' printed")
    return note


@audit.command("verify")
@_log_option
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True),
    help="A checkpoint you kept elsewhere: detects truncation and rewriting since.",
)
@click.option("--key", help="The log's verifier key you trust (text or file).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(
    ctx: click.Context,
    log_dir: str | None,
    checkpoint_file: str | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Recompute the Merkle tree and check every checkpoint (exit 4 if damaged)."""
    log = _open_log(ctx, log_dir)
    verifier = _read_key(key) if key else (vault_audit_verifier(ctx) if log_dir is None else None)
    if verifier is None:
        if log.checkpoint_signer is None:
            raise UsageError("no verifier key for this log", hint="pass --key (vault audit key)")
        info("note: checkpoints checked against the log's own key; pass --key to pin it")
    trusted = _read_checkpoint(checkpoint_file) if checkpoint_file else None
    try:
        # A vault's log is verified as the vault reads it (record signatures by
        # the keys its policy versions gave, incidents sealed off); a
        # standalone log structurally, with its checkpoints.
        report = (vault_audit_verify(ctx, trusted, verifier) if log_dir is None else None) \
            or log.verify(trusted_checkpoint=trusted, verifier=verifier)
    except AuditIntegrityError as e:
        if as_json:
            echo_json({"ok": False, "kind": e.kind, "seq": e.seq, "message": e.message})
        raise
    for finding in report.findings:
        info(f"note: {finding}")
    for incident in report.incidents:
        warn(f"incident: {incident}")
    if as_json:
        echo_json({"ok": True, **report.to_dict()})
    else:
        _print_report(report)


def _print_report(report: VerifyReport) -> None:
    click.echo(f"ok: {report.size} lines, root {base64.b64encode(report.root).decode()}")
    newest = f" (newest at size {report.newest_checkpoint})" if report.checkpoints else ""
    click.echo(f"checkpoints: {report.checkpoints} verified{newest}")
    if report.trusted_checkpoint is not None:
        how = "consistency proof checked" if report.consistency_proved else "root recomputed"
        click.echo(f"trusted checkpoint: size {report.trusted_checkpoint} matches ({how})")
    if report.signatures:
        covered = f", covering {report.unsigned_covered} unsigned" if report.unsigned_covered \
            else ""
        click.echo(f"record signatures: {report.signatures} verified{covered}")
    else:
        click.echo(f"records after the newest checkpoint: {report.records_parsed}, checked")


@audit.command("checkpoint")
@_log_option
@click.pass_context
def checkpoint(ctx: click.Context, log_dir: str | None) -> None:
    """Sign a checkpoint of the log now and print it (a C2SP signed note)."""
    vault = vault_for_audit(ctx) if log_dir is None else None
    log = vault.audit_to_sign() if vault is not None else _open_log(ctx, log_dir)
    note = log.checkpoint()
    click.echo(note.decode("utf-8"), nl=False)
    if log.unstored:
        warn(log.unstored)


@audit.command("prove")
@_log_option
@click.argument("seq", type=click.IntRange(min=0))
@click.pass_context
def prove(ctx: click.Context, log_dir: str | None, seq: int) -> None:
    """Print a c2sp.org/tlog-proof@v1 inclusion proof for record SEQ."""
    log = _open_log(ctx, log_dir)
    click.echo(log.prove(seq), nl=False)
    for note in log.notes:
        info(f"note: {note}")


@audit.command("key")
@_log_option
@click.pass_context
def key(ctx: click.Context, log_dir: str | None) -> None:
    """Print the log's verifier key (name+hash+base64, C2SP signed-note)."""
    click.echo(_open_log(ctx, log_dir).verifier().verifier_key())


@audit.command("keys")
@click.pass_context
def keys(ctx: click.Context) -> None:
    """Print the keys file a third party checks signatures with: one line
    per binding, FIRST END FINGERPRINT BASE64-KEY NAME, the name a JSON
    string (docs/AUDIT.md §15)."""
    from vault._ops.verify import keys_file_line

    v = vault_for_audit(ctx)
    if v is None:
        raise UsageError("a standalone audit log has no policy binding keys to names",
                         hint="pass --vault DIR (or set VAULT_DIR)")
    for binding in v.audit_key_bindings():
        click.echo(printable(keys_file_line(binding)))


@audit.command("incident")
@click.argument("first", type=click.IntRange(min=0))
@click.argument("last", type=click.IntRange(min=0))
@click.option("--reason", required=True, metavar="TEXT",
              help="What happened, for the record (no secrets: it is kept in the log).")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True),
    help="A checkpoint you kept elsewhere: the log must agree with it once the lines are "
         "sealed off, and the lines' original leaves are taken only if they reproduce it "
         "(or this machine's own tip).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@approval_options()
@click.pass_context
def incident(ctx: click.Context, first: int, last: int, reason: str,
             checkpoint_file: str | None, as_json: bool) -> None:
    """Seal off damaged audit lines FIRST..LAST as an incident (administrators).

    The lines stay in the log as evidence; a signed incident record says
    they count for nothing, and 'audit verify' reports the incident from
    then on instead of failing (docs/AUDIT.md §11.3).
    """
    from ._vault_common import open_vault

    kept = _read_checkpoint(checkpoint_file) if checkpoint_file else None
    # A machine that stopped at the damage must be able to declare it.
    v = open_vault(ctx, for_incident=True)
    seq = v.declare_incident(first, last, reason=reason, checkpoint=kept, **approved())
    if as_json:
        echo_json({"incident": seq, "first": first, "last": last})
    else:
        click.echo(f"incident recorded as line {seq}: lines {first}..{last} sealed off")
    if not _carries_leaves(v.audit, seq):
        info(f"note: the incident carries no original leaves of lines {first}..{last} (no "
             "root this machine trusts by itself tells them): checkpoints and machines' "
             "trusted tips from before the damage match the log only while audit/hashes "
             "still holds them, or on machines that confirmed them with 'vault audit "
             "verify'; declare the lines again with '--checkpoint FILE', a checkpoint a "
             "witness kept from before the damage (docs/DEPLOYMENT.md §13, §14)")


def _carries_leaves(log: AuditLog, seq: int) -> bool:
    """Does incident record ``seq`` carry the original leaves (FORMAT.md §14.8)?"""
    line = next(itertools.islice(log.lines(), seq, seq + 1), b"")
    try:
        incident = loads_json(line)["state"]["incident"]
    except (ValueError, KeyError, TypeError):
        return True  # not ours to judge here: 'audit verify' says what is wrong
    return isinstance(incident, dict) and "leaves" in incident
