"""Files a user names as input: secrets never copied or quoted, FIFOs never
waited on when another user made them (or where only a regular file will
do), links followed only when the user's own, damaged or loose identity and
passphrase files refused with exit 2 (docs/THREAT-MODEL.md §10, §15).

Every case runs for real: real files, FIFOs, links and a small tmpfs; a
command that would hang runs in a subprocess with a timeout, so that a
regression fails instead of stalling the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from backends import Kind
from cli_support import PASSPHRASE, VAULT, assert_error, run
from office import make_office
from vault_helpers import make_another_users, small_tmpfs

import vault
from vault._inputs import read_passphrase_file
from vault.errors import IdentityFileError, InsecureFileError, StorageError, UsageError

ROOT = Path(__file__).resolve().parent.parent
# Long enough for a loaded machine, short enough that a hang fails the test.
HANG = 30


def _vault(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed ``vault`` script, stopped (and failing the test) if it hangs."""
    assert VAULT is not None, "the vault console script is not installed"
    return subprocess.run([VAULT, *args], env={**os.environ, **(env or {})},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=HANG, check=False)


def _key(tmp_path: Path, name: str = "anna", *, passphrase: bool = False) -> Path:
    key = tmp_path / f"{name}.key"
    if passphrase:
        env = {"VAULT_PASSPHRASE_FILE": str(_phrase(tmp_path))}
        r = run("identity", "new", name, "-o", str(key), "--classic", env=env)
    else:
        r = run("identity", "new", name, "-o", str(key), "--classic", "--no-passphrase")
    assert r.exit_code == 0, r.stderr
    return key


def _phrase(tmp_path: Path, data: bytes = PASSPHRASE.encode() + b"\n",
            name: str = "phrase") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    p.chmod(0o600)
    return p


# -- 'vault policy fill' never copies a secret ---------------------------------


def test_fill_refuses_an_identity_file_and_writes_nothing(tmp_path: Path) -> None:
    plain = _key(tmp_path, "anna")
    sealed = _key(tmp_path, "bert", passphrase=True)
    template = ROOT / "policies" / "office.yaml"
    for args in ([plain, Path(f"{plain}.pub")],        # an identity file as TEMPLATE
                 [sealed, Path(f"{plain}.pub")],       # a passphrase-protected one
                 [template, plain],                    # one among the FILE.pub
                 [template, Path(f"{plain}.pub"), sealed]):
        out = tmp_path / "filled.yaml"
        r = run("policy", "fill", *map(str, args), "-o", str(out))
        assert_error(r, 2, "is a secret key, not shown")
        assert "hint:" in r.stderr and r.stdout == ""
        assert "AGE-SECRET-KEY" not in r.stderr and "BEGIN AGE" not in r.stderr
        assert not out.exists()
    # The template and the public parts themselves still fill.
    r = run("policy", "fill", str(template), f"{plain}.pub", "-o", str(tmp_path / "ok.yaml"))
    assert r.exit_code == 0, r.stderr


# -- FIFOs: never a hang --------------------------------------------------------


def test_a_fifo_given_as_identity_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "anna.key"
    os.mkfifo(fifo)
    for args in (["--vault", str(tmp_path), "--identity", str(fifo), "ls"],
                 ["identity", "show", str(fifo)]):
        r = _vault(*args)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith(f"vault: identity file {fifo} is not a regular file\nhint:")


def test_a_fifo_another_user_made_is_refused_at_once(tmp_path: Path) -> None:
    office = make_office(tmp_path / "office")
    planted = tmp_path / "shared.yaml"
    os.mkfifo(planted)
    make_another_users(planted)
    for args, code in ((["policy", "check", str(planted)], 1),
                       (["classify", "--policy", str(planted), str(office.policy)], 1),
                       (["classify", "--policy", str(office.policy), str(planted)], 2),
                       (["--vault", str(office.path), "--identity", str(office.files["clerk"]),
                         "open", "aaaaaaaaaaaaaaaa", "--approval", str(planted)], 2),
                       (["policy", "fill", str(planted), str(planted), "-o",
                         str(tmp_path / "x.yaml")], 2),
                       (["policy", "test", str(planted)], 2),
                       (["age", "decrypt", "-i", str(planted), str(planted)], 2),
                       (["age", "keygen", "-y", str(planted)], 2),
                       (["age", "encrypt", "-R", str(planted), str(office.policy)], 2),
                       (["audit", "verify", "--log", str(office.path / "audit"),
                         "--key", str(planted)], 2),
                       (["--vault", str(office.path), "audit", "verify",
                         "--checkpoint", str(planted)], 2)):
        r = _vault(*args)
        assert r.returncode == code, (args, r.stderr)
        assert "not a regular file, and another user made it" in r.stderr, r.stderr


