"""Times, durations and declassify-on values (docs/POLICY.md §5).

Every time is an aware :class:`datetime` in UTC. Text forms are a date
(``2025-01-01``, midnight UTC) or an RFC 3339 time with ``Z`` or an offset;
a time without a zone is refused rather than guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# re.ASCII: a policy's dates are ISO 8601 in ASCII digits ("٢٠٢٦" is no year).
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_DURATION = re.compile(r"P(?:(\d{1,4})Y)?(?:(\d{1,4})M)?(?:(\d{1,4})W)?(?:(\d{1,5})D)?", re.ASCII)
_EXEMPT = re.compile(r"exempt:([A-Za-z0-9][A-Za-z0-9._-]{0,31})(?:@(\d{4}-\d{2}-\d{2}))?",
                     re.ASCII)
_EVENT = re.compile(r"event:(\S(?:.{0,198}\S)?)")

TIME_HINT = "write a date like 2025-01-31 or a time like 2025-01-31T09:00:00Z"
DECLASSIFY_HINT = (
    "write a date (2035-01-31), a duration after creation (P10Y, P6M, P2W, P30D), "
    "an event (event:end of contract) or an exemption (exempt:25X1 or exempt:25X1@2050-12-31)"
)


# Times the vault accepts, at input and when read back from disk: far
# enough for any document, and never near the ends of what datetime holds
# (an offset or a duration must not overflow it).
MIN_YEAR, MAX_YEAR = 1900, 8000
MAX_DURATION_DAYS = 1000 * 366


def _bounded(moment: datetime, text: str) -> datetime:
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"'{text[:40]}' is out of range (years {MIN_YEAR} to {MAX_YEAR})")
    return moment


def parse_time(text: str) -> datetime:
    """Parse a date or an RFC 3339 time; raise ValueError saying what to write."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("expected a date or time of at most 40 characters")
    try:
        if _DATE.fullmatch(text):
            return _bounded(datetime.combine(date.fromisoformat(text), datetime.min.time(),
                                             UTC), text)
        if _TIME.fullmatch(text):
            return _bounded(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC),
                            text)
    except (ValueError, OverflowError) as e:
        if "out of range (years" in str(e):
            raise
        raise ValueError(f"'{text}' is not a valid date or time") from None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", text):
        raise ValueError(f"time '{text}' has no time zone; expected Z or an offset like +01:00")
    raise ValueError(f"expected a date or time, got '{text}'")


def as_time(value: object, what: str) -> datetime:
    """A time given through the API: aware datetime, date, or text."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{what} must be timezone-aware; use datetime.now(UTC) or .replace(tzinfo=UTC)"
            )
        try:
            return _bounded(value.astimezone(UTC), what)
        except OverflowError:
            raise ValueError(f"{what} is out of range") from None
    if isinstance(value, date):
        return _bounded(datetime.combine(value, datetime.min.time(), UTC), what)
    if isinstance(value, str):
        return parse_time(value)
    raise TypeError(f"{what} must be a datetime, a date or text, not {type(value).__name__}")


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``; whole seconds unless the value has a fraction."""
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


@dataclass(frozen=True, slots=True)
class Duration:
    years: int = 0
    months: int = 0
    days: int = 0

    def after(self, start: datetime) -> datetime:
        # Calendar arithmetic: 29 February plus one year is 28 February.
        # Durations are bounded (parse_duration) and times too (MAX_YEAR), so
        # this stays far inside what datetime holds.
        month0 = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month0 // 12, month0 % 12 + 1
        import calendar  # rarely needed: kept out of every start-up

        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days)


def parse_duration(text: str) -> Duration:
    m = _DURATION.fullmatch(text)
    if m is None or text == "P":
        raise ValueError(f"expected a duration like P10Y, P6M, P2W or P30D, got '{text}'")
    y, mo, w, d = (int(g) if g else 0 for g in m.groups())
    if 366 * y + 31 * mo + 7 * w + d > MAX_DURATION_DAYS:
        raise ValueError(f"'{text}' is longer than 1000 years")
    return Duration(years=y, months=mo, days=7 * w + d)


@dataclass(frozen=True, slots=True)
class DeclassifyOn:
    """A parsed declassify-on value. ``kind`` is date, duration, event or exempt."""

    kind: str
    text: str
    when: datetime | None = None
    duration: Duration | None = None
    code: str | None = None

    def resolve(self, created: datetime | None) -> datetime | None:
        """The moment the document becomes due, or None (event, bare exemption,
        or a duration whose start is unknown)."""
        if self.duration is not None:
            return None if created is None else self.duration.after(created)
        return self.when


def parse_declassify_on(text: str) -> DeclassifyOn:
    """Parse and canonicalise a declassify-on value; ValueError says what to write."""
    if text.startswith("P"):
        return DeclassifyOn("duration", text, duration=parse_duration(text))
    if text.startswith("event:"):
        if _EVENT.fullmatch(text) is None:
            raise ValueError("an event needs a description of 1 to 200 characters after 'event:'")
        return DeclassifyOn("event", text)
    if text.startswith("exempt:"):
        m = _EXEMPT.fullmatch(text)
        if m is None:
            raise ValueError(f"expected exempt:CODE or exempt:CODE@YYYY-MM-DD, got '{text}'")
        when = parse_time(m.group(2)) if m.group(2) else None
        return DeclassifyOn("exempt", text, when=when, code=m.group(1))
    when = parse_time(text)
    canonical = text if _DATE.fullmatch(text) else format_time(when)
    return DeclassifyOn("date", canonical, when=when)
