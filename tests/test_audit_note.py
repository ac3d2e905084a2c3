"""C2SP signed notes and tlog checkpoints (the spec's rules, one by one)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.audit import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint
from vault.audit.note import open_note, parse_note, sign_note
from vault.errors import CheckpointError

TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)


def _raw(signer: NoteSigner) -> bytes:
    return signer.verifier.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def test_verifier_key_format() -> None:
    signer = NoteSigner.generate("example.com/log")
    name, kid, data = signer.verifier_key().split("+", 2)
    assert name == "example.com/log"
    digest = hashlib.sha256(b"example.com/log\n\x01" + _raw(signer)).digest()
    assert kid == digest[:4].hex() and signer.key_id == int.from_bytes(digest[:4], "big")
    assert base64.b64decode(data) == b"\x01" + _raw(signer)
    assert NoteVerifier.from_key(signer.verifier_key()) == signer.verifier


def test_private_key_round_trip_and_secrecy() -> None:
    signer = NoteSigner.generate("example.com/log")
    text = signer.private_key()
    assert text.startswith("PRIVATE+KEY+example.com/log+")
    again = NoteSigner.from_private_key(text)
    assert again.verifier_key() == signer.verifier_key()
    assert text.split("+", 4)[4] not in repr(signer)
    with pytest.raises(ValueError):
        NoteSigner.from_private_key(signer.verifier_key())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.replace("+", "-", 1),  # no hash separator
        lambda k: k.split("+")[0] + "+00000000+" + k.split("+", 2)[2],  # wrong hash
        lambda k: "+".join(k.split("+", 2)[:2]) + "+" + _b64(b"\x02" + bytes(32)),  # not Ed25519
        lambda k: "bad name+" + k.split("+", 1)[1],
        lambda k: k[:-4],  # truncated key
    ],
)
def test_bad_verifier_keys(mangle: object) -> None:
    key = NoteSigner.generate("example.com/log").verifier_key()
    with pytest.raises(ValueError):
        NoteVerifier.from_key(mangle(key))  # type: ignore[operator]


def test_sign_and_open() -> None:
    signer = NoteSigner.generate("PeterNeumann")
    note = signer.sign(TEXT)
    assert note.startswith((TEXT + "\n\u2014 PeterNeumann ").encode())
    opened = open_note(note, [signer.verifier])
    assert opened.text == TEXT
    assert [s.name for s in opened.signatures] == ["PeterNeumann"]
    sig = base64.b64decode(note.decode().rsplit(" ", 1)[1])
    assert sig[:4] == signer.key_id.to_bytes(4, "big")
    signer.verifier.public_key.verify(sig[4:], TEXT.encode())  # plain Ed25519 over the text


def test_several_signatures_and_unknown_ones_ignored() -> None:
    a, b, c = (
        NoteSigner.generate(n) for n in ("log.example/a", "witness.example/b", "x.example/c")
    )
    note = sign_note(TEXT, [a, b, c])
    assert note.count("\u2014 ".encode()) == 3
    both = open_note(note, [a.verifier, b.verifier])
    assert {s.name for s in both.signatures} == {a.name, b.name}
    assert [s.name for s in both.unverified] == [c.name]
    only_a = open_note(note, [a.verifier])
    assert len(only_a.signatures) == 1 and len(only_a.unverified) == 2


def test_same_name_other_key_is_unknown_not_failed() -> None:
    real = NoteSigner.generate("log.example/a")
    impostor = NoteSigner.generate("log.example/a")  # same name, other key ID
    note = sign_note(TEXT, [impostor, real])
    assert len(open_note(note, [real.verifier]).unverified) == 1
    with pytest.raises(CheckpointError, match="not signed by a trusted key"):
        open_note(impostor.sign(TEXT), [real.verifier])


def test_failing_known_signature_rejects_the_note() -> None:
    a, b = NoteSigner.generate("a.example"), NoteSigner.generate("b.example")
    good = sign_note(TEXT, [a, b])
    forged = good.replace(b"answer", b"ANSWER")
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_note(forged, [a.verifier])
    # b's line carries a's key ID and name: "known" key, wrong signature.
    lines = good.decode().splitlines(keepends=True)
    b_sig = base64.b64decode(lines[-1].rsplit(" ", 1)[1])
    a_id = a.key_id.to_bytes(4, "big")
    lines[-1] = f"\u2014 {a.name} {base64.b64encode(a_id + b_sig[4:]).decode()}\n"
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_note("".join(lines).encode(), [a.verifier, b.verifier])


@pytest.mark.parametrize(
    "note",
    [
        b"no signature block\n",
        b"text\n\n",
        b"text\n\nsignature without dash\n",
        "text\n\n\u2014 name !!!notbase64\n".encode(),
        "text\n\n\u2014 name AAAA\n".encode(),  # only a key ID, no signature
        "text\n\n\u2014 name+plus AAAAAAA=\n".encode(),
        "text\n\n\u2014 name AAAAAAA=".encode(),  # no final newline
        "te\x01xt\n\n\u2014 name AAAAAAA=\n".encode(),
        b"te\xffxt\n\n\xe2\x80\x94 name AAAAAAA=\n",
        ("text\n\n" + "\u2014 name AAAAAAA=\n" * 101).encode(),
    ],
)
def test_malformed_notes(note: bytes) -> None:
    signer = NoteSigner.generate("name")
    with pytest.raises(CheckpointError):
        open_note(note, [signer.verifier])


def test_note_text_rules() -> None:
    signer = NoteSigner.generate("name")
    with pytest.raises(ValueError):
        signer.sign("no final newline")
    with pytest.raises(ValueError):
        signer.sign("a\x07bell\n")
    with pytest.raises(ValueError):
        NoteSigner.generate("has space")
    # The text may hold blank lines: the signatures start after the last one.
    text = "first\n\nsecond\n"
    assert open_note(signer.sign(text), [signer.verifier]).text == text
    assert parse_note(signer.sign(text))[0] == text


@settings(max_examples=50, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, blacklist_categories=("Cs",)), max_size=40))
def test_note_round_trip(body: str) -> None:
    signer = NoteSigner("log.example/x", Ed25519PrivateKey.generate())
    text = body + "\n"
    assert open_note(signer.sign(text), [signer.verifier]).text == text


def test_checkpoint_body() -> None:
    root = hashlib.sha256(b"root").digest()
    cp = Checkpoint("example.com/behind-the-sofa", 20852163, root, ("ext one",))
    text = cp.to_text()
    assert text == (
        f"example.com/behind-the-sofa\n20852163\n{base64.b64encode(root).decode()}\next one\n"
    )
    assert Checkpoint.from_text(text) == cp
    signer = NoteSigner.generate("example.com/behind-the-sofa")
    assert open_checkpoint(cp.sign([signer]), [signer.verifier], origin=cp.origin) == cp


@pytest.mark.parametrize(
    "text",
    [
        "origin\n5\n",  # no root line
        "origin\n05\nAAAA\n",
        "origin\n-1\nAAAA\n",
        "origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n5\n" + base64.b64encode(bytes(32)).decode(),  # no final newline
        "origin\n5\n" + base64.b64encode(bytes(32)).decode() + "\n\n",  # empty extension
        "origin\n\u0665\n" + base64.b64encode(bytes(32)).decode() + "\n",  # Arabic-Indic 5
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_text(text)


def test_checkpoint_from_another_log_is_refused() -> None:
    signer = NoteSigner.generate("other.example/log")
    note = Checkpoint("other.example/log", 1, bytes(32)).sign([signer])
    with pytest.raises(CheckpointError, match=r"not 'mine\.example/log'"):
        open_checkpoint(note, [signer.verifier], origin="mine.example/log")