def test_the_users_own_fifo_is_read_once_written(tmp_path: Path) -> None:
    # Process substitution and pipes of the user's own stay supported: the
    # open waits for the writer, as age's does.
    office = make_office(tmp_path / "office")
    fifo = tmp_path / "policy.yaml"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as f:
            f.write(office.policy.read_bytes())

    rescue = threading.Thread(target=writer, daemon=True)
    rescue.start()
    r = _vault("policy", "check", str(fifo))
    rescue.join(HANG)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{fifo}: ok")


# -- passphrase files --------------------------------------------------------------


def test_a_passphrase_file_must_be_private_regular_utf8(tmp_path: Path) -> None:
    env = "VAULT_PASSPHRASE_FILE"
    assert read_passphrase_file(str(_phrase(tmp_path)), env) == PASSPHRASE
    with pytest.raises(UsageError, match="first line is not UTF-8 text") as e:
        read_passphrase_file(str(_phrase(tmp_path, b"\xff\xfeword\n", "bin")), env)
    assert e.value.hint and "UTF-8" in e.value.hint
    loose = _phrase(tmp_path, name="loose")
    loose.chmod(0o644)
    with pytest.raises(InsecureFileError, match="readable by other users") as e:
        read_passphrase_file(str(loose), env)
    assert e.value.hint == f"chmod 600 {loose}"
    with pytest.raises(UsageError, match="empty passphrase"):
        read_passphrase_file(str(_phrase(tmp_path, b"\n", "empty")), env)
    # A pipe of the user's own -- VAULT_PASSPHRASE_FILE=<(pass show …) -- is
    # read once written; it never holds the secret on a disk.
    own = tmp_path / "own-fifo"
    os.mkfifo(own, 0o600)
    writer = threading.Thread(target=own.write_bytes, args=(PASSPHRASE.encode() + b"\n",),
                              daemon=True)
    writer.start()
    assert read_passphrase_file(str(own), env) == PASSPHRASE
    writer.join(HANG)
    theirs = _phrase(tmp_path, name="theirs")
    make_another_users(theirs)
    with pytest.raises(InsecureFileError, match="belongs to another user"):
        read_passphrase_file(str(theirs), env)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    make_another_users(fifo)
    with pytest.raises(UsageError, match="not a regular file, and another user made it"):
        read_passphrase_file(str(fifo), env)  # at once: no writer is waited for


def test_the_cli_reads_the_passphrase_file_by_those_rules(tmp_path: Path) -> None:
    env = "VAULT_PASSPHRASE_FILE"
    binary = _phrase(tmp_path, b"\xff\xfeword\n", "bin")
    loose = _phrase(tmp_path, name="loose")
    loose.chmod(0o644)
    for phrase, message in ((binary, "first line is not UTF-8 text"),
                            (loose, "is readable by other users")):
        out = tmp_path / f"{phrase.name}.key"
        r = _vault("identity", "new", "anna", "-o", str(out), env={env: str(phrase)})
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("vault: ") and message in r.stderr, r.stderr
        assert "internal error" not in r.stderr and not out.exists()
    r = _vault("identity", "new", "anna", "-o", str(tmp_path / "ok.key"),
               env={env: str(_phrase(tmp_path))})
    assert r.returncode == 0, r.stderr


# -- identity files ---------------------------------------------------------------


