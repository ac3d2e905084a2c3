"""The vault's own test vectors (docs/FORMAT.md §15, tests/vectors/vault/).

Every vector is checked three ways:

* **by the document**: tests/format_reference.py, a second reader written
  from docs/FORMAT.md with nothing of ``vault``, recomputes every value --
  class ids, key ids and owner keys, the signing key an identity derives,
  the manifest's and the label's signatures (with ``cryptography``
  directly), the bound X25519 stanzas, the header MAC, the label binding,
  the metadata, the content commitment and the payload;
* **by independent tools**: stock ``age`` (``/usr/bin/age``, ``age-keygen``)
  opens the X25519 document and keyring entry, the ``age-encryption`` npm
  package (tests/npm) the post-quantum ones;
* **by the library**: it reads and verifies each vector, and writes the very
  same bytes from the same inputs wherever the format is deterministic
  (everything but the randomness of post-quantum stanzas).

The vectors are made by this file: ``python tests/test_format_vectors.py``
writes them again -- only when the format changes. The randomness the
format asks for (file keys, nonces, ephemeral keys) is drawn from a
deterministic generator seeded by the vector's name, so that writing them
again gives the same bytes, except for the post-quantum stanzas, whose
randomness ``cryptography`` draws itself: the post-quantum files already
there are kept unless ``--pq`` is given.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import format_reference as ref
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault.age import (
    Header,
    MLKEM768X25519Identity,
    Stanza,
    X25519Identity,
    X25519Recipient,
    decrypt,
    decrypt_payload,
    encrypt,
    encrypt_payload,
    parse_recipient,
    read_header,
    unwrap_file_key,
)
from vault.identity import AgeKeyPair, UserIdentity

HERE = Path(__file__).parent
VECTORS = HERE / "vectors" / "vault"
ROOT = HERE.parent
NPM = HERE / "npm"
AGE = "/usr/bin/age"
AGE_KEYGEN = "/usr/bin/age-keygen"

# -- the inputs -----------------------------------------------------------------------


def _seed(name: str) -> bytes:
    """32 known bytes: SHA-256 of "vault format test vector " + name."""
    return hashlib.sha256(b"vault format test vector " + name.encode()).digest()


class _Random:
    """Deterministic stand-in for ``os.urandom`` while a vector is made.

    Each size has its own stream, SHA-256 in counter mode seeded by the
    vector's name and the size, so that the bytes do not depend on how
    draws of different sizes interleave; with ``repeat`` every draw of a
    size gives the same bytes (a writer may build a header more than once)."""

    def __init__(self, name: str, *, repeat: bool = False) -> None:
        self._name = name
        self._repeat = repeat
        self._drawn: dict[int, int] = {}

    def __call__(self, size: int) -> bytes:
        n = 0 if self._repeat else self._drawn.get(size, 0)
        self._drawn[size] = n + 1
        seed = _seed(f"randomness {self._name} {size} {n}")
        out = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                       for i in range(-(-size // 32)))
        return out[:size]


VAULT_ID = _seed("vault").hex()[:32]
ORIGIN = f"vault/{VAULT_ID}"
# A stand-in for the SHA-256 of a policy version: the label and the manifest
# name one; whether it is the version in force is the audit log's business.
POLICY = hashlib.sha256(b"vault format test vector policy").hexdigest()
CREATED = "2026-01-01T09:30:00Z"


def _key(name: str, pq: bool) -> AgeKeyPair:
    if pq:
        return MLKEM768X25519Identity.from_bytes(_seed(name))
    return X25519Identity.from_bytes(_seed(name))


USERS = {"alice": _key("alice", False), "bob": _key("bob", True)}
CLASS_KEYS = {  # (level, compartments, generation, identity)
    "SECRET [BOARD]": ("SECRET", ["BOARD"], 1, _key("class SECRET [BOARD] generation 1", False)),
    "CONFIDENTIAL": ("CONFIDENTIAL", [], 1, _key("class CONFIDENTIAL generation 1", True)),
}
RECOVERY = {"recovery": _key("recovery", False), "recovery-pq": _key("recovery pq", True)}


def _user(name: str) -> UserIdentity:
    return UserIdentity(name, USERS[name])


@dataclass(frozen=True)
class DocSpec:
    signer: str
    class_key: str
    recovery: str
    label: dict[str, Any]
    filename: str | None
    title: str | None
    content_type: str | None
    plaintext: bytes


DOCS = {
    "document-x25519": DocSpec(
        "alice", "SECRET [BOARD]", "recovery",
        {"level": "SECRET", "compartments": ["BOARD"], "caveats": ["NOFORN"],
         "classified_by": "alice", "reason": "board minutes", "created": CREATED,
         "declassify_on": "P10Y"},
        "minutes.txt", "Conseil d'administration — procès-verbal", "text/plain",
        b"Minutes of the board meeting of 1 January 2026.\n"
        b"Present: the whole board. Decided: nothing that leaves this room.\n"),
    "document-pq": DocSpec(
        "bob", "CONFIDENTIAL", "recovery-pq",
        {"level": "CONFIDENTIAL", "classified_by": "bob", "created": CREATED},
        "notes.md", None, "text/markdown",
        b"# Notes\n\nA document wrapped to post-quantum keys only.\n"),
}
ENTRIES = {  # name: (class key, owner)
    "keyring-x25519": ("SECRET [BOARD]", "alice"),
    "keyring-pq": ("CONFIDENTIAL", "bob"),
}
CLASSES = [("CONFIDENTIAL", []), ("SECRET", []), ("SECRET", ["BOARD"]),
           ("SECRET", ["HR", "BOARD"])]


def _doc_id(name: str) -> str:
    return base64.b32encode(_seed(name + " id")[:10]).decode().lower()


def _version(name: str) -> str:
    return _seed(name + " version").hex()[:8]


# -- making the vectors with the library -------------------------------------------------


def _label(spec: DocSpec) -> Any:
    from vault.policy import Label

    return Label.from_dict(spec.label)


def make_document(name: str) -> bytes:
    """The sealed document ``name``, written by the library's own sealing
    steps (vault._ops.seal, with known keys and randomness)."""
    from vault._sealed.label import LabelStanza
    from vault._sealed.meta import Metadata
    from vault._sealed.recipients import vault_recipient
    from vault._sealed.writing import write_sealed

    spec = DOCS[name]
    doc_id, signer = _doc_id(name), _user(spec.signer)
    file_key = _seed(name + " file key")[:16]
    with mock.patch("os.urandom", _Random(name, repeat=True)):
        recipients = [vault_recipient(str(CLASS_KEYS[spec.class_key][3].recipient)),
                      vault_recipient(str(RECOVERY[spec.recovery].recipient))]
        stanzas = [st for r in recipients for st in r.wrap(file_key)]

        def header_for(plain: int, payload_sha: str, payload_len: int) -> Header:
            meta = Metadata(spec.filename, spec.title, spec.content_type, plain).check()
            meta_stanza = meta.seal(file_key, doc_id)
            statement = _statement(name, payload_sha, payload_len, meta_stanza)
            label_stanza = LabelStanza(statement, signer).wrap(file_key)[0]
            return Header.seal([*stanzas, label_stanza, meta_stanza], file_key)

        out = io.BytesIO()
        write_sealed(io.BytesIO(spec.plaintext), out, file_key, header_for)
    return out.getvalue()


def _statement_base(name: str) -> dict[str, Any]:
    spec = DOCS[name]
    label = _label(spec).to_dict()
    return {"vault": VAULT_ID, "doc": _doc_id(name), "label": label,
            "sealed_at": label["created"], "sealed_by": spec.signer,
            "signer": {"name": spec.signer, "signing_key": _user(spec.signer).signing_public},
            "policy": POLICY, "action": "seal"}


def _statement(name: str, payload_sha: str, payload_len: int, meta: Stanza) -> dict[str, Any]:
    from vault._sealed.label import content_of

    return {**_statement_base(name), "content": content_of(payload_sha, payload_len, meta)}


class _KnownEphemeral:
    """An X25519 recipient whose ephemeral secret comes from ``os.urandom``
    (so, while a vector is made, from :class:`_Random`)."""

    def __init__(self, recipient: str) -> None:
        r = parse_recipient(recipient)
        assert isinstance(r, X25519Recipient)
        self._r = r

    def wrap(self, file_key: bytes) -> list[Stanza]:
        eph = X25519PrivateKey.from_private_bytes(os.urandom(32))
        return self._r.wrap_with(file_key, eph)


def _class_key(name: str) -> Any:
    from vault._trust.classes import ClassKey, LabelClass

    level, compartments, generation, identity = CLASS_KEYS[name]
    return ClassKey(LabelClass(level, frozenset(compartments)), generation,
                    str(identity.recipient), "alice", -1, frozenset())


def entry_plaintext(name: str) -> bytes:
    """What the library's keyring entry for ``name`` decrypts to."""
    from vault._trust.keyring import entry_bytes

    key_name, owner = ENTRIES[name]
    identity = CLASS_KEYS[key_name][3]
    data = entry_bytes(VAULT_ID, _class_key(key_name), identity, str(USERS[owner].recipient))
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, [USERS[owner]])
    return out.getvalue()


