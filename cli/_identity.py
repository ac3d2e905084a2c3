"""``vault identity``: create and show personal identities.

An identity file is a standard age identity file (``age -d -i FILE``
accepts it: age 1.3 and later for the post-quantum keys made by default,
any age for ``--classic`` X25519 ones); the user's Ed25519 signing key is
derived from the same secret, so one file serves both. By default the file
is itself encrypted with a passphrase, in the form stock age reads. Beside
it, ``FILE.pub`` holds the public parts, signed by the signing key, so that
showing them needs no passphrase.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING

import click

from vault.errors import UsageError, VaultError

from ._common import echo_json, info, printable, read_passphrase, warn

if TYPE_CHECKING:  # pragma: no cover
    from vault import UserIdentity
    from vault.identity import PublicIdentity


def identity_summary(identity: UserIdentity | PublicIdentity) -> dict[str, object]:
    """What the officer copies into the policy: public parts only."""
    from vault.store.base import owner_key

    return {
        "name": identity.name,
        "recipient": identity.recipient,
        "signing_key": identity.signing_public,
        "fingerprint": identity.fingerprint,
        # Over both keys: what a person and the officer compare (the signing
        # key's own fingerprint is in every label its holder signs).
        "identity_fingerprint": identity.identity_fingerprint,
        "post_quantum": identity.post_quantum,
        "keyring": owner_key(identity.recipient),  # keyrings/<this>/ in a folder vault
    }


def policy_name(name: str) -> str:
    """``name`` as a policy user name could be: the suggestion a hint makes."""
    suggestion = re.sub(r"[^A-Za-z0-9_.@+-]+", ".", name.strip().lower()).strip(".")
    return suggestion[:64] or "user"


def check_policy_name(name: str) -> None:
    """Refuse a name no policy accepts, now rather than at 'policy check'."""
    from vault._inputs import text_holds_secret
    from vault.policy._fields import PRINCIPAL_HINT, PRINCIPAL_NAME

    if text_holds_secret(name):  # a key line pasted as NAME: never quoted back
        raise UsageError("NAME holds a secret key, not shown: it cannot be a user name",
                         hint=f"NAME is how the policy will call you, never a key: "
                              f"{PRINCIPAL_HINT}")
    if not PRINCIPAL_NAME.fullmatch(name):
        raise UsageError(f"{name!r} cannot be a user name in a policy",
                         hint=f"{PRINCIPAL_HINT}; for example '{policy_name(name)}'")


def load_identity_file(path: str, *, who: str = "your") -> UserIdentity:
    """Load an identity file, asking for its passphrase only if it is
    encrypted (from the passphrase agent first, when one is running)."""
    from ._agent_client import load_identity_file as load

    return load(path, who=who)


@click.group()
def identity() -> None:
    """Create and show personal identities (age identity + signing key)."""


@identity.command("new")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Where to write the new identity file (created 0600, never overwritten); "
    "the public parts go to FILE.pub.",
)
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="Write the key unencrypted (for automation; protect the file yourself).",
)
@click.option(
    "--classic",
    is_flag=True,
    help="An X25519 key (age1…) instead of a post-quantum hybrid one (age1pq1…): for "
    "policies with 'post_quantum: preferred' or 'off', read by every age version.",
)
def new(name: str, output: str, no_passphrase: bool, classic: bool) -> None:
    """Create a new identity NAME in a new file, and its public part in FILE.pub.

    NAME is how the policy will call you: letters, digits and _ . @ + -.
    The key is post-quantum (ML-KEM-768 + X25519) unless --classic. The
    passphrase is asked twice at the terminal, or read from the file named
    by VAULT_PASSPHRASE_FILE.
    """
    from vault import new_identity
    from vault.identity import public_path

    check_policy_name(name)
    for path in (output, public_path(output)):
        if os.path.lexists(path):
            raise UsageError(
                f"{path} already exists",
                hint="identity files are never overwritten; choose another file name",
            )
    passphrase = None if no_passphrase else read_passphrase(
        "new passphrase", confirm=True,
        empty_hint="or use --no-passphrase to write the key unencrypted")
    ident = new_identity(name, post_quantum=not classic)
    ident.to_file(output, passphrase)
    try:
        ident.public().to_file(public_path(output))
    except BaseException:
        # A key without its FILE.pub would make the retry refused ("already
        # exists"); nobody has used it yet, so it goes too.
        with contextlib.suppress(OSError):
            os.unlink(output)
        raise
    protection = "unencrypted" if passphrase is None else "passphrase-protected"
    kind = "X25519" if classic else "post-quantum"
    info(f"wrote {protection} {kind} identity {name!r} to {output}")
    info(f"public parts in {public_path(output)}: send them to the officer "
         f"('vault identity show {output}' prints them for the policy)")


def _public_parts(file: str) -> UserIdentity | PublicIdentity:
    """The identity in ``file``, or only its public parts when they can be
    read without a passphrase: ``FILE.pub`` beside an encrypted file, if
    nobody else can have put it there. Another user's FILE.pub (in a shared
    folder, after its owner sent theirs and removed it) is validly signed by
    that user's key: shown, it gave their keys under the user's name."""
    from vault.identity import load_own_public_identity, load_public_identity, public_path

    if file.endswith(".pub"):
        return load_public_identity(file)
    from vault._inputs import open_input

    encrypted = False
    with contextlib.suppress(OSError), open_input(
            file, regular=True, what="identity file") as f:
        # Its head is looked at only if nobody else may read the file; other
        # files are refused by load_identity_file, before a byte is read.
        st = os.fstat(f.fileno())
        if st.st_uid in (os.geteuid(), 0) and not st.st_mode & 0o077:
            encrypted = f.read(64).lstrip().startswith(
                (b"age-encryption.org/", b"-----BEGIN AGE ENCRYPTED FILE-----"))
    pub = public_path(file)
    if encrypted and os.path.lexists(pub):
        try:
            parts = load_own_public_identity(pub)
        except UsageError as e:  # not believed: the identity itself answers
            warn(f"{e.message}, so it is not used: the public parts shown are read from "
                 f"{file} itself (its passphrase is asked)")
        else:
            info(f"the public parts shown are those of {pub} (yours, writable by you alone)")
            return parts
    return load_identity_file(file)


def _write_public(me: UserIdentity, path: str) -> None:
    """``me``'s signed public parts to ``path``: a new file, or in place of
    a FILE.pub of the same keys (an unsigned one, written before they were
    signed) -- never over anything else."""
    from vault._atomic import open_output
    from vault.identity import load_public_identity

    same = False
    if os.path.lexists(path):
        try:
            old = load_public_identity(path)
        except VaultError:
            old = None
        same = old is not None and (old.recipient, old.signing_public) == (
            me.recipient, me.signing_public)
        if not same:
            raise UsageError(f"{path} already exists",
                             hint="choose another file name; only a FILE.pub of this "
                                  "identity's keys is replaced")
    try:
        with open_output(path, mode=0o644, replace=same) as f:
            f.write(me.public().to_text().encode("utf-8"))
    except FileExistsError:
        raise UsageError(f"{path} already exists", hint="choose another file name") from None


def policy_snippet(summary: dict[str, object]) -> str:
    """A ``users:`` entry of a policy, ready to paste but for the clearance,
    which is the officer's decision (the placeholder fails 'policy check')."""
    name = str(summary["name"])
    lines = [f"# {name}: paste under 'users:' in the policy, and set the clearance",
             f"# identity fingerprint {summary['identity_fingerprint']} (compare it with "
             f"{name}'s own), signing key {summary['fingerprint']}"]
    from vault.policy._fields import PRINCIPAL_NAME

    if not PRINCIPAL_NAME.fullmatch(name):
        lines.append(f"# '{name}' is not a policy user name: renamed {policy_name(name)}")
        name = policy_name(name)
    lines += [
        f"  {name}:",
        f"    recipient: {summary['recipient']}",
        f"    signing_key: {summary['signing_key']}",
        "    clearance: REPLACE-WITH-CLEARANCE  # e.g. {level: INTERNAL, compartments: [STAFF]}",
    ]
    # Each line escaped: the name is the file's, and a file made by another
    # program than vault's may name anything (a NEL beginning a forged line,
    # a CSI driving the officer's terminal).
    return "\n".join(map(printable, lines))


