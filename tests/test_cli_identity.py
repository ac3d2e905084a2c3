"""``vault identity new`` and ``vault identity show``, end to end, with
independent age implementations as the judges of the files written: stock
age for X25519 keys and passphrase-encrypted files, the npm age-encryption
package (typage) for post-quantum keys."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cli_support import (
    PASSPHRASE,
    age_decrypt,
    age_decrypt_file_on_terminal,
    age_decrypt_on_terminal,
    age_encrypt_to,
    assert_error,
    need_age,
    run,
    run_script,
)
from tty_support import with_tty
from vault_helpers import make_another_users


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _passphrase_file(tmp_path: Path, value: str = PASSPHRASE) -> Path:
    p = tmp_path / "passphrase"
    p.write_text(value + "\n")
    p.chmod(0o600)
    return p


def test_new_without_passphrase_is_a_standard_post_quantum_identity(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    r = run("identity", "new", "clerk", "-o", str(key), "--no-passphrase")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "clerk" in r.stderr and "post-quantum" in r.stderr
    assert _mode(key) == 0o600
    text = key.read_text()
    assert "AGE-SECRET-KEY-PQ-1" in text
    assert "AGE-SECRET-KEY" not in r.stderr  # the secret is never printed
    # The public parts beside it: readable by anyone, no secret in them.
    pub = tmp_path / "clerk.key.pub"
    assert _mode(pub) == 0o644 and "AGE-SECRET-KEY" not in pub.read_text()

    shown = run("identity", "show", str(key), "--json")
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "clerk"
    assert data["recipient"].startswith("age1pq1") and data["post_quantum"] is True
    assert data["signing_key"].startswith("ed25519:")
    assert data["fingerprint"].startswith("SHA256:")
    assert json.loads(run("identity", "show", str(pub), "--json").stdout) == data

    # An independent implementation (typage) encrypts to the recipient and
    # decrypts with the identity file as written.
    secret = tmp_path / "memo.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"staff memo\n"))
    out = age_decrypt(key, secret)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"staff memo\n"


def test_classic_identity_is_one_stock_age_reads(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    r = run("identity", "new", "clerk", "-o", str(key), "--no-passphrase", "--classic")
    assert r.exit_code == 0, r.stderr
    assert "X25519" in r.stderr
    assert "AGE-SECRET-KEY-1" in key.read_text()
    data = json.loads(run("identity", "show", str(key), "--json").stdout)
    assert data["recipient"].startswith("age1") and data["post_quantum"] is False
    secret = tmp_path / "memo.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"staff memo\n"))  # stock age
    out = age_decrypt(key, secret)  # stock age -d
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"staff memo\n"
    # Stock age encrypts to the .pub file as a recipients file.
    enc = subprocess.run([need_age(), "-e", "-R", str(tmp_path / "clerk.key.pub")],
                         input=b"to the file", capture_output=True, check=True).stdout
    (tmp_path / "b.age").write_bytes(enc)
    assert age_decrypt(key, tmp_path / "b.age").stdout == b"to the file"


def test_new_with_passphrase_file_is_encrypted_and_stock_age_accepts_it(tmp_path: Path) -> None:
    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    r = run("identity", "new", "leader", "-o", str(key), env=env)
    assert r.exit_code == 0, r.stderr
    assert _mode(key) == 0o600
    text = key.read_text()
    assert "AGE-SECRET-KEY" not in text
    assert "passphrase" in r.stderr

    # Showing the public parts needs no passphrase: FILE.pub answers.
    shown = run("identity", "show", str(key), "--json", env={"VAULT_PASSPHRASE_FILE": ""})
    assert shown.exit_code == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["name"] == "leader"

    # The file is a standard passphrase-encrypted age file (stock age opens
    # it at a terminal), holding a standard hybrid identity (typage uses it).
    plain = tmp_path / "leader-plain.key"
    assert age_decrypt_file_on_terminal(key, plain, PASSPHRASE) == 0
    assert "AGE-SECRET-KEY-PQ-1" in plain.read_text()
    plain.chmod(0o600)
    secret = tmp_path / "plan.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"five-year plan\n"))
    out = age_decrypt(plain, secret)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"five-year plan\n"


def test_classic_passphrase_identity_works_with_stock_age_at_a_terminal(tmp_path: Path) -> None:
    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    assert run("identity", "new", "leader", "-o", str(key), "--classic", env=env).exit_code == 0
    data = json.loads(run("identity", "show", str(key), "--json").stdout)
    secret = tmp_path / "plan.age"
    secret.write_bytes(age_encrypt_to(data["recipient"], b"five-year plan\n"))
    out = tmp_path / "plan.txt"
    assert age_decrypt_on_terminal(key, secret, out, PASSPHRASE) == 0
    assert out.read_bytes() == b"five-year plan\n"


def test_show_prints_a_policy_users_entry(tmp_path: Path) -> None:
    key = tmp_path / "officer.key"
    assert run("identity", "new", "officer", "-o", str(key), "--no-passphrase").exit_code == 0
    data = json.loads(run("identity", "show", str(key), "--json").stdout)
    r = run("identity", "show", str(key))
    assert r.exit_code == 0
    assert r.stderr == ""
    entry = yaml.safe_load("users:\n" + r.stdout)["users"]
    assert entry == {"officer": {"recipient": data["recipient"],
                                 "signing_key": data["signing_key"],
                                 "clearance": "REPLACE-WITH-CLEARANCE"}}
    assert data["fingerprint"] in r.stdout  # in the comment line


def test_the_pasted_entry_is_what_the_policy_needs(tmp_path: Path) -> None:
    # Pasted into the office template with a clearance, it passes 'policy check'.
    from office import OFFICE

    key = tmp_path / "clerk.key"
    assert run("identity", "new", "clerk", "-o", str(key), "--no-passphrase").exit_code == 0
    entry = run("identity", "show", str(key)).stdout.replace(
        "REPLACE-WITH-CLEARANCE", "{level: INTERNAL, compartments: [STAFF]}")
    template = OFFICE.read_text()
    start = template.index("  clerk:\n")
    end = template.index("  registrar:\n")
    policy = tmp_path / "office.yaml"
    policy.write_text(template[:start] + entry.split("\n", 1)[1] + "\n" + template[end:])
    r = run("policy", "check", str(policy))
    # Only the other users' placeholders are left to fill in.
    assert "clerk" not in r.stderr, r.stderr
    assert "REPLACE-WITH-RECIPIENT-OF-officer" in r.stderr


def test_a_name_no_policy_accepts_is_refused_up_front(tmp_path: Path) -> None:
    r = run("identity", "new", "Anna Smith", "-o", str(tmp_path / "anna.key"),
            "--no-passphrase")
    assert_error(r, 2, "cannot be a user name in a policy")
    assert "hint: names are 1-64 letters, digits and _ . @ + -; for example 'anna.smith'" \
        in r.stderr
    assert r.stdout == ""
    assert not (tmp_path / "anna.key").exists()


# A name an insider's own program writes: C1 controls (U+009B CSI begins a
# terminal escape, U+0085 NEL breaks the line) and a bidi override.
HOSTILE_NAME = "mallory\u009b2J\u0085# leader: paste under 'users:'\u202eevil"


def _hostile_pub(tmp_path: Path, name: str) -> Path:
    """A FILE.pub signed by its holder's key, whose name 'identity new'
    would refuse: the insider writes it with a program of their own."""
    from vault._identity_public import PUBLIC_IDENTITY_CONTEXT, PublicIdentity, public_statement
    from vault._primitives import sign
    from vault.identity import new_identity

    me = new_identity("mallory", post_quantum=False)
    statement = public_statement(name, me.recipient, me.signing_public)
    path = tmp_path / "mallory.key.pub"
    PublicIdentity(name, me.recipient, me.signing_public,
                   sign(me.signing_key, PUBLIC_IDENTITY_CONTEXT, statement)).to_file(path)
    return path


@pytest.mark.parametrize("name", [HOSTILE_NAME, "mallory\u2028x", "mallory\u2066x",
                                  "mallory\x7fx"])
def test_a_file_pub_whose_name_carries_controls_never_reaches_the_officer_s_terminal(
        tmp_path: Path, name: str) -> None:
    # It was shown raw, in text and JSON: a forged "# leader: paste under
    # 'users:'" line, and a CSI escape sent to the officer's terminal.
    from office import OFFICE

    pub = _hostile_pub(tmp_path, name)
    for args in (["identity", "show", str(pub)], ["identity", "show", "--json", str(pub)],
                 ["policy", "fill", str(OFFICE), str(pub), "-o", str(tmp_path / "p.yaml")]):
        r = run(*args)
        assert_error(r, 2, "is not the public part of an identity")
        assert r.stdout == "", args
        assert [c for c in name if not c.isprintable()
                and c in r.stdout + r.stderr] == [], (args, r.stderr)


@pytest.mark.parametrize("how", ["another user's", "writable by others", "in an open folder"])
def test_a_file_pub_another_user_planted_beside_the_identity_is_not_shown(
        tmp_path: Path, how: str) -> None:
    # Alice keeps her passphrase-protected identity in a shared sticky folder
    # (/tmp-like) and removed FILE.pub once sent. Another user wrote their
    # own FILE.pub there, validly signed by their own key under her name:
    # 'identity show alice.key' printed their keys as her policy entry, exit
    # 0, with their identity fingerprint "to compare" -- and the officer
    # gave their key alice's clearance.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777 if how != "in an open folder" else 0o777)
    key = shared / "alice.key"
    phrase = _passphrase_file(tmp_path)
    assert run("identity", "new", "alice", "-o", str(key),
               env={"VAULT_PASSPHRASE_FILE": str(phrase)}).exit_code == 0
    honest = json.loads(run("identity", "show", str(key), "--json",
                            env={"VAULT_PASSPHRASE_FILE": str(phrase)}).stdout)["recipient"]
    (shared / "alice.key.pub").unlink()
    mallory = tmp_path / "mallory.key"
    assert run("identity", "new", "alice", "-o", str(mallory), "--no-passphrase").exit_code == 0
    theirs = json.loads(run("identity", "show", str(mallory), "--json").stdout)["recipient"]
    planted = shared / "alice.key.pub"
    planted.write_bytes((tmp_path / "mallory.key.pub").read_bytes())
    if how == "another user's":
        make_another_users(planted)
    elif how == "writable by others":
        planted.chmod(0o666)  # a file of hers, but anyone may have written it

    r = run("identity", "show", str(key), env={"VAULT_PASSPHRASE_FILE": ""})
    reason = {"another user's": "belongs to another user",
              "writable by others": "is writable by other users",
              "in an open folder": "is writable by other users"}[how]
    assert_error(r, 2, "a passphrase is needed")
    assert f"warning: {'the folder of ' * (how == 'in an open folder')}{planted} {reason}, " \
           f"so it is not used: the public parts shown are read from {key} itself" in r.stderr
    assert theirs not in r.stdout + r.stderr
    # With her passphrase, the identity itself answers: her own keys.
    r = run("identity", "show", str(key), "--json", env={"VAULT_PASSPHRASE_FILE": str(phrase)})
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["recipient"] == honest
    if how == "in an open folder":
        return
    # Her own FILE.pub, writable by her alone, is read without the passphrase, and said so.
    planted.unlink()
    assert run("identity", "show", str(key), "--public-out", str(planted),
               env={"VAULT_PASSPHRASE_FILE": str(phrase)}).exit_code == 0
    r = run("identity", "show", str(key), "--json", env={"VAULT_PASSPHRASE_FILE": ""})
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["recipient"] == honest
    assert f"the public parts shown are those of {planted} (yours" in r.stderr


def test_show_with_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    assert run("identity", "new", "leader", "-o", str(key), env=env).exit_code == 0
    (tmp_path / "leader.key.pub").unlink()  # now the secret must be read
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    wrong.chmod(0o600)
    r = run("identity", "show", str(key), env={"VAULT_PASSPHRASE_FILE": str(wrong)})
    assert_error(r, 5, "wrong passphrase")
    assert r.stdout == ""
    assert PASSPHRASE not in r.stderr and "not the passphrase" not in r.stderr


def test_new_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    key.write_text("precious\n")
    r = run("identity", "new", "clerk", "-o", str(key), "--no-passphrase")
    assert_error(r, 2, "already exists")
    assert "hint:" in r.stderr
    assert key.read_text() == "precious\n"


def test_new_without_terminal_or_passphrase_file_is_a_usage_error(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    r = run("identity", "new", "clerk", "-o", str(key), env={"VAULT_PASSPHRASE_FILE": ""})
    assert_error(r, 2, "passphrase")
    assert "hint: set VAULT_PASSPHRASE_FILE" in r.stderr
    assert not key.exists()


def test_group_readable_identity_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "clerk.key"
    assert run("identity", "new", "clerk", "-o", str(key), "--no-passphrase").exit_code == 0
    os.chmod(key, 0o644)
    r = run("identity", "show", str(key))
    assert_error(r, 2)
    assert "chmod 600" in r.stderr


def test_a_document_given_as_identity_is_not_told_to_chmod(tmp_path: Path) -> None:
    doc = tmp_path / "some.docx"
    doc.write_bytes(b"PK\x03\x04 a document, readable by the office")
    doc.chmod(0o644)
    r = run("--vault", str(tmp_path), "--identity", str(doc), "ls")
    assert_error(r, 2, "is not an identity file")
    assert "chmod" not in r.stderr
    # The public part, given by mistake, is named as such.
    assert run("identity", "new", "x", "-o", str(tmp_path / "x.key"),
               "--no-passphrase").exit_code == 0
    r = run("--vault", str(tmp_path), "--identity", str(tmp_path / "x.key.pub"), "ls")
    assert_error(r, 2, "is not an identity file")
    assert "hint: it holds only public keys: give the identity file itself" in r.stderr


def test_a_malformed_identity_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("# name: x\nAGE-SECRET-KEY-1NOTBECH32\n")
    bad.chmod(0o600)
    r = run("identity", "show", str(bad))
    assert_error(r, 2, "malformed")


def test_passphrase_prompts_explain_empty_and_warn_short(tmp_path: Path) -> None:
    from cli_support import VAULT

    assert VAULT is not None
    key = tmp_path / "typed.key"
    env = {k: v for k, v in os.environ.items() if k != "VAULT_PASSPHRASE_FILE"}
    status, seen, answered = with_tty([VAULT, "identity", "new", "typed", "-o", str(key)],
                                      ["", "abc", "abc"], env=env)
    assert status == 0, seen
    assert answered == 3, seen
    text = seen.decode(errors="replace")
    assert "an empty passphrase protects nothing" in text
    assert "--no-passphrase" in text
    assert "this passphrase is short (3 characters)" in text


def test_ctrl_c_at_a_prompt_exits_130(tmp_path: Path) -> None:
    from cli_support import VAULT

    assert VAULT is not None
    env = {k: v for k, v in os.environ.items() if k != "VAULT_PASSPHRASE_FILE"}
    status, seen, _ = with_tty([VAULT, "identity", "new", "typed", "-o",
                                str(tmp_path / "typed.key")], ["\x03"], env=env)
    assert status == 130, seen
    assert b"vault: interrupted" in seen
    assert b"Traceback" not in seen
    assert not (tmp_path / "typed.key").exists()


def test_missing_name_is_a_usage_error(tmp_path: Path) -> None:
    r = run("identity", "new", "-o", str(tmp_path / "x.key"))
    assert_error(r, 2, "missing argument")


def test_installed_script_asks_twice_at_the_terminal(tmp_path: Path) -> None:
    # Through the real console script, on a real pseudo-terminal.
    from cli_support import VAULT

    assert VAULT is not None
    key = tmp_path / "typed.key"
    env = {k: v for k, v in os.environ.items() if k != "VAULT_PASSPHRASE_FILE"}
    status, seen, answered = with_tty([VAULT, "identity", "new", "typed", "-o", str(key)],
                                      [PASSPHRASE, PASSPHRASE, PASSPHRASE], env=env)
    assert status == 0, seen
    assert answered == 2, seen  # asked, then asked to repeat
    assert b"repeat" in seen.lower()
    assert PASSPHRASE.encode() not in seen  # never echoed
    assert "AGE-SECRET-KEY" not in key.read_text()
    shown = run_script(
        "identity", "show", str(key), "--json",
        env={"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))},
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "typed"


def test_policy_fill_puts_people_s_keys_into_a_template(tmp_path: Path) -> None:
    from office import OFFICE

    for name in ("officer", "clerk", "auditor"):
        assert run("identity", "new", name, "-o", str(tmp_path / f"{name}.key"),
                   "--no-passphrase").exit_code == 0
    pubs = [str(tmp_path / f"{n}.key.pub") for n in ("officer", "clerk", "auditor")]
    out = tmp_path / "office.yaml"
    r = run("policy", "fill", str(OFFICE), *pubs, "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == f"wrote {out}: keys of clerk, officer filled in"
    shown = {n: json.loads(run("identity", "show", str(tmp_path / f"{n}.key.pub"),
                               "--json").stdout) for n in ("clerk", "officer")}
    assert lines[1:3] == [
        f"  {n}: identity fingerprint {shown[n]['identity_fingerprint']} "
        f"(signing key {shown[n]['fingerprint']})" for n in ("clerk", "officer")]
    assert "compare each identity fingerprint" in lines[3]
    assert "auditor is no user of the template" in lines[4]
    assert "still placeholders: deputy, leader, outsider, registrar" in lines[5]
    text = out.read_text()
    officer = json.loads(run("identity", "show", pubs[0], "--json").stdout)
    assert officer["recipient"] in text and officer["signing_key"] in text
    # Everything else is the template's, comments included.
    assert text.count("\n") == OFFICE.read_text().count("\n")
    r = run("policy", "check", str(out))
    assert r.exit_code == 1
    assert "REPLACE-WITH-RECIPIENT-OF-officer" not in r.stderr
    assert "REPLACE-WITH-RECIPIENT-OF-leader" in r.stderr
    r = run("policy", "fill", str(OFFICE), *pubs, "-o", str(out))
    assert_error(r, 2, "already exists")


def test_policy_fill_refuses_two_files_naming_one_user(tmp_path: Path) -> None:
    # The name in a FILE.pub is a label anyone can write. One more file
    # dropped in the folder the officer collects them from, claiming to be
    # the leader's, used to win silently: the policy gave 'leader' the
    # planter's keys.
    from office import OFFICE

    for name in ("officer", "leader"):
        assert run("identity", "new", name, "-o", str(tmp_path / f"{name}.key"),
                   "--no-passphrase").exit_code == 0
    (tmp_path / "planted").mkdir()
    assert run("identity", "new", "leader", "-o", str(tmp_path / "planted" / "leader.key"),
               "--no-passphrase").exit_code == 0
    pubs = [str(tmp_path / "officer.key.pub"), str(tmp_path / "leader.key.pub")]
    out = tmp_path / "office.yaml"
    r = run("policy", "fill", str(OFFICE), *pubs, str(tmp_path / "planted" / "leader.key.pub"),
            "-o", str(out))
    assert_error(r, 2, "file.pub 2 and 3 both name leader, with different keys")
    assert r.stdout == "" and not out.exists()
    # The hint tells the two apart by what the leader's own 'identity show'
    # prints: a fingerprint over both keys.
    mine, planted = (json.loads(run("identity", "show", p, "--json").stdout)
                     ["identity_fingerprint"]
                     for p in (pubs[1], str(tmp_path / "planted" / "leader.key.pub")))
    assert mine != planted and f"are {mine} and {planted}: ask leader" in r.stderr
    # The same file given twice is one claim.
    r = run("policy", "fill", str(OFFICE), *pubs, pubs[1], "-o", str(out))
    assert r.exit_code == 0, r.stderr


def _forge_leader_pub(tmp_path: Path, copy_signature: bool) -> Path:
    """The clerk's leader.pub: the leader's real name, signing key and
    fingerprint (public: in the leader's FILE.pub and in every label the
    leader signs), with the recipient of a fresh key only the clerk holds --
    and, if asked, the signature line of the leader's real FILE.pub."""
    assert run("identity", "new", "leader", "-o", str(tmp_path / "shadow.key"),
               "--no-passphrase").exit_code == 0
    real = (tmp_path / "leader.key.pub").read_text().splitlines()
    shadow = (tmp_path / "shadow.key.pub").read_text().splitlines()
    kept = [line for line in real if line.startswith("#")
            and (copy_signature or not line.startswith("# signature:"))]
    (tmp_path / "inbox").mkdir(exist_ok=True)
    forged = tmp_path / "inbox" / f"leader{'-signed' if copy_signature else ''}.key.pub"
    forged.write_text("\n".join([*kept, shadow[-1]]) + "\n")
    return forged