def make_entry(name: str) -> bytes:
    """The keyring entry ``name``: the library's entry text, encrypted by
    the library to the owner as entry_bytes does (a standard age file),
    with known randomness where X25519 allows it."""
    _, owner = ENTRIES[name]
    recipient = str(USERS[owner].recipient)
    text = entry_plaintext(name)
    out = io.BytesIO()
    with mock.patch("os.urandom", _Random(name)):
        r = parse_recipient(recipient)
        encrypt(io.BytesIO(text), out,
                [_KnownEphemeral(recipient) if isinstance(r, X25519Recipient) else r])
    return out.getvalue()


def make_manifest() -> bytes:
    from vault._trust.manifest import Manifest, sign_statement
    from vault.audit import NoteSigner

    alice = _user("alice")
    signer = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(_seed("checkpoint")))
    m = Manifest(VAULT_ID, "2026-01-01T09:00:00Z",
                 {"name": "alice", "recipient": alice.recipient,
                  "signing_key": alice.signing_public},
                 POLICY, signer.verifier_key(), ORIGIN,
                 (str(RECOVERY["recovery"].recipient),))
    return sign_statement(alice, "manifest", m.statement())


# -- describing them from the document alone -------------------------------------------------


def _stanza_json(s: ref.Stanza) -> dict[str, Any]:
    return {"type": s.type, "args": s.args, "body": ref.b64(s.body)}


