"""The payload engine: sinks see exactly the payload, errors release what the format says.

Every test runs three times: as it comes (a payload of one block in a
memory buffer or a file is opened in memory, vault/age/_small.py); through
the rings in the caller's thread; and through the rings with the
background threads from the first byte (the threshold set to 0), so that
small inputs exercise the rings wrapping around, reading ahead, joining
blocks and stopping on errors. Released plaintext and errors are compared
with a reference reader written from docs/FORMAT.md §4, one chunk at a
time.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vault.age as age
from vault.age import _blockio, _small
from vault.errors import AgeError, HeaderError, PayloadError

C = 64 * 1024
S = C + 16
BLOCK = 4 * C  # the engine's block; its rings have 2 and 3 slots
SIZES = [0, 1, C - 1, C, C + 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 3 * BLOCK + 5,
         4 * BLOCK + C, 11 * C + 7, (1 << 20) + 3 * C + 5]
KEY = bytes(range(16))
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
               HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["memory", "inline", "threads"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param != "memory":  # every payload through the rings
        monkeypatch.setattr(_small, "SEALED_LIMIT", -1)
    if request.param == "threads":
        monkeypatch.setattr(_blockio, "INLINE_BYTES", 0)
    yield request.param


class Collect:
    """A sink keeping copies of what it was given; it fails if called concurrently."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self._busy = threading.Lock()

    def __call__(self, piece: memoryview) -> None:
        assert self._busy.acquire(blocking=False), "sink called twice at once"
        try:
            self.pieces.append(bytes(piece))
        finally:
            self._busy.release()

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def _data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _encrypt(plain: bytes) -> bytes:
    out = io.BytesIO()
    age.encrypt_payload(io.BytesIO(plain), out, KEY)
    return out.getvalue()


def reference_decrypt(payload: bytes) -> tuple[bytes, type[AgeError] | None]:
    """docs/FORMAT.md §4, chunk by chunk: (released plaintext, error class)."""
    if len(payload) < 16:
        return b"", HeaderError
    key = HKDF(hashes.SHA256(), 32, salt=payload[:16], info=b"payload").derive(KEY)
    aead, rest, out, i = ChaCha20Poly1305(key), payload[16:], b"", 0
    while True:
        piece = rest[i * S : (i + 1) * S]
        if len(piece) < 16 or (len(piece) == 16 and i > 0):
            return out, PayloadError
        if len(piece) == S:
            try:
                out += aead.decrypt(i.to_bytes(11, "big") + b"\x00", piece, None)
                i += 1
                continue
            except InvalidTag:
                pass
        try:
            out += aead.decrypt(i.to_bytes(11, "big") + b"\x01", piece, None)
        except InvalidTag:
            return out, PayloadError
        return out, (PayloadError if len(rest) > (i + 1) * S else None)


def _decrypt(payload: bytes) -> tuple[bytes, type[AgeError] | None, bytes, bytes]:
    """(released plaintext, error class, what the payload sink saw, what was read)."""
    src, out, seen = io.BytesIO(payload), io.BytesIO(), Collect()
    try:
        age.decrypt_payload(src, out, KEY, payload_sink=seen)
        error = None
    except AgeError as e:
        error = type(e)
    return out.getvalue(), error, seen.data, payload[: src.tell()]