@identity.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--public-out", metavar="OUT", type=click.Path(dir_okay=False),
              help="Also write the signed public parts to OUT, as 'identity new' writes "
                   "FILE.pub (from FILE itself, never its FILE.pub: signing needs the "
                   "secret). Only a FILE.pub of the same keys is replaced.")
def show(file: str, as_json: bool, public_out: str | None) -> None:
    """Print the public parts of an identity, as a policy 'users:' entry.

    FILE is an identity file or its FILE.pub. No passphrase is needed when
    FILE.pub is beside an encrypted FILE. --json gives name, recipient,
    signing_key, fingerprint (the signing key's), identity_fingerprint (over
    the recipient and the signing key: the one to compare with a person),
    post_quantum and keyring (its folder name).
    """
    if public_out is not None:
        me = load_identity_file(file)  # only its signing key signs: never FILE.pub
        _write_public(me, public_out)
        info(f"wrote the signed public parts of {me.name!r} to {public_out}")
        summary = identity_summary(me)
    else:
        from vault._identity_public import SIGNED_HINT
        from vault.identity import PublicIdentity, public_path

        parts = _public_parts(file)
        if isinstance(parts, PublicIdentity) and not parts.signed:
            read = file if file.endswith(".pub") else public_path(file)
            warn(f"{read} is not signed, so nothing ties its recipient to its signing key: "
                 f"compare its identity fingerprint with {parts.name}'s own; "
                 f"{SIGNED_HINT}")
        summary = identity_summary(parts)
    if as_json:
        echo_json(summary)
        return
    click.echo(policy_snippet(summary))
