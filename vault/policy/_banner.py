"""Labels written as banners, and read back (docs/POLICY.md §5.4).

Every label the vault shows is written one way, :meth:`Policy.format_label`:
the level, then the compartments, then the caveats, sections separated by
``//`` and names within a section by ``/``, each name in its policy
marking if it has one::

    CONFIDENTIAL//BOARD/FINANCE//PERSONAL-DATA
    TLP:AMBER+STRICT//INCIDENT-42

:func:`parse_banner` reads that back, so anything the vault printed can be
given to any option that takes a label (``--level``, ``--label``,
``--class``). Names and markings match ignoring case; compartments and
caveats share one namespace (§3.3), so a name alone says which it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vault.errors import UsageError

if TYPE_CHECKING:
    from vault.policy.model import Level, Policy

__all__ = ["BANNER_HINT", "looks_like_banner", "parse_banner"]

BANNER_HINT = ("write a label as LEVEL//COMPARTMENT/COMPARTMENT//CAVEAT, as 'vault ls' "
               "shows it, e.g. CONFIDENTIAL//BOARD/FINANCE//PERSONAL-DATA")


def looks_like_banner(text: str) -> bool:
    return "/" in text


def _level(policy: Policy, text: str) -> Level:
    folded = text.strip().casefold()
    for lvl in policy.levels:
        if folded in {w.casefold() for w in (lvl.name, *lvl.aliases, lvl.marking or lvl.name)}:
            return lvl
    return policy.level(text.strip())  # raises, naming the levels


def _names(policy: Policy) -> dict[str, tuple[str, str]]:
    """Every way a compartment or caveat is written -> (kind, name)."""
    out: dict[str, tuple[str, str]] = {}
    for kind, cats in (("compartment", policy.compartments), ("caveat", policy.caveats)):
        for cat in cats.values():
            for written in (cat.name, cat.marking):
                if written:
                    out[written.casefold()] = (kind, cat.name)
    return out


def _split(section: str, known: dict[str, tuple[str, str]]) -> list[str]:
    """The names in one section; a marking may itself hold '/', so the
    longest known one at each point wins."""
    out, rest = [], section.strip()
    by_length = sorted(known, key=len, reverse=True)
    while rest:
        folded = rest.casefold()
        match = next((w for w in by_length if folded.startswith(w)
                      and (len(w) == len(rest) or rest[len(w)] == "/")), None)
        word = rest[:len(match)] if match else rest.split("/", 1)[0]
        out.append(word.strip())
        rest = rest[len(word):].lstrip("/").strip()
    return out


def parse_banner(policy: Policy, text: str) -> tuple[str, frozenset[str], frozenset[str]]:
    """``(level, compartments, caveats)`` of a label written as a banner,
    canonical names; :class:`UsageError` naming what is not in the policy."""
    from vault.policy._fields import did_you_mean

    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty label", hint=BANNER_HINT)
    head, *sections = text.split("//")
    level = _level(policy, head)
    known = _names(policy)
    comps: set[str] = set()
    cavs: set[str] = set()
    for section in sections:
        for word in _split(section, known):
            found = known.get(word.casefold())
            if found is None:
                hint = did_you_mean(word, [*policy.compartments, *policy.caveats])
                raise UsageError(f"unknown compartment or caveat '{word}' in label {text!r}",
                                 hint=hint or BANNER_HINT)
            (comps if found[0] == "compartment" else cavs).add(found[1])
    return level.name, frozenset(comps), frozenset(cavs)