def test_a_damaged_protected_identity_file_is_a_usage_error(tmp_path: Path) -> None:
    key = _key(tmp_path, "anna", passphrase=True)
    Path(f"{key}.pub").unlink()  # 'identity show' must decrypt the file itself
    env = {"VAULT_PASSPHRASE_FILE": str(tmp_path / "phrase")}
    data = key.read_bytes()
    lines = data.split(b"\n")
    body = bytearray(lines[-3])
    body[5] ^= 1 if body[5] != ord("A") else 2
    damaged = {"truncated": data[: len(data) // 2],
               "flipped": b"\n".join([*lines[:-3], bytes(body), *lines[-2:]]),
               "headless": b"\n".join(lines[:2]) + b"\n-----END AGE ENCRYPTED FILE-----\n"}
    for name, content in damaged.items():
        bad = tmp_path / f"{name}.key"
        bad.write_bytes(content)
        bad.chmod(0o600)
        r = run("identity", "show", str(bad), env=env)
        assert_error(r, 2, f"identity file {bad} is damaged")
        assert "hint: restore it from your backup copy" in r.stderr
        with pytest.raises(IdentityFileError, match="is damaged"):
            vault.load_identity(bad, lambda: PASSPHRASE)
    # A wrong passphrase is still told apart: no key (exit 5), not damage.
    wrong = _phrase(tmp_path, b"not the passphrase\n", "wrong")
    r = run("identity", "show", str(key), env={"VAULT_PASSPHRASE_FILE": str(wrong)})
    assert_error(r, 5, "wrong passphrase")


def _rchar() -> int:
    """Bytes this process has read with read(2) so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_loose_identity_file_is_refused_before_its_key_is_read(tmp_path: Path) -> None:
    key = tmp_path / "anna.key"
    vault.new_identity("anna").to_file(key, None)
    key.chmod(0o644)
    text = key.read_bytes()
    before_key = text.index(b"AGE-SECRET-KEY-")
    assert len(text) > before_key + 60  # the key line: prefix, then 60 secret characters
    with pytest.raises(InsecureFileError):
        vault.load_identity(key)  # once, so that nothing is left to import
    start = _rchar()
    itself = _rchar() - start  # reading /proc/self/io counts too
    start = _rchar()
    with pytest.raises(InsecureFileError) as e:
        vault.load_identity(key)
    read = _rchar() - start - itself
    assert e.value.hint == f"chmod 600 {key}"
    # The comments, then no more of the key line than its public prefix
    # (and a few bytes more if a counter in /proc/self/io grew a digit).
    assert read <= before_key + len("AGE-SECRET-KEY-PQ-") + 4, (read, before_key)


def test_identity_file_links(tmp_path: Path) -> None:
    key = _key(tmp_path, "anna")
    Path(f"{key}.pub").unlink()
    mine = tmp_path / "mine.key"
    mine.symlink_to(key)
    r = run("identity", "show", str(mine), "--json")
    assert r.exit_code == 0, r.stderr  # the user's own link is followed
    dangling = tmp_path / "gone.key"
    dangling.symlink_to(tmp_path / "nowhere")
    assert_error(run("--vault", str(tmp_path), "--identity", str(dangling), "ls"), 2,
                 f"identity file {dangling} does not exist")
    shared = tmp_path / "shared"
    shared.mkdir()
    planted = shared / "anna.key"
    planted.symlink_to(key)
    make_another_users(planted)
    r = run("--vault", str(tmp_path), "--identity", str(planted), "ls")
    assert_error(r, 2, "goes through a symbolic link that another user made")
    assert "hint: give the identity file by a path of its own" in r.stderr


def test_an_identity_file_of_another_user_is_refused(tmp_path: Path) -> None:
    key = _key(tmp_path, "anna")
    make_another_users(key)
    r = run("--vault", str(tmp_path), "--identity", str(key), "ls")
    assert_error(r, 2, f"identity file {key} belongs to another user")


# -- the state folder ---------------------------------------------------------------


def test_an_unusable_state_record_is_a_clear_error(tmp_path: Path) -> None:
    office = make_office(tmp_path / "office")
    state = tmp_path / "state"
    env = {"VAULT_STATE_DIR": str(state)}
    assert office.cli("clerk", "ls", env=env).exit_code == 0
    (record,) = state.glob("*.sqlite")
    for extra in state.glob("*.sqlite-*"):
        extra.unlink()
    record.unlink()
    record.mkdir()  # a folder in its place: it cannot be opened
    r = office.cli("clerk", "ls", env=env)
    assert_error(r, 1, "cannot use this machine's record of the vault")
    assert f"hint: it is {record}" in r.stderr


def _drop_privileges() -> list[str]:
    """A prefix that makes even root honour file modes."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) is required to run this as root"
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


def test_a_read_only_state_folder_falls_back_to_memory(tmp_path: Path) -> None:
    office = make_office(tmp_path / "office")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    state.chmod(0o500)
    args = ["--vault", str(office.path), "--identity", str(office.files["clerk"]), "ls"]
    env = {**os.environ, "VAULT_STATE_DIR": str(state)}
    assert VAULT is not None
    r = subprocess.run([*_drop_privileges(), VAULT, *args], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert list(state.iterdir()) == []
    # One that holds a record already keeps it: refused, never silently dropped.
    state.chmod(0o700)
    assert office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(state)}).exit_code == 0
    state.chmod(0o500)
    r = subprocess.run([*_drop_privileges(), VAULT, *args], env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    state.chmod(0o700)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("vault: cannot use this machine's record of the vault")


@pytest.mark.parametrize("kind", ["writable by others", "a file"])
def test_a_state_folder_that_cannot_be_trusted_is_said(tmp_path: Path, kind: str) -> None:
    # A state folder writable by others (or no folder at all) was passed
    # over in silence: the replay lived in memory, and this machine no
    # longer noticed a log rolled back or a vault replaced in its place.
    office = make_office(tmp_path / "office")
    state = tmp_path / "state"
    if kind == "a file":
        state.write_text("")
    else:
        state.mkdir()
        state.chmod(0o777)
    r = office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(state)})
    assert r.exit_code == 0, r.stderr
    what = "is not a folder" if kind == "a file" else "is writable by others"
    assert r.stderr.startswith(f"vault: warning: this machine keeps no record of the vault: "
                               f"its folder {what}"), r.stderr
    assert str(state) not in r.stderr
    # Every command that opens the vault says it, the auditor's too: a log
    # rolled back goes unnoticed by 'audit verify' then, which says ok.
    for args in (("audit", "verify"), ("classify", str(office.file("x.txt", b"memo")))):
        r = office.cli(None, *args, env={"VAULT_STATE_DIR": str(state)})
        assert r.exit_code == 0, r.stderr
        assert "warning: this machine keeps no record of the vault" in r.stderr, (args, r.stderr)
    ok = tmp_path / "ok-state"
    r = office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(ok)})
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr


