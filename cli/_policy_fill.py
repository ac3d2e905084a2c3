"""``vault policy fill``: a policy template's placeholder keys replaced by
people's public keys.

The shipped policies are templates whose users' keys are
``REPLACE-WITH-…`` placeholders (``vault policy check`` refuses them). Each
person sends the officer their ``FILE.pub`` (``vault identity new`` writes
it, signed by the signing key over the name and both keys); this writes
the template with the keys of the users those files name, prints each
one's identity fingerprint (over both keys) to compare with its person,
and says which users are still placeholders. Nothing else of the text
changes: comments, order and layout stay the officer's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import click

from vault.errors import UsageError

from ._common import info, warn

__all__ = ["fill"]


@click.command("fill")
@click.argument("template", type=click.Path(exists=True, dir_okay=False))
@click.argument("public", nargs=-1, required=True, metavar="FILE.pub...",
                type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the filled policy (never over an existing file).")
def fill(template: str, public: Sequence[str], output: str) -> None:
    """Write TEMPLATE with the keys of the people whose FILE.pub are given.

    Each FILE.pub (written by 'vault identity new') names its user; that
    user's placeholder keys in TEMPLATE are replaced. A FILE.pub not signed
    by its signing key, and two files naming one user with different keys,
    are refused. Compare each identity fingerprint printed with its
    person's own, then check the result with 'vault policy check'.
    """
    from vault._identity_public import SIGNED_HINT
    from vault.identity import load_public_identity
    from vault.policy._keys import fill_template

    if os.path.lexists(output):
        raise UsageError(f"{output} already exists", hint="choose a new file name")
    text = _read_template(template)
    # Every input is read and checked before anything is written; a file
    # whose signature does not hold is refused as it is read.
    people = [load_public_identity(p) for p in public]
    # Both keys of a person are public (the signing key is in every label
    # they sign): only the signing key's signature ties the recipient to it.
    # Without one, anybody's recipient could stand beside the leader's
    # signing key, and get what the leader is cleared for.
    for path, p in zip(public, people, strict=True):
        if not p.signed:
            raise UsageError(f"{path} is not signed, so nothing ties its recipient to "
                             f"{p.name}'s signing key; nothing was written", hint=SIGNED_HINT)
    # The name in a FILE.pub is only a label anyone can write: a second
    # file claiming a name (one more dropped in the folder they are
    # collected from) would silently give that user someone else's keys.
    keys: dict[str, dict[str, str]] = {}
    first: dict[str, int] = {}
    for n, p in enumerate(people, 1):
        mine = {"recipient": p.recipient, "signing_key": p.signing_public}
        if keys.setdefault(p.name, mine) != mine:
            other = people[first[p.name] - 1]
            raise UsageError(f"FILE.pub {first[p.name]} and {n} both name {p.name}, with "
                             "different keys; nothing was written",
                             hint=f"their identity fingerprints are {other.identity_fingerprint} "
                                  f"and {p.identity_fingerprint}: ask {p.name} which one "
                                  "'vault identity show' prints for their own file, and give "
                                  "only that one")
        first.setdefault(p.name, n)
    new_text, filled, left = fill_template(text, keys)
    missing = sorted(set(keys) - set(filled))
    with open(output, "x", encoding="utf-8") as f:
        f.write(new_text)
    info(f"wrote {output}: keys of {', '.join(filled) or 'nobody'} filled in")
    by_name = {p.name: p for p in people}
    for name in filled:  # to compare with each person before installing
        info(f"  {name}: identity fingerprint {by_name[name].identity_fingerprint} "
             f"(signing key {by_name[name].fingerprint})")
    if filled:
        info("compare each identity fingerprint with the one 'vault identity show' prints "
             "for its person's own file")
    for name in missing:
        warn(f"{name} is no user of the template: paste the entry 'vault identity show' "
             "prints for their FILE.pub under 'users:', and set a clearance")
    if left:
        warn(f"still placeholders: {', '.join(left)}: fill them the same way, or remove "
             "those users (and their names from the groups)")


def _read_template(path: str) -> str:
    """The template's text. An identity file given in its place is refused
    unquoted: copied into the new file -- readable by all, as a policy is
    -- its secret key would be out (docs/THREAT-MODEL.md §15)."""
    from vault._inputs import holds_secret, open_input
    from vault.policy._yaml import MAX_POLICY_BYTES

    try:
        with open_input(path) as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    if holds_secret(data):
        raise UsageError(f"{path} is a secret key, not shown",
                         hint="give the policy template (such as policies/office.yaml); "
                              "an identity file stays private")
    if len(data) > MAX_POLICY_BYTES:
        raise UsageError(f"{path} is too large to be a policy",
                         hint=f"a policy holds at most {MAX_POLICY_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text, so no policy template",
                         hint="give the policy template (such as policies/office.yaml)") from None
