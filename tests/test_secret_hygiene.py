"""Secret hygiene: no key, passphrase or plaintext ever leaks into what the
vault prints or records, files holding secrets are created owner-only, and
identity files others can read are refused.

The leak test drives every error path of the CLI we can reach (denied, no
key, tampered, malformed, missing, usage) and then searches stdout, stderr,
every file of the audit log, the index and every other file of the vault
folder in clear, for: any ``AGE-SECRET-KEY``, the raw bytes of every secret
key in hex and base64 (users' X25519 and Ed25519 keys, class keys, the
recovery key, the checkpoint key, file keys), the passphrases kept in files,
and markers placed in the plaintexts, titles and file names of sealed
documents. ``VAULT_DEBUG`` is unset, as for users; a second pass runs
the same errors with ``VAULT_DEBUG=1`` in subprocesses, whose tracebacks
must not quote secrets either.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Office, assert_error, make_office, run
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

import vault
from vault.age import (
    MLKEM768X25519Identity,
    X25519Identity,
    decrypt,
    parse_identities,
    read_header,
    unwrap_file_key,
)
from vault.identity import AgeKeyPair
from vault.store.base import owner_key

PASSPHRASE = "horse battery staple correct 42"
WRONG = "not the passphrase 17"
MARKER = "PLAINTEXT-CANARY-7d1e"


def _encodings(raw: bytes) -> list[bytes]:
    """How a secret could show up: hex, base64 (padded, unpadded, URL-safe)."""
    b64 = base64.b64encode(raw)
    out = [raw.hex().encode(), raw.hex().upper().encode(), b64, b64.rstrip(b"="),
           base64.urlsafe_b64encode(raw).rstrip(b"=")]
    return [e for e in out if len(e) >= 16]


class Secrets:
    """Everything that must never appear in output or records."""

    def __init__(self) -> None:
        self.needles: dict[bytes, str] = {}

    def add(self, what: str, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else value
        self.needles[raw] = what

    def add_key(self, what: str, raw: bytes) -> None:
        for e in _encodings(raw):
            self.needles[e] = what

    def found_in(self, data: bytes) -> list[str]:
        return sorted({what for n, what in self.needles.items() if n in data})


def _age_key(secrets: Secrets, what: str, identity: AgeKeyPair) -> None:
    """An age secret key (X25519, or the seed of a post-quantum hybrid)."""
    secrets.add(what, str(identity))
    secrets.add_key(what, identity.to_bytes())


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    o = make_office(tmp_path_factory.mktemp("hygiene"))
    (o.root / "pass").write_text(PASSPHRASE + "\n")
    (o.root / "pass").chmod(0o600)
    (o.root / "wrong").write_text(WRONG + "\n")
    (o.root / "wrong").chmod(0o600)
    leader = vault.load_identity(o.people["leader"].key)
    leader.to_file(o.root / "leader-locked.key", PASSPHRASE)
    for i, level in enumerate(("INTERNAL", "CONFIDENTIAL")):
        src = o.root / f"{MARKER}-name-{i}.txt"
        src.write_bytes(f"{MARKER} plaintext {i}\n".encode() * 50)
        o.seal("clerk", src, "--level", level, "--compartment", "STAFF",
               "--title", f"{MARKER} title {i}")
    return o


def _all_secrets(office: Office) -> Secrets:
    s = Secrets()
    s.add("an age secret key", "AGE-SECRET-KEY")
    s.add("a passphrase", PASSPHRASE)
    s.add("a wrong passphrase", WRONG)
    s.add("a plaintext, title or file name marker", MARKER)
    for name, person in office.people.items():
        ident = vault.load_identity(person.key)
        _age_key(s, f"{name}'s age key", ident.age_identity)
        seed = ident.signing_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        s.add_key(f"{name}'s signing key", seed)
        # Class keys: whatever this person's keyring entries hold.
        for entry in (office.vault / "keyrings" / owner_key(ident.recipient)).glob("*.age"):
            out = io.BytesIO()
            decrypt(io.BytesIO(entry.read_bytes()), out, [ident.age_identity])
            for k in parse_identities(out.getvalue().decode()):
                assert isinstance(k, X25519Identity | MLKEM768X25519Identity)
                _age_key(s, "a class key", k)
    (recovery,) = parse_identities(office.recovery.read_text())
    assert isinstance(recovery, X25519Identity | MLKEM768X25519Identity)
    _age_key(s, "the recovery key", recovery)
    log_key = (office.vault / "audit" / "log.key").read_text().strip()
    s.add("the checkpoint key", log_key)
    encoded = log_key.split("+", 4)[4]  # PRIVATE+KEY+name+hash+base64; base64 may hold "+"
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    s.add_key("the checkpoint key", raw)
    s.add_key("the checkpoint key", raw[1:])  # without its algorithm byte
    for doc in (office.vault / "docs").glob("*.age"):
        with open(doc, "rb") as f:
            s.add_key("a file key", unwrap_file_key(read_header(f), [recovery]))
    return s


def _error_paths(office: Office, doc: str, tmp: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    """(argv, env) of commands that fail, one per error path."""
    v, p = str(office.vault), office.people
    key = {n: str(x.key) for n, x in p.items()}
    locked = str(office.root / "leader-locked.key")
    damaged = tmp / "damaged.age"
    damaged.write_bytes(office.doc_path(doc).read_bytes()[:-5])
    loose = tmp / "loose.key"
    loose.write_bytes(p["clerk"].key.read_bytes())
    loose.chmod(0o644)
    wrong = {"VAULT_PASSPHRASE_FILE": str(office.root / "wrong")}
    right = {"VAULT_PASSPHRASE_FILE": str(office.root / "pass")}
    yield ["--vault", v, "--identity", locked, "ls"], wrong  # wrong passphrase
    yield ["--vault", v, "--identity", locked, "ls"], {}  # no passphrase, no terminal
    yield ["--vault", v, "--identity", str(loose), "ls"], {}  # readable by others
    yield ["--vault", v, "--identity", key["outsider"], "open", doc, "-o", "-"], {}  # denied
    yield ["--vault", v, "--identity", key["outsider"], "export", doc, "-o", "-"], {}
    yield ["--vault", v, "--identity", key["outsider"], "seal", str(office.root / "pass"),
           "--level", "CONFIDENTIAL", "--compartment", "STAFF"], {}
    yield ["--vault", v, "--identity", key["clerk"], "open", doc, "-o",
           str(office.root / "pass")], {}  # exists
    yield ["--vault", v, "--identity", key["clerk"], "reclassify", doc, "--level", "PUBLIC",
           "--justification", "lower it"], {}  # a clerk may not lower
    yield ["--vault", v, "--identity", key["clerk"], "shred", doc, "--justification", "x"], {}
    yield ["--vault", v, "--identity", key["clerk"], "seal", str(office.root / "pass"),
           "--level", "NO-SUCH-LEVEL"], {}
    yield ["--vault", v, "--identity", key["clerk"], "doctor", "--repair", "--request",
           "0" * 32], {}  # a repair beyond one's own interrupted changes, with no request
    yield ["--vault", v, "--identity", key["clerk"], "policy", "apply", str(office.policy)], {}
    yield ["--vault", v, "--identity", locked, "open", "bbbbbbbbbbbbbbbb", "-o", "-"], right
    yield ["--vault", v, "--identity", key["clerk"], "info", "../../etc/passwd"], {}
    yield ["--vault", v, "--identity", key["clerk"], "declassify", "--justification", "x"], {}
    yield ["--vault", str(tmp / "nowhere"), "--identity", key["clerk"], "ls"], {}
    yield ["--vault", v, "--identity", key["clerk"], "open", "aaaaaaaaaaaaaaaa", "-o", "-"], {}
    yield ["init", v, "--policy", str(office.policy), "--identity", key["officer"]], {}
    yield ["identity", "new", "clerk", "-o", key["clerk"], "--no-passphrase"], {}
    yield ["identity", "show", locked], wrong
    yield ["identity", "show", str(loose)], {}
    yield ["age", "decrypt", "-i", key["outsider"], str(office.doc_path(doc))], {}  # no key
    yield ["age", "decrypt", "-i", str(office.recovery), str(damaged)], {}  # integrity
    yield ["age", "decrypt", "-i", locked, str(office.doc_path(doc))], wrong
    yield ["age", "encrypt", "-r", "age1notarecipient", str(office.root / "pass")], {}
    yield ["audit", "verify", "--log", str(tmp / "nolog")], {}
    yield ["audit", "prove", "--log", str(office.vault / "audit"), "999999"], {}
    yield ["policy", "check", str(office.policy) + ".missing"], {}


def test_no_secret_in_any_error_output_or_record(office: Office, tmp_path: Path) -> None:
    doc = next(p.name.split(".")[0] for p in office.vault.glob("docs/*.age"))
    secrets = _all_secrets(office)
    codes = set()
    paths = list(_error_paths(office, doc, tmp_path))
    for argv, env in paths:
        r = run(*argv, env={"VAULT_DEBUG": "", **env})
        codes.add(r.exit_code)
        assert r.exit_code in (1, 2, 3, 4, 5), (argv, r.exit_code, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr, argv
        leaked = secrets.found_in(r.stdout_bytes + r.stderr_bytes)
        assert not leaked, (argv, leaked)
    assert codes == {1, 2, 3, 4, 5}  # every kind of error was exercised
    # The records of all those attempts, and every other file in the folder
    # that is not itself encrypted: nothing secret in clear.
    for path in sorted(office.vault.rglob("*")):
        if not path.is_file() or path.name == "log.key":
            continue
        leaked = secrets.found_in(path.read_bytes())
        assert not leaked, (str(path.relative_to(office.vault)), leaked)
    # Tracebacks, for whoever debugs: they quote code and messages, never data.
    for argv, env in paths[:6]:
        r2 = subprocess.run([sys.executable, "-m", "vault_cli.main", *argv],
                            env={**os.environ, "VAULT_DEBUG": "1", **env},
                            capture_output=True, timeout=60, check=False)
        assert r2.returncode != 0
        leaked = secrets.found_in(r2.stdout + r2.stderr)
        assert not leaked, (argv, leaked)


_TRACE = """
import json, os, sys
log = open(sys.argv[1], "a")
def hook(event, args):
    if event == "os.chmod" or (event == "open" and args[2] is not None
                               and args[2] & os.O_CREAT):
        log.write(json.dumps([event, str(args[0]), args[1:]]) + "\\n")
        log.flush()