SWAPPABLE = {"a link another user made": "the way to its folder goes through a symbolic link "
                                        "that another user made",
             "in a folder others may write": "a folder it lies in is writable by other users",
             "in a folder of another user's": "a folder it lies in belongs to another user"}


@pytest.mark.parametrize("kind", SWAPPABLE)
def test_a_state_folder_another_user_could_swap_is_refused_and_never_rebuilt(
        tmp_path: Path, backend: Kind, kind: str) -> None:
    # VAULT_STATE_DIR=/tmp/clerk-vault-state, as service accounts are told:
    # another user made that name first, a link to a folder of the clerk's
    # of their choosing, and it was followed without a word. Kept in a
    # folder others may write (not sticky), or in one of another user's,
    # the folder could be renamed away between two commands, and the next
    # one made a new one: the pins and the trusted tip reset in silence.
    office = make_office(tmp_path / "office", backend)
    sticky = tmp_path / "tmp"  # as /tmp: root's, anyone adds names, none renames another's
    sticky.mkdir()
    sticky.chmod(0o1777)
    kept = tmp_path / "kept"  # her record, made by a release that did not look
    assert office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(kept)}).exit_code == 0
    (record,) = kept.glob("*.sqlite")
    inode = record.stat().st_ino
    if kind == "a link another user made":
        state = sticky / "clerk-vault-state"
        state.symlink_to(kept)
        make_another_users(state)
    else:
        above = tmp_path / "above"
        above.mkdir()
        if kind == "in a folder others may write":
            above.chmod(0o777)
        else:
            make_another_users(above)
        state = above / "state"
        kept.rename(state)
    r = office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(state)})
    assert_error(r, 1, f"cannot use this machine's record of the vault: {SWAPPABLE[kind]}")
    assert f"hint: it is {state}: keep it in a folder of your own" in r.stderr
    assert r.stdout == ""
    # Nothing was rebuilt, there or elsewhere: her record is as it was. A
    # new vault is refused before anything of it is made.
    (record,) = state.glob("*.sqlite")
    assert record.stat().st_ino == inode
    r = run("init", str(tmp_path / "second"), "--policy", str(office.root / "policy.yaml"),
            "--identity", str(office.files["officer"]), env={"VAULT_STATE_DIR": str(state)})
    assert_error(r, 1, SWAPPABLE[kind])
    assert not (tmp_path / "second").exists()
    # Moved as the hint says, record and all, into a folder of her own in
    # the sticky one: her record is used again, without a word.
    mine = sticky / "clerk-vault-state-2"
    shutil.move(str(state.resolve()), mine)
    r = office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(mine)})
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    assert (mine / record.name).stat().st_ino == inode
    # Her own link on the way is followed, as before.
    (tmp_path / "mine-link").symlink_to(mine)
    r = office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(tmp_path / "mine-link")})
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr


