"""``vault age`` with post-quantum (mlkem768x25519) keys: exit codes, stdout, stderr."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cli_support import assert_error, run

import vault.age as age
from vault.age import _bech32


@pytest.fixture
def pq_key(tmp_path: Path) -> tuple[age.MLKEM768X25519Identity, Path]:
    ident = age.MLKEM768X25519Identity.generate()
    path = tmp_path / "pq.txt"
    path.write_text(f"# public key: {ident.recipient}\n{ident}\n")
    path.chmod(0o600)
    return ident, path


def _error_lines(stderr: str) -> tuple[str, list[str]]:
    lines = stderr.splitlines()
    assert lines and lines[0].startswith("vault: "), stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), stderr
    return lines[0], lines[1:]


def test_keygen_pq_prints_an_identity_file_like_age_keygen_pq() -> None:
    result = run("age", "keygen", "--pq")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("# created: ")
    assert lines[1].startswith("# public key: age1pq1")
    assert lines[2].startswith("AGE-SECRET-KEY-PQ-1")
    (ident,) = age.parse_identities(result.stdout)
    assert isinstance(ident, age.MLKEM768X25519Identity)
    assert lines[1].removeprefix("# public key: ") == str(ident.recipient)


def test_keygen_pq_to_a_file_then_y_prints_the_recipient(tmp_path: Path) -> None:
    out = tmp_path / "pq.txt"
    result = run("age", "keygen", "--pq", "-o", str(out))
    assert (result.exit_code, result.stdout) == (0, "")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    (ident,) = age.load_identities(out)
    assert isinstance(ident, age.MLKEM768X25519Identity)
    assert result.stderr == f"Public key: {ident.recipient}\n"

    # -y prints every identity's recipient, classical and post-quantum alike.
    classical = age.X25519Identity.generate()
    mixed = tmp_path / "both.txt"
    mixed.write_text(f"{classical}\n{ident}\n")
    mixed.chmod(0o600)
    converted = run("age", "keygen", "-y", str(mixed))
    assert (converted.exit_code, converted.stderr) == (0, "")
    assert converted.stdout == f"{classical.recipient}\n{ident.recipient}\n"

    both = run("age", "keygen", "--pq", "-y", str(out))
    assert both.exit_code == 2 and both.stdout == ""
    first, hints = _error_lines(both.stderr)
    assert first == "vault: -y cannot be combined with -o or --pq" and hints


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("via_file", [False, True], ids=["-r", "-R"])
def test_encrypt_to_pq_recipients_and_decrypt(
    pq_key: tuple[age.MLKEM768X25519Identity, Path], tmp_path: Path, armor: bool, via_file: bool
) -> None:
    ident, key = pq_key
    other = age.MLKEM768X25519Identity.generate()
    plain = tmp_path / "plain"
    plain.write_bytes(b"minutes of the board\n" * 5000)
    sealed = tmp_path / "plain.age"
    if via_file:
        listing = tmp_path / "recipients.txt"
        listing.write_text(f"# the board\n{ident.recipient}\n\n{other.recipient}\n")
        targets = ["-R", str(listing)]
    else:
        targets = ["-r", str(ident.recipient), "-r", str(other.recipient)]
    flags = ["-a"] if armor else []
    result = run("age", "encrypt", *targets, *flags, "-o", str(sealed), str(plain))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    header = age.read_header(age.dearmor(sealed.open("rb")))
    assert [s.type for s in header.stanzas] == ["mlkem768x25519"] * 2

    opened = run("age", "decrypt", "-i", str(key), str(sealed))
    assert (opened.exit_code, opened.stderr) == (0, "")
    assert opened.stdout_bytes == plain.read_bytes()


def test_an_identity_file_may_hold_both_kinds(tmp_path: Path) -> None:
    pq, classical = age.MLKEM768X25519Identity.generate(), age.X25519Identity.generate()
    key = tmp_path / "both.txt"
    key.write_text(f"{classical}\n{pq}\n")
    key.chmod(0o600)
    for recipient in (pq.recipient, classical.recipient):
        sealed = run("age", "encrypt", "-r", str(recipient), input=b"either")
        assert sealed.exit_code == 0
        opened = run("age", "decrypt", "-i", str(key), input=sealed.stdout_bytes)
        assert (opened.exit_code, opened.stdout, opened.stderr) == (0, "either", "")


def test_the_wrong_pq_identity_exits_5(pq_key: tuple[age.MLKEM768X25519Identity, Path]) -> None:
    _, key = pq_key
    other = age.MLKEM768X25519Identity.generate()
    sealed = run("age", "encrypt", "-r", str(other.recipient), input=b"x").stdout_bytes
    result = run("age", "decrypt", "-i", str(key), input=sealed)
    assert result.exit_code == 5 and result.stdout == ""
    assert_error(result, 5, "no identity matched")


def test_a_tampered_pq_stanza_exits_4(pq_key: tuple[age.MLKEM768X25519Identity, Path]) -> None:
    ident, key = pq_key
    sealed = run("age", "encrypt", "-r", str(ident.recipient), input=b"x").stdout_bytes
    # One base64 character less in the enc argument: a header failure.
    start = sealed.index(b"mlkem768x25519 ") + len(b"mlkem768x25519 ")
    broken = sealed[:start] + sealed[start + 4 :]
    result = run("age", "decrypt", "-i", str(key), input=broken)
    assert result.stdout == ""
    assert_error(result, 4, "mlkem768x25519 enc has the wrong length")


@pytest.mark.parametrize(
    ("recipient", "message"),
    [
        ("age1pq1", "vault: -r: not a valid age recipient"),
        ("{pq_bad_checksum}", "vault: -r: not a valid age recipient"),
        ("{pq_upper}", "vault: -r: not a valid age recipient"),
        ("{pq_truncated}", "vault: -r: not a valid age recipient"),
        ("{pq_identity}", "vault: -r: not a valid age recipient"),
        ("age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e",
         "vault: -r: tagged (hardware) recipients are not supported"),
    ],
    ids=["empty", "bad-checksum", "uppercase", "truncated", "secret-key", "tag"],
)
def test_a_malformed_recipient_is_a_usage_error(
    pq_key: tuple[age.MLKEM768X25519Identity, Path], recipient: str, message: str
) -> None:
    ident, _ = pq_key
    text = str(ident.recipient)
    values = {
        "pq_bad_checksum": text[:-1] + ("q" if text[-1] != "q" else "p"),
        "pq_upper": text.upper(),
        # A valid Bech32 string of one byte too few.
        "pq_truncated": _bech32.encode("age1pq", ident.recipient.to_bytes()[:-1]),
        "pq_identity": str(ident),
    }
    result = run("age", "encrypt", "-r", recipient.format(**values), input=b"x")
    assert (result.exit_code, result.stdout) == (2, "")
    first, hints = _error_lines(result.stderr)
    assert first == message
    assert len(hints) == 1
    # Whatever was given is not echoed back: it may be a secret key.
    assert str(ident) not in result.stderr and text[10:40] not in result.stderr


@pytest.mark.parametrize("via_file", [False, True], ids=["-r", "-R"])
def test_mixing_pq_and_classical_recipients_is_refused(
    pq_key: tuple[age.MLKEM768X25519Identity, Path], tmp_path: Path, via_file: bool
) -> None:
    ident, _ = pq_key
    classical = age.X25519Identity.generate().recipient
    out = tmp_path / "never.age"
    if via_file:
        listing = tmp_path / "recipients.txt"
        listing.write_text(f"{ident.recipient}\n{classical}\n")
        targets = ["-R", str(listing)]
    else:
        targets = ["-r", str(classical), "-r", str(ident.recipient)]
    result = run("age", "encrypt", *targets, "-o", str(out), input=b"x")
    assert (result.exit_code, result.stdout) == (2, "")
    first, hints = _error_lines(result.stderr)
    assert first == (
        "vault: post-quantum (age1pq1…) and classical (age1…) recipients "
        "cannot be mixed in one file"
    )
    assert hints and "vault age keygen --pq" in hints[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("command", "fragments"),
    [
        ("keygen", ["--pq", "AGE-SECRET-KEY-PQ-1", "age1pq1", "-y IDENTITY_FILE"]),
        ("encrypt", ["-r, --recipient", "age1pq1", "cannot be mixed"]),
        ("decrypt", ["-i, --identity", "post-quantum"]),
    ],
)
def test_help_of_the_changed_commands(command: str, fragments: list[str]) -> None:
    result = run("age", command, "--help")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith(f"Usage: vault age {command} ")
    text = " ".join(result.stdout.split())
    for fragment in fragments:
        assert fragment in text, (fragment, result.stdout)
