"""Interoperability with the stock ``age`` and ``age-keygen`` binaries, both ways.

These tests drive the real binaries (Debian package ``age``). They fail --
never skip -- when the binaries are missing: interop is what lets a sealed
document always be recovered with stock tools. ``age -p`` reads passphrases
only from a terminal, so those tests run it under a pseudo-terminal.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tty_support import with_tty

import vault.age as age
from vault.age import Stanza

MiB = 1 << 20
SIZES = [0, 1, 65535, 65536, 65537, 131072, 5 * MiB + 7]
PASSPHRASE = "correct horse battery staple"


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"the stock {name} binary is missing: install Debian's age package "
            "(apt-get install age); interop tests must run against it"
        )
    return path


@pytest.fixture(scope="module")
def age_bin() -> str:
    return _binary("age")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two identity files written by age-keygen."""
    keygen = _binary("age-keygen")
    work = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("one", "two"):
        paths[name] = work / f"{name}.txt"
        subprocess.run([keygen, "-o", str(paths[name])], check=True, capture_output=True)
    return paths


def _recipient(key: Path) -> str:
    out = subprocess.run([_binary("age-keygen"), "-y", str(key)], check=True, capture_output=True)
    return out.stdout.decode().strip()


def _plaintext(size: int) -> bytes:
    return os.urandom(size)


