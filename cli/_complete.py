"""Shell completion of document ids, levels, compartments and caveats.

Click completes commands and options by itself (README.md, "Shell
completion"); these functions complete values from the vault named by
``--vault``/``VAULT_DIR``, as seen by the person ``--identity`` names:

* document ids: those the policy lets that person list, read from this
  machine's verified replay of the audit log -- no document is opened and
  no audit record is written for a key press;
* levels, compartments and caveats: those of the policy in force, levels
  and compartments within that person's clearance.

The identity's public keys decide who that is: read from ``FILE.pub`` when
the identity file is encrypted (completion never asks for a passphrase).
Nothing here may fail loudly: any problem completes nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:  # pragma: no cover
    from vault._ops.session import Session
    from vault.policy import User

__all__ = ["complete_caveats", "complete_compartments", "complete_doc_ids", "complete_levels"]


def _setting(ctx: click.Context, name: str) -> str | None:
    from ._common import Settings

    root = ctx.find_root()
    obj = root.obj
    value = getattr(obj, name, None) if isinstance(obj, Settings) else None
    return value or root.params.get(name)


@contextlib.contextmanager
def _session(ctx: click.Context) -> Iterator[tuple[Session, User | None]]:
    """The vault (read-only, no identity) and the policy user the
    identity's public keys make the caller, if any."""
    from vault._ops.session import Session, resolve
    from vault.store import open_backend

    path = _setting(ctx, "vault_dir")
    if not path:
        raise LookupError("no vault")
    backend = open_backend(path)
    session = Session(backend, None)
    try:
        public = _public_keys(_setting(ctx, "identity_path"))
        user = resolve(session.trusted.policy, public) if public is not None else None
        yield session, user
    finally:
        session.close()


def _public_keys(path: str | None) -> Any:
    from vault.identity import load_identity, load_own_public_identity, public_path

    if not path:
        return None
    if os.path.lexists(public_path(path)):
        # Only one nobody else can have put there: another user's would
        # complete with what they may see (raises otherwise: nothing completed).
        return load_own_public_identity(public_path(path))
    return load_identity(path)  # an encrypted file without .pub raises: nothing completed


def _items(values: list[str], incomplete: str, help_: dict[str, str] | None = None
           ) -> list[CompletionItem]:
    folded = incomplete.casefold()
    return [CompletionItem(v, help=(help_ or {}).get(v)) for v in sorted(values)
            if v.casefold().startswith(folded)]


def complete_doc_ids(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    from vault._primitives import loads_json

    try:
        with _session(ctx) as (s, user):
            if user is None:
                return []
            policy = s.trusted.policy
            allowed = policy.decider(user.name, "list")
            found: dict[str, str] = {}
            for doc_id, text, _, _ in s.trusted.store.listing():
                statement = loads_json(text)
                if doc_id.startswith(incomplete) and allowed(statement["label"]):
                    from vault.policy import Label

                    found[doc_id] = policy.format_label(Label.from_dict(statement["label"]))
            return _items(list(found), incomplete, found)
    except Exception:
        return []


def _labels(ctx: click.Context, kind: str, incomplete: str) -> list[CompletionItem]:
    try:
        with _session(ctx) as (s, user):
            policy = s.trusted.policy
            if kind == "levels":
                top = policy.level_rank(user.clearance.level) if user else len(policy.levels)
                names = [lvl.name for lvl in policy.levels if lvl.rank <= top]
            elif kind == "compartments":
                names = sorted(user.clearance.compartments) if user else list(
                    policy.compartments)
            else:
                names = list(policy.caveats)
            return _items(names, incomplete)
    except Exception:
        return []


def complete_levels(ctx: click.Context, param: click.Parameter,
                    incomplete: str) -> list[CompletionItem]:
    return _labels(ctx, "levels", incomplete)


def complete_compartments(ctx: click.Context, param: click.Parameter,
                          incomplete: str) -> list[CompletionItem]:
    return _labels(ctx, "compartments", incomplete)


def complete_caveats(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    return _labels(ctx, "caveats", incomplete)