@pytest.mark.parametrize("size", SIZES)
def test_sinks_see_exactly_the_payload_and_the_plaintext(mode: str, size: int) -> None:
    plain = _data(size, size)
    out, payload_seen, plain_seen = io.BytesIO(), Collect(), Collect()
    age.encrypt_payload(io.BytesIO(plain), out, KEY, payload_sink=payload_seen,
                        plaintext_sink=plain_seen)
    payload = out.getvalue()
    assert len(payload) == 16 + size + 16 * max(1, -(-size // C))
    assert payload_seen.data == payload
    assert plain_seen.data == plain

    back, payload_read, plain_read = io.BytesIO(), Collect(), Collect()
    age.decrypt_payload(io.BytesIO(payload), back, KEY, payload_sink=payload_read,
                        plaintext_sink=plain_read)
    assert back.getvalue() == plain
    assert payload_read.data == payload
    assert plain_read.data == plain
    assert age.hash_payload(io.BytesIO(payload)) == (hashlib.sha256(payload).hexdigest(),
                                                     len(payload))


@FEW
@given(size=st.one_of(st.sampled_from(SIZES), st.integers(0, 14 * C)), seed=st.integers(0, 99))
def test_any_size_round_trips_with_the_same_payload_hash(mode: str, size: int, seed: int) -> None:
    plain = _data(size, seed)
    out, digest = io.BytesIO(), age.PayloadDigest()
    age.encrypt_payload(io.BytesIO(plain), out, KEY, payload_sink=digest)
    payload = out.getvalue()
    back, read_digest = io.BytesIO(), age.PayloadDigest()
    age.decrypt_payload(io.BytesIO(payload), back, KEY, payload_sink=read_digest)
    assert back.getvalue() == plain
    expected = (hashlib.sha256(payload).hexdigest(), len(payload))
    assert (digest.hexdigest(), digest.size) == expected
    assert (read_digest.hexdigest(), read_digest.size) == expected
    assert age.hash_payload(io.BytesIO(payload)) == expected


def _damaged(payload: bytes, rnd: random.Random) -> list[bytes]:
    n = len(payload)
    cases = [payload[:k] for k in {0, 5, 16, 17, 31, 32, n - 17, n - 16, n - 1, n // 2} if k >= 0]
    for position in {16, 17, 16 + S, n // 2, n - 20, n - 1, rnd.randrange(16, n)}:
        if 0 <= position < n:
            flipped = bytearray(payload)
            flipped[position] ^= 1 << rnd.randrange(8)
            cases.append(bytes(flipped))
    extra = rnd.randbytes(rnd.choice([1, 15, 16, 17, S, 3 * BLOCK]))
    cases += [payload + extra, payload + payload[16:]]
    return cases


@pytest.mark.parametrize("size", SIZES)
def test_damaged_payloads_release_what_the_format_says(mode: str, size: int) -> None:
    payload = _encrypt(_data(size, size))
    for damaged in _damaged(payload, random.Random(size)):
        released, error, seen, read = _decrypt(damaged)
        assert (released, error) == reference_decrypt(damaged), len(damaged)
        assert seen == read  # everything read, including bytes after the final chunk
        assert error is not None or read == damaged


@FEW
@given(size=st.integers(0, 14 * C), where=st.floats(0, 1), bit=st.integers(0, 7),
       cut=st.booleans())
def test_any_damage_is_handled_like_the_reference(mode: str, size: int, where: float, bit: int,
                                                  cut: bool) -> None:
    payload = _encrypt(_data(size, size))
    position = int(where * (len(payload) - 1))
    if cut:
        damaged = payload[:position]
    else:
        flipped = bytearray(payload)
        flipped[position] ^= 1 << bit
        damaged = bytes(flipped)
    released, error, seen, read = _decrypt(damaged)
    assert (released, error) == reference_decrypt(damaged)
    assert seen == read


class Failing:
    """A sink or an output that fails once it has seen ``after`` bytes."""

    def __init__(self, after: int) -> None:
        self.left = after

    def __call__(self, piece: memoryview) -> None:
        self.left -= len(piece)
        if self.left < 0:
            raise OSError(28, "No space left on device")

    def write(self, piece: memoryview) -> int:
        self(piece)
        return len(piece)


class FailingSource(io.BytesIO):
    """In memory (so read ahead by background threads), failing after ``after`` bytes."""

    def __init__(self, after: int, data: bytes) -> None:
        super().__init__(data)
        self.left = after

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        self.left -= n
        if self.left < 0:
            raise OSError(5, "Input/output error")
        return n


@pytest.mark.parametrize("after", [0, 100, 3 * BLOCK + 7])
def test_a_failing_sink_output_or_source_stops_the_work_with_its_error(mode: str,
                                                                      after: int) -> None:
    plain = _data(6 * BLOCK + 9)
    payload = _encrypt(plain)
    calls = [
        lambda: age.encrypt_payload(io.BytesIO(plain), io.BytesIO(), KEY,
                                    payload_sink=Failing(after)),
        lambda: age.encrypt_payload(io.BytesIO(plain), io.BytesIO(), KEY,
                                    plaintext_sink=Failing(after)),
        lambda: age.encrypt_payload(io.BytesIO(plain), Failing(after), KEY),
        lambda: age.encrypt_payload(FailingSource(after, plain), io.BytesIO(), KEY),
        lambda: age.decrypt_payload(io.BytesIO(payload), io.BytesIO(), KEY,
                                    payload_sink=Failing(after)),
        lambda: age.decrypt_payload(io.BytesIO(payload), Failing(after), KEY),
        lambda: age.decrypt_payload(FailingSource(after, payload), io.BytesIO(), KEY),
        lambda: age.hash_payload(FailingSource(after, payload)),
    ]
    for call in calls:
        with pytest.raises(OSError, match=r"No space left|Input/output error"):
            call()


def test_hash_payload_of_a_file_after_its_header(tmp_path: Path) -> None:
    identity = age.X25519Identity.generate()
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(3 * BLOCK + 11))
    sealed = tmp_path / "sealed.age"
    age.encrypt_file(plain, sealed, [identity.recipient])
    data = sealed.read_bytes()
    with sealed.open("rb") as f:
        header = age.read_header(f)
        got = age.hash_payload(f)
    payload = data[len(header.encode()):]
    assert got == (hashlib.sha256(payload).hexdigest(), len(payload))


def test_sources_without_readinto_are_read_too(mode: str) -> None:
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self.src = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.src.read(min(n, 1000))  # short reads, as from a pipe

    plain = _data(2 * BLOCK + 3)
    out = io.BytesIO()
    age.encrypt_payload(ReadOnly(plain), out, KEY)  # type: ignore[arg-type]
    back = io.BytesIO()
    age.decrypt_payload(ReadOnly(out.getvalue()), back, KEY)  # type: ignore[arg-type]
    assert back.getvalue() == plain
    assert age.hash_payload(ReadOnly(out.getvalue()))[1] == len(out.getvalue())  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [s for s in SIZES if s <= BLOCK])
def test_a_small_payload_sealed_in_memory_is_the_streams(mode: str, size: int) -> None:
    plain = _data(size, size)
    payload = bytes(_small.seal_small(plain, KEY))
    assert len(payload) == 16 + size + 16 * max(1, -(-size // C))
    assert reference_decrypt(payload) == (plain, None)
    back = io.BytesIO()
    age.decrypt_payload(io.BytesIO(payload), back, KEY)
    assert back.getvalue() == plain


def test_seal_small_takes_one_block_at_most() -> None:
    from vault._sealed.writing import SMALL

    assert SMALL == _small.LIMIT == BLOCK  # what sealing keeps in memory, it seals in memory
    with pytest.raises(ValueError, match="one block"):
        _small.seal_small(bytes(BLOCK + 1), KEY)


def test_a_file_that_grows_while_it_is_read_is_read_whole(tmp_path: Path) -> None:
    # Its size said one block; what came after is read too, through the rings.
    plain = _data(3 * C, 7)
    payload = _encrypt(plain)
    path = tmp_path / "payload"
    path.write_bytes(payload[: 2 * S + 16])
    with open(path, "rb") as f:
        nonce = f.read(16)
        left = _small.remaining(f)
        assert left == 2 * S
        with open(path, "ab") as more:
            more.write(payload[2 * S + 16:])
        got, grown = _small.read_small(f, left)
        assert grown is not None and bytes(got) == payload[16: 2 * S + 17]
        back = io.BytesIO()
        rest = grown.read()
        assert rest == payload[16:]  # what was read, then the rest: nothing lost
        age.decrypt_payload(io.BytesIO(nonce + rest), back, KEY)
    assert back.getvalue() == plain


class _Interrupted(io.BytesIO):
    """A source whose read is interrupted, as Ctrl-C or SIGTERM would."""

    def readinto(self, buffer: Any) -> int:
        raise KeyboardInterrupt


def test_an_interrupted_read_ahead_is_not_kept_for_later() -> None:
    # Kept for a next() that may never come, the interruption was lost and
    # what was read so far looked like a short, damaged file.
    ring = _blockio.Ring(2, 64)
    source = _blockio.Source(_Interrupted(b"x" * 200), ring, 64, lookahead=False)
    with pytest.raises(KeyboardInterrupt):
        source.read_ahead()
    assert source.error is None


def test_an_interruption_while_a_consumer_starts_leaves_nothing_to_join(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ring = _blockio.Ring(2, 64)
    consumer = _blockio.Consumer(ring, lambda view: None)

    def interrupted_start(self: threading.Thread) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        consumer.start()
    consumer.close()  # nothing started: nothing to join, no RuntimeError
