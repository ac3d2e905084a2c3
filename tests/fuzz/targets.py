"""Fuzz targets: the parsers that read bytes an attacker controls.

Each target takes arbitrary bytes and must either accept them (and then
hold a property, such as an exact round trip) or refuse them with the one
error class documented for that input. Any other exception -- a
``ValueError``, ``IndexError``, ``RecursionError``, ``MemoryError`` or a
hang -- is a bug. The same targets run under hypothesis in CI
(tests/test_fuzz.py) and under atheris, coverage-guided, for long runs
(tests/fuzz/run.py; commands in docs/THREAT-MODEL.md).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vault.age import (
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    dearmor,
    decrypt,
    encrypt,
    parse_identities,
    read_header,
)
from vault.audit import AuditRecord
from vault.audit._checkpoint import Checkpoint
from vault.audit.note import parse_note
from vault.errors import (
    AgeError,
    ArmorError,
    AuditIntegrityError,
    CheckpointError,
    HeaderError,
    IdentityFileError,
    NoIdentityMatchError,
    PolicyLoadError,
    VaultError,
)
from vault.policy import load_policy_bytes

if TYPE_CHECKING:  # pragma: no cover
    from vault import Vault

ROOT = Path(__file__).resolve().parents[2]
_IDENTITY = X25519Identity.from_bytes(bytes(range(32)))
_PASSPHRASE = "fuzz"


@dataclass
class Target:
    """A parser under fuzzing: ``run(data)`` raises only ``allowed``."""

    name: str
    run: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    allowed: tuple[type[BaseException], ...]

    def __call__(self, data: bytes) -> None:
        with contextlib.suppress(self.allowed):
            self.run(data)


def _age_file(armor: bool = False, plaintext: bytes = b"fuzz me\n" * 3) -> bytes:
    out = io.BytesIO()
    encrypt(io.BytesIO(plaintext), out, [_IDENTITY.recipient], armor=armor)
    return out.getvalue()


@functools.cache
def _seed_files() -> list[bytes]:
    scrypt = io.BytesIO()
    encrypt(io.BytesIO(b"secret"), scrypt, [ScryptRecipient(_PASSPHRASE, work_factor=2)])
    vectors = sorted((ROOT / "tests" / "vectors" / "age").glob("*"))[:40]
    return [_age_file(), _age_file(True), scrypt.getvalue(),
            *(p.read_bytes() for p in vectors if p.is_file() and p.stat().st_size < 1 << 16)]


# -- age: header, armor, whole files ------------------------------------------


def _age_header(data: bytes) -> None:
    src = io.BytesIO(data)
    header = read_header(src)
    encoded = header.encode()
    # A parsed header re-encodes to exactly the bytes read, and nothing more
    # was consumed (docs/FORMAT.md §2.2, §2.4).
    assert data.startswith(encoded) and src.tell() == len(encoded), "header round trip"


def _armor(data: bytes) -> None:
    binary = dearmor(io.BytesIO(data), armored=True).read()
    assert b"-----BEGIN AGE ENCRYPTED FILE-----" in data and len(binary) <= len(data)


def _age_decrypt(data: bytes) -> None:
    # The scrypt identity may demand at most 2^4: a fuzzed work factor must
    # be refused by the cap, never computed (docs/FORMAT.md §5.2).
    decrypt(io.BytesIO(data), io.BytesIO(), [_IDENTITY, ScryptIdentity(_PASSPHRASE, 4)])


def _identities(data: bytes) -> None:
    parse_identities(data.decode("utf-8", "replace"))


# -- policy, audit log ---------------------------------------------------------


def _policy(data: bytes) -> None:
    policy = load_policy_bytes(data, "fuzz.yaml")
    assert policy.hash == hashlib.sha256(data).hexdigest()


@functools.cache
def _policy_seeds() -> list[bytes]:
    files = sorted((ROOT / "policies").glob("*.yaml")) + sorted(
        (ROOT / "tests" / "policies_broken").glob("*.yaml"))
    return [p.read_bytes() for p in files]


def _audit_record(data: bytes) -> None:
    record = AuditRecord.from_line(data)
    assert record.line == data  # only the canonical form is accepted


@functools.cache
def _audit_seeds() -> list[bytes]:
    return [r.line for r in _vault().clerk.audit.records()][:20]


def _note(data: bytes) -> None:
    text, _ = parse_note(data)
    Checkpoint.from_text(text)


@functools.cache
def _note_seeds() -> list[bytes]:
    return [_vault().clerk.audit.checkpoint()]


# -- a sealed document of a real vault: header, label and metadata stanzas -----


@dataclass
class _Sealed:
    path: Path
    doc: str
    clerk: Vault
    original: bytes


@functools.cache
def _vault() -> _Sealed:
    """A vault with one document, in a temporary folder kept for the run."""
    import vault
    from vault_cli._demo_policy import office_policy

    root = Path(tempfile.mkdtemp(prefix="vault-fuzz-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)  # it holds keys
    people = {n: vault.new_identity(n) for n in ("officer", "clerk", "leader", "outsider")}
    keys = {n: {"recipient": p.recipient, "signing_key": p.signing_public}
            for n, p in people.items()}
    policy = root / "office.yaml"
    policy.write_text(office_policy(keys))
    vault.Vault.init(root / "vault", policy, people["officer"],
                     recovery_out=root / "recovery.key")
    clerk = vault.Vault(root / "vault", people["clerk"])
    doc = clerk.seal(io.BytesIO(b"fuzzed document\n" * 40), level="INTERNAL",
                     compartments=["STAFF"], title="t", filename="f.txt").id
    (path,) = (root / "vault" / "docs").glob(f"{doc}.*.age")
    return _Sealed(path, doc, clerk, path.read_bytes())


def _sealed_document(data: bytes) -> None:
    """The fuzzer's bytes as the document's header and payload: the parsers
    past the recorded-digest check (which would stop every change at once),
    then the key holder's checks."""
    import dataclasses
    import hashlib

    from vault._ops.read import class_identities
    from vault._sealed.label import SignedLabel
    from vault._sealed.reading import Sealed, check_shape, unlock
    from vault.age import read_header

    s = _vault()
    session = s.clerk._s
    f = io.BytesIO(data)
    header = read_header(f)
    label_stanza, meta = check_shape(header.stanzas, s.doc)
    label = SignedLabel.verify(label_stanza, session.manifest.vault_id, s.doc)
    row = session.trusted.doc(s.doc)
    assert row is not None
    raw = header.encode()
    row = dataclasses.replace(row, header=hashlib.sha256(raw).hexdigest())
    sealed = Sealed(row, header, len(raw), label, meta)
    unlock(sealed, class_identities(session, sealed), session.trusted)


def _document_seeds() -> list[bytes]:
    return [_vault().original]


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("age_header", _age_header, _seed_files, (HeaderError,)),
    Target("armor", _armor, lambda: [_age_file(True)], (ArmorError,)),
    Target("age_decrypt", _age_decrypt, _seed_files, (AgeError, NoIdentityMatchError)),
    Target("identities", _identities, lambda: [f"# a key\n{_IDENTITY}\n".encode()],
           (IdentityFileError,)),
    Target("policy", _policy, _policy_seeds, (PolicyLoadError,)),
    Target("audit_record", _audit_record, _audit_seeds, (AuditIntegrityError,)),
    Target("signed_note", _note, _note_seeds, (CheckpointError,)),
    # Every refusal of a hostile document is a VaultError (exit codes 2-5).
    Target("sealed_document", _sealed_document, _document_seeds, (VaultError,)),
)}
