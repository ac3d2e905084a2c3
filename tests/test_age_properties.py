"""Property tests of vault.age: round trips, canonical headers, tamper detection."""

from __future__ import annotations

import io
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vault.age as age
from vault.age import Header, Stanza
from vault.errors import (
    AgeError,
    ArmorError,
    HeaderError,
    HMACError,
    IdentityFileError,
    IntegrityError,
    NoIdentityMatchError,
    NoKeyError,
)

CHUNK = 64 * 1024
IDENTITY = age.X25519Identity.generate()
OTHER = age.X25519Identity.generate()
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Sizes on both sides of every chunk boundary of the first few chunks (and of
# the 16-chunk blocks the stream code works in), plus anything in between.
BOUNDARIES = sorted(
    {max(0, k * CHUNK + d) for k in (0, 1, 2, 3, 16, 17) for d in (-2, -1, 0, 1, 2)}
)
sizes = st.one_of(st.sampled_from(BOUNDARIES), st.integers(0, 3 * CHUNK + 100))


def _data(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _encrypt(plain: bytes, *, armor: bool = False) -> bytes:
    out = io.BytesIO()
    age.encrypt(io.BytesIO(plain), out, [IDENTITY.recipient], armor=armor)
    return out.getvalue()


class LabelRecipient:
    """Adds a stanza of the caller's own type, computed from the file key."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [Stanza("example.com/label", ["v1"], file_key[::-1])]


@FEW
@given(size=sizes, seed=st.integers(0, 2**32), armor=st.booleans())
def test_round_trip(size: int, seed: int, armor: bool) -> None:
    plain = _data(size, seed)
    sealed = _encrypt(plain, armor=armor)
    out = io.BytesIO()
    age.decrypt(io.BytesIO(sealed), out, [OTHER, IDENTITY])
    assert out.getvalue() == plain
    if not armor:  # header + nonce + one 16-byte tag per (possibly empty) chunk
        chunks = max(1, -(-size // CHUNK))
        header = age.read_header(io.BytesIO(sealed)).encode()
        assert len(sealed) == len(header) + 16 + size + 16 * chunks


vchar_word = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
stanzas = st.builds(Stanza, vchar_word, st.lists(vchar_word, max_size=4), st.binary(max_size=200))


@FEW
@given(st.lists(stanzas, min_size=1, max_size=5), st.binary(min_size=32, max_size=32))
def test_built_headers_parse_back_identically(stanza_list: list[Stanza], mac: bytes) -> None:
    encoded = Header(stanza_list, mac).encode()
    parsed = age.read_header(io.BytesIO(encoded + b"payload"))
    assert parsed == Header(stanza_list, mac)
    assert parsed.encode() == encoded


@settings(max_examples=300, deadline=None)
@given(
    st.lists(stanzas, min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_any_header_that_parses_reencodes_byte_for_byte(
    stanza_list: list[Stanza], edits: list[tuple[int, int]]
) -> None:
    data = bytearray(Header(stanza_list, bytes(32)).encode())
    for position, value in edits:
        data[position % len(data)] = value
    src = io.BytesIO(bytes(data) + b"\x00payload")
    try:
        header = age.read_header(src)
    except HeaderError:
        return
    # A parsed stanza keeps the bytes it was read from (the MAC covers
    # them), so the one canonical form is checked by encoding its values anew.
    fresh = Header([Stanza(s.type, list(s.args), s.body) for s in header.stanzas], header.mac)
    assert fresh.encode() == header.encode() == bytes(data[: src.tell()])


def _tamper_case(size: int, seed: int, where: float, xor: int) -> tuple[bytes, bytes, int]:
    plain = _data(size, seed)
    sealed = bytearray(_encrypt(plain))
    position = int(where * (len(sealed) - 1))
    sealed[position] ^= xor
    return plain, bytes(sealed), position


@FEW
@given(
    size=st.sampled_from([0, 1, 1000, CHUNK, CHUNK + 1, 2 * CHUNK + 5]),
    seed=st.integers(0, 2**32),
    where=st.floats(0, 1),
    xor=st.integers(1, 255),
)
def test_any_single_byte_change_is_rejected(size: int, seed: int, where: float, xor: int) -> None:
    plain, sealed, position = _tamper_case(size, seed, where, xor)
    header_size = len(age.read_header(io.BytesIO(_encrypt(b""))).encode())
    out = io.BytesIO()
    with pytest.raises((IntegrityError, NoKeyError)) as info:
        age.decrypt(io.BytesIO(sealed), out, [IDENTITY])
    # Whatever was released before the failure is unmodified plaintext.
    assert plain.startswith(out.getvalue())
    if position >= header_size + 16:  # a payload chunk: earlier chunks only
        assert len(out.getvalue()) <= (position - header_size - 16) // (CHUNK + 16) * CHUNK
    else:
        assert out.getvalue() == b""
        assert isinstance(info.value, AgeError | NoIdentityMatchError)


@FEW
@given(size=st.integers(0, 2 * CHUNK + 10), seed=st.integers(0, 2**32), armor=st.booleans())
def test_rewrap_keeps_the_payload_and_changes_who_can_read(
    size: int, seed: int, armor: bool
) -> None:
    plain = _data(size, seed)
    sealed = _encrypt(plain)
    src = io.BytesIO(sealed)
    old_header = age.read_header(src)
    file_key = age.unwrap_file_key(old_header, [IDENTITY])
    src.seek(0)
    out = io.BytesIO()
    age.rewrap(src, out, file_key, [OTHER.recipient, LabelRecipient()])
    rewrapped = out.getvalue()

    new_src = io.BytesIO(rewrapped)
    new_header = age.read_header(new_src)
    assert rewrapped[new_src.tell():] == sealed[len(old_header.encode()):]
    assert [s.type for s in new_header.stanzas] == ["X25519", "example.com/label"]
    assert new_header.stanzas[1].body == file_key[::-1]

    back = io.BytesIO()
    age.decrypt(io.BytesIO(rewrapped), back, [OTHER])
    assert back.getvalue() == plain
    with pytest.raises(NoIdentityMatchError):
        age.decrypt(io.BytesIO(rewrapped), io.BytesIO(), [IDENTITY])


def test_rewrap_refuses_a_wrong_file_key() -> None:
    sealed = _encrypt(b"hello")
    with pytest.raises(HMACError):
        age.rewrap(io.BytesIO(sealed), io.BytesIO(), bytes(16), [OTHER.recipient])


@FEW
@given(st.binary(max_size=500), st.data())
def test_armor_round_trip_and_any_armor_change_is_rejected(
    payload: bytes, data: st.DataObject
) -> None:
    out = io.BytesIO()
    writer = age.ArmorWriter(out)
    writer.write(payload)
    writer.close()
    armored = out.getvalue()
    assert age.dearmor(io.BytesIO(armored)).read() == payload
    lines = armored.split(b"\n")
    assert all(len(line) <= 64 for line in lines)

    position = data.draw(st.integers(0, len(armored) - 2))  # not the final newline
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != armored[position]))
    tampered = bytearray(armored)
    tampered[position] = replacement
    try:
        result = age.dearmor(io.BytesIO(bytes(tampered)), armored=True).read()
    except ArmorError:
        return
    # Armor has no integrity of its own (the age MACs catch changed bytes),
    # but it is strict: anything accepted is the one canonical armor of what
    # it decodes to, so no two texts carry the same file.
    again = io.BytesIO()
    rewriter = age.ArmorWriter(again)
    rewriter.write(result)
    rewriter.close()
    assert again.getvalue() == bytes(tampered)


@FEW
@given(st.data())
def test_bech32_keys_round_trip_and_reject_any_typo(data: st.DataObject) -> None:
    identity = age.X25519Identity.generate()
    assert age.X25519Identity.from_string(str(identity)).to_bytes() == identity.to_bytes()
    assert age.parse_recipient(str(identity.recipient)) == identity.recipient
    assert age.X25519Recipient.from_bytes(identity.recipient.to_bytes()) == identity.recipient

    text = str(identity.recipient)
    position = data.draw(st.integers(4, len(text) - 1))
    alphabet = st.sampled_from("qpzry9x8gf2tvdw0s3jn54khce6mua7l")
    typo = data.draw(alphabet.filter(lambda c: c != text[position]))
    with pytest.raises(IdentityFileError):
        age.parse_recipient(text[:position] + typo + text[position + 1 :])


@pytest.mark.parametrize("first_bytes", [b"\x5f\x50", b"\x08\x00"])  # data "tag…", "pq…"
def test_recipient_whose_data_looks_like_another_type_still_parses(first_bytes: bytes) -> None:
    # Only the Bech32 prefix up to its separator names a recipient type; an
    # X25519 key whose data happens to begin with "tag" or "pq" is ordinary.
    recipient = age.X25519Recipient.from_bytes(first_bytes + bytes(range(30)))
    text = str(recipient)
    assert text.startswith(("age1tag", "age1pq"))
    assert str(age.parse_recipient(text)) == text


@FEW
@given(st.binary(min_size=32, max_size=32))
def test_every_public_key_round_trips_through_its_recipient_string(raw: bytes) -> None:
    text = str(age.X25519Recipient.from_bytes(raw))
    assert str(age.parse_recipient(text)) == text
