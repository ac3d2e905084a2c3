"""The strict policy loader: every YAML footgun is refused with its position.

The broken corpus (tests/policies_broken/) is data-driven: each file starts
with ``# expect: LINE:COLUMN: message`` lines (each optionally followed by a
``# hint:`` line) listing, in order, every problem the loader must report.
"""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from vault.errors import BadDataError, PolicyLoadError
from vault.policy import load_policy, load_policy_bytes, load_policy_text
from vault.policy._yaml import MAX_DEPTH, MAX_POLICY_BYTES, MAX_PROBLEMS

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "policies_broken").glob("*.yaml"))
MINIMAL = HERE / "policies_ok" / "minimal.yaml"


def _expected(path: Path) -> list[tuple[int, int, str, str | None]]:
    out: list[tuple[int, int, str, str | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            loc, message = line.removeprefix("# expect: ").split(": ", 1)
            row, col = loc.split(":")
            out.append((int(row), int(col), message, None))
        elif line.startswith("# hint: "):
            row_, col_, message_, _ = out[-1]
            hint = line.removeprefix("# hint: ").replace("{file}", str(path))
            out[-1] = (row_, col_, message_, hint)
    return out


def _problems(path: Path) -> list[tuple[int | None, int | None, str, str | None]]:
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    assert all(p.file == str(path) for p in info.value.problems)
    return [(p.line, p.column, p.message, p.hint) for p in info.value.problems]


def test_corpus_is_not_empty() -> None:
    assert len(BROKEN) >= 30
    assert all(_expected(p) for p in BROKEN), "every corpus file states what it expects"


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_policy_reports_exact_positions(path: Path) -> None:
    assert _problems(path) == _expected(path)


def test_all_problems_are_reported_at_once() -> None:
    problems = _problems(HERE / "policies_broken" / "many_problems.yaml")
    assert len(problems) == 10
    assert [p[0] for p in problems] == sorted(p[0] for p in problems)  # type: ignore[type-var]


def test_minimal_policy_loads() -> None:
    policy = load_policy(MINIMAL)
    assert [lvl.name for lvl in policy.levels] == ["PUBLIC", "SECRET"]
    assert policy.hash == hashlib.sha256(MINIMAL.read_bytes()).hexdigest()


def test_yaml11_lookalikes_stay_literal_names() -> None:
    policy = load_policy(HERE / "policies_ok" / "yaml11_names.yaml")
    assert [lvl.name for lvl in policy.levels] == ["no", "on", "off"]
    assert list(policy.compartments) == ["0777", "1e3", "0x1F"]
    assert list(policy.caveats) == ["2025-01-01"]
    assert list(policy.roles) == ["yes", "null"]
    assert policy.groups["on"].members == ("no", "2025-01-01")
    no = policy.users["no"]
    assert no.clearance.level == "off"
    assert no.clearance.compartments == {"0777", "1e3"}
    assert no.roles == {"yes"} and no.groups == {"on"}
    assert policy.users["2025-01-01"].roles == {"null"}
    assert policy.default_label.level == "no"
    rule = policy.rules[0]
    assert rule.id == "0777"
    assert rule.label is not None and rule.label.max == "on"
    assert rule.label.compartments is not None
    assert rule.label.compartments.any == {"0777", "0x1F"}
    label = policy.make_label(level="on", compartments=["0777"])
    assert policy.decide("no", "open", label).allowed


def test_billion_laughs_is_refused_cheaply() -> None:
    path = HERE / "policies_broken" / "billion_laughs.yaml"
    tracemalloc.start()
    try:
        with pytest.raises(PolicyLoadError) as info:
            load_policy(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000
    # Nine anchors and eight alias names, each reported once; nothing expanded.
    messages = [p.message for p in info.value.problems]
    assert sum(m.startswith("anchor") for m in messages) == 9
    assert sum(m.startswith("alias") for m in messages) == 8


def test_oversize_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# padding\n" * (MAX_POLICY_BYTES // 10 + 1))
    with pytest.raises(PolicyLoadError) as info:
        load_policy(path)
    [p] = info.value.problems
    assert (p.line, p.column) == (1, 1)
    assert p.message == f"file is {MAX_POLICY_BYTES + 1} bytes; expected at most " \
        f"{MAX_POLICY_BYTES} bytes"
    with pytest.raises(PolicyLoadError):
        load_policy_text("a: b\n" * (MAX_POLICY_BYTES // 5 + 1))


def test_invalid_utf8_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    [p] = _problems(path)
    assert p[:3] == (2, 10, "invalid UTF-8; expected UTF-8 text")


def test_control_characters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ctl.yaml"
    path.write_bytes(MINIMAL.read_bytes().replace(b"name: minimal", b"name: mini\x1bmal"))
    [p] = _problems(path)
    assert p[:3] == (3, 11, "control character U+001B; expected printable text")


def test_deep_flow_nesting_is_refused_early(tmp_path: Path) -> None:
    # PyYAML's scanner is quadratic in flow nesting; the loader stops at
    # MAX_DEPTH open brackets, so this cannot be used to burn CPU.
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\nx: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    problems = [p[:3] for p in _problems(path)]
    assert problems == [(2, 4 + MAX_DEPTH, f"nesting deeper than {MAX_DEPTH} levels; expected "
                         "a flatter document")]


def test_deep_block_nesting_is_refused_without_recursion(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("".join(" " * i + f"k{i}:\n" for i in range(200)), encoding="utf-8")
    problems = [p[:3] for p in _problems(path)]
    assert (MAX_DEPTH + 1, MAX_DEPTH + 1, f"nesting deeper than {MAX_DEPTH} levels; "
            "expected a flatter document") in problems


def test_problem_list_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"k{i}: 1\n" for i in range(300)), encoding="utf-8")
    problems = _problems(path)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1][2] == f"too many problems; stopped after {MAX_PROBLEMS}"


def test_bom_and_crlf_are_accepted_and_hashed_exactly() -> None:
    data = b"\xef\xbb\xbf" + MINIMAL.read_bytes().replace(b"\n", b"\r\n")
    policy = load_policy_bytes(data, "crlf.yaml")
    assert policy.hash == hashlib.sha256(data).hexdigest()
    assert policy.users["clerk"].clearance.level == "SECRET"


def test_text_hash_is_of_utf8_bytes() -> None:
    text = MINIMAL.read_text(encoding="utf-8")
    assert load_policy_text(text).hash == hashlib.sha256(text.encode()).hexdigest()
    with pytest.raises(TypeError):
        load_policy_text(text.encode())  # type: ignore[arg-type]


def test_load_error_is_bad_data_with_summary(tmp_path: Path) -> None:
    path = HERE / "policies_broken" / "unknown_key.yaml"
    with pytest.raises(BadDataError) as info:
        load_policy(path)
    err = info.value
    assert isinstance(err, PolicyLoadError) and err.exit_code == 1
    assert str(err).startswith(f"{path}:22:5: rule clerks-open is missing 'effect'")
    assert str(err).endswith("(and 1 more)")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    [p] = _problems(missing)
    assert p[:3] == (None, None, "cannot read: No such file or directory")


def test_a_string_filename_appears_in_problems() -> None:
    with pytest.raises(PolicyLoadError) as info:
        load_policy_text("version: 2\n", "inline.yaml")
    assert str(info.value.problems[0]).startswith("inline.yaml:1:1: ")
    assert any(p.message == "unsupported policy version 2; expected 1"
               and (p.line, p.column) == (1, 10) for p in info.value.problems)