def describe_document(name: str, data: bytes) -> dict[str, Any]:
    """Every value a reimplementer needs to check their reading of ``data``."""
    spec = DOCS[name]
    f = ref.parse_age(data)
    level, compartments, generation, class_identity = CLASS_KEYS[spec.class_key]
    recovery = RECOVERY[spec.recovery]
    secrets = [ref.identity_secret(str(class_identity)), ref.identity_secret(str(recovery))]
    pq = str(class_identity).startswith("AGE-SECRET-KEY-PQ-1")
    unwrap = ref.pq_unwrap if pq else ref.x25519_unwrap
    file_key = unwrap(secrets[0], f.stanzas)
    assert file_key is not None and unwrap(secrets[1], f.stanzas) == file_key
    label_stanza, meta_stanza = f.stanzas[-2], f.stanzas[-1]
    outer = ref.parse_canonical(label_stanza.body)
    statement = outer["statement"]
    binding = ref.label_binding(file_key, statement)
    meta_plain, metadata = ref.open_meta(file_key, _doc_id(name), meta_stanza.body)
    recipients = [str(class_identity.recipient), str(recovery.recipient)]
    stanzas: list[dict[str, Any]] = []
    for s, r in zip(f.stanzas[:2], recipients, strict=True):
        one = {"recipient": r, **_stanza_json(s)}
        if s.type == "X25519":
            one["ephemeral_secret"] = ref.bound_ephemeral(
                file_key, ref.x25519_recipient_bytes(r)).hex()
        stanzas.append(one)
    signer = _user(spec.signer)
    return {
        "file": f"{name}.age",
        "stored_as": f"docs/{_doc_id(name)}.{_version(name)}.age",
        "vault": VAULT_ID,
        "doc": _doc_id(name),
        "version": _version(name),
        "plaintext": spec.plaintext.decode("utf-8"),
        "class": {"level": level, "compartments": compartments, "id": ref.class_id(
            level, compartments), "generation": generation, "recipient": recipients[0],
            "identity": str(class_identity), "key_id": ref.short_id(recipients[0])},
        "recovery": {"recipient": recipients[1], "identity": str(recovery)},
        "signer": {"name": spec.signer, "identity": str(signer.age_identity),
                   "signing_key": signer.signing_public},
        "file_key": file_key.hex(),
        "header": {"size": len(f.header), "sha256": hashlib.sha256(f.header).hexdigest(),
                   "mac_key": ref.hkdf(file_key, b"", b"header").hex(),
                   "mac": ref.b64_unpadded(f.mac)},
        "stanzas": [*stanzas, _stanza_json(label_stanza), _stanza_json(meta_stanza)],
        "label": {
            "statement": statement,
            "statement_json": ref.canonical_json(statement).decode("utf-8"),
            "binding_key": ref.hkdf(file_key, b"", b"vault/v1 label binding").hex(),
            "binding": outer["binding"],
            "signed_message": ref.signed_message(
                "label", binding + ref.canonical_json(statement)).hex(),
            "sig": outer["sig"],
        },
        "meta": {
            "key": ref.meta_key(file_key).hex(),
            "nonce": meta_stanza.body[:12].hex(),
            "aad": ref.meta_aad(_doc_id(name)).decode("ascii"),
            "plaintext": meta_plain.decode("utf-8"),
            "metadata": metadata,
            "body_sha256": hashlib.sha256(meta_stanza.body).hexdigest(),
        },
        "payload": {"offset": len(f.header), "size": len(f.payload),
                    "sha256": hashlib.sha256(f.payload).hexdigest(),
                    "nonce": f.payload[:16].hex(),
                    "key": ref.payload_key(file_key, f.payload).hex()},
        "state": {"document": {"doc": _doc_id(name), "version": _version(name),
                               "key_id": ref.short_id(recipients[0]),
                               "header": hashlib.sha256(f.header).hexdigest(),
                               "statement": statement, "inputs": {},
                               "stanzas": _pins(f.stanzas[:-2])}},
    }


def _pins(recipient_stanzas: list[ref.Stanza]) -> dict[str, Any]:
    """§14.6: the SHA-256 of each recipient stanza's encoding, the class
    key's (the first) apart, the recovery ones sorted."""
    def digest(s: ref.Stanza) -> str:
        return hashlib.sha256(ref.encode_stanza(s)).hexdigest()

    first, *rest = recipient_stanzas
    return {"class": digest(first), "recovery": sorted(digest(s) for s in rest)}


