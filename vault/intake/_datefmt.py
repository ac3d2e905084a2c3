"""Excel's date, time and duration formats: a number as such a section
shows it (docs/POLICY.md §11.1).

A cell's number is a count of days since the workbook's epoch, its
fraction the time of day. ``"card 4111 1111 1111 "[h]`` shows 46.2916666666667
as ``card 4111 1111 1111 1111`` (1,111 elapsed hours); ``"4111 1111 1111 "mmdd``
completes a card number with a date's month and day. So a date section is
shown as Excel shows it, every digit beside the literal text around it:
the 1900 date system with its 1900-02-29 (day 60) and its day 0
(1900-01-00), or the 1904 one; elapsed hours, minutes and seconds
(``[h]``, ``[mm]``, ``[ss]``) as their whole count; ``m`` as minutes after
an hour or before a second, else the month; hours on a 12-hour clock
beside ``AM/PM`` or ``A/P``; fractions of a second (``.0`` to ``.000``).
Month and day names are English. Whether Excel rounds the time to the
seconds the section shows or cuts it is not relied on: the section is
shown both ways when the two differ (10:29:59.6 under ``h:mm`` as 10:29
and 10:30). Elapsed time of more letters than two (``[hhh]``) is shown
both padded to its letters and to two. A negative number, or one past
9999-12-31, shows no date (Excel fills the cell with ``#``): None.

A sheet may hold 100,000 dates: what a section shows of a day (its
literal text, year, month and day) is worked out once per day, and what
it shows of a time of day once per time, each kept (:func:`_on_day`,
:func:`_at_time`).
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass

__all__ = ["Plan", "Step", "plan", "readings"]

Step = tuple[str, str]  # (what, text): see plan()
_MS_DAY = 86_400_000
_LAST_DAY = {1900: 2958465, 1904: 2957003}  # 9999-12-31 in each system
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ELAPSED_MS = {"h": 3_600_000, "m": 60_000, "s": 1000}
_MOST_PLACES = 3  # digits of a second Excel shows (.000)
_PADDED = 2  # digits elapsed time is padded to at most, besides to its letters
_DAY_STEPS = frozenset(("lit", "year", "buddhist", "month", "day"))
_TIME_STEPS = frozenset(("hour", "minute", "second", "fraction", "ampm"))


def _letter(tok: tuple[str, str]) -> str:
    """The date letter of a token (``[h]``: h), "" for none."""
    kind, text = tok
    return text[:1].lower() if kind in ("date", "elapsed") else ""


def _minutes(toks: list[tuple[str, str]], i: int) -> bool:
    """Whether the ``m``/``mm`` at ``i`` is minutes: it follows an hour or
    comes before a second, only other text between."""
    before = next((_letter(t) for t in reversed(toks[:i]) if _letter(t)), "")
    after = next((_letter(t) for t in toks[i + 1:] if _letter(t)), "")
    return before == "h" or after == "s"


def plan(toks: list[tuple[str, str]]) -> tuple[Step, ...]:
    """What a date section shows, in order, worked out once per format:
    (``lit``, text), (a field: ``year``, ``month``, ``minute``, ...; its
    width or form), (``elapsed``, letter and width), (``fraction``, places),
    (``ampm``, the code), (``general``, "")."""
    out: list[Step] = []
    i, n = 0, len(toks)
    while i < n:
        kind, text = toks[i]
        if kind == "point" and i + 1 < n and toks[i + 1] == ("digit", "0"):
            j = i + 1
            while j < n and toks[j] == ("digit", "0"):
                j += 1
            out.append(("fraction", str(j - i - 1)))
            i = j
            continue
        if kind == "date":
            out.append(_field(text, _minutes(toks, i)))
        elif kind == "elapsed":
            out.append(("elapsed", text[0].lower() + str(len(text))))
        elif kind in ("ampm", "general"):
            out.append((kind, text))
        elif kind == "point":
            out.append(("lit", "."))
        elif kind == "other" and text == ",":  # a comma is text in a date ("d mmm, yyyy")
            out.append(("lit", ","))
        elif kind == "digit":  # no number's digit in a date: shown as the placeholder fills
            out.append(("lit", "0" if text == "0" else " " if text == "?" else ""))
        elif kind == "lit":
            out.append((kind, text))
        i += 1
    return tuple(out)


def _field(run: str, minutes: bool) -> Step:
    """A run of one date letter (``yyyy``, ``mmm``, ``hh``) as a field."""
    letter, size = run[0].lower(), len(run)
    if letter == "m" and minutes and size <= 2:
        return ("minute", str(size))
    if letter == "m":
        return ("month", str(min(size, 5)))
    if letter == "y":
        return ("year", "2" if size <= 2 else "4")
    if letter == "e":
        return ("year", "4")
    if letter == "b":  # the Buddhist era's year
        return ("buddhist", "2" if size <= 2 else "4")
    if letter == "d":
        return ("day", str(min(size, 4)))
    if letter == "h":
        return ("hour", str(min(size, 2)))
    if letter == "s":
        return ("second", str(min(size, 2)))
    return ("lit", "")  # g: an era's name, no digit


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    """A date section worked out once: its steps (:func:`plan`), the
    digits of a second it shows (its first ``.0``...), whether it shows a
    12-hour clock, whether it shows a calendar field at all, where its
    steps of the time of day and of the whole count (elapsed time, General)
    are, and whether an elapsed time has more letters than two. Plans
    compare and hash by identity (one per section of a parsed format),
    the key of what is kept of each day and time."""

    steps: tuple[Step, ...]
    places: int
    twelve: bool
    calendar: bool
    clock: tuple[int, ...]  # the steps of the time of day
    counts: tuple[int, ...]  # the steps of the whole count: elapsed time, General
    wide: bool  # an elapsed time of more than two letters

    @classmethod
    def of(cls, toks: list[tuple[str, str]]) -> Plan:
        steps = plan(toks)
        places = next((min(int(t), _MOST_PLACES) for k, t in steps if k == "fraction"), 0)
        return cls(steps, places, any(k == "ampm" for k, _ in steps),
                   any(k in ("year", "buddhist", "month", "day") for k, _ in steps),
                   tuple(i for i, (k, _) in enumerate(steps) if k in _TIME_STEPS),
                   tuple(i for i, (k, _) in enumerate(steps)
                         if k not in _DAY_STEPS and k not in _TIME_STEPS),
                   any(k == "elapsed" and int(t[1:]) > _PADDED for k, t in steps))


_KEPT = 30  # digits of a number's fraction that can move its millisecond


def readings(section: Plan, whole: str, fraction: str, system: int,
             general: str) -> list[str]:
    """The number ``whole``.``fraction`` (days, not negative) as the
    section shows it in the date ``system`` (1900 or 1904): the time cut
    to the millisecond, and rounded to the section's seconds, a reading
    each where they differ; none for a number no date shows."""
    if len(whole) > 8 or int(whole) > _LAST_DAY[system]:
        return []
    if not fraction:  # a date: midnight, however it is rounded
        cut = rounded = int(whole) * _MS_DAY
    else:
        fraction = fraction[:_KEPT]
        scale = 10 ** len(fraction)
        twice = 2 * int(whole + fraction) * _MS_DAY  # twice the milliseconds, times scale
        cut = (twice + scale) // (2 * scale)  # to the nearest millisecond, half up
        unit = 10 ** (_MOST_PLACES - section.places)  # milliseconds of the last digit shown
        rounded = (twice + unit * scale) // (2 * unit * scale) * unit
    out: list[str] = []
    for total in (cut, rounded) if rounded != cut else (cut,):
        for wide in (False, True) if section.wide else (False,):
            if (text := _show(section, total, system, general, wide)) is not None \
                    and text not in out:
                out.append(text)
    return out


def _calendar(day: int, system: int) -> tuple[int, int, int, int]:
    """(year, month, day, weekday from Sunday = 0) of a day number, as
    Excel counts: in 1900, day 0 is 1900-01-00 and day 60 the 1900-02-29
    that never was (Lotus's leap year), every weekday before March 1900
    one off as in Excel."""
    if system == 1904:
        d = datetime.date(1904, 1, 1) + datetime.timedelta(days=day)
        return d.year, d.month, d.day, (day + 5) % 7
    weekday = (day - 1) % 7
    if day == 0:
        return 1900, 1, 0, weekday
    if day == 60:
        return 1900, 2, 29, weekday
    d = datetime.date(1899, 12, 31 if day < 60 else 30) + datetime.timedelta(days=day)
    return d.year, d.month, d.day, weekday


def _show(section: Plan, total: int, system: int, general: str, wide: bool) -> str | None:
    """The section's text for ``total`` milliseconds since the epoch, its
    elapsed time padded to its letters if ``wide``, else to two at most."""
    day, of_day = divmod(total, _MS_DAY)
    if day > _LAST_DAY[system]:
        return None
    shown = _on_day(section, day if section.calendar else 0, system)
    if not section.clock and not section.counts:
        return "".join(shown)
    out = list(shown)
    if section.clock:
        for i, text in zip(section.clock, _at_time(section, of_day), strict=True):
            out[i] = text
    for i in section.counts:
        what, form = section.steps[i]
        if what == "elapsed":
            width = int(form[1:]) if wide else min(int(form[1:]), _PADDED)
            out[i] = f"{total // _ELAPSED_MS[form[0]]:0{width}d}"
        else:  # General in a date section: the number as it is written
            out[i] = general
    return "".join(out)


@functools.lru_cache(maxsize=8192)  # a sheet's dates fall on far fewer days than it has cells
def _on_day(section: Plan, day: int, system: int) -> tuple[str, ...]:
    """What the section shows of day ``day``: its literal text and calendar
    fields, "" for every other step."""
    year, month, mday, weekday = _calendar(day, system) if section.calendar else (0, 1, 0, 0)
    out: list[str] = []
    for what, form in section.steps:
        if what == "lit":
            out.append(form)
        elif what == "year":
            out.append(f"{year % 100:02d}" if form == "2" else str(year))
        elif what == "month":
            name = _MONTHS[month - 1]
            out.append(str(month) if form == "1" else f"{month:02d}" if form == "2"
                       else name[:3] if form == "3" else name if form == "4" else name[:1])
        elif what == "day":
            out.append(str(mday) if form == "1" else f"{mday:02d}" if form == "2"
                       else _DAYS[weekday][:3] if form == "3" else _DAYS[weekday])
        elif what == "buddhist":
            out.append(f"{(year + 543) % 100:02d}" if form == "2" else str(year + 543))
        else:
            out.append("")
    return tuple(out)


@functools.lru_cache(maxsize=8192)  # and at far fewer times of day
def _at_time(section: Plan, of_day: int) -> tuple[str, ...]:
    """What the section shows of the time ``of_day`` (milliseconds since
    midnight): the text of each of its steps of the time of day."""
    hour, rest = divmod(of_day, 3_600_000)
    minute, rest = divmod(rest, 60_000)
    second, ms = divmod(rest, 1000)
    out: list[str] = []
    for i in section.clock:
        what, form = section.steps[i]
        if what == "minute":
            out.append(f"{minute:0{form}d}")
        elif what == "second":
            out.append(f"{second:0{form}d}")
        elif what == "hour":
            out.append(f"{(hour % 12 or 12) if section.twelve else hour:0{form}d}")
        elif what == "fraction":
            digits = int(form)
            out.append("." + f"{ms:03d}"[:min(digits, _MOST_PLACES)]
                       + "0" * max(0, digits - _MOST_PLACES))
        else:  # AM/PM, A/P, in the code's case
            am = hour < 12
            out.append((form[:2] if am else form[3:5]) if len(form) == 5
                       else form[0] if am else form[2])
    return tuple(out)
