"""README.md is a promise: its library example runs as written, and its two
commands are the ones CI runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vault_cli._demo_policy import office_policy

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PEOPLE = ("officer", "clerk", "leader", "outsider")


def _library_example() -> str:
    section = README.split("## Library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's Library section has no python example"
    return match.group(1)


def _shell_commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


@pytest.fixture
def office_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the example assumes: identity files, office.yaml with those
    people's keys, and a document to seal."""
    keys = {}
    for name in PEOPLE:
        subprocess.run(
            [sys.executable, "-m", "vault_cli.main", "identity", "new", name,
             "-o", str(tmp_path / f"{name}.key"), "--no-passphrase"],
            check=True, capture_output=True,
        )
        shown = subprocess.run(
            [sys.executable, "-m", "vault_cli.main", "identity", "show",
             str(tmp_path / f"{name}.key"), "--json"],
            check=True, capture_output=True, text=True,
        )
        data = json.loads(shown.stdout)
        keys[name] = {"recipient": data["recipient"], "signing_key": data["signing_key"]}
    (tmp_path / "office.yaml").write_text(office_policy(keys), encoding="utf-8")
    (tmp_path / "minutes.docx").write_bytes(b"PK\x03\x04 board minutes " * 1000)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_library_example_runs_as_written(
    office_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _library_example()
    assert len(code.strip().splitlines()) <= 16
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    opened = office_folder / "minutes-opened.docx"
    assert opened.read_bytes() == (office_folder / "minutes.docx").read_bytes()
    assert not (office_folder / "stolen.docx").exists()
    assert "DENIED: outsider open CONFIDENTIAL//BOARD" in out
    assert "outsiders-stay-out" in out
    # init, seal (its decision, the class key it made, its completion), open
    # (allowed), open (denied): six records, all verified.
    assert out.rstrip().endswith("6 audit records verified")
    assert os.stat(office_folder / "recovery.key").st_mode & 0o077 == 0


def test_readme_commands_are_the_ones_ci_runs() -> None:
    demo, tests = _shell_commands()[:2]
    assert demo == "python3 -m pip install . && vault demo"
    assert tests == ("python3 -m pip install -e '.[test]' && "
                     "python3 -m pytest -n auto --dist loadscope")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert any(line.strip().startswith(tests) for line in ci.splitlines())
