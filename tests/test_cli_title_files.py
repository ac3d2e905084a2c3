"""Titles, stored file names and title searches given off the command line:
``seal --title-file``, ``--filename-file`` and ``ls --title-file``.

Every local user reads every process's command line (``ps``,
``/proc/PID/cmdline``): ``--title TEXT`` shows a title the vault keeps only
inside the document's encrypted metadata to all of them for as long as the
command runs (docs/DEPLOYMENT.md §15). Read from a file of the user's own,
a pipe or standard input, the value is never there, and it is held to the
rules of the option it stands for. Exit code, stdout and stderr are checked
apart; everything runs for real.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

from backends import Kind
from cli_support import VAULT, assert_error, run
from office import Office, make_office
from vault_helpers import make_another_users

from vault._sealed.meta import MAX_NAME, MAX_TITLE
from vault_cli._text_files import FILE_NAME, SEARCH, TITLE

SECRET_TITLE = "Board: merger with ACME, 40 layoffs"
NAME = "acme-merger-terms.pdf"
LABEL = ("--level", "SECRET", "--compartment", "BOARD")
# Long enough for a loaded machine, short enough that a hang fails the test.
HANG = 60
# The number of read(2) on the machines the suite runs on (/proc/PID/syscall).
READ = {"x86_64": 0, "aarch64": 63}


def _private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _office(tmp_path: Path, backend: Kind | None = None) -> Office:
    o = make_office(tmp_path / "office", backend, post_quantum=False)
    o.file("memo.txt", b"the plan the board agreed\n")
    return o


def _sealed(o: Office, *args: str, input: bytes | None = None) -> dict[str, object]:
    r = o.cli("leader", "seal", *args, *LABEL, "--json", input=input)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    (doc,) = json.loads(r.stdout)
    assert isinstance(doc, dict)
    return doc


def test_a_title_and_file_name_read_from_files_are_stored_as_the_options_store_them(
        tmp_path: Path, backend: Kind) -> None:
    o = _office(tmp_path, backend)
    memo = str(o.root / "in" / "memo.txt")
    given = _sealed(o, memo, "--title", SECRET_TITLE, "--filename", NAME)
    in_files = _sealed(o, memo,
                       "--title-file", str(_private(tmp_path / "title", f"{SECRET_TITLE}\n"
                                                    .encode())),
                       "--filename-file", str(_private(tmp_path / "name", f"{NAME}\r\n"
                                                       .encode())))
    # Standard input (its first line: the rest is not read), and a pipe of
    # the user's own as <(printf ...) gives one, /dev/fd/N.
    read, write = os.pipe()
    os.write(write, f"{NAME}\n".encode())
    os.close(write)
    try:
        piped = _sealed(o, memo, "--title-file", "-", "--filename-file", f"/dev/fd/{read}",
                        input=f"{SECRET_TITLE}\nnot the title\n".encode())
    finally:
        os.close(read)
    # The document on standard input, its name from a file: no path at all.
    unnamed = _sealed(o, "-", "--filename-file", str(tmp_path / "name"),
                      "--title-file", str(tmp_path / "title"), input=b"the plan\n")
    docs = [given, in_files, piped, unnamed]
    for doc in docs:
        assert (doc["title"], doc["filename"], doc["content_type"]) == (
            SECRET_TITLE, NAME, "application/pdf"), doc
        r = o.cli("leader", "info", str(doc["id"]), "--json")
        assert r.exit_code == 0, r.stderr
        assert (json.loads(r.stdout)["title"], json.loads(r.stdout)["filename"]) == (
            SECRET_TITLE, NAME)
    # ls --title-file finds what ls --title finds, from a file or stdin.
    words = _private(tmp_path / "words", b"MERGER with acme\n")
    on_line = o.cli("leader", "ls", "--json", "--title", "merger with acme")
    for r in (o.cli("leader", "ls", "--json", "--title-file", str(words)),
              o.cli("leader", "ls", "--json", "--title-file", "-", input=b"merger with acme\n"),
              on_line):
        assert r.exit_code == 0, r.stderr
        assert r.stdout == on_line.stdout
        assert sorted(d["id"] for d in json.loads(r.stdout)) == sorted(
            str(d["id"]) for d in docs)
    r = o.cli("leader", "ls", "--title-file", "-", input=NAME.encode())  # no line break
    assert r.exit_code == 0, r.stderr
    assert r.stdout.count(SECRET_TITLE) == 4


def _command_line_while_reading_stdin(args: list[str], data: bytes) -> tuple[str, bytes]:
    """What every local user reads as the command line of ``args`` while it
    waits for its standard input; then ``data`` is given it: its stdout."""
    machine = platform.machine()
    assert machine in READ, f"the number of read(2) on {machine} is not known here"
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + HANG
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "it never read its standard input"
            call = Path(f"/proc/{proc.pid}/syscall").read_text().split()
            if call[:2] == [str(READ[machine]), "0x0"]:  # blocked in read(0, ...)
                break
            time.sleep(0.05)
        shown = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        environment = Path(f"/proc/{proc.pid}/environ").read_bytes()
        out, err = proc.communicate(data, timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert SECRET_TITLE.encode() not in environment + err
    return shown, out


def test_a_title_read_from_standard_input_is_never_on_the_command_line_others_read(
        tmp_path: Path) -> None:
    assert VAULT is not None, "the vault console script is not installed"
    o = _office(tmp_path)
    seal = [VAULT, "--vault", o.location, "--identity", str(o.files["leader"]), "seal", *LABEL]
    # Given as options, the title and the name are there while the command
    # waits for its document: what the process list shows everyone.
    shown, _ = _command_line_while_reading_stdin(
        [*seal, "-", "--title", SECRET_TITLE, "--filename", NAME], b"the plan\n")
    assert SECRET_TITLE in shown and NAME in shown
    # From standard input and a file: neither is.
    name = _private(tmp_path / "name", f"{NAME}\n".encode())
    shown, out = _command_line_while_reading_stdin(
        [*seal, str(o.root / "in" / "memo.txt"), "--title-file", "-", "--filename-file",
         str(name)], f"{SECRET_TITLE}\n".encode())
    assert "--title-file - --filename-file" in shown
    assert SECRET_TITLE not in shown and NAME not in shown
    r = o.cli("leader", "info", out.decode().strip(), "--json")
    assert r.exit_code == 0, r.stderr
    assert (json.loads(r.stdout)["title"], json.loads(r.stdout)["filename"]) == (
        SECRET_TITLE, NAME)


def test_a_file_that_gives_no_title_or_name_is_a_usage_error_and_seals_nothing(
        tmp_path: Path) -> None:
    assert (TITLE.longest, FILE_NAME.longest, SEARCH.longest) == (MAX_TITLE, MAX_NAME,
                                                                 MAX_TITLE)
    o = _office(tmp_path)
    memo = str(o.root / "in" / "memo.txt")
    lines = len(o.raw.audit_lines())
    counter = iter(range(1000))

    def file(data: bytes) -> str:
        return str(_private(tmp_path / f"value-{next(counter)}", data))

    secret = SECRET_TITLE
    cases: list[tuple[list[str], bytes | None, str]] = [
        (["--title-file", str(tmp_path / "nowhere")], None,
         f"cannot read --title-file {tmp_path / 'nowhere'}: No such file or directory"),
        (["--title-file", file(b"")], None, "holds no title: its first line is empty"),
        (["--title-file", file(b"\n" + secret.encode())], None, "holds no title"),
        (["--title-file", "-"], b"\r\n", "(standard input) holds no title"),
        (["--title-file", file(b"a" * 1001 + b"\n")], None,
         "its first line is longer than a title may be (1,000 characters)"),
        (["--title-file", file(b"\xc3\xa9" * 2000)], None, "longer than a title may be"),
        (["--title-file", "-"], b"a" * 10_000_000, "longer than a title may be"),
        (["--filename-file", file(b"n" * 256)], None,
         "longer than a file name may be (255 characters)"),
        (["--title-file", file(b"\xff\xfe" + secret.encode())], None,
         "its first line is not UTF-8 text"),
        (["--title-file", file(f"{secret}\x1b[2J\n".encode())], None,
         "the title holds the control character U+001B"),
        (["--title-file", file(f"{secret}\tdraft\n".encode())], None, "the title holds the tab"),
        (["--title-file", file(f"{secret}\rclean\n".encode())], None, "line break U+000D"),
        (["--title-file", file(f"\u202e{secret}\n".encode())], None, "bidi control U+202E"),
        (["--filename-file", file("acme\u00a0terms.pdf\n".encode())], None,
         "the file name holds the space other than U+0020 U+00A0"),
        (["--title", secret, "--title-file", file(b"x\n")], None,
         "--title and --title-file both give the title"),
        (["--filename", NAME, "--filename-file", file(b"x\n")], None,
         "--filename and --filename-file both give the file name"),
        (["--title-file", file(b"x\n"), memo], None, "--title-file names one document"),
        (["--filename-file", file(b"x\n"), memo], None, "--filename-file names one document"),
        (["--title-file", "-", "--filename-file", "-"], b"x\ny\n",
         "standard input can be read once"),
    ]
    for args, data, message in cases:
        r = o.cli("leader", "seal", memo, *LABEL, *args, input=data)
        assert_error(r, 2, message)
        assert r.stdout == "" and "\nhint: " in r.stderr, (args, r.stderr)
        assert secret not in r.stderr and "Traceback" not in r.stderr
    r = o.cli("leader", "seal", "-", *LABEL, "--title-file", "-", input=b"x\n")
    assert_error(r, 2, "standard input can be read once")
    # Read before the vault is opened: nothing sealed, nothing recorded.
    assert len(o.raw.audit_lines()) == lines
    # The values a file may give are those the options take: what the file
    # refused, --title refuses too (on the record, as before), and free
    # text in any language passes both ways.
    for bad in (f"{secret}\x1b[2J", f"{secret}\tdraft", f"\u202e{secret}", "a" * 1001):
        assert_error(o.cli("leader", "seal", memo, *LABEL, "--title", bad), 2,
                     "a title is 1 to 1000 printable characters")
    honest = "Rapport 10\u00a0000\u00a0\u20ac \U0001f469\u200d\U0001f4bb"
    in_file = _sealed(o, memo, "--title-file", file(f"{honest}\n".encode()))
    assert in_file["title"] == _sealed(o, memo, "--title", honest)["title"] == honest
    for args, message in ((["--title-file", "-", "--no-titles"],
                           "--title-file searches titles, which --no-titles does not read"),
                          (["--title", "a", "--title-file", "-"],
                           "--title and --title-file both give the title search")):
        r = o.cli("leader", "ls", *args, input=b"merger\n")
        assert_error(r, 2, message)
        assert r.stdout == ""
    assert_error(o.cli("leader", "ls", "--title-file", "-", input=b"\n"), 2,
                 "holds no title search")


def test_a_title_file_others_may_read_or_made_is_refused_before_it_is_read(
        tmp_path: Path) -> None:
    o = _office(tmp_path)
    memo = str(o.root / "in" / "memo.txt")
    mine = _private(tmp_path / "mine", f"{SECRET_TITLE}\n".encode())
    loose = _private(tmp_path / "loose", f"{SECRET_TITLE}\n".encode())
    loose.chmod(0o644)
    group = _private(tmp_path / "group", f"{SECRET_TITLE}\n".encode())
    group.chmod(0o640)
    theirs = _private(tmp_path / "theirs", f"{SECRET_TITLE}\n".encode())
    make_another_users(theirs)
    shared = tmp_path / "shared"
    shared.mkdir()
    planted = shared / "title"
    planted.symlink_to(mine)  # a link to the user's own file, made by another
    make_another_users(planted)
    link = tmp_path / "link"
    link.symlink_to(mine)  # the user's own link: followed
    lines = len(o.raw.audit_lines())
    for path, message, hint in (
            (loose, f"--title-file {loose} is readable by other users", f"chmod 600 {loose}"),
            (group, f"--title-file {group} is readable by other users", f"chmod 600 {group}"),
            (theirs, f"--title-file {theirs} belongs to another user", "use a file of your own"),
            (planted, f"{planted} goes through a symbolic link that another user made",
             "give the file by a path of its own"),
            (shared, f"cannot read --title-file {shared}: Is a directory",
             "on the first line of a file of your own")):
        for command in (["seal", memo, *LABEL], ["ls"]):
            r = o.cli("leader", *command, "--title-file", str(path))
            assert_error(r, 2, message)
            assert "\nhint: " in r.stderr and hint in r.stderr and r.stdout == "", r.stderr
    assert len(o.raw.audit_lines()) == lines
    # A FIFO another user made is refused at once, never waited on; the
    # user's own is read once its writer comes.
    assert VAULT is not None, "the vault console script is not installed"
    fifo = tmp_path / "their-fifo"
    os.mkfifo(fifo, 0o600)
    make_another_users(fifo)
    seal = [VAULT, "--vault", o.location, "--identity", str(o.files["leader"]), "seal", memo,
            *LABEL]
    r = subprocess.run([*seal, "--title-file", str(fifo)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=HANG, check=False)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"vault: {fifo} is not a regular file, and another user made it")
    own = tmp_path / "own-fifo"
    os.mkfifo(own, 0o600)
    writer = threading.Thread(target=own.write_bytes, args=(f"{SECRET_TITLE}\n".encode(),),
                              daemon=True)
    writer.start()
    for path in (own, link):
        doc = _sealed(o, memo, "--title-file", str(path))
        assert doc["title"] == SECRET_TITLE
    writer.join(HANG)


def test_the_help_says_the_process_list_shows_the_options_and_names_the_files() -> None:
    for command, options in (("seal", ("--title-file", "--filename-file")),
                             ("ls", ("--title-file",))):
        r = run(command, "--help")
        assert r.exit_code == 0 and r.stderr == ""
        text = " ".join(r.stdout.split())
        assert "process list" in text, command
        for option in options:
            assert f"{option} FILE" in text, (command, option)
