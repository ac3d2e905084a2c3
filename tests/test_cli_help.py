"""Every command documents itself: ``--help`` for each command and
subcommand, the man page generated from them, README's command list, and
shell completion of document ids and labels from what the caller may see."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import click
import pytest
from cli_support import VAULT, Office, make_office, run

from vault_cli._manpage import commands, manpage
from vault_cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
ALL = commands(cli, click.Context(cli, info_name="vault"))


def test_every_command_is_walked() -> None:
    names = {path for path, _ in ALL}
    for expected in ("vault seal", "vault ls", "vault policy show", "vault policy explain",
                     "vault audit log", "vault agent start", "vault age keygen",
                     "vault identity new", "vault migrate"):
        assert expected in names


@pytest.mark.parametrize("path", [path for path, _ in ALL])
def test_help(path: str) -> None:
    r = run(*path.split()[1:], "--help")
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith(f"Usage: {path} ")
    cmd = dict(ALL)[path]
    assert cmd.help, f"{path} has no help text"
    first = cmd.help.strip().splitlines()[0].strip()
    assert " ".join(first.split()) in " ".join(r.stdout.split())


def test_the_man_page_is_generated_from_the_commands() -> None:
    page = (ROOT / "docs" / "vault.1").read_text(encoding="utf-8")
    assert page == manpage(), "regenerate: python -m vault_cli._manpage > docs/vault.1"
    for path, _ in ALL:
        assert f'.SS "{path.replace("-", chr(92) + "-")} ' in page, path
    assert ".SH EXIT STATUS" in page and "\\fB130\\fR" in page


def test_the_man_page_renders() -> None:
    man = subprocess.run(["man", "--version"], capture_output=True, check=False)
    if man.returncode != 0:  # groff is what renders it; man-db may be absent
        r = subprocess.run(["groff", "-man", "-Tutf8", str(ROOT / "docs" / "vault.1")],
                           capture_output=True, check=True)
    else:
        r = subprocess.run(["man", str(ROOT / "docs" / "vault.1")], capture_output=True,
                           check=True, env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert b"vault seal" in r.stdout and b"EXIT STATUS" in r.stdout


def test_readme_lists_every_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```", 2)[1]
    for path, cmd in ALL:
        if isinstance(cmd, click.Group):
            continue
        words = path.split()[1:]
        pattern = r"\bvault " + r"\s+(?:\[[^\]]*\]\s+)?".join(map(re.escape, words[:1]))
        assert re.search(pattern, block), path
        if len(words) > 1:  # a subcommand: named in its group's line
            line = next((ln for ln in block.splitlines() if f"vault {words[0]} " in ln
                         and re.search(rf"\b{re.escape(words[1])}\b", ln)), None)
            assert line is not None, path


# --------------------------------------------------------------------------
# Shell completion


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Office:
    o = make_office(tmp_path_factory.mktemp("complete"))
    (o.root / "memo.txt").write_bytes(b"memo\n")
    return o


def _complete(words: str, shell: str = "bash") -> list[str]:
    assert VAULT is not None
    parts = words.split(" ")
    r = subprocess.run([VAULT], env={**__import__("os").environ,
                                     "_VAULT_COMPLETE": f"{shell}_complete",
                                     "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)},
                       capture_output=True, text=True, check=True)
    assert r.stderr == ""
    return [line.split(",", 1)[1] for line in r.stdout.splitlines() if line.startswith("plain,")]


def test_completion_offers_what_the_caller_may_see(office: Office) -> None:
    board = office.seal("clerk", office.root / "memo.txt", "--level", "C", "--compartment",
                        "BOARD")
    public = office.seal("clerk", office.root / "memo.txt", "--level", "PUBLIC")
    who = f"--vault {office.vault} --identity {{}}"
    leader = who.format(office.people["leader"].key)
    assert sorted(_complete(f"vault {leader} open ")) == sorted([board, public])
    assert _complete(f"vault open {leader} {board[:3]}") == [board]  # options after too
    outsider = who.format(office.people["outsider"].key)
    assert _complete(f"vault {outsider} info ") == [public]  # the policy's list rule
    clerk = who.format(office.people["clerk"].key)
    # Levels up to the clerk's clearance; compartments within it.
    assert _complete(f"vault {clerk} seal memo.txt --level ") == [
        "CONFIDENTIAL", "INTERNAL", "PUBLIC"]
    assert _complete(f"vault {clerk} seal memo.txt --compartment ") == [
        "BOARD", "FINANCE", "STAFF"]
    assert _complete(f"vault {clerk} reclassify {board} --add-caveat ") == [
        "LEGAL-PRIVILEGE", "PERSONAL-DATA"]
    # No vault, or an identity the policy does not know: nothing, no error.
    assert _complete("vault open ") == []
    assert _complete(f"vault --vault {office.vault} --identity /nonexistent open ") == []


def test_completion_scripts_for_each_shell() -> None:
    assert VAULT is not None
    for shell in ("bash", "zsh", "fish"):
        r = subprocess.run([VAULT], env={**__import__("os").environ,
                                         "_VAULT_COMPLETE": f"{shell}_source"},
                           capture_output=True, text=True, check=True)
        assert "_VAULT_COMPLETE" in r.stdout, shell
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in ('eval "$(_VAULT_COMPLETE=bash_source vault)"',
                 'eval "$(_VAULT_COMPLETE=zsh_source vault)"',
                 "_VAULT_COMPLETE=fish_source vault | source"):
        assert line in readme, line
