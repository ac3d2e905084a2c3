"""Built-in detectors of identifiers with public check rules (docs/POLICY.md §11.2).

Each detector finds candidates with a simple, linear regular expression
and keeps only those that pass the identifier's own validation (check
digits, issuer ranges, reserved values), to keep false positives down.
A detector yields the character offsets where it found a valid one;
the candidate text never leaves this module.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

__all__ = ["DETECTORS", "MAX_MATCH", "iban_valid", "luhn_valid"]

# Each pattern starts with a plain character class and checks the character
# before it with a lookbehind placed after that first character: the
# regular-expression engine can then skip ahead to candidates quickly.
#
# Every match of every pattern here holds at least one digit and is at most
# MAX_MATCH characters long (an IBAN of 34 characters with a space between
# each is the longest); a lookbehind reads at most 2 characters before a
# match and a lookahead 1 after it (tests/intake/test_intake_detectors.py
# checks both). A finder given ``pos`` and ``end`` reads only text[:end] and
# matches from pos on, so the scanner may hand it only the stretches of a
# long text near its digits (vault/intake/_scan.py, docs/POLICY.md §11.2).
MAX_MATCH = 64


def _end(text: str, end: int | None) -> int:
    return len(text) if end is None else end


# -- payment cards ------------------------------------------------------------

# A candidate is a run of digit groups, single spaces or dashes between,
# not right after a digit: the pattern takes up to 19 digits, to the end of
# a group. A card number is a run of its whole groups, 13-19 digits (below).
_CARD = re.compile(r"\d(?<!\d\d)(?:[ -]?\d){12,18}(?!\d)")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of ISO/IEC 7812-1 over a string of digits."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# (first digits low, high, allowed lengths): the major networks' IIN ranges.
_IIN: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset((13, 16, 19))),  # Visa
    (51, 55, frozenset((16,))),  # Mastercard
    (2221, 2720, frozenset((16,))),  # Mastercard 2-series
    (34, 34, frozenset((15,))),  # American Express
    (37, 37, frozenset((15,))),
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(14, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (5018, 5018, frozenset(range(12, 20))),  # Maestro
    (5020, 5020, frozenset(range(12, 20))),
    (5038, 5038, frozenset(range(12, 20))),
    (6304, 6304, frozenset(range(12, 20))),
    (6759, 6759, frozenset(range(12, 20))),
    (6761, 6763, frozenset(range(12, 20))),
)


def card_valid(digits: str) -> bool:
    """A known issuer range, a length that issuer uses, and the Luhn check."""
    return len(digits) in issuer_lengths(digits[:4]) and luhn_valid(digits)


@functools.lru_cache(maxsize=4096)
def issuer_lengths(head: str) -> frozenset[int]:
    """The lengths the issuers whose ranges take a number starting with
    ``head`` (its first four digits; a range names at most four) use."""
    out: frozenset[int] = frozenset()
    for lo, hi, lengths in _IIN:
        prefix = head[:len(str(lo))]
        if len(prefix) == len(str(lo)) and prefix.isdigit() and lo <= int(prefix) <= hi:
            out |= lengths
    return out


def dashed_as_a_card(sizes: list[int]) -> bool:
    """Whether digit groups of these sizes are grouped as a card number is
    written: 4-6-4 or 4-6-5, or groups of 4 and a last one of 1-4 digits,
    13-19 in all (4-4-4-1 ... 4-4-4-4-3)."""
    if sizes in ([4, 6, 4], [4, 6, 5]):
        return True
    return (len(sizes) in (4, 5) and all(n == 4 for n in sizes[:-1])
            and 1 <= sizes[-1] <= 4 and 13 <= sum(sizes) <= 19)


def _grouped_as_a_card(sizes: list[int]) -> bool:
    """A card's own grouping, or one group of 13-19 digits."""
    return (len(sizes) == 1 and 13 <= sizes[0] <= 19) or dashed_as_a_card(sizes)


def _card_run(text: str, start: int, groups: list[tuple[int, int]], *,
              after_dash: bool, cut_start: bool) -> int | None:
    """The end of a card number of whole groups from ``start`` on, or None.

    ``groups`` are the candidate's digit groups, (start, end) each. The
    candidate whole is judged as the pattern found it, whatever its
    grouping; a run cut from it -- shorter than the candidate, or starting
    at a later group of the digits before it (``cut_start``) -- counts
    only grouped as a card is written (4-4-4-4, 4-6-5, ... or one group):
    an expiry date, a CVV or a line number beside a card is cut off, while
    a row of lottery numbers, scores or amounts is not read as every card
    its groups could spell. A dashed run is cut at a dash only where it is
    grouped by spaces alone, and so is one right after a digit and a dash
    (``after_dash``): a longer dashed run (an ISBN, a date range) is not
    cut; a dashed candidate right after a dash (a document id,
    ``PREFIX-412345678-1000``) counts only grouped as a card."""
    # The issuer is known from the first digits, the same for every run:
    # only a run of a length it uses is looked at further (a text of "4 "
    # repeated, each digit starting candidates of 13 to 19 one-digit
    # groups, took 7 s for 400 KB when every run was checked whole).
    head = "".join(text[a:b] for a, b in groups)[:4]
    lengths = issuer_lengths(head)
    sizes = [b - a for a, b in groups]
    total = sum(sizes)
    after_a_dash = start >= 1 and text[start - 1] == "-"
    for i in range(len(groups) - 1, -1, -1):
        if i + 1 < len(groups):
            total -= sizes[i + 1]
        if not 13 <= total <= 19 or total not in lengths:
            continue
        end = groups[i][1]
        run = text[start:end]
        dashed = "-" in run
        cut = cut_start or i + 1 < len(groups)
        if (cut or (dashed and after_a_dash)) and not _grouped_as_a_card(sizes[:i + 1]):
            continue
        spaced = not dashed and " " in run
        cut_at_dash = i + 1 < len(groups) and text[end] == "-"
        if (after_dash or cut_at_dash) and not spaced:
            continue
        if card_valid(run.replace(" ", "").replace("-", "")):
            return end
    return None


