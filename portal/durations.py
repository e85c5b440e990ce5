"""ISO 8601 durations as Atrium reads them from people, descriptors and the registry."""

from __future__ import annotations

from datetime import timedelta

from django.utils.dateparse import parse_duration

# No grant lasts longer (settings refuse an ACCESS_MAX_DURATION beyond it): a value past it is
# refused where it is read, so no later sum with a date can overflow.
LONGEST = timedelta(days=365)


class DurationError(ValueError):
    """The value is not a duration Atrium can use; the message says why, naming the value."""


# No duration Atrium reads is written with more characters (`P365D`, `P1DT6H30M`).
MAX_CHARACTERS = 64


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def duration_parse(raw: str) -> timedelta:
    """`P30D`, `PT12H`, `P1DT6H`: positive, at most a year."""
    text = raw.strip()
    if len(text) > MAX_CHARACTERS:
        raise DurationError(
            f"{_shown(raw)} is {len(text):,} characters long; a duration such as P30D has at "
            f"most {MAX_CHARACTERS}"
        )
    try:
        value = parse_duration(text) if text.upper().startswith("P") else None
    except OverflowError:  # more days than a timedelta holds: certainly past the longest
        value = LONGEST * 2
    except ValueError:
        value = None
    if value is None:
        raise DurationError(f"{_shown(raw)} is not an ISO 8601 duration such as P30D or PT12H")
    if value <= timedelta(0):
        raise DurationError(f"{_shown(raw)} must be longer than zero")
    if value > LONGEST:
        raise DurationError(
            f"{_shown(raw)} is longer than a year (P365D), the longest grant Atrium makes"
        )
    return value


def duration_iso(duration: timedelta) -> str:
    """ISO 8601 as people write it: P7D, PT8H, P1DT12H."""
    days, seconds = duration.days, duration.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if not days and not time:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def duration_words(duration: timedelta) -> str:
    """A length as people say it (7 days, 1 day, 8 hours, 30 minutes): the one wording the
    forms, the pages, the mail and the messages share."""
    days, seconds = duration.days, duration.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    parts = [
        f"{count} {unit}{'s' if count != 1 else ''}"
        for count, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if count
    ]
    return ", ".join(parts) or f"{int(duration.total_seconds())} seconds"