PLANTED = ["record", "record-wal", "places", "places/ids", "place pin", "place id",
           "record writable by others"]


@pytest.mark.parametrize("planted", PLANTED)
def test_a_trusted_state_another_user_planted_is_refused(tmp_path: Path, planted: str) -> None:
    # While the clerk's state folder was open to others (every command warned,
    # and kept the replay in memory), another user put their own trusted
    # state and place pins in it. Once she closed it as the warning says,
    # her client believed them unseen: their maker chose the trusted tip and
    # which vault the place holds -- no rollback check, no alarm at a
    # vault replaced in its place.
    office = make_office(tmp_path / "office")
    prepared = tmp_path / "prepared"  # a faithful replay and its pins, made elsewhere
    assert office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(prepared)}).exit_code == 0
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    env = {"VAULT_STATE_DIR": str(state)}
    r = office.cli("clerk", "ls", env=env)
    assert r.exit_code == 0 and "keeps no record of the vault" in r.stderr, r.stderr
    shutil.copytree(prepared, state, dirs_exist_ok=True)
    (record,) = state.glob("*.sqlite")
    (pin,) = (p for p in (state / "places").iterdir() if p.is_file())
    (kept,) = (state / "places" / "ids").iterdir()
    if planted == "record-wal":
        wal = state / f"{record.name}-wal"
        wal.write_bytes(b"")
    target = {"record": record, "places": state / "places", "places/ids": kept.parent,
              "place pin": pin, "place id": kept, "record writable by others": record}.get(
                  planted, state / f"{record.name}-wal")
    if planted == "record writable by others":
        record.chmod(0o666)  # hers, but anyone may have written it
    else:
        make_another_users(target)
    state.chmod(0o700)  # as the warning said

    r = office.cli("clerk", "ls", env=env)
    what = {"record": "the vault: it belongs to another user",
            "record-wal": "the vault (its -wal file): it belongs to another user",
            "places": "the places of vaults: places belongs to another user",
            "places/ids": "the places of vaults: places/ids belongs to another user",
            "place pin": f"the places of vaults: places/{pin.name} belongs to another user",
            "place id": f"the places of vaults: places/ids/{kept.name} belongs to another user",
            "record writable by others": "the vault: it is writable by other users"}[planted]
    assert_error(r, 1, f"cannot use this machine's record of {what}")
    assert "hint: another user may have written it while the state folder was open to them: " \
           "treat it as an incident" in r.stderr
    assert r.stdout == ""
    # Once the planted files are removed, the vault's id confirmed: her own record again.
    for path in (record, state / "places"):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    for extra in state.glob("*.sqlite-*"):
        extra.unlink()
    r = office.cli("clerk", "ls", env={**env, "VAULT_ID": kept.name})
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr
    assert record.stat().st_uid == os.geteuid()


PLACES_OPEN = ("vault: warning: this machine's record of the places of vaults: {} was "
               "writable by other users (as an earlier version left it under a umask such as "
               "002); it is made private (0700)")


