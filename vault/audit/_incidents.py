"""Damage an officer has declared (docs/AUDIT.md §11.3).

The vault logs an incident naming lines it found damaged; verification is
then given those line numbers (``sealed_off``). Damage confined to them --
and to the next signed record, whose chain covers them (§4) -- is reported
as an incident instead of raising; anything else still raises. An
incident may carry the leaf hashes its lines had when written (``leaves``):
the originals a checkpoint signed before the damage holds (§11.3).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from vault.errors import AuditIntegrityError

__all__ = ["Incidents", "all_sealed_off"]


def all_sealed_off(sealed_off: Collection[int], lines: range) -> bool:
    """Is every line of ``lines`` sealed off? Counted over the sealed-off
    lines (an officer names few), never by listing ``lines``: a condensed
    stretch of damage may stand for millions."""
    return sum(1 for i in sealed_off if i in lines) == len(lines)


class Incidents:
    def __init__(self, sealed_off: frozenset[int],
                 leaves: Mapping[int, bytes] | None = None,
                 found: list[range] | None = None) -> None:
        self.lines = sealed_off
        #: the original leaf hashes incident records carry, by line (only
        #: sealed-off lines': a leaf for another line is never used)
        self.leaves = {i: h for i, h in (leaves or {}).items() if i in sealed_off}
        self.notes: list[str] = []
        self._seen: set[tuple[str, int | None]] = set()
        #: where the lines showed damage, excused or not (``damaged``), when
        #: the caller asked: what an incident may seal off (§11.3)
        self.found = found

    def damaged(self, lines: range) -> None:
        """Verification found damage at ``lines``: a stretch the reading
        rules break on, the run of a signature that does not verify as the
        lines stand, lines differing from a root trusted here."""
        if self.found is not None:
            self.found.append(lines)

    def differ(self, now: Sequence[bytes], original: Sequence[bytes]) -> None:
        """A root was reproduced with ``original`` leaves where the lines
        have ``now``: the sealed-off lines at which they differ are damaged."""
        for i in self.lines:
            if i < len(now) and i < len(original) and now[i] != original[i]:
                self.damaged(range(i, i + 1))

    def excuse(self, error: AuditIntegrityError, lines: Iterable[int], *,
               every: bool = False) -> bool:
        """Is ``error``, about ``lines``, explained by a sealed-off line --
        with ``every``, by all of them sealed off? A signature over a run
        fails for one damaged line in it; a damaged stretch (a condensed
        item, named by its first line) is damage at each of its lines, and
        sealing off one of them must not excuse the others."""
        if not self.lines:
            return False
        if every:
            if not isinstance(lines, range) or not all_sealed_off(self.lines, lines):
                return False
        elif isinstance(lines, range):  # a long run's lines (§8): never listed one by one
            if not any(i in lines for i in self.lines):
                return False
        elif self.lines.isdisjoint(lines):
            return False
        self.note(f"{error.message} (sealed off by an incident)", error.seq)
        return True

    def note(self, text: str, seq: int | None = None) -> None:
        if (text, seq) not in self._seen:
            self._seen.add((text, seq))
            self.notes.append(text)

    def before(self, size: int) -> bool:
        """Is any sealed-off line among the first ``size``?"""
        return any(i < size for i in self.lines)