sys.addaudithook(hook)
os.umask(0)
sys.argv = ["vault", *sys.argv[2:]]
from vault_cli.main import main
main()
"""


def test_secret_files_are_created_owner_only(tmp_path: Path) -> None:
    """Under umask 0, with every chmod and every file creation traced
    (Python audit hooks): files holding secrets end up 0600 and were never
    chmod-ed, so they were created 0600 -- no moment when others could read."""
    trace = tmp_path / "trace.jsonl"
    env = {**os.environ, "VAULT_PASSPHRASE_FILE": str(tmp_path / "pass")}
    env.pop("VAULT_DEBUG", None)
    (tmp_path / "pass").write_text(PASSPHRASE + "\n")
    (tmp_path / "pass").chmod(0o600)

    def vault_(*argv: str) -> None:
        r = subprocess.run([sys.executable, "-c", _TRACE, str(trace), *argv], env=env,
                           capture_output=True, timeout=120, check=False)
        assert r.returncode == 0, (argv, r.stderr)

    office = make_office(tmp_path / "o")  # people, policy (plain identities)
    officer = str(office.people["officer"].key)
    v = str(tmp_path / "vault")
    vault_("identity", "new", "alice", "-o", str(tmp_path / "alice.key"))
    vault_("identity", "new", "bob", "-o", str(tmp_path / "bob.key"), "--no-passphrase")
    vault_("init", v, "--policy", str(office.policy), "--identity", officer,
           "--recovery-out", str(tmp_path / "recovery.key"))
    src = tmp_path / "plain.txt"
    src.write_bytes(b"secret plaintext\n" * 5000)
    vault_("--vault", v, "--identity", str(office.people["clerk"].key), "seal", str(src),
           "--level", "CONFIDENTIAL", "--compartment", "STAFF")
    doc = next(Path(v, "docs").glob("*.age")).name.split(".")[0]
    clerk = str(office.people["clerk"].key)
    vault_("--vault", v, "--identity", clerk, "open", doc, "-o", str(tmp_path / "opened.txt"))
    vault_("--vault", v, "--identity", clerk, "export", doc, "-o", str(tmp_path / "export.age"))
    vault_("age", "keygen", "-o", str(tmp_path / "keygen.key"))
    vault_("age", "decrypt", "-i", str(tmp_path / "recovery.key"), "-o",
           str(tmp_path / "decrypted.txt"), str(tmp_path / "export.age"))
    vault_("--vault", v, "--identity", officer, "rotate")

    secret = [tmp_path / n for n in ("alice.key", "bob.key", "recovery.key", "opened.txt",
                                     "keygen.key", "decrypted.txt")]
    secret += [Path(v, "audit", "log.key"), *Path(v, "keyrings").glob("*/*.age"),
               *Path(v, "docs").glob("*.age")]
    assert len(secret) >= 12
    for p in secret:
        assert p.stat().st_mode & 0o777 == 0o600, (p, oct(p.stat().st_mode))
    for d in [Path(v), *(p for p in Path(v).iterdir() if p.is_dir()),
              *Path(v, "keyrings").iterdir()]:
        assert d.stat().st_mode & 0o077 == 0, (d, oct(d.stat().st_mode))
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    created = {os.path.dirname(e[1]) for e in events if e[0] == "open"}
    assert {str(tmp_path), v, os.path.join(v, "docs")} <= created  # the trace saw them
    chmods = [e for e in events if e[0] == "os.chmod"]
    assert not chmods, f"files made first, then chmod-ed: {chmods}"


@pytest.mark.parametrize("wrong_file", ["clerk.key", "pass", "recovery.key"])
def test_a_secret_file_given_as_a_policy_is_not_quoted(office: Office, wrong_file: str) -> None:
    # An easy slip: 'vault policy check my.key', or --policy naming the key.
    path = office.root / wrong_file if wrong_file != "clerk.key" else office.people["clerk"].key
    secrets = _all_secrets(office)
    for argv in (["policy", "check", str(path)],
                 ["init", str(office.root / "v2"), "--policy", str(path), "--identity",
                  str(office.people["officer"].key)]):
        r = run(*argv)
        assert r.exit_code == 1, r.stderr
        leaked = secrets.found_in(r.stdout_bytes + r.stderr_bytes)
        assert not leaked, (
            "BUG vault/policy/_fields.py (describe): a policy problem quotes the file's "
            f"content, here a secret ({leaked}): {r.stdout + r.stderr!r}")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606])
def test_identity_files_readable_by_others_are_refused(office: Office, tmp_path: Path,
                                                       mode: int) -> None:
    key = tmp_path / "clerk.key"
    key.write_bytes(office.people["clerk"].key.read_bytes())
    key.chmod(mode)
    for argv in (["--vault", str(office.vault), "--identity", str(key), "ls"],
                 ["identity", "show", str(key)]):
        r = run(*argv)
        assert r.exit_code == 2, (argv, r.stderr)
        lines = r.stderr.splitlines()
        assert lines[0].startswith("vault: identity file") and "readable" in lines[0]
        assert f"hint: chmod 600 {key}" in lines, r.stderr
        assert r.stdout == ""
    # The library refuses too, before reading a byte of the key.
    with pytest.raises(vault.errors.InsecureFileError):
        vault.load_identity(key)


def test_a_secret_key_on_a_name_line_or_given_as_a_name_is_never_quoted(
        office: Office, tmp_path: Path) -> None:
    # An identity file whose '# name:' line holds its own key line (pasted
    # there by hand) was refused with "invalid user name 'AGE-SECRET-KEY-…'":
    # the key itself, on the terminal, and in whatever collects stderr.
    # Its first 40 characters make a name of valid length, shown the same.
    from vault.identity import write_secret_file

    secrets = _all_secrets(office)
    key_line = next(line for line in office.people["clerk"].key.read_text().splitlines()
                    if line.startswith("AGE-SECRET-KEY-"))
    files = []
    for name_line, passphrase in ((key_line, None), (key_line[:40], None),
                                  (key_line, PASSPHRASE)):
        path = tmp_path / f"merged-{len(files)}.key"
        write_secret_file(path, f"# recipient: x\n# name: {name_line}\n{key_line}\n".encode(),
                          passphrase, "")
        files.append(path)
    env = {"VAULT_PASSPHRASE_FILE": str(office.root / "pass")}
    for path in files:
        for argv in (["identity", "show", str(path), "--json"], ["identity", "show", str(path)],
                     ["--vault", str(office.vault), "--identity", str(path), "ls"]):
            r = run(*argv, env=env)
            assert_error(r, 2, f"identity file {path}: line 2 is not a valid user name")
            assert "hint: correct its '# name:' line (a name, never a key)" in r.stderr
            assert r.stdout == "" and not secrets.found_in(r.stdout_bytes + r.stderr_bytes), (
                argv, r.stderr)
        with pytest.raises(vault.errors.IdentityFileError) as e:
            vault.load_identity(path, lambda: PASSPHRASE)
        assert not secrets.found_in(f"{e.value} {e.value.hint}".encode()), e.value
    # A name given elsewhere -- on the command line, in a policy -- is not
    # quoted either when it holds a secret key; any other is, as before.
    policy = tmp_path / "policy.yaml"
    policy.write_text(office.policy.read_text().replace("\n  clerk:\n", f"\n  {key_line}:\n"))
    for name in (key_line, key_line[:40]):
        for code, argv in (
                (2, ["identity", "new", name, "-o", str(tmp_path / "new.key"),
                     "--no-passphrase"]),
                (2, ["--vault", str(office.vault), "audit", "log", "--actor", name]),
                (1, ["policy", "check", str(policy)])):
            r = run(*argv)
            assert r.exit_code == code, (argv, r.stdout, r.stderr)
            assert not secrets.found_in(r.stdout_bytes + r.stderr_bytes), (argv, r.stdout,
                                                                           r.stderr)
            if code != 1 or name == key_line:  # 40 characters: a name policies take
                assert "secret key, not shown" in r.stdout + r.stderr, argv
        assert not (tmp_path / "new.key").exists()
    with pytest.raises(vault.errors.UsageError) as e:
        vault.UserIdentity(key_line, vault.load_identity(office.people["clerk"].key).age_identity)
    assert "secret key, not shown" in str(e.value) and key_line[16:40] not in str(e.value)
    r = run("identity", "new", "clerk\x1b", "-o", str(tmp_path / "new.key"), "--no-passphrase")
    assert_error(r, 2, "'clerk\\x1b' cannot be a user name in a policy")
