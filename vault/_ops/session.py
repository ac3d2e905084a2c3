"""What every operation works with: :class:`Session` (docs/DESIGN.md §6).

One object holds the store, the verified manifest, the trusted state
replayed from the audit log, the caller's identity and keyring, and the log
itself. Operations take a session, never the :class:`vault.Vault` facade.

Freshness is not the callers' job: every attempt starts by catching the
state up with the log, and so does taking the vault's lock (shared or
exclusive) -- a decision is made under the policy version in force, and
keys are granted to whom the latest version clears, however long the
session has been open (docs/DESIGN.md §7).

**Who acts is decided by keys.** The actor is the policy user whose
recipient *and* signing key the identity holds; the name an identity file
gives itself is only a hint. Keys that match no user act as an unknown
actor: decided as nobody the policy knows, recorded with no name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vault._trust.keyring import Keyring
from vault._trust.manifest import Manifest
from vault._trust.places import check_place
from vault._trust.state import state_base
from vault._trust.trusted import TrustedState
from vault.errors import AuditIntegrityError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from vault.audit import AuditLog, NoteSigner
    from vault.audit._tip import TrustedTip
    from vault.identity import UserIdentity
    from vault.policy import Policy, User
    from vault.store.base import Backend

__all__ = ["UNKNOWN", "Actor", "Session"]

# How an unknown key is decided: a name no policy can give a user
# (docs/POLICY.md §3.3 restricts names to letters, digits and ._@+-).
UNKNOWN = "?unknown"


@dataclass(frozen=True)
class Actor:
    """Who acts: the policy user whose keys the identity holds, if any."""

    name: str | None
    claimed: str  # what the identity file calls itself (a hint, never trusted)
    fingerprint: str

    @property
    def decides_as(self) -> str:
        return self.name if self.name is not None else UNKNOWN

    @property
    def shown(self) -> str:
        return self.name if self.name is not None else f"an unknown key ({self.fingerprint[:15]}…)"

    def record(self) -> dict[str, Any]:
        return {"key": self.fingerprint, "name": self.name}


def resolve(policy: Policy, identity: UserIdentity) -> User | None:
    """The user of ``policy`` whose recipient and signing key ``identity`` holds."""
    for user in policy.users.values():
        if user.recipient == identity.recipient and user.signing_key == identity.signing_public:
            return user
    return None


class Session:
    """An open vault, for one process and (optionally) one identity."""

    def __init__(self, backend: Backend, identity: UserIdentity | None, *,
                 state_dir: str | None = None, persistent: bool = True,
                 vault_id: str | None = None, for_incident: bool = False,
                 manifest: bytes | None = None) -> None:
        """``manifest``: the manifest to take for the backend's (a move
        checks its destination before it writes one there)."""
        self.backend = backend
        manifest_bytes = backend.read_manifest() if manifest is None else manifest
        self.manifest = Manifest.load(manifest_bytes)
        path = None
        if state_dir is not None:
            import os

            from vault._atomic import make_folders

            make_folders(state_dir)
            path = os.path.join(state_dir, f"{self.manifest.vault_id}.sqlite")
        # Before anything of it is believed: is it the vault this place held
        # (vault/_trust/places.py)?
        # What it set right on the way is said by every command (Vault.warnings).
        self.notices = check_place(state_dir if state_dir is not None else
                                   (state_base() if persistent else None),
                                   type(backend).__name__, backend.location,
                                   self.manifest.vault_id, vault_id)
        signer, self.log_key_problem = self._log_signer()
        self.log: AuditLog = backend.audit_log(signer, self.manifest.origin)
        if signer is None:  # stored checkpoints still verified, with the pinned key
            from vault.audit import NoteVerifier

            self.log.checkpoint_verifier = NoteVerifier.from_key(self.manifest.log_key)
        self.trusted = TrustedState(self.manifest, manifest_bytes, self.log, path,
                                    persistent=persistent)
        self.trusted.confirm = self._confirm
        # Proofs are made under the incidents the log declares (AUDIT.md §10).
        self.log.sealed_off = self.trusted.sealed_off_now
        # And the leaves they carry (FORMAT.md §14.8), without catching up:
        # asked after sealed_off, and by a writer rebuilding the derived data.
        self.log.original_leaves = self.trusted.original_leaves
        # And those its trusted tip's tree holds there, which appends and
        # verify hold the tip to (AUDIT.md §11.3).
        self.log.held_leaves = self.trusted.tip_leaves
        # And the sealed-off lines as the state holds them (no catch-up):
        # a writer's walk for records out of place passes over them.
        self.log.sealed_known = self.trusted.sealed_off_held
        self.identity = identity
        # What changes recorded done left in the store, their removal failed
        # (vault/_ops/replaced.py): said by every command (Vault.warnings).
        self.left_over: list[str] = []
        self.keyring = Keyring(backend, self.trusted, identity) if identity else None
        self._depth = 0
        self._shared = False
        self._actor: tuple[Policy, Actor] | None = None
        self._registered = False
        self._first_catch_up(for_incident)
        if identity is not None and identity.recipient in self.trusted.recovery_ever():
            self.close()
            # Not a person: acting with it would only be recorded as a
            # stranger's denied attempt, and the hint would lead nowhere.
            raise UsageError(
                "this is the vault's recovery identity: it opens documents without the vault, "
                "it is no user of the policy",
                hint="decrypt a document's stored file with any age implementation, e.g. "
                     "'age -d -i RECOVERY-FILE docs/ID.VERSION.age' (age 1.3 or later for "
                     "post-quantum keys), or 'vault age decrypt -i RECOVERY-FILE FILE'")

    def _first_catch_up(self, for_incident: bool) -> None:
        """Bring the state up to date. ``for_incident``: a log that no
        longer extends what this machine verified does not stop the opening
        -- the machine stopped at damage its officer now declares, from a
        fresh replay checked against that record (vault/_ops/incident.py).
        Every operation still catches up first, and refuses until an
        incident explains the change."""
        try:
            self.trusted.catch_up()
        except AuditIntegrityError:
            if not for_incident or self.trusted.refused is None:
                raise

    def _log_signer(self) -> tuple[NoteSigner | None, str | None]:
        """The checkpoint signer, if this process may read the log key (0600)
        and it is the one pinned in vault.json; else why not."""
        from vault.audit import NoteSigner

        try:
            text = self.backend.read_log_key().decode("ascii").strip()
        except FileNotFoundError:
            return None, "the checkpoint key is missing"
        except PermissionError:
            return None, None  # another user's vault: checkpoints are its owner's job
        except (OSError, UnicodeDecodeError):
            return None, "the checkpoint key cannot be read"
        try:
            signer = NoteSigner.from_private_key(text)
        except ValueError:
            return None, "the checkpoint key is malformed"
        if signer.verifier_key() != self.manifest.log_key:
            return None, "the checkpoint key is not the one vault.json pins (it was replaced)"
        return signer, None

    def close(self) -> None:
        self.trusted.close()
        self.backend.close()

    # -- who acts ---------------------------------------------------------------

    def me(self) -> UserIdentity:
        if self.identity is None:
            raise UsageError("this needs your identity",
                             hint="pass --identity FILE or set VAULT_IDENTITY")
        return self.identity

    def _confirm(self, tip: TrustedTip) -> object:
        """Verify the log, every signature with the keys the state just
        replayed gives, held to ``tip`` at the lines incidents seal off."""
        from vault._ops.verify import confirm_history

        return confirm_history(self, tip)

    def my_keyring(self) -> Keyring:
        self.me()
        assert self.keyring is not None
        return self.keyring

    def actor(self) -> Actor:
        """The actor under the policy version in force now."""
        me = self.me()
        policy = self.trusted.policy
        cached = self._actor
        if cached is not None and cached[0] is policy:  # the same policy version object
            return cached[1]
        user = resolve(policy, me)
        actor = Actor(user.name if user else None, me.name, me.fingerprint)
        self._actor = (policy, actor)
        return actor

    def register_me(self) -> None:
        """Keep the caller's public key if the policy does not know it, so
        that an outsider's denied attempt is on the record and verifies."""
        if self._registered:
            return
        import hashlib

        from vault._primitives import raw_public

        me = self.me()
        if self.actor().name is None:
            raw = raw_public(me.signing_key.public_key())
            self.backend.register_actor(hashlib.sha256(raw).hexdigest(), raw)
        self._registered = True

    # -- locks that bring the state up to date -----------------------------------

    @contextlib.contextmanager
    def lock(self, *, shared: bool = False) -> Iterator[None]:
        """The vault's write lock (or the sealers' shared one); re-entrant
        within this session. Taking it catches the state up."""
        if self._depth:
            assert shared or not self._shared, "an exclusive lock inside a shared one"
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self.backend.shared_lock() if shared else self.backend.lock():
            self._depth, self._shared = 1, shared
            try:
                self.trusted.catch_up()
                yield
            finally:
                self._depth = 0
