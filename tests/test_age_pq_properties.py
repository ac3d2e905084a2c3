"""Property and tamper tests of the post-quantum mlkem768x25519 recipient
(docs/FORMAT.md §5.3): round trips, key encodings, and every byte of a stanza
changed in turn, each ending in the category age.md and CCTV assign to it."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vault.age as age
from vault.age import Header, Stanza
from vault.age._format import b64decode, b64encode
from vault.errors import HeaderError, HMACError, IdentityFileError, NoIdentityMatchError

CHUNK = 64 * 1024
IDENTITY = age.MLKEM768X25519Identity.generate()
OTHER = age.MLKEM768X25519Identity.generate()
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDARIES = sorted({max(0, k * CHUNK + d) for k in (0, 1, 2, 3) for d in (-1, 0, 1)})
sizes = st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, 3 * CHUNK + 100))
ENC_SIZE = 1120
MLKEM_CT_SIZE = 1088


def _seal(plain: bytes, recipients: list[age.Recipient], *, armor: bool = False) -> bytes:
    out = io.BytesIO()
    age.encrypt(io.BytesIO(plain), out, recipients, armor=armor)
    return out.getvalue()


def _open(sealed: bytes, identities: list[age.Identity]) -> bytes:
    out = io.BytesIO()
    age.decrypt(io.BytesIO(sealed), out, identities)
    return out.getvalue()


@FEW
@given(
    size=sizes,
    seed=st.integers(0, 2**32),
    armor=st.booleans(),
    others=st.integers(0, 2),
)
def test_round_trip(size: int, seed: int, armor: bool, others: int) -> None:
    plain = random.Random(seed).randbytes(size)
    extra = [age.MLKEM768X25519Identity.generate() for _ in range(others)]
    sealed = _seal(plain, [IDENTITY.recipient] + [e.recipient for e in extra], armor=armor)
    for identities in ([IDENTITY], [OTHER, IDENTITY], *([e] for e in extra)):
        assert _open(sealed, identities) == plain
    with pytest.raises(NoIdentityMatchError):
        _open(sealed, [OTHER, age.X25519Identity.generate()])


@FEW
@given(st.data())
def test_keys_round_trip_and_reject_any_typo(data: st.DataObject) -> None:
    identity = age.MLKEM768X25519Identity.generate()
    again = age.MLKEM768X25519Identity.from_string(str(identity))
    assert again.to_bytes() == identity.to_bytes() and len(identity.to_bytes()) == 32
    assert again.recipient == identity.recipient
    assert age.MLKEM768X25519Identity.from_bytes(identity.to_bytes()).recipient == again.recipient
    recipient = identity.recipient
    assert age.parse_recipient(str(recipient)) == recipient
    assert age.MLKEM768X25519Recipient.from_bytes(recipient.to_bytes()) == recipient
    assert len(recipient.to_bytes()) == 1216

    for text, parse in ((str(recipient), age.parse_recipient), (str(identity), _parse_identity)):
        position = data.draw(st.integers(len("age1pq1"), len(text) - 1))
        alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
        if text.isupper():
            alphabet = alphabet.upper()
        typo = data.draw(st.sampled_from([c for c in alphabet if c != text[position]]))
        with pytest.raises(IdentityFileError):
            parse(text[:position] + typo + text[position + 1 :])


def _parse_identity(text: str) -> object:
    return age.parse_identities(text)


def test_the_wrong_case_is_refused() -> None:
    with pytest.raises(IdentityFileError):
        age.parse_recipient(str(IDENTITY.recipient).upper())
    with pytest.raises(IdentityFileError):
        age.parse_identities(str(IDENTITY).lower())


# ---------------------------------------------------------------------------
# Tampering. The sealed file is taken apart into its one stanza, its MAC and
# its payload; each case rebuilds it with one change and keeps the old MAC,
# as someone without the file key would have to.

PLAIN = b"the budget for next year\n" * 100
SEALED = _seal(PLAIN, [IDENTITY.recipient])
_SRC = io.BytesIO(SEALED)
HEADER = age.read_header(_SRC)
PAYLOAD = SEALED[_SRC.tell() :]
(STANZA,) = HEADER.stanzas
ENC = b64decode(STANZA.args[0])
FILE_KEY = age.unwrap_file_key(HEADER, [IDENTITY])


def _decrypt_with(stanza: Stanza, *, mac: bytes = HEADER.mac) -> BaseException | None:
    sealed = Header([stanza], mac).encode() + PAYLOAD
    out = io.BytesIO()
    try:
        age.decrypt(io.BytesIO(sealed), out, [IDENTITY])
    except Exception as e:  # the class is what is checked
        assert out.getvalue() == b""
        return e
    return None


def test_the_untouched_file_opens() -> None:
    assert _decrypt_with(STANZA) is None
    assert len(ENC) == ENC_SIZE and len(STANZA.body) == 32


@pytest.mark.parametrize("position", range(32))
def test_every_body_byte_changed_is_no_match(position: int) -> None:
    body = bytearray(STANZA.body)
    body[position] ^= 0x01 << (position % 8)
    error = _decrypt_with(Stanza(STANZA.type, STANZA.args, bytes(body)))
    assert type(error) is NoIdentityMatchError  # as CCTV hybrid_bad_tag


def test_every_enc_byte_changed_is_no_match() -> None:
    # ML-KEM decapsulation rejects implicitly and the X25519 share is hashed
    # into the combined secret, so any other enc opens nothing (CCTV
    # hybrid_currupted_enc_mlkem / _x25519). Every byte, both halves.
    for position in range(ENC_SIZE):
        enc = bytearray(ENC)
        enc[position] ^= 0x80 if position % 2 else 0x01
        error = _decrypt_with(Stanza(STANZA.type, [b64encode(bytes(enc))], STANZA.body))
        assert type(error) is NoIdentityMatchError, (position, error)


@FEW
@given(where=st.floats(0, 1), replacement=st.characters(min_codepoint=0x21, max_codepoint=0x7E))
def test_any_character_of_the_argument_changed(where: float, replacement: str) -> None:
    text = STANZA.args[0]
    position = int(where * (len(text) - 1))
    changed = text[:position] + replacement + text[position + 1 :]
    error = _decrypt_with(Stanza(STANZA.type, [changed], STANZA.body))
    try:
        enc = b64decode(changed)
    except ValueError:
        assert type(error) is HeaderError  # not canonical base64 (hybrid_not_canonical_enc)
        return
    if enc == ENC:
        assert error is None
    elif enc[MLKEM_CT_SIZE:] in (bytes(32), b"\x01" + bytes(31)):
        assert type(error) is HeaderError  # a low-order share
    else:
        assert type(error) is NoIdentityMatchError


@pytest.mark.parametrize(
    ("stanza", "expected"),
    [
        (Stanza(STANZA.type, [], STANZA.body), HeaderError),
        (Stanza(STANZA.type, [*STANZA.args, "x"], STANZA.body), HeaderError),
        (Stanza(STANZA.type, [b64encode(ENC[:-1])], STANZA.body), HeaderError),
        (Stanza(STANZA.type, [b64encode(ENC + b"\x00")], STANZA.body), HeaderError),
        (Stanza(STANZA.type, [b64encode(ENC[:MLKEM_CT_SIZE] + bytes(32))], STANZA.body),
         HeaderError),
        (Stanza(STANZA.type, STANZA.args, STANZA.body[:-1]), HeaderError),
        (Stanza(STANZA.type, STANZA.args, STANZA.body + b"\x00"), HeaderError),
        (Stanza(STANZA.type, STANZA.args, b""), HeaderError),
        (Stanza("MLKEM768X25519", STANZA.args, STANZA.body), NoIdentityMatchError),
        # Another type's stanza is ignored by this identity; an X25519
        # identity would reject it (CCTV hybrid_x25519_arg).
        (Stanza("X25519", STANZA.args, STANZA.body), NoIdentityMatchError),
    ],
    ids=["no-arg", "extra-arg", "short-enc", "long-enc", "low-order-share", "short-body",
         "long-body", "empty-body", "uppercase-type", "x25519-type"],
)
def test_malformed_stanzas(stanza: Stanza, expected: type[Exception]) -> None:
    # Malformed is a header failure even under a valid MAC: the checks come
    # before any decryption (age.md, partitioning oracles).
    assert type(_decrypt_with(stanza)) is expected
    assert type(_decrypt_with(stanza, mac=Header.seal([stanza], FILE_KEY).mac)) is expected


def test_an_added_stanza_breaks_the_mac() -> None:
    grease = Stanza("example.com/grease", ["x"], b"")
    sealed = Header([grease, STANZA], HEADER.mac).encode() + PAYLOAD
    with pytest.raises(HMACError):
        _open(sealed, [IDENTITY])


def test_writers_refuse_to_mix_with_classical_recipients() -> None:
    classical = age.X25519Identity.generate().recipient
    for recipients in ([IDENTITY.recipient, classical], [classical, IDENTITY.recipient]):
        with pytest.raises(ValueError, match="cannot be mixed"):
            _seal(b"x", recipients)
    # Readers accept such a file (CCTV hybrid_and_x25519): the rule binds writers.
    file_key = bytes(16)
    stanzas = [*classical_stanzas(file_key), *IDENTITY.recipient.wrap(file_key)]
    header = Header.seal(stanzas, file_key)
    assert age.unwrap_file_key(header, [IDENTITY]) == file_key


def classical_stanzas(file_key: bytes) -> list[Stanza]:
    return age.X25519Identity.generate().recipient.wrap(file_key)