def test_policy_fill_refuses_the_leader_s_signing_key_beside_the_clerk_s_recipient(
        tmp_path: Path) -> None:
    # Nothing tied a FILE.pub's recipient to its signing key, and the
    # fingerprint covered the signing key alone: the clerk's leader.pub
    # passed 'policy fill' showing the leader's own fingerprint, and the
    # deputy's next SECRET//BOARD seal gave 'leader' a keyring entry the
    # clerk opened with stock age.
    from office import OFFICE

    for name in ("officer", "leader"):
        assert run("identity", "new", name, "-o", str(tmp_path / f"{name}.key"),
                   "--no-passphrase").exit_code == 0
    officer = str(tmp_path / "officer.key.pub")
    out = tmp_path / "office.yaml"
    for copy_signature, said in [
            (False, "not signed, so nothing ties its recipient to leader's signing key"),
            (True, "not signed by its signing key: its recipient may be anyone's")]:
        forged = _forge_leader_pub(tmp_path, copy_signature)
        r = run("policy", "fill", str(OFFICE), officer, str(forged), "-o", str(out))
        assert_error(r, 2, said)
        assert r.stdout == "" and not out.exists()
        (tmp_path / "shadow.key").unlink()
        (tmp_path / "shadow.key.pub").unlink()
    # Shown, the copied signature is refused too; the unsigned one is
    # warned about, with a fingerprint over both keys that is not the
    # leader's.
    assert_error(run("identity", "show", str(tmp_path / "inbox" / "leader-signed.key.pub")),
                 2, "not signed by its signing key")
    shown = run("identity", "show", str(tmp_path / "inbox" / "leader.key.pub"), "--json")
    assert shown.exit_code == 0 and "is not signed" in shown.stderr
    real = json.loads(run("identity", "show", str(tmp_path / "leader.key"), "--json").stdout)
    forged_shown = json.loads(shown.stdout)
    assert forged_shown["fingerprint"] == real["fingerprint"]  # the signing key's: public
    assert forged_shown["identity_fingerprint"] != real["identity_fingerprint"]
    # The leader's own FILE.pub passes, with that identity fingerprint.
    r = run("policy", "fill", str(OFFICE), officer, str(tmp_path / "leader.key.pub"),
            "-o", str(out))
    assert r.exit_code == 0, r.stderr
    assert f"  leader: identity fingerprint {real['identity_fingerprint']} " in r.stderr
    assert real["recipient"] in out.read_text()


