"""Coverage-guided fuzzing with atheris (optional: pip install '.[fuzz]').

    python3 tests/fuzz/run.py TARGET [CORPUS_DIR] [libFuzzer options]
    python3 tests/fuzz/run.py age_header -atheris_runs=2000000
    python3 tests/fuzz/run.py --list

TARGET is one of tests/fuzz/targets.py's TARGETS. The seeds (valid inputs
of that kind) are written to CORPUS_DIR (default: a new temporary folder)
before fuzzing starts. A crash is reported by libFuzzer with the input that
caused it; turn that input into a regression test in tests/test_fuzz.py.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for fuzz.targets


def main(argv: list[str]) -> None:
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: python3 -m pip install -e '.[fuzz]'")
    with atheris.instrument_imports():
        import vault  # noqa: F401 - instrumented for coverage feedback
        from fuzz.targets import TARGETS

    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit("targets: " + ", ".join(TARGETS) if "--list" in argv
                 else f"usage: {argv[0]} TARGET [CORPUS_DIR] [libFuzzer options]")
    target = TARGETS[argv[1]]
    rest = argv[2:]
    if rest and not rest[0].startswith("-"):
        corpus = Path(rest.pop(0))
        corpus.mkdir(parents=True, exist_ok=True)
    else:
        corpus = Path(tempfile.mkdtemp(prefix=f"vault-fuzz-{target.name}-"))
    for n, seed in enumerate(target.seeds()):
        (corpus / f"seed-{n}").write_bytes(seed)
    print(f"fuzzing {target.name}; corpus in {corpus}", file=sys.stderr)
    atheris.Setup([argv[0], *rest, str(corpus)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
