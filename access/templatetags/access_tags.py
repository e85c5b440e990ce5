"""Template filters of the access pages."""

from datetime import timedelta

from django import template

from access.services import humanize_duration

register = template.Library()


@register.filter
def human_duration(value: timedelta | None) -> str:
    """7 days, 8 hours: a grant's length as people say it."""
    return humanize_duration(value) if value is not None else ""