def test_places_an_earlier_version_left_group_writable_are_made_private(
        tmp_path: Path) -> None:
    # An earlier version made places/ with os.makedirs(places/ids, 0o700),
    # which gives its mode to the last level only: under the umask 002 many
    # systems give their users, places/ was 0775. After upgrading, every
    # command of that honest user was refused, told to treat it as an
    # incident -- though nobody else could reach it through the private
    # state folder, and a pin another user made is refused file by file.
    office = make_office(tmp_path / "office")
    state = tmp_path / "state"
    env = {"VAULT_STATE_DIR": str(state)}
    assert office.cli("clerk", "ls", env=env).exit_code == 0
    (state / "places").chmod(0o775)
    (state / "places" / "ids").chmod(0o775)
    r = office.cli("clerk", "ls", env=env)
    assert r.exit_code == 0, r.stderr
    assert [line for line in r.stderr.splitlines() if "warning" in line] == [
        PLACES_OPEN.format("places"), PLACES_OPEN.format("places/ids")], r.stderr
    assert str(state) not in r.stderr
    for folder in (state / "places", state / "places" / "ids"):
        assert folder.stat().st_mode & 0o777 == 0o700
    r = office.cli("clerk", "ls", env=env)
    assert r.exit_code == 0 and "warning" not in r.stderr, r.stderr


@pytest.mark.parametrize("open_to_others", ["pin", "state folder"])
def test_what_others_may_have_written_in_the_places_is_still_refused(
        tmp_path: Path, open_to_others: str) -> None:
    # Only a folder of the user's own inside the private state folder is made
    # private: a pin others may write, or places/ in a state folder that is
    # open to others, is still never believed.
    office = make_office(tmp_path / "office")
    state = tmp_path / "state"
    env = {"VAULT_STATE_DIR": str(state)}
    assert office.cli("clerk", "ls", env=env).exit_code == 0
    (pin,) = (p for p in (state / "places").iterdir() if p.is_file())
    if open_to_others == "pin":
        pin.chmod(0o666)
        r = office.cli("clerk", "ls", env=env)
        assert_error(r, 1, f"cannot use this machine's record of the places of vaults: "
                           f"places/{pin.name} is writable by other users")
        assert r.stdout == ""
        return
    (state / "places").chmod(0o777)
    state.chmod(0o777)
    with pytest.raises(StorageError, match="places is writable by other users"):
        vault.Vault(office.location, office.ids["clerk"], state_dir=str(state))


def test_missing_folders_above_the_state_folder_are_made_private(tmp_path: Path) -> None:
    # os.makedirs gave 0777 less the umask to every level above the last:
    # 0775 under umask 002, a folder of the group's on the way to the state
    # folder (or to a vault folder). Each level made is 0700 now.
    office = make_office(tmp_path / "office")
    state = tmp_path / "home" / "local" / "state" / "vault"
    old = os.umask(0o002)
    try:
        assert office.cli("clerk", "ls", env={"VAULT_STATE_DIR": str(state)}).exit_code == 0
        with vault.Vault(office.location, office.ids["clerk"],
                         state_dir=str(tmp_path / "lib" / "a" / "b")) as v:
            v.ls()
    finally:
        os.umask(old)
    for folder in (state, state.parent, state.parent.parent, tmp_path / "home",
                   tmp_path / "lib", tmp_path / "lib" / "a", tmp_path / "lib" / "a" / "b"):
        assert folder.stat().st_mode & 0o777 == 0o700, folder


# -- 'identity new' on a full disk ----------------------------------------------------


def test_identity_new_on_a_full_disk_leaves_nothing(tmp_path: Path) -> None:
    small = tmp_path / "small"
    with small_tmpfs(small, "4k"):  # room for the key, not for FILE.pub
        key = small / "zz.key"
        r = _vault("identity", "new", "zz", "-o", str(key), "--no-passphrase")
        assert r.returncode == 1, r.stderr
        assert "space" in r.stderr
        assert list(small.iterdir()) == []
        subprocess.run(["mount", "-o", "remount,size=1m", str(small)], check=True)
        r = _vault("identity", "new", "zz", "-o", str(key), "--no-passphrase")
        assert r.returncode == 0, r.stderr  # the retry is not refused
        assert sorted(p.name for p in small.iterdir()) == ["zz.key", "zz.key.pub"]