def describe_entry(name: str, data: bytes) -> dict[str, Any]:
    key_name, owner = ENTRIES[name]
    level, compartments, generation, identity = CLASS_KEYS[key_name]
    owner_recipient, class_recipient = str(USERS[owner].recipient), str(identity.recipient)
    text = entry_plaintext(name).decode("ascii")
    digest = hashlib.sha256(data).hexdigest()
    return {
        "file": f"{name}.age",
        "stored_as": f"keyrings/{ref.short_id(owner_recipient)}/"
                     f"{ref.short_id(class_recipient)}.age",
        "vault": VAULT_ID,
        "owner": {"name": owner, "recipient": owner_recipient, "identity": str(USERS[owner]),
                  "owner_key": ref.short_id(owner_recipient)},
        "class": {"level": level, "compartments": compartments,
                  "id": ref.class_id(level, compartments), "generation": generation,
                  "recipient": class_recipient, "identity": str(identity),
                  "key_id": ref.short_id(class_recipient)},
        "plaintext": text,
        "sha256": digest,
        "state": {"grants": {"key_id": ref.short_id(class_recipient),
                             "entries": [{"owner": owner_recipient, "sha256": digest}]}},
    }


def describe_identities() -> dict[str, Any]:
    out = {}
    for name, identity in USERS.items():
        key = ref.signing_key_of(str(identity))
        out[name] = {
            "file": f"{name}.key",
            "name": name,
            "secret": ref.identity_secret(str(identity)).hex(),
            "identity": str(identity),
            "recipient": str(identity.recipient),
            "signing_seed": ref.hkdf(ref.identity_secret(str(identity)), b"",
                                     b"vault/v1 signing key").hex(),
            "signing_key": ref.signing_key_text(key),
            "fingerprint": ref.fingerprint(key),
            "owner_key": ref.short_id(str(identity.recipient)),
        }
    return out


def describe_manifest(data: bytes) -> dict[str, Any]:
    outer = ref.parse_canonical(data.removesuffix(b"\n"))
    statement = outer["statement"]
    checkpoint = Ed25519PrivateKey.from_private_bytes(_seed("checkpoint"))
    return {
        "file": "vault.json",
        "context": "manifest",
        "statement": statement,
        "signer": {"name": "alice", "identity": str(USERS["alice"]),
                   "signing_key": statement["officer"]["signing_key"]},
        "signed_message": ref.signed_message(
            "manifest", ref.canonical_json(statement)).decode("utf-8"),
        "sig": outer["sig"],
        "checkpoint_key": {"seed": _seed("checkpoint").hex(), "public": ref.b64(
            checkpoint.public_key().public_bytes_raw()), "verifier_key": statement["log_key"]},
    }


def describe_classes() -> list[dict[str, Any]]:
    return [{"level": level, "compartments": compartments,
             "canonical": ref.canonical_json({"compartments": sorted(compartments),
                                              "level": level}).decode(),
             "id": ref.class_id(level, compartments)} for level, compartments in CLASSES]


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_vectors(*, post_quantum: bool = False) -> None:
    """Write every vector. Post-quantum files already there are kept (their
    randomness cannot be replayed) unless ``post_quantum``: after a change
    of the format, run ``python tests/test_format_vectors.py --pq``."""
    VECTORS.mkdir(parents=True, exist_ok=True)
    for name in USERS:
        (VECTORS / f"{name}.key").write_text(_user(name).to_text())
    (VECTORS / "identities.json").write_text(_dump(describe_identities()))
    (VECTORS / "classes.json").write_text(_dump(describe_classes()))
    manifest = make_manifest()
    (VECTORS / "vault.json").write_bytes(manifest)
    (VECTORS / "manifest.json").write_text(_dump(describe_manifest(manifest)))
    made: list[tuple[str, Callable[[str], bytes], Callable[[str, bytes], dict[str, Any]]]] = [
        *((n, make_document, describe_document) for n in DOCS),
        *((n, make_entry, describe_entry) for n in ENTRIES)]
    for name, make, describe in made:
        path = VECTORS / f"{name}.age"
        keep = name.endswith("-pq") and path.exists() and not post_quantum
        data = path.read_bytes() if keep else make(name)
        path.write_bytes(data)
        (VECTORS / f"{name}.json").write_text(_dump(describe(name, data)))


# -- loading ----------------------------------------------------------------------------


