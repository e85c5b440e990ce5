"""Template filters of the access pages."""

from datetime import timedelta

from django import template

from portal.durations import duration_words

register = template.Library()


@register.filter
def human_duration(value: timedelta | None) -> str:
    """7 days, 8 hours: a grant's length as people say it."""
    return duration_words(value) if value is not None else ""
