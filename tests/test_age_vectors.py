"""Every C2SP/CCTV age test vector, with its exact outcome and released plaintext.

The vectors (tests/vectors/age, see LICENSE and SOURCE there) each give the
expected outcome category and, for successes and payload failures, the
SHA-256 of *all* plaintext an implementation may release -- including what
it released before a payload failure. We decrypt into an in-memory sink and
hash whatever reached it, also when decryption raised.

Every vector runs with exactly the identities and passphrases it names,
including the ``hybrid*`` ones (post-quantum mlkem768x25519, docs/FORMAT.md
§5.3): nothing is skipped or special-cased.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

import vault.age as age
from vault.errors import (
    AgeError,
    ArmorError,
    HeaderError,
    HMACError,
    NoIdentityMatchError,
    PayloadError,
    VaultError,
)

VECTORS = Path(__file__).parent / "vectors" / "age"
NAMES = sorted(p.name for p in VECTORS.iterdir() if p.name not in ("LICENSE", "SOURCE"))

CATEGORY: dict[str, type[VaultError] | None] = {
    "success": None,
    "no match": NoIdentityMatchError,
    "HMAC failure": HMACError,
    "header failure": HeaderError,
    "payload failure": PayloadError,
    "armor failure": ArmorError,
}

@dataclass
class Vector:
    name: str
    meta: dict[str, list[str]]
    body: bytes

    def one(self, key: str) -> str | None:
        values = self.meta.get(key)
        return values[0] if values else None

    @property
    def hybrid(self) -> bool:
        return any(i.startswith("AGE-SECRET-KEY-PQ-") for i in self.meta.get("identity", []))


def load(name: str) -> Vector:
    raw = (VECTORS / name).read_bytes()
    head, _, body = raw.partition(b"\n\n")
    meta: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        meta.setdefault(key, []).append(value)
    if meta.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return Vector(name, meta, body)


def identities_for(v: Vector) -> list[age.Identity]:
    identities: list[age.Identity] = []
    for text in v.meta.get("identity", []):
        identities += age.parse_identities(text)
    identities += [age.ScryptIdentity(p) for p in v.meta.get("passphrase", [])]
    # The vectors of files that fail before any stanza (empty, ...) name no
    # identity; decrypt() still needs one.
    return identities or [age.X25519Identity.generate()]


def expected_error(v: Vector) -> type[VaultError] | None:
    return CATEGORY[v.one("expect") or ""]


def run(v: Vector, src: io.BytesIO | None = None) -> tuple[BaseException | None, bytes]:
    """Decrypt ``v``; return (the error raised or None, all plaintext released)."""
    if src is None:
        src = io.BytesIO(v.body)
    stream = age.dearmor(src, armored=True) if v.one("armored") == "yes" else src
    sink = io.BytesIO()
    try:
        age.decrypt(stream, sink, identities_for(v))
    except VaultError as e:
        return e, sink.getvalue()
    return None, sink.getvalue()


def test_the_vector_set_is_complete() -> None:
    assert (VECTORS / "LICENSE").is_file() and (VECTORS / "SOURCE").is_file()
    assert len(NAMES) == 143
    assert sum(load(n).hybrid for n in NAMES) == 19


@pytest.mark.parametrize("name", NAMES)
def test_vector(name: str) -> None:
    v = load(name)
    error, released = run(v)
    expected = expected_error(v)
    assert (None if error is None else type(error)) is expected, f"{name}: {error!r}"
    payload = v.one("payload")
    if payload is not None:
        assert hashlib.sha256(released).hexdigest() == payload
    else:
        assert released == b""


@pytest.mark.parametrize("name", [n for n in NAMES if load(n).one("armored") == "yes"])
def test_armor_is_detected_without_being_told(name: str) -> None:
    # decrypt() recognises armor by its first byte ('-' or whitespace); a file
    # starting with anything else is read as binary, so leading garbage is a
    # header failure there rather than an armor failure.
    v = load(name)
    sink = io.BytesIO()
    expected = HeaderError if name == "armor_garbage_leading" else expected_error(v)
    if expected is None:
        age.decrypt(io.BytesIO(v.body), sink, identities_for(v))
    else:
        with pytest.raises(AgeError if expected is not NoIdentityMatchError else expected) as info:
            age.decrypt(io.BytesIO(v.body), sink, identities_for(v))
        assert type(info.value) is expected


@pytest.mark.parametrize("name", [n for n in NAMES if load(n).one("armored") != "yes"])
def test_every_header_that_parses_reencodes_byte_for_byte(name: str) -> None:
    body = load(name).body
    src = io.BytesIO(body)
    try:
        header = age.read_header(src)
    except HeaderError:
        return
    assert header.encode() == body[: src.tell()]


def test_no_match_reasons_name_each_stanza() -> None:
    error, _ = run(load("x25519_no_match"))
    assert isinstance(error, NoIdentityMatchError)
    assert error.reasons == ["X25519 stanza: not addressed to any of the given identities"]

    error, _ = run(load("hybrid_no_match"))
    assert isinstance(error, NoIdentityMatchError)
    assert error.reasons == ["mlkem768x25519 stanza: not addressed to any of the given identities"]

    hybrid = load("hybrid")
    with pytest.raises(NoIdentityMatchError) as info:
        age.decrypt(io.BytesIO(hybrid.body), io.BytesIO(), [age.X25519Identity.generate()])
    assert info.value.reasons == ["mlkem768x25519 stanza: no identity of this type was given"]

    error, _ = run(load("scrypt_no_match"))
    assert isinstance(error, NoIdentityMatchError)
    assert error.reasons == ["scrypt stanza: wrong passphrase"]


def test_scrypt_work_factor_cap_is_documented_and_enforced() -> None:
    assert age.MAX_WORK_FACTOR == 22
    v = load("scrypt_work_factor_23")
    error, released = run(v)
    assert isinstance(error, HeaderError) and "above the limit" in str(error)
    assert released == b""
    # A caller may lower the cap further, never raise it past 30.
    with pytest.raises(ValueError, match="max_work_factor"):
        age.ScryptIdentity("x", max_work_factor=31)


@pytest.mark.parametrize(
    "name", [n for n in NAMES if load(n).one("expect") == "payload failure"]
)
def test_decrypt_file_leaves_nothing_behind_on_payload_failure(name: str, tmp_path: Path) -> None:
    v = load(name)
    src = tmp_path / "in.age"
    src.write_bytes(v.body)
    out = tmp_path / "out" / "plain"
    out.parent.mkdir()
    with pytest.raises(PayloadError):
        age.decrypt_file(src, out, identities_for(v))
    assert list(out.parent.iterdir()) == []
