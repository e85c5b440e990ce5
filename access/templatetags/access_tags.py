"""Template filters of the access pages."""

from datetime import timedelta

from django import template

from portal.durations import DurationError, duration_parse, duration_words

register = template.Library()


@register.filter
def human_duration(value: timedelta | None) -> str:
    """7 days, 8 hours: a grant's length as people say it."""
    return duration_words(value) if value is not None else ""


@register.filter
def iso_duration_words(value: str | None) -> str:
    """`PT8H` as "8 hours": a registry rule's ISO 8601 length, as a page says it."""
    if not value:
        return ""
    try:
        return duration_words(duration_parse(value))
    except DurationError:
        return value
