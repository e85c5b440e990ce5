"""The portal's shared words for time and state, used by every page.

One date style: how long ago or from now, in words, with the exact time in the viewer's time
zone on hover (`TimezoneMiddleware` activates it) and a machine-readable `datetime`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# Beyond this, a moment is said as its date: "in 41 days" is harder to place than "12 Jan".
RELATIVE_FOR = timedelta(days=30)
_UNITS = (
    (timedelta(days=365), "year"),
    (timedelta(days=30), "month"),
    (timedelta(days=7), "week"),
    (timedelta(days=1), "day"),
    (timedelta(hours=1), "hour"),
    (timedelta(minutes=1), "minute"),
)


def exact(value: datetime) -> str:
    """Tue 1 Dec 2026, 22:51 CET: the moment in the active time zone, unambiguous."""
    local = timezone.localtime(value)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def relative(value: datetime, now: datetime | None = None) -> str:
    """3 hours ago, in 2 days, just now; the date itself beyond RELATIVE_FOR."""
    now = now or timezone.now()
    delta = value - now
    distance = abs(delta)
    if distance >= RELATIVE_FOR:
        local = timezone.localtime(value)
        same_year = local.year == timezone.localtime(now).year
        return f"{local.day} {local:%b}" + ("" if same_year else f" {local.year}")
    for index, (unit, word) in enumerate(_UNITS):
        if distance >= unit:
            # To the nearest: a 7-day grant just given ends "in 7 days", not "in 6 days".
            count = round(distance / unit)
            if index and count * unit >= _UNITS[index - 1][0]:
                count, word = 1, _UNITS[index - 1][1]
            words = f"{count} {word}{'' if count == 1 else 's'}"
            return f"in {words}" if delta > timedelta(0) else f"{words} ago"
    return "just now"


@register.filter(is_safe=True)
def when(value: datetime | None) -> SafeString | str:
    """<time datetime="…" title="Tue 1 Dec 2026, 22:51 UTC">3 hours ago</time>"""
    if not isinstance(value, datetime):
        return ""
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact(value), relative(value)
    )


@register.filter
def exact_time(value: datetime | None) -> str:
    """The exact moment alone, for mail and for places a relative time would go stale."""
    return exact(value) if isinstance(value, datetime) else ""


# A state's colour says how it stands for the person; its words say what it is.
_TONES = {
    "pending": "warn",
    "approved": "info",
    "provisioning": "info",
    "active": "ok",
    "held": "ok",
    "denied": "bad",
    "failed": "bad",
    "revoked": "bad",
    "gone": "bad",
    "expired": "muted",
    "cancelled": "muted",
    "lapsed": "muted",
}


@register.simple_tag
def badge(state: str, label: str = "") -> SafeString:
    """<span class="badge badge-ok">granted</span>: a state with its colour and its words."""
    tone = _TONES.get(state, "muted")
    return format_html('<span class="badge badge-{}">{}</span>', tone, label or state)