def _json(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _bytes(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def _private_copy(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def _run(args: list[str], stdin: bytes = b"") -> bytes:
    result = subprocess.run(args, input=stdin, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _stock(tool: str) -> str:
    # The independent judge must be there: without it the test fails, never skips.
    assert os.access(tool, os.X_OK), f"{tool} is required (apt-get install age)"
    return tool


def _npm_age(*args: str, stdin: bytes = b"") -> bytes:
    node = shutil.which("node")
    package = NPM / "node_modules" / "age-encryption" / "package.json"
    if node is None or not package.is_file():
        pytest.fail("run `npm ci --prefix tests/npm` (and install Node.js 20+)")
    return _run([node, str(NPM / "age.mjs"), *args], stdin)


# -- the vectors are what the generator writes ----------------------------------------------------


def test_every_vector_file_is_known() -> None:
    expected = {"LICENSE", "SOURCE", "identities.json", "classes.json", "vault.json",
                "manifest.json", *(f"{n}.key" for n in USERS),
                *(f"{n}.{x}" for n in [*DOCS, *ENTRIES] for x in ("age", "json"))}
    assert {p.name for p in VECTORS.iterdir()} == expected


def test_descriptions_follow_from_the_stored_files() -> None:
    assert _json("identities.json") == describe_identities()
    assert _json("classes.json") == describe_classes()
    assert _json("manifest.json") == describe_manifest(_bytes("vault.json"))
    for name in DOCS:
        assert _json(f"{name}.json") == describe_document(name, _bytes(f"{name}.age")), name
    for name in ENTRIES:
        assert _json(f"{name}.json") == describe_entry(name, _bytes(f"{name}.age")), name


def test_the_library_writes_the_same_bytes() -> None:
    for name in USERS:
        assert (VECTORS / f"{name}.key").read_text() == _user(name).to_text()
    assert make_manifest() == _bytes("vault.json")
    assert make_document("document-x25519") == _bytes("document-x25519.age")
    assert make_entry("keyring-x25519") == _bytes("keyring-x25519.age")


# -- identities and signing keys (§12) --------------------------------------------------------


def _identity_file_fields(text: str) -> tuple[dict[str, str], list[str]]:
    comments: dict[str, str] = {}
    keys: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#"):
            k, _, v = line[1:].partition(":")
            comments.setdefault(k.strip(), v.strip())
        elif line:
            keys.append(line)
    return comments, keys


@pytest.mark.parametrize("name", sorted(USERS))
def test_identity_by_the_document(name: str, tmp_path: Path) -> None:
    v = _json("identities.json")[name]
    comments, keys = _identity_file_fields((VECTORS / v["file"]).read_text())
    assert keys == [v["identity"]]
    assert comments == {"name": name, "recipient": v["recipient"],
                        "signing key": v["signing_key"]}
    secret = ref.identity_secret(v["identity"])
    assert secret.hex() == v["secret"]
    assert ref.hkdf(secret, b"", b"vault/v1 signing key").hex() == v["signing_seed"]
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["signing_seed"]))
    assert ref.signing_key_text(key) == v["signing_key"]
    assert ref.fingerprint(key) == v["fingerprint"]
    assert ref.short_id(v["recipient"]) == v["owner_key"]
    path = _private_copy(tmp_path, (VECTORS / v["file"]).read_text(), v["file"])
    if v["identity"].startswith("AGE-SECRET-KEY-PQ-1"):
        assert _npm_age("recipient", str(path)).decode() == v["recipient"] + "\n"
    else:
        assert _run([_stock(AGE_KEYGEN), "-y", str(path)]).decode() == v["recipient"] + "\n"


@pytest.mark.parametrize("name", sorted(USERS))
def test_identity_by_the_library(name: str, tmp_path: Path) -> None:
    from vault.audit import fingerprint
    from vault.identity import load_identity
    from vault.store.base import owner_key

    v = _json("identities.json")[name]
    path = _private_copy(tmp_path, (VECTORS / v["file"]).read_text(), "other-name.key")
    me = load_identity(path)
    assert (me.name, me.recipient, me.signing_public) == (name, v["recipient"], v["signing_key"])
    assert str(me.age_identity) == v["identity"]
    assert me.age_identity.to_bytes().hex() == v["secret"]
    assert fingerprint(me.signing_key.public_key()) == v["fingerprint"] == me.fingerprint
    assert owner_key(me.recipient) == v["owner_key"]


# -- class ids (§13.3) -----------------------------------------------------------------------


def test_class_ids() -> None:
    from vault._trust.classes import LabelClass

    vectors = _json("classes.json")
    assert len({c["id"] for c in vectors}) == len(vectors)
    for c in vectors:
        body = ref.canonical_json({"level": c["level"],
                                   "compartments": sorted(c["compartments"])})
        assert body.decode() == c["canonical"]
        assert hashlib.sha256(b"vault/v1 class\n" + body).hexdigest()[:32] == c["id"]
        cls = LabelClass(c["level"], frozenset(c["compartments"]))
        assert cls.id == c["id"]
        assert LabelClass.from_dict(json.loads(c["canonical"])) == cls


# -- the manifest: a signed statement (§13.2, §13.4) --------------------------------------------


def test_manifest_by_the_document() -> None:
    v, data = _json("manifest.json"), _bytes("vault.json")
    assert data.endswith(b"}\n") and data.count(b"\n") == 1
    outer = ref.parse_canonical(data[:-1])
    assert set(outer) == {"sig", "statement"}
    statement = outer["statement"]
    assert statement == v["statement"]
    assert set(statement) == {"format", "vault", "created", "officer", "genesis", "log_key",
                              "origin", "recovery"}
    assert statement["format"] == "vault/v2"
    assert re.fullmatch(r"[0-9a-f]{32}", statement["vault"])
    assert statement["origin"] == f"vault/{statement['vault']}"
    assert set(statement["officer"]) == {"name", "recipient", "signing_key"}
    message = b"vault/v1 manifest\n" + ref.canonical_json(statement)
    assert message.decode() == v["signed_message"]
    ref.public_key(statement["officer"]["signing_key"]).verify(ref.unb64(outer["sig"]), message)
    assert outer["sig"] == v["sig"]
    # The officer's key is the one their identity derives (§12.2).
    officer = ref.signing_key_of(v["signer"]["identity"])
    assert ref.signing_key_text(officer) == statement["officer"]["signing_key"]
    assert officer.sign(message) == ref.unb64(v["sig"])  # Ed25519 is deterministic
    # log_key: a signed-note verifier key (docs/AUDIT.md §7) of the checkpoint key.
    cp = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(v["checkpoint_key"]["seed"]))
    raw = cp.public_key().public_bytes_raw()
    kid = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + raw).digest()[:4].hex()
    key = ref.b64(b"\x01" + raw)
    assert statement["log_key"] == f"{ORIGIN}+{kid}+{key}"