def test_an_unsigned_file_pub_gets_a_hint_and_its_owner_writes_a_signed_one(
        tmp_path: Path) -> None:
    # A FILE.pub written before they were signed: 'policy fill' refuses it
    # and says how its owner writes a signed one, from the identity file
    # and its passphrase, in its place.
    from office import OFFICE

    key = tmp_path / "leader.key"
    env = {"VAULT_PASSPHRASE_FILE": str(_passphrase_file(tmp_path))}
    assert run("identity", "new", "leader", "-o", str(key), env=env).exit_code == 0
    pub = tmp_path / "leader.key.pub"
    signed = pub.read_text()
    pub.write_text("".join(line for line in signed.splitlines(keepends=True)
                           if not line.startswith("# signature:")))
    out = tmp_path / "office.yaml"
    r = run("policy", "fill", str(OFFICE), str(pub), "-o", str(out))
    assert_error(r, 2, f"{pub} is not signed")
    assert "hint: a FILE.pub written before they were signed" in r.stderr
    assert "'vault identity show FILE --public-out FILE.pub'" in r.stderr
    assert not out.exists()
    # Its owner does as the hint says: the file is replaced by a signed one
    # of the same keys -- and only such a file is ever replaced.
    r = run("identity", "show", str(key), "--public-out", str(pub), env=env)
    assert r.exit_code == 0, r.stderr
    assert pub.read_text() == signed and _mode(pub) == 0o644
    assert run("policy", "fill", str(OFFICE), str(pub), "-o", str(out)).exit_code == 0
    assert run("identity", "new", "clerk", "-o", str(tmp_path / "clerk.key"),
               "--no-passphrase").exit_code == 0
    other = tmp_path / "clerk.key.pub"
    before = other.read_text()
    r = run("identity", "show", str(key), "--public-out", str(other), env=env)
    assert_error(r, 2, "already exists")
    assert other.read_text() == before
    # Signing needs the identity file, never its FILE.pub.
    assert_error(run("identity", "show", str(pub), "--public-out", str(tmp_path / "x.pub")),
                 2, "not an identity file")
