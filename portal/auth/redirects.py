"""Where a person may be sent after signing in: only paths on this site."""

from __future__ import annotations

from django.utils.http import url_has_allowed_host_and_scheme


def safe_next_path(candidate: str | None, *, default: str = "/") -> str:
    """`candidate` when it is a same-origin relative path, else `default`.

    Absolute URLs, scheme-relative `//host` and the backslash forms browsers treat as
    `//host` are all refused, so a crafted sign-in link cannot send anyone elsewhere.
    """
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if "\\" in candidate or any(ord(char) < 32 for char in candidate):
        return default
    if not url_has_allowed_host_and_scheme(candidate, allowed_hosts=None):
        return default
    return candidate