def test_manifest_by_the_library() -> None:
    from vault._trust.manifest import Manifest, open_statement
    from vault.errors import IntegrityError

    v, data = _json("manifest.json"), _bytes("vault.json")
    m = Manifest.load(data)
    assert m.statement() == v["statement"]
    # What the first record names (§14.2): the statement's canonical JSON, hashed.
    assert m.digest() == hashlib.sha256(ref.canonical_json(v["statement"])).hexdigest()
    assert (m.vault_id, m.origin, m.genesis) == (VAULT_ID, ORIGIN, POLICY)
    statement, sig = open_statement(data, "manifest", "vault.json",
                                    v["signer"]["signing_key"])
    assert statement == v["statement"] and base64.b64encode(sig).decode() == v["sig"]
    with pytest.raises(IntegrityError):  # domain separation: not a label signature
        open_statement(data, "label", "vault.json", v["signer"]["signing_key"])


# -- sealed documents (§11) --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DOCS))
def test_document_by_the_document(name: str) -> None:
    v, data = _json(f"{name}.json"), _bytes(f"{name}.age")
    f = ref.parse_age(data)
    file_key = bytes.fromhex(v["file_key"])
    pq = v["class"]["identity"].startswith("AGE-SECRET-KEY-PQ-1")
    recipient_type = "mlkem768x25519" if pq else "X25519"
    # Header: the class key's stanza, the recovery stanza, label, metadata.
    assert [s.type for s in f.stanzas] == [recipient_type, recipient_type, "vault/v2/label",
                                           "vault/v2/meta"]
    assert all(s.args == [] for s in f.stanzas[2:])
    assert b"".join(ref.encode_stanza(s) for s in f.stanzas) == f.mac_input[
        len(ref.VERSION_LINE):-3]
    assert len(f.header) == v["header"]["size"] == v["payload"]["offset"]
    assert hashlib.sha256(f.header).hexdigest() == v["header"]["sha256"]
    # Both identities unwrap the file key, which verifies the MAC.
    unwrap = ref.pq_unwrap if pq else ref.x25519_unwrap
    for who in (v["class"], v["recovery"]):
        assert unwrap(ref.identity_secret(who["identity"]), f.stanzas) == file_key
    assert ref.hkdf(file_key, b"", b"header").hex() == v["header"]["mac_key"]
    assert ref.header_mac(file_key, f.mac_input) == f.mac
    # §11.1: every X25519 stanza is the one the file key and its recipient make.
    for s, want in zip(f.stanzas[:2], v["stanzas"][:2], strict=True):
        assert ref.b64(s.body) == want["body"] and s.args == want["args"]
        if s.type == "X25519":
            recipient = ref.x25519_recipient_bytes(want["recipient"])
            eph = ref.bound_ephemeral(file_key, recipient)
            assert eph.hex() == want["ephemeral_secret"]
            assert ref.x25519_wrap(file_key, recipient, eph) == s
    # §11.2: the label stanza.
    label = v["label"]
    outer = ref.parse_canonical(f.stanzas[2].body)
    assert set(outer) == {"binding", "sig", "statement"}
    statement = outer["statement"]
    assert statement == label["statement"]
    assert ref.canonical_json(statement).decode() == label["statement_json"]
    assert set(statement) == {"vault", "doc", "label", "sealed_at", "sealed_by", "signer",
                              "policy", "action", "content"}
    assert (statement["vault"], statement["doc"]) == (v["vault"], v["doc"])
    assert statement["signer"] == {"name": v["signer"]["name"],
                                   "signing_key": v["signer"]["signing_key"]}
    assert statement["label"]["classified_by"] == statement["signer"]["name"]
    assert ref.hkdf(file_key, b"", b"vault/v1 label binding").hex() == label["binding_key"]
    binding = ref.label_binding(file_key, statement)
    assert ref.b64(binding) == outer["binding"] == label["binding"]
    message = b"vault/v1 label\n" + binding + ref.canonical_json(statement)
    assert message.hex() == label["signed_message"]
    ref.verify(statement["signer"]["signing_key"], "label",
               binding + ref.canonical_json(statement), ref.unb64(outer["sig"]))
    signer = ref.signing_key_of(v["signer"]["identity"])
    assert ref.signing_key_text(signer) == v["signer"]["signing_key"]
    assert signer.sign(message) == ref.unb64(outer["sig"])
    # §11.3: the metadata stanza.
    meta, body = v["meta"], f.stanzas[3].body
    assert ref.meta_key(file_key).hex() == meta["key"]
    assert body[:12].hex() == meta["nonce"]
    assert ref.meta_aad(v["doc"]).decode() == meta["aad"]
    padded, metadata = ref.open_meta(file_key, v["doc"], body)
    assert padded.decode() == meta["plaintext"] and metadata == meta["metadata"]
    assert set(metadata) == {"content_type", "filename", "size", "title"}
    assert metadata["size"] == len(v["plaintext"].encode())
    # §11.4: the content commitment.
    content = statement["content"]
    assert content == {"payload": hashlib.sha256(f.payload).hexdigest(),
                       "size": len(f.payload), "meta": hashlib.sha256(body).hexdigest()}
    assert content["meta"] == meta["body_sha256"]
    assert (content["payload"], content["size"]) == (v["payload"]["sha256"],
                                                     v["payload"]["size"])
    # §4: the payload.
    assert f.payload[:16].hex() == v["payload"]["nonce"]
    assert ref.payload_key(file_key, f.payload).hex() == v["payload"]["key"]
    assert ref.decrypt_payload(file_key, f.payload) == v["plaintext"].encode()
    # §13.5 and §13.7: where it is stored; §14.6: the state record naming it.
    assert v["class"]["id"] == ref.class_id(v["class"]["level"], v["class"]["compartments"])
    assert v["class"]["key_id"] == ref.short_id(v["class"]["recipient"])
    assert re.fullmatch(r"docs/[a-z2-7]{16}\.[0-9a-f]{8}\.age", v["stored_as"])
    assert v["stored_as"] == f"docs/{v['doc']}.{v['version']}.age"
    assert v["state"]["document"] == {"doc": v["doc"], "version": v["version"],
                                      "key_id": v["class"]["key_id"],
                                      "header": v["header"]["sha256"], "statement": statement,
                                      "inputs": {}, "stanzas": _pins(f.stanzas[:-2])}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_document_by_the_library(name: str) -> None:
    from vault._ops.seal import doc_state
    from vault._sealed.label import LabelStanza, SignedLabel
    from vault._sealed.meta import Metadata
    from vault._sealed.reading import check_shape
    from vault._sealed.recipients import match_stanzas
    from vault._trust.classes import LabelClass
    from vault.age import parse_identities

    v, data = _json(f"{name}.json"), _bytes(f"{name}.age")
    src = io.BytesIO(data)
    header = read_header(src)
    assert header.encode() == data[:src.tell()] and src.tell() == v["header"]["size"]
    label_stanza, meta_stanza = check_shape(header.stanzas, v["doc"])
    label = SignedLabel.verify(label_stanza, v["vault"], v["doc"])
    assert label.statement == v["label"]["statement"] and label.signer == v["signer"]["name"]
    assert label.cls == LabelClass(v["class"]["level"], frozenset(v["class"]["compartments"]))
    assert label.cls.id == v["class"]["id"]
    for who in (v["class"], v["recovery"]):
        identities = parse_identities(who["identity"])
        assert unwrap_file_key(header, identities).hex() == v["file_key"]
    file_key = bytes.fromhex(v["file_key"])
    label.verify_binding(file_key)
    label.check_meta(meta_stanza)
    meta = Metadata.open(meta_stanza, file_key, v["doc"])
    assert meta.to_dict() == v["meta"]["metadata"]
    allowed = [v["recovery"]["recipient"], v["class"]["recipient"]]
    matched, strangers = match_stanzas(header.stanzas, file_key, allowed)
    assert sorted(matched) == sorted(allowed) and strangers == []
    out = io.BytesIO()
    decrypt_payload(src, out, file_key)
    assert out.getvalue() == v["plaintext"].encode()
    signer = _user(v["signer"]["name"])
    # The label and metadata stanzas again, from the same inputs.
    assert LabelStanza(label.statement, signer).wrap(file_key) == [label_stanza]
    with mock.patch("os.urandom", lambda n: bytes.fromhex(v["meta"]["nonce"])[:n]):
        assert Metadata(**v["meta"]["metadata"]).seal(file_key, v["doc"]) == meta_stanza
    payload = io.BytesIO()
    with mock.patch("os.urandom", lambda n: bytes.fromhex(v["payload"]["nonce"])[:n]):
        encrypt_payload(io.BytesIO(v["plaintext"].encode()), payload, file_key)
    assert payload.getvalue() == data[v["payload"]["offset"]:]
    ck = _class_key(DOCS[name].class_key)
    assert doc_state(v["doc"], v["version"], header, ck, label.statement, {}) == v["state"]


