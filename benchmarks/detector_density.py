"""What reading only near digits saves the built-in detectors, by how many digits a text holds.

``python -m benchmarks.detector_density [N]`` makes windows of 64 Ki
characters of random lowercase words in which a given share of the words are
numbers (0 to 10 %), and times all seven detectors over each window read
whole and read near its digits (vault/intake/_scan.py ``near_digits``,
the look for digits included), best of ``N`` (default 20). It prints, per
share, the milliseconds of each and how much of the window the stretches
cover ("whole" where they would cover more than half, so the window is read
whole). docs/PERFORMANCE.md §4.12 reads the intake row with it.
"""

from __future__ import annotations

import random
import sys
import timeit

from vault.intake._detectors import DETECTORS
from vault.intake._scan import WINDOW, near_digits

SHARES = (0.0, 0.001, 0.005, 0.01, 0.03, 0.1)


def window(share: float, rng: random.Random) -> str:
    """WINDOW characters of random words, ``share`` of them numbers."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: list[str] = []
    size = 0
    while size <= WINDOW:
        word = (str(rng.randint(1, 99_999)) if rng.random() < share
                else "".join(rng.choice(letters) for _ in range(rng.randint(2, 10))))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:WINDOW]


def _whole(text: str) -> list[int]:
    return [o for find, _ in DETECTORS.values() for o in find(text, 0, None)]


def _near(text: str) -> list[int]:
    spans = near_digits(text)
    if spans is None:
        return _whole(text)
    return [o for find, _ in DETECTORS.values() for s, e in spans for o in find(text, s, e)]


def main(n: int) -> None:
    rng = random.Random(2)
    print(f"all {len(DETECTORS)} detectors over {WINDOW:,} characters of random words,"
          f" best of {n}")
    print("numbers among the words   whole (ms)   near digits (ms)   stretches")
    for share in SHARES:
        text = window(share, rng)
        assert _near(text) == _whole(text)
        whole = min(timeit.repeat(lambda t=text: _whole(t), number=1, repeat=n))
        near = min(timeit.repeat(lambda t=text: _near(t), number=1, repeat=n))
        spans = near_digits(text)
        cover = "whole" if spans is None else f"{sum(e - s for s, e in spans) / len(text):.0%}"
        print(f"{share:24.1%}   {whole * 1e3:10.2f}   {near * 1e3:16.2f}   {cover:>9}",
              flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