def _age(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([_binary("age"), *args], input=stdin, capture_output=True)


class LabelRecipient:
    """A caller's own stanza type, as the vault adds its label."""

    def wrap(self, file_key: bytes) -> list[Stanza]:
        return [Stanza("example.com/label", ["secret", "x"], b"bound to " + file_key[:4])]


# ---------------------------------------------------------------------------
# X25519, binary and armored, both directions


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", SIZES)
def test_age_decrypts_what_we_encrypt(
    age_bin: str, keys: dict[str, Path], tmp_path: Path, size: int, armor: bool
) -> None:
    plain = _plaintext(size)
    ours = age.X25519Identity.generate()
    recipients = [age.parse_recipient(_recipient(keys[n])) for n in ("one", "two")]
    sealed = tmp_path / "file.age"
    with open(sealed, "wb") as f:
        age.encrypt(io.BytesIO(plain), f, [*recipients, ours.recipient], armor=armor)
    assert sealed.read_bytes().startswith(
        b"-----BEGIN AGE ENCRYPTED FILE-----\n" if armor else b"age-encryption.org/v1\n"
    )
    for name in ("one", "two"):
        result = _age("-d", "-i", str(keys[name]), str(sealed))
        assert result.returncode == 0, result.stderr
        assert result.stdout == plain


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", SIZES)
def test_we_decrypt_what_age_encrypts(
    age_bin: str, keys: dict[str, Path], tmp_path: Path, size: int, armor: bool
) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(_plaintext(size))
    ours = age.X25519Identity.generate()
    sealed = tmp_path / "file.age"
    flags = ["-a"] if armor else []
    recipients = ["-r", _recipient(keys["one"]), "-r", str(ours.recipient)]
    result = _age(*recipients, *flags, "-o", str(sealed), str(plain))
    assert result.returncode == 0, result.stderr
    for identities in (age.load_identities(keys["one"]), [ours]):
        out = tmp_path / "out"
        age.decrypt_file(sealed, out, identities)
        assert out.read_bytes() == plain.read_bytes()


def test_keys_interoperate(age_bin: str, keys: dict[str, Path], tmp_path: Path) -> None:
    theirs = age.load_identities(keys["one"])[0]
    assert isinstance(theirs, age.X25519Identity)
    assert str(theirs.recipient) == _recipient(keys["one"])
    ours = age.X25519Identity.generate()
    mine = tmp_path / "mine.txt"
    mine.write_text(f"# a comment\n\n{ours}\n")
    assert _recipient(mine) == str(ours.recipient)


def test_custom_stanzas_and_rewrap_are_transparent_to_age(
    age_bin: str, keys: dict[str, Path], tmp_path: Path
) -> None:
    plain = _plaintext(200_000)
    one = age.load_identities(keys["one"])
    sealed = io.BytesIO()
    to_one = age.parse_recipient(_recipient(keys["one"]))
    age.encrypt(io.BytesIO(plain), sealed, [to_one, LabelRecipient()])
    first = tmp_path / "first.age"
    first.write_bytes(sealed.getvalue())
    assert _age("-d", "-i", str(keys["one"]), str(first)).stdout == plain

    sealed.seek(0)
    file_key = age.unwrap_file_key(age.read_header(sealed), one)
    sealed.seek(0)
    rewrapped = io.BytesIO()
    to_two = age.parse_recipient(_recipient(keys["two"]))
    age.rewrap(sealed, rewrapped, file_key, [to_two, LabelRecipient()])
    second = tmp_path / "second.age"
    second.write_bytes(rewrapped.getvalue())
    assert _age("-d", "-i", str(keys["two"]), str(second)).stdout == plain
    assert _age("-d", "-i", str(keys["one"]), str(second)).returncode != 0


# ---------------------------------------------------------------------------
# scrypt passphrases and passphrase-encrypted identity files


def test_we_decrypt_age_passphrase_files(age_bin: str, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(_plaintext(70_000))
    sealed = tmp_path / "file.age"
    status, transcript, _ = with_tty(
        [age_bin, "-p", "-o", str(sealed), str(plain)], [PASSPHRASE, PASSPHRASE]
    )
    assert status == 0, transcript
    out = io.BytesIO()
    age.decrypt(io.BytesIO(sealed.read_bytes()), out, [age.ScryptIdentity(PASSPHRASE)])
    assert out.getvalue() == plain.read_bytes()


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_age_decrypts_our_passphrase_files(age_bin: str, tmp_path: Path, armor: bool) -> None:
    plain = _plaintext(70_000)
    sealed = tmp_path / "file.age"
    with open(sealed, "wb") as f:  # the default work factor, as age -p uses
        age.encrypt(io.BytesIO(plain), f, [age.ScryptRecipient(PASSPHRASE)], armor=armor)
    out = tmp_path / "out"
    status, transcript, _ = with_tty([age_bin, "-d", "-o", str(out), str(sealed)], [PASSPHRASE])
    assert status == 0, transcript
    assert out.read_bytes() == plain


def test_we_read_identity_files_encrypted_by_age(
    age_bin: str, keys: dict[str, Path], tmp_path: Path
) -> None:
    plain_key = tmp_path / "key.txt"
    protected = tmp_path / "key.age"
    pipeline = (
        f"{_binary('age-keygen')} 2>/dev/null | tee {plain_key} | "
        f"{age_bin} -p -a -o {protected}"
    )
    status, transcript, _ = with_tty(["sh", "-c", pipeline], [PASSPHRASE, PASSPHRASE])
    assert status == 0, transcript
    assert protected.read_bytes().startswith(b"-----BEGIN AGE ENCRYPTED FILE-----")

    asked: list[str] = []

    def passphrase() -> str:
        asked.append("yes")
        return PASSPHRASE

    loaded = age.load_identities(protected, passphrase)
    expected = age.parse_identities(plain_key.read_text())
    assert [str(i) for i in loaded] == [str(i) for i in expected]
    assert asked == ["yes"]

    sealed = tmp_path / "file.age"
    plain = tmp_path / "plain"
    plain.write_bytes(b"for the holder of the protected key\n")
    assert _age("-r", _recipient(plain_key), "-o", str(sealed), str(plain)).returncode == 0
    out = io.BytesIO()
    age.decrypt(io.BytesIO(sealed.read_bytes()), out, loaded)
    assert out.getvalue() == plain.read_bytes()


def test_age_reads_identity_files_we_encrypt(age_bin: str, tmp_path: Path) -> None:
    identity = age.X25519Identity.generate()
    protected = tmp_path / "key.age"
    with open(protected, "wb") as f:
        text = f"# public key: {identity.recipient}\n{identity}\n".encode()
        age.encrypt(io.BytesIO(text), f, [age.ScryptRecipient(PASSPHRASE)], armor=True)
    plain = _plaintext(100_000)
    sealed = tmp_path / "file.age"
    with open(sealed, "wb") as f:
        age.encrypt(io.BytesIO(plain), f, [identity.recipient])
    out = tmp_path / "out"
    status, transcript, _ = with_tty(
        [age_bin, "-d", "-i", str(protected), "-o", str(out), str(sealed)], [PASSPHRASE]
    )
    assert status == 0, transcript
    assert out.read_bytes() == plain


# ---------------------------------------------------------------------------
# The `vault age` command and stock age in real pipelines


def _vault() -> list[str]:
    exe = shutil.which("vault")
    return [exe] if exe else [sys.executable, "-m", "vault_cli.main"]


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_cli_pipelines_with_age(
    age_bin: str, keys: dict[str, Path], tmp_path: Path, armor: bool
) -> None:
    plain = _plaintext(3 * MiB + 1)
    flags = ["-a"] if armor else []
    encrypt = [*_vault(), "age", "encrypt", "-r", _recipient(keys["one"]), *flags]
    ours = subprocess.run(encrypt, input=plain, capture_output=True, check=True)
    assert _age("-d", "-i", str(keys["one"]), stdin=ours.stdout).stdout == plain

    theirs = _age("-r", _recipient(keys["two"]), *flags, stdin=plain)
    decrypt = [*_vault(), "age", "decrypt", "-i", str(keys["two"]), "-"]
    back = subprocess.run(decrypt, input=theirs.stdout, capture_output=True, check=True)
    assert back.stdout == plain
    assert back.stderr == b""