@pytest.mark.parametrize("name", sorted(DOCS))
def test_document_with_independent_age(name: str, tmp_path: Path) -> None:
    v = _json(f"{name}.json")
    path = VECTORS / v["file"]
    for who in ("class", "recovery"):
        key = _private_copy(tmp_path, v[who]["identity"] + "\n", f"{who}.key")
        if v[who]["identity"].startswith("AGE-SECRET-KEY-PQ-1"):
            plain = _npm_age("decrypt", str(key), stdin=path.read_bytes())
        else:
            plain = _run([_stock(AGE), "-d", "-i", str(key), str(path)])
        assert plain == v["plaintext"].encode(), who


# -- keyring entries (§13.6) --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_keyring_entry_by_the_document(name: str) -> None:
    v, data = _json(f"{name}.json"), _bytes(f"{name}.age")
    assert hashlib.sha256(data).hexdigest() == v["sha256"]
    f = ref.parse_age(data)
    owner_secret = ref.identity_secret(v["owner"]["identity"])
    pq = v["owner"]["identity"].startswith("AGE-SECRET-KEY-PQ-1")
    assert [s.type for s in f.stanzas] == ["mlkem768x25519" if pq else "X25519"]
    file_key = (ref.pq_unwrap if pq else ref.x25519_unwrap)(owner_secret, f.stanzas)
    assert file_key is not None and ref.header_mac(file_key, f.mac_input) == f.mac
    text = ref.decrypt_payload(file_key, f.payload).decode("ascii")
    assert text == v["plaintext"]
    cls = v["class"]
    assert text.splitlines() == [
        "# vault keyring entry: a label-class identity",
        f"# vault: {v['vault']}",
        f"# class: {cls['level']}" + (f"//{'/'.join(sorted(cls['compartments']))}"
                                      if cls["compartments"] else ""),
        f"# class id: {cls['id']}",
        f"# generation: {cls['generation']}",
        f"# recipient: {cls['recipient']}",
        cls["identity"]]
    assert cls["id"] == ref.class_id(cls["level"], cls["compartments"])
    if not pq:
        secret = ref.x25519_secret(cls["identity"])
        public = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
        assert ref.x25519_recipient_bytes(cls["recipient"]) == public
    assert v["owner"]["owner_key"] == ref.short_id(v["owner"]["recipient"])
    assert cls["key_id"] == ref.short_id(cls["recipient"])
    assert v["stored_as"] == f"keyrings/{v['owner']['owner_key']}/{cls['key_id']}.age"
    assert v["state"] == {"grants": {"key_id": cls["key_id"], "entries": [
        {"owner": v["owner"]["recipient"], "sha256": v["sha256"]}]}}


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_keyring_entry_by_the_library(name: str) -> None:
    from vault._trust.classes import key_id
    from vault._trust.keyring import parse_entry
    from vault.age import parse_identities
    from vault.store.base import owner_key

    v, data = _json(f"{name}.json"), _bytes(f"{name}.age")
    (owner,) = parse_identities(v["owner"]["identity"])
    assert isinstance(owner, X25519Identity | MLKEM768X25519Identity)
    found = parse_entry(data, owner)
    assert found is not None and str(found) == v["class"]["identity"]
    assert str(found.recipient) == v["class"]["recipient"]
    assert entry_plaintext(name).decode() == v["plaintext"]
    assert owner_key(v["owner"]["recipient"]) == v["owner"]["owner_key"]
    assert key_id(v["class"]["recipient"]) == v["class"]["key_id"]
    assert _class_key(ENTRIES[name][0]).cls.id == v["class"]["id"]


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_keyring_entry_with_independent_age(name: str, tmp_path: Path) -> None:
    v = _json(f"{name}.json")
    key = _private_copy(tmp_path, v["owner"]["identity"] + "\n", "owner.key")
    path = VECTORS / v["file"]
    if v["owner"]["identity"].startswith("AGE-SECRET-KEY-PQ-1"):
        plain = _npm_age("decrypt", str(key), stdin=path.read_bytes())
    else:
        plain = _run([_stock(AGE), "-d", "-i", str(key), str(path)])
    assert plain.decode() == v["plaintext"]
    # The entry's plaintext is itself an identity file that opens documents.
    doc = next(d for d, spec in DOCS.items() if spec.class_key == ENTRIES[name][0])
    entry = _private_copy(tmp_path, v["plaintext"], "entry.txt")
    sealed = VECTORS / f"{doc}.age"
    if v["class"]["identity"].startswith("AGE-SECRET-KEY-PQ-1"):
        opened = _npm_age("decrypt", str(entry), stdin=sealed.read_bytes())
    else:
        opened = _run([_stock(AGE), "-d", "-i", str(entry), str(sealed)])
    assert opened == DOCS[doc].plaintext


