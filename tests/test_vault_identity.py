"""Personal identities: standard age identity files that also sign."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from office import stock_decrypt
from vault_helpers import need_age

from vault import load_identity, new_identity
from vault.errors import IdentityFileError, InsecureFileError, NoKeyError, UsageError


def test_signing_key_is_derived_from_the_age_secret() -> None:
    ident = new_identity("alice")
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"vault/v1 signing key").derive(ident.age_identity.to_bytes())
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    assert ident.signing_public == "ed25519:" + base64.b64encode(raw).decode()
    assert ident.recipient.startswith("age1") and ident.fingerprint.startswith("SHA256:")
    assert "AGE-SECRET-KEY" not in repr(ident)


@pytest.mark.parametrize("post_quantum", [True, False], ids=["hybrid", "x25519"])
def test_plain_file_round_trip_and_stock_age(tmp_path: Path, post_quantum: bool) -> None:
    ident = new_identity("alice", post_quantum=post_quantum)
    assert ident.post_quantum == post_quantum
    assert ident.recipient.startswith("age1pq1" if post_quantum else "age1")
    path = tmp_path / "alice.key"
    ident.to_file(path, None)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith("# name: alice\n")
    again = load_identity(path)
    assert (again.name, again.recipient, again.signing_public) == (
        "alice", ident.recipient, ident.signing_public)
    # An independent implementation decrypts what is encrypted to it with
    # the file as is (stock age for X25519, the npm package for hybrids).
    import io

    from vault.age import encrypt, parse_recipient

    sealed = io.BytesIO()
    encrypt(io.BytesIO(b"hi alice"), sealed, [parse_recipient(ident.recipient)])
    (tmp_path / "m.age").write_bytes(sealed.getvalue())
    dec = stock_decrypt(path, tmp_path / "m.age")
    assert dec.returncode == 0 and dec.stdout == b"hi alice"
    if not post_quantum:
        age = need_age()
        enc = subprocess.run([age, "-r", ident.recipient], input=b"hi alice",
                             capture_output=True, check=True).stdout
        dec = subprocess.run([age, "-d", "-i", str(path)], input=enc, capture_output=True,
                             check=False)
        assert dec.returncode == 0 and dec.stdout == b"hi alice"


def test_passphrase_file(tmp_path: Path) -> None:
    ident = new_identity("bob")
    path = tmp_path / "bob.key"
    ident.to_file(path, "correct horse battery staple")
    text = path.read_text()
    assert text.startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    assert "AGE-SECRET-KEY" not in text and path.stat().st_mode & 0o777 == 0o600
    again = load_identity(path, lambda: "correct horse battery staple")
    assert again.recipient == ident.recipient and again.name == "bob"
    with pytest.raises(NoKeyError, match="wrong passphrase"):
        load_identity(path, lambda: "wrong")
    with pytest.raises(UsageError, match="passphrase-protected"):
        load_identity(path)


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("precious")
    with pytest.raises(UsageError, match="already exists"):
        new_identity("carol").to_file(path, None)
    assert path.read_text() == "precious"


def test_refuses_readable_files(tmp_path: Path) -> None:
    path = tmp_path / "k"
    new_identity("dave").to_file(path, None)
    path.chmod(0o640)
    with pytest.raises(InsecureFileError) as e:
        load_identity(path)
    assert e.value.hint == f"chmod 600 {path}"


def test_age_keygen_files_load(tmp_path: Path) -> None:
    path = tmp_path / "erin.txt"
    subprocess.run(["age-keygen", "-o", str(path)], capture_output=True, check=True)
    path.chmod(0o600)
    ident = load_identity(path)
    assert ident.name == "erin"
    pub = [ln for ln in path.read_text().splitlines() if ln.startswith("# public key: ")]
    assert ident.recipient == pub[0].removeprefix("# public key: ")


@pytest.mark.parametrize("body", ["", "# name: x\n", "AGE-SECRET-KEY-1NOPE\n",
                                  "garbage\nmore garbage\n"])
def test_malformed_files(tmp_path: Path, body: str) -> None:
    path = tmp_path / "k"
    path.write_text(body)
    path.chmod(0o600)
    with pytest.raises(IdentityFileError):
        load_identity(path)


def test_names_are_one_line() -> None:
    with pytest.raises(UsageError):
        new_identity("eve\n# name: mallory")
    with pytest.raises(UsageError):
        new_identity("")


# What vault/_text.py refuses in every name and free text: the C1 controls
# (NEL breaks a line, CSI begins a terminal escape), DEL, the bidi controls,
# the line and paragraph separators, a lone surrogate, the format characters
# but the two joiners (a zero-width space, a word joiner, a BOM, a soft hyphen).
UNSHOWN = ["\x85", "\x9b", "\x7f", "\u202e", "\u2066", "\u200f", "\u061c", "\u2028",
           "\u2029", "\ud800", "\ufeff", "\u200b", "\u2060", "\u00ad", "\ue000"]
# What a name refuses besides, and free text holds: a space but U+0020 (the
# no-break space of "10 000 €", U+202F, U+3000) and the joiners U+200C
# (Persian) and U+200D (Indic conjuncts, emoji sequences).
FREE_ONLY = ["\u00a0", "\u202f", "\u3000", "\u200c", "\u200d"]


@pytest.mark.parametrize("char", UNSHOWN)
def test_a_name_holds_what_every_name_and_free_text_holds(char: str) -> None:
    # A name excluded only C0 and DEL: a FILE.pub's name carried C1 and bidi
    # controls to the officer's 'vault identity show'. Names, justifications,
    # titles and the policy's text share what they refuse.
    from vault._ops.discipline import check_free_text
    from vault._sealed.meta import Metadata
    from vault.policy._fields import character_problem

    with pytest.raises(UsageError, match="invalid user name"):
        new_identity(f"mallory{char}x")
    with pytest.raises(UsageError, match=f"U\\+{ord(char):04X}|not valid UTF-8"):
        check_free_text(f"why{char}x", "justification")
    with pytest.raises(UsageError, match="printable"):
        Metadata(None, f"title{char}x", None, 0).check()
    assert character_problem(f"name{char}x") is not None
    assert character_problem(f"text{char}x", free=True) is not None
    honest = "Anna Smith \u00e9\u4e2d\U0001f600"  # letters of any script, and emoji
    assert new_identity(honest).name == honest


@pytest.mark.parametrize("char", FREE_ONLY)
def test_free_text_holds_spaces_and_joiners_a_name_refuses(char: str) -> None:
    # Free text refused them since it shared the name rule: "10 000 €" with
    # its no-break space, Persian with its ZWNJ, a Hindi conjunct or an
    # emoji sequence with its ZWJ. A name, a key others look up, keeps the
    # stricter rule: "leader" and "lea\u200dder" look the same.
    from vault._ops.discipline import check_free_text
    from vault._sealed.meta import Metadata
    from vault._text import printable
    from vault.policy._fields import character_problem

    with pytest.raises(UsageError, match="invalid user name"):
        new_identity(f"mallory{char}x")
    assert character_problem(f"name{char}x") is not None
    check_free_text(f"why{char}x", "justification")
    assert Metadata("a.txt", f"title{char}x", None, 0).check().title == f"title{char}x"
    with pytest.raises(UsageError, match="file name"):  # a file name is a name
        Metadata(f"a{char}.txt", None, None, 0).check()
    assert character_problem(f"text{char}x", free=True) is None
    assert printable(f"text{char}x") == f"text{char}x"  # shown as written


def test_a_protected_file_without_a_passphrase_says_how_to_give_one(tmp_path: Path) -> None:
    key = tmp_path / "a.key"
    new_identity("alice").to_file(key, "a long passphrase")
    with pytest.raises(UsageError, match="passphrase-protected") as refused:
        load_identity(key)
    assert refused.value.hint is not None and "passphrase=" in refused.value.hint
    assert "VAULT_PASSPHRASE_FILE" not in refused.value.hint  # the library reads no variable


def test_a_cache_spares_the_passphrase_and_never_serves_a_changed_file(tmp_path: Path) -> None:
    class Cache:
        def __init__(self) -> None:
            self.held: dict[str, str] = {}

        def get(self, key: str) -> str | None:
            return self.held.get(key)

        def put(self, key: str, text: str) -> None:
            self.held[key] = text

    key = tmp_path / "a.key"
    alice = new_identity("alice")
    alice.to_file(key, "a long passphrase")
    cache, asked = Cache(), []

    def passphrase() -> str:
        asked.append(1)
        return "a long passphrase"

    assert load_identity(key, passphrase, cache=cache).recipient == alice.recipient
    assert load_identity(key, passphrase, cache=cache).recipient == alice.recipient
    assert len(asked) == 1 and len(cache.held) == 1  # the second time from the cache
    key.unlink()
    bob = new_identity("bob")
    bob.to_file(key, "a long passphrase")  # another file at the same path
    assert load_identity(key, passphrase, cache=cache).recipient == bob.recipient
    assert len(asked) == 2


def test_the_public_part_is_a_recipients_file_that_names_its_user(tmp_path: Path) -> None:
    from vault.identity import load_public_identity, public_path

    alice = new_identity("alice")
    path = tmp_path / "alice.key"
    alice.public().to_file(public_path(path))
    public = load_public_identity(public_path(path))
    assert (public.name, public.recipient, public.signing_public) == (
        "alice", alice.recipient, alice.signing_public)
    assert public.fingerprint == alice.fingerprint and public.post_quantum
    text = Path(public_path(path)).read_text()
    assert [line for line in text.splitlines() if not line.startswith("#")] == [alice.recipient]
    with pytest.raises(IdentityFileError, match="not the public part of an identity"):
        bad = tmp_path / "bad.pub"
        bad.write_text("# name: x\n# signing key: ed25519:AAAA\nage1notarecipient\n")
        load_public_identity(bad)
    with pytest.raises(IdentityFileError, match="not an identity file"):
        Path(public_path(path)).chmod(0o600)
        load_identity(public_path(path))


def test_a_file_pub_is_signed_over_its_name_and_both_keys(tmp_path: Path) -> None:
    # Both keys of a person are public: only the signing key's signature
    # ties the recipient to it. The clerk's file giving the leader's name,
    # signing key and signature beside her own recipient was read as the
    # leader's.
    from vault.identity import load_public_identity

    leader, clerk = new_identity("leader"), new_identity("clerk")
    genuine = leader.public().to_text()
    path = tmp_path / "leader.pub"
    path.write_text(genuine)
    public = load_public_identity(path)
    assert public.signed and public.signature_holds()
    assert public.identity_fingerprint == leader.identity_fingerprint != clerk.identity_fingerprint
    for forged in (genuine.replace(leader.recipient, clerk.recipient),
                   genuine.replace("# name: leader", "# name: deputy"),
                   genuine.replace("# signature: ", "# signature: AAAA"),
                   genuine.replace("# signature: ", "# signature: x")):
        path.write_text(forged)
        with pytest.raises(IdentityFileError, match="not signed by its signing key"):
            load_public_identity(path)
    # A recipient of the clerk's past the 64 KiB read went unseen here, while
    # 'age -R leader.pub' encrypted to it too.
    path.write_text(genuine + "#" * 70_000 + "\n" + clerk.recipient + "\n")
    with pytest.raises(IdentityFileError, match=r"longer than a FILE\.pub"):
        load_public_identity(path)
    path.write_text(genuine.replace("\n", "\r\n"))  # as age reads it
    assert load_public_identity(path).recipient == leader.recipient
    # One written before they were signed is read, as unsigned.
    path.write_text("".join(line for line in genuine.splitlines(keepends=True)
                            if not line.startswith("# signature:")))
    old = load_public_identity(path)
    assert not old.signed and (old.recipient, old.signing_public) == (
        leader.recipient, leader.signing_public)
    # The identity fingerprint changes with either key; the signing key's
    # fingerprint does not see the recipient.
    swapped = type(old)("leader", clerk.recipient, leader.signing_public)
    assert swapped.fingerprint == leader.fingerprint
    assert swapped.identity_fingerprint != leader.identity_fingerprint


def test_the_public_identity_vector(tmp_path: Path) -> None:
    # docs/FORMAT.md §12.4, from the document alone; then the library
    # writes the same file from the identity it names.
    import hashlib
    import re

    import format_reference as ref

    from vault.identity import load_public_identity

    doc = (Path(__file__).resolve().parent.parent / "docs" / "FORMAT.md").read_text()
    section = doc[doc.index("### 12.4 Public identity files"):doc.index("## 13. Vault records")]
    file_text, message = re.findall(r"```\n(.*?)\n```", section, re.S)
    secret = re.search(r"`(AGE-SECRET-KEY-1\w+)`", section)
    stated = re.search(r"identity fingerprint is\s+`(SHA256:[\w+/]+)`", section)
    assert secret is not None and stated is not None
    fields = dict(line[2:].split(": ", 1) for line in file_text.splitlines()[:4])
    recipient = file_text.splitlines()[4]
    key = ref.signing_key_of(secret.group(1))
    assert fields["signing key"] == ref.signing_key_text(key)
    assert fields["fingerprint"] == ref.fingerprint(key)
    statement = ref.canonical_json({"name": fields["name"], "recipient": recipient,
                                    "signing_key": fields["signing key"]})
    assert message.encode() == b"vault/v1 public identity\n" + statement
    ref.verify(fields["signing key"], "public identity", statement,
               ref.unb64(fields["signature"]))
    digest = hashlib.sha256(b"vault/v1 identity fingerprint\n" + ref.canonical_json(
        {"recipient": recipient, "signing_key": fields["signing key"]})).digest()
    assert stated.group(1) == "SHA256:" + ref.b64_unpadded(digest)
    # The library: the same bytes, the same fingerprint.
    alice = tmp_path / "alice.key"
    alice.write_text((Path(__file__).parent / "vectors" / "vault" / "alice.key").read_text())
    alice.chmod(0o600)
    me = load_identity(alice)
    assert str(me.age_identity) == secret.group(1)
    assert me.public().to_text() == file_text + "\n"
    assert me.identity_fingerprint == stated.group(1)
    (tmp_path / "alice.pub").write_text(file_text + "\n")
    assert load_public_identity(tmp_path / "alice.pub").signed


@pytest.mark.parametrize("text", [
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian: ZWNJ between letters
    "\u0915\u094d\u200d\u0937",  # Hindi: ZWJ after the virama, a mark
    "\U0001f469\u200d\U0001f4bb",  # an emoji sequence
    "\U0001f3f3\ufe0f\u200d\U0001f308"])  # the ZWJ after a variation selector, a mark
def test_a_joiner_stands_between_two_characters_that_are_neither_spaces_nor_joiners(
        text: str) -> None:
    # A joiner anywhere let text of joiners and spaces pass, shown blank: it
    # joins letters, marks and emoji, and nothing else.
    from vault._ops.discipline import check_free_text
    from vault._text import character_problem, printable, says_something

    check_free_text(f"why {text}", "justification")
    assert character_problem(text, free=True) is None and printable(text) == text
    assert says_something(text)
    for j in ("\u200c", "\u200d"):
        for bad in (f"{j}a", f"a{j}", f"a{j}{j}b", f"a {j}b", f"a{j}\u00a0b", f"a{j}\u3000b"):
            assert "where it joins nothing" in (character_problem(bad, free=True) or ""), bad
            assert j not in printable(bad), bad  # escaped: never shown as blank
            with pytest.raises(UsageError, match="joins nothing"):
                check_free_text(bad, "justification")
        assert not says_something(f" {j}\u3000{j}\u00a0\u3164")
