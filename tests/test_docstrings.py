"""Every example in a public docstring runs, as written (doctest), and no
public docstring shows an example that is not run: ``help(vault)`` and
friends never show code that fails."""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

PUBLIC = ("vault", "vault.age", "vault.policy", "vault.audit", "vault.identity",
          "vault.errors", "vault.store", "vault.intake")
# What reads like an example: "Example" or an indented block of calls after "::".
_LOOKS_LIKE_CODE = re.compile(r"(Example|::\n\n\s+[\w.]+ ?= ?[\w.]+\()")


def _public_objects(module: ModuleType) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [(module.__name__, module)]
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        out.append((f"{module.__name__}.{name}", obj))
        if inspect.isclass(obj):
            out += [(f"{module.__name__}.{name}.{m}", v) for m, v in vars(obj).items()
                    if not m.startswith("_") and (inspect.isfunction(v) or
                                                  isinstance(v, property | classmethod))]
    return out


@pytest.mark.parametrize("name", PUBLIC)
def test_docstring_examples_run(name: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples write nothing outside a folder of their own
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = []
    for qualname, obj in _public_objects(module):
        doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or ""
        if _LOOKS_LIKE_CODE.search(doc) and ">>>" not in doc:
            pytest.fail(f"{qualname}: its docstring shows an example that is not a doctest")
        if ">>>" in doc:
            tests += finder.find(obj if not isinstance(obj, property) else obj.fget, qualname)
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed in {name}"


def test_the_packages_examples_are_found() -> None:
    # The three modules people read first carry examples: they must be run.
    found = 0
    for name in ("vault", "vault.age", "vault.policy"):
        module = importlib.import_module(name)
        found += sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert found >= 25
    assert os.environ.get("VAULT_STATE_DIR")  # the example's vault never touches ~