# -- the document and the code cite the same sections -------------------------------------


def _sources() -> Iterator[Path]:
    for top in ("vault", "cli", "tests", "benchmarks"):
        yield from (ROOT / top).rglob("*.py")
    yield from (ROOT / "docs").glob("*.md")
    yield ROOT / "README.md"


def test_format_md_citations_resolve() -> None:
    """Every "FORMAT.md §n" in the code and the other documents names a
    section that exists, and so does every "§n" of FORMAT.md itself (not
    those of RFCs or of the other documents)."""
    text = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, re.M))
    cited: dict[str, set[str]] = {}
    theirs = re.compile(r"FORMAT\.md(?:\]\(FORMAT\.md\))?,? (§[\d.,§ –-]+)")
    ours = re.compile(r"(\S+ )?(§[\d.,§ –-]+)")
    for path in _sources():
        body = path.read_text(encoding="utf-8")
        if path.name == "FORMAT.md":
            found = [refs for before, refs in ours.findall(body)
                     if not re.search(r"(\d|\.md\]?|\.md\)|FIPS) $", before)]
        else:
            found = theirs.findall(body)
        for refs in found:
            for n in re.findall(r"§\s?(\d+(?:\.\d+)?)", refs):
                cited.setdefault(n.rstrip("."), set()).add(str(path.relative_to(ROOT)))
    missing = {n: sorted(where) for n, where in cited.items() if n not in sections}
    assert not missing, missing

if __name__ == "__main__":
    write_vectors(post_quantum="--pq" in sys.argv[1:])
    print(f"wrote {VECTORS}")

