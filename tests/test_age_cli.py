"""``vault age``: exit codes, what goes to stdout and what to stderr, atomic output."""

from __future__ import annotations

import io
import os
import pty
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import vault.age as age
from vault_cli.main import cli

MiB = 1 << 20


def invoke(args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["age", *args], input=stdin, env=env)


@pytest.fixture
def identity(tmp_path: Path) -> tuple[age.X25519Identity, Path]:
    ident = age.X25519Identity.generate()
    path = tmp_path / "key.txt"
    path.write_text(f"# test key\n{ident}\n")
    path.chmod(0o600)  # a secret: refused when others may read it
    return ident, path


@pytest.fixture
def passphrase_env(tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "passphrase"
    path.write_text("a passphrase of some length\n")
    path.chmod(0o600)
    return {"VAULT_PASSPHRASE_FILE": str(path)}


def test_keygen_prints_an_identity_file(tmp_path: Path) -> None:
    result = invoke(["keygen"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[1].startswith("# public key: age1")
    ident = age.parse_identities(result.stdout)[0]
    assert isinstance(ident, age.X25519Identity)
    assert lines[1].removeprefix("# public key: ") == str(ident.recipient)
    assert result.stderr == ""


def test_keygen_to_a_file_is_private_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "key.txt"
    result = invoke(["keygen", "-o", str(out)])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    ident = age.load_identities(out)[0]
    assert isinstance(ident, age.X25519Identity)
    assert result.stderr == f"Public key: {ident.recipient}\n"

    converted = invoke(["keygen", "-y", str(out)])
    assert (converted.exit_code, converted.stdout) == (0, f"{ident.recipient}\n")

    before = out.read_bytes()
    again = invoke(["keygen", "-o", str(out)])
    assert again.exit_code == 2
    assert again.stdout == ""
    assert again.stderr.startswith("vault: ") and "already exists" in again.stderr
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.txt"]


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
def test_round_trip_through_files(
    identity: tuple[age.X25519Identity, Path], tmp_path: Path, armor: bool
) -> None:
    ident, key = identity
    plain = tmp_path / "plain"
    plain.write_bytes(os.urandom(200_000))
    sealed, back = tmp_path / "sealed.age", tmp_path / "back"
    flags = ["-a"] if armor else []
    result = invoke(["encrypt", "-r", str(ident.recipient), *flags, "-o", str(sealed), str(plain)])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    result = invoke(["decrypt", "-i", str(key), "-o", str(back), str(sealed)])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert back.read_bytes() == plain.read_bytes()
    assert stat.S_IMODE(back.stat().st_mode) == 0o600


def test_round_trip_through_pipes_and_recipient_files(
    identity: tuple[age.X25519Identity, Path], tmp_path: Path
) -> None:
    ident, key = identity
    other = age.X25519Identity.generate()
    recipients = tmp_path / "recipients.txt"
    recipients.write_text(f"# two people\n{ident.recipient}\n\n{other.recipient}\n")
    plain = os.urandom(70_000)
    sealed = invoke(["encrypt", "-R", str(recipients), "-"], stdin=plain)
    assert sealed.exit_code == 0 and sealed.stderr == ""
    assert len(age.read_header(io.BytesIO(sealed.stdout_bytes)).stanzas) == 2
    back = invoke(["decrypt", "-i", str(key)], stdin=sealed.stdout_bytes)
    assert back.exit_code == 0 and back.stderr == ""
    assert back.stdout_bytes == plain


def test_passphrase_round_trip(tmp_path: Path, passphrase_env: dict[str, str]) -> None:
    sealed = invoke(["encrypt", "-p", "-a"], stdin=b"secret minutes", env=passphrase_env)
    assert sealed.exit_code == 0, sealed.stderr
    assert sealed.stdout.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
    back = invoke(["decrypt"], stdin=sealed.stdout_bytes, env=passphrase_env)
    assert (back.exit_code, back.stdout, back.stderr) == (0, "secret minutes", "")


def test_passphrase_protected_identity_file(
    tmp_path: Path, passphrase_env: dict[str, str]
) -> None:
    ident = age.X25519Identity.generate()
    protected = tmp_path / "key.age"
    with open(protected, "wb") as f:
        phrase = Path(passphrase_env["VAULT_PASSPHRASE_FILE"]).read_text().strip()
        recipients = [age.ScryptRecipient(phrase, work_factor=10)]
        age.encrypt(io.BytesIO(f"{ident}\n".encode()), f, recipients, armor=True)
    sealed = invoke(["encrypt", "-r", str(ident.recipient)], stdin=b"for the key holder")
    protected.chmod(0o600)
    back = invoke(["decrypt", "-i", str(protected)], stdin=sealed.stdout_bytes, env=passphrase_env)
    assert (back.exit_code, back.stdout, back.stderr) == (0, "for the key holder", "")


def test_wrong_key_exits_5_and_writes_nothing(tmp_path: Path) -> None:
    sealed = invoke(["encrypt", "-r", str(age.X25519Identity.generate().recipient)], stdin=b"x")
    key = tmp_path / "other.txt"
    key.write_text(f"{age.X25519Identity.generate()}\n")
    key.chmod(0o600)
    out = tmp_path / "out"
    result = invoke(["decrypt", "-i", str(key), "-o", str(out)], stdin=sealed.stdout_bytes)
    assert result.exit_code == 5
    assert result.stdout == ""
    assert result.stderr.startswith("vault: no identity matched")
    assert "hint: " in result.stderr
    assert not out.exists()


def test_tampered_file_exits_4_and_leaves_no_partial_plaintext(
    identity: tuple[age.X25519Identity, Path], tmp_path: Path
) -> None:
    ident, key = identity
    sealed = invoke(["encrypt", "-r", str(ident.recipient)], stdin=os.urandom(3 * MiB))
    data = bytearray(sealed.stdout_bytes)
    data[-100] ^= 1  # in the last chunk: all earlier chunks verify
    tampered = tmp_path / "tampered.age"
    tampered.write_bytes(bytes(data))
    out = tmp_path / "dir" / "out"
    out.parent.mkdir()
    result = invoke(["decrypt", "-i", str(key), "-o", str(out), str(tampered)])
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == "vault: payload chunk failed authentication\n"
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "stdin", "code", "message"),
    [
        (["encrypt"], b"x", 2, "vault: no recipients"),
        (["encrypt", "-r", "age1notakey"], b"x", 2, "vault: -r: not a valid age recipient"),
        (["encrypt", "-p", "-r", "{recipient}"], b"x", 2, "vault: -p cannot be combined"),
        (["decrypt"], b"{sealed}", 2, "vault: no identity given"),
        (["decrypt", "-i", "{key}"], b"not an age file", 4, "vault: not an age file"),
        (["decrypt", "-i", "{key}", "nope.age"], b"", 1, "vault: no such file or directory: nope"),
        (["decrypt", "-i", "{key}", "-z"], b"", 2, "vault: no such option"),
    ],
)
def test_errors_have_documented_exit_codes(
    identity: tuple[age.X25519Identity, Path],
    args: list[str],
    stdin: bytes,
    code: int,
    message: str,
) -> None:
    ident, key = identity
    sealed = invoke(["encrypt", "-r", str(ident.recipient)], stdin=b"x").stdout_bytes
    args = [a.format(recipient=ident.recipient, key=key) for a in args]
    result = invoke(args, stdin=sealed if stdin == b"{sealed}" else stdin)
    assert result.exit_code == code
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_scrypt_file_with_identity_is_a_usage_error(
    identity: tuple[age.X25519Identity, Path], passphrase_env: dict[str, str]
) -> None:
    _, key = identity
    sealed = invoke(["encrypt", "-p"], stdin=b"x", env=passphrase_env).stdout_bytes
    result = invoke(["decrypt", "-i", str(key)], stdin=sealed, env=passphrase_env)
    assert result.exit_code == 2
    assert result.stderr.startswith("vault: the file is passphrase-encrypted")


def test_binary_ciphertext_is_not_written_to_a_terminal(tmp_path: Path) -> None:
    recipient = str(age.X25519Identity.generate().recipient)
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    master, slave = pty.openpty()
    try:
        cmd = [sys.executable, "-m", "vault_cli.main", "age", "encrypt", "-r", recipient]
        result = subprocess.run([*cmd, str(plain)], stdout=slave, stderr=subprocess.PIPE)
        assert result.returncode == 2
        assert result.stderr.startswith(b"vault: refusing to write binary ciphertext")
        armored = subprocess.run([*cmd, "-a", str(plain)], stdout=slave, stderr=subprocess.PIPE)
        assert armored.returncode == 0
    finally:
        os.close(master)
        os.close(slave)


def test_decrypt_sweeps_a_killed_writers_plaintext(
    identity: tuple[age.X25519Identity, Path], tmp_path: Path
) -> None:
    # A decrypt killed mid-write leaves an unlocked temporary holding partial
    # plaintext; the next atomic write into that folder removes it.
    ident, key = identity
    plain, sealed = tmp_path / "plain", tmp_path / "sealed.age"
    plain.write_bytes(b"board minutes")
    sealing = invoke(["encrypt", "-r", str(ident.recipient), "-o", str(sealed), str(plain)])
    assert sealing.exit_code == 0
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".vault-tmp-0123456789abcdef"
    fd = os.open(stale, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"partial plaintext")
    os.close(fd)  # its writer is gone: nobody holds its lock
    result = invoke(["decrypt", "-i", str(key), "-o", str(out / "back"), str(sealed)])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert sorted(p.name for p in out.iterdir()) == ["back"]


def test_an_identity_file_others_may_read_is_refused(
    identity: tuple[age.X25519Identity, Path]
) -> None:
    # A secret (a recovery identity above all): refused as `vault
    # --identity` refuses it, before a byte of it is read.
    ident, key = identity
    key.chmod(0o644)
    sealed = invoke(["encrypt", "-r", str(ident.recipient)], stdin=b"recovered")
    for args in (["decrypt", "-i", str(key)], ["keygen", "-y", str(key)]):
        result = invoke(args, stdin=sealed.stdout_bytes)
        assert result.exit_code == 2, result.stderr
        assert result.stdout == ""
        assert "is readable by other users" in result.stderr and "chmod 600" in result.stderr
    # A device holds no secret, and 'chmod 600 /dev/null' is no advice to give.
    for args in (["decrypt", "-i", "/dev/null"], ["keygen", "-y", "/dev/null"]):
        result = invoke(args, stdin=sealed.stdout_bytes)
        assert result.exit_code == 2, result.stderr
        assert "/dev/null is not a regular file" in result.stderr
        assert "chmod" not in result.stderr


def test_a_recipients_file_that_is_not_text_is_a_usage_error(tmp_path: Path) -> None:
    listing = tmp_path / "recipients"
    listing.write_bytes(b"age1\xff\xfe\n")
    result = invoke(["encrypt", "-R", str(listing)], stdin=b"x")
    assert (result.exit_code, result.stdout) == (2, "")
    assert "is not UTF-8 text" in result.stderr and "internal error" not in result.stderr