def _groups(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each run of digits in text[start:end], a match of _CARD."""
    groups, at = [], start
    for i in range(start, end):
        if not text[i].isdigit():
            groups.append((at, i))
            at = i + 1
    groups.append((at, end))
    return groups


ROW = 8  # four-digit groups in a row that is read as a table's, not as cards


def _row_of_fours(text: str, start: int, stop: int) -> int | None:
    """The end of the run of four-digit groups (single spaces or dashes
    between) holding the group at ``start``, if it has ROW groups or more,
    else None. Looks back at most ROW - 1 groups, and forward to the run's
    end only once it is that long: linear in the text over all calls."""
    def four(at: int) -> bool:  # exactly four digits at text[at:at + 4]
        return (at >= 0 and at + 4 <= stop and text[at:at + 4].isdigit()
                and (at == 0 or not text[at - 1].isdigit())
                and (at + 4 == stop or not text[at + 4].isdigit()))

    count, first = 1, start
    while count < ROW and first >= 5 and text[first - 1] in " -" and four(first - 5):
        first, count = first - 5, count + 1
    last = start  # a short run ends within ROW - 1 groups; a long one is then skipped
    while last + 9 <= stop and text[last + 4] in " -" and four(last + 5):
        last, count = last + 5, count + 1
    return last + 4 if count >= ROW else None


def _cards(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    # Each candidate is tried as every run of its whole groups from its
    # start; where none is a card, the next try starts at its second group
    # (an expiry date, a CVV or a line number beside a card is no part of
    # it). Each try reads at most MAX_MATCH characters: linear in the text.
    stop = _end(text, end)
    m = _CARD.search(text, pos, stop)
    covered = pos  # where the candidates tried so far end: one starting before is cut
    row_end = pos  # where the last row of ROW four-digit groups or more ends
    while m is not None:
        start = m.start()
        cut_start = start < covered
        covered = max(covered, m.end())
        after = start
        while after < stop and text[after].isdigit():  # at most 19: the pattern's
            after += 1
        width = after - start
        # A run cut from the digits before it starts as a card's own
        # grouping does (a group of 4, or one of 13 or more digits), and no
        # issuer's number starts with 0, 1, 7, 8 or 9: the next group at once.
        if text[start] not in "23456" or (cut_start and width != 4 and width < 13):
            m = _CARD.search(text, after + 1, stop)
            continue
        if width == 4 and start >= row_end:
            row_end = _row_of_fours(text, start, stop) or row_end
        if start < row_end:  # a timetable's or a table's row: no card read in it
            m = _CARD.search(text, row_end, stop)
            continue
        groups = _groups(text, start, m.end())
        after_dash = start >= 2 and text[start - 1] == "-" and text[start - 2].isdigit()
        # The pattern stops at 19 digits: where more groups follow, the
        # candidate is cut from a longer run, not the run whole (a row of
        # lottery numbers is not read as the card its first groups spell).
        end_at = m.end()
        longer = end_at + 1 < stop and text[end_at] in " -" and text[end_at + 1].isdigit()
        found = _card_run(text, start, groups, after_dash=after_dash,
                          cut_start=cut_start or longer)
        if found is not None:
            yield start
            m = _CARD.search(text, found, stop)
        else:
            m = _CARD.search(text, groups[1][0] if len(groups) > 1 else m.end(), stop)


# -- IBAN ---------------------------------------------------------------------

# ISO 13616 lengths, from the SWIFT IBAN registry.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
_IBAN = re.compile(r"[A-Z](?<![A-Za-z0-9].)[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")


def iban_valid(iban: str) -> bool:
    """Length for the country, then ISO 7064 MOD 97-10: the number formed by
    moving the first four characters to the end (letters as 10..35) is 1
    modulo 97."""
    iban = iban.replace(" ", "")
    if not iban.isascii() or IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged.upper())
    return int(number) % 97 == 1


def _ibans(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _IBAN.finditer(text, pos, _end(text, end)):
        value = m.group()
        want = IBAN_LENGTHS.get(value[:2])
        compact = value.replace(" ", "")
        # The candidate may run on into following text: try the country's length.
        if want is not None and len(compact) >= want and iban_valid(_take(value, want)):
            yield m.start()


def _take(value: str, n: int) -> str:
    out = []
    for ch in value:
        if ch != " ":
            out.append(ch)
            if len(out) == n:
                break
    return "".join(out)


# -- US Social Security number --------------------------------------------------

_SSN = re.compile(r"(\d(?<![\d-].)\d{2})-(\d{2})-(\d{4})(?![\d-])")
_SSN_EXAMPLES = frozenset(("078051120", "219099999"))  # published in advertising


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """SSA rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    a = int(area)
    return (a != 0 and a != 666 and a < 900 and group != "00" and serial != "0000"
            and area + group + serial not in _SSN_EXAMPLES)


def _ssns(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _SSN.finditer(text, pos, _end(text, end)):
        if ssn_valid(*m.groups()):
            yield m.start()


# -- UK National Insurance number ------------------------------------------------

_NINO = re.compile(r"([A-CEGHJ-PR-TW-Z](?<![A-Za-z0-9].)[A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?"
                   r"(\d{2}) ?([A-D])(?![A-Za-z0-9])")
_NINO_NEVER = frozenset(("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"))


def _ninos(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _NINO.finditer(text, pos, _end(text, end)):
        if m.group(1) not in _NINO_NEVER:
            yield m.start()


# -- German tax identification number (Steuer-ID) --------------------------------

_STEUER_ID = re.compile(r"([1-9](?<!\d.)\d) ?(\d{3}) ?(\d{3}) ?(\d{3})(?!\d)")


def steuer_id_valid(digits: str) -> bool:
    """11 digits, not starting with 0; in the first ten exactly one digit
    appears twice or three times and no other repeats; the last digit is
    the ISO 7064 MOD 11,10 check digit of the first ten."""
    if len(digits) != 11 or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return False
    counts = [digits[:10].count(d) for d in set(digits[:10])]
    if sorted(c for c in counts if c > 1) not in ([2], [3]):
        return False
    product = 10
    for ch in digits[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (2 * total) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _steuer_ids(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _STEUER_ID.finditer(text, pos, _end(text, end)):
        if steuer_id_valid("".join(m.groups())):
            yield m.start()


# -- French social security number (NIR) ------------------------------------------

_NIR = re.compile(r"([1-478])(?<![\dA-Za-z].) ?(\d{2}) ?(\d{2}) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3})"
                  r" ?(\d{2})(?![\d])")


def nir_valid(sex: str, year: str, month: str, dept: str, commune: str, order: str,
              key: str) -> bool:
    """Month 01-12 or 20-99 (unknown or provisional), then the key: 97 minus
    the 13-digit number modulo 97 (Corsica: 2A counts as 19, 2B as 18)."""
    m = int(month)
    if not (1 <= m <= 12 or m >= 20):
        return False
    number_text = sex + year + month + dept.replace("2A", "19").replace("2B", "18") \
        + commune + order
    return 97 - int(number_text) % 97 == int(key)


def _nirs(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _NIR.finditer(text, pos, _end(text, end)):
        if nir_valid(*m.groups()):
            yield m.start()


# -- Dutch citizen service number (BSN) ---------------------------------------------

_BSN = re.compile(r"(\d(?<![\d.].)\d{3})\.?(\d{2})\.?(\d{3})(?!\d)")


def bsn_valid(digits: str) -> bool:
    """The "11-proef": 9·d1 + 8·d2 + ... + 2·d8 − 1·d9 is a multiple of 11 (not 0)."""
    if len(digits) != 9 or not digits.isdigit() or not digits.isascii():
        return False
    total = sum((9 - i) * int(d) for i, d in enumerate(digits[:8])) - int(digits[8])
    return total != 0 and total % 11 == 0


def _bsns(text: str, pos: int = 0, end: int | None = None) -> Iterator[int]:
    for m in _BSN.finditer(text, pos, _end(text, end)):
        if bsn_valid("".join(m.groups())):
            yield m.start()


# name -> (finder, one-line description for docs and explanations); a finder
# is called as finder(text) or finder(text, pos, end) (see MAX_MATCH)
Finder = Callable[[str, int, int | None], Iterator[int]]
DETECTORS: dict[str, tuple[Finder, str]] = {
    "payment-card": (_cards, "payment card number: 13-19 digits, known issuer range, Luhn"),
    "iban": (_ibans, "IBAN: country length (ISO 13616), MOD 97-10 check"),
    "us-ssn": (_ssns, "US Social Security number ddd-dd-dddd: SSA area, group, serial rules"),
    "uk-nino": (_ninos, "UK National Insurance number: prefix and suffix rules (no check digit)"),
    "de-steuer-id": (_steuer_ids, "German tax id (Steuer-ID): digit rule, MOD 11,10 check"),
    "fr-nir": (_nirs, "French social security number (NIR): month rule, key 97 - n mod 97"),
    "nl-bsn": (_bsns, "Dutch citizen service number (BSN): 11-proef"),
}
