"""People by name: `{% person user %}` wherever a page names someone.

The name, the e-mail on hover (and beside it with `email=True`), linked to the catalog User
that is them when the catalog holds one (matched by e-mail, as sign-in matches it). The
links of one page are looked up together: a view may `prime_people(request, emails)` before
rendering a list; otherwise each new e-mail costs one query, remembered for the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from catalog.refs import EntityRefError, parse_entity_ref
from catalog.selectors import user_refs_by_email

register = template.Library()


def request_cache(request: HttpRequest | None, attribute: str) -> dict[str, Any]:
    """A dict kept on the request under this attribute (a fresh one, unkept, without one):
    what a page's tags have looked up already."""
    if request is None:
        return {}
    cache: dict[str, Any] | None = getattr(request, attribute, None)
    if cache is None:
        cache = {}
        setattr(request, attribute, cache)
    return cache


def _cache(request: HttpRequest | None) -> dict[str, str]:
    return request_cache(request, "_atrium_people")


def prime_people(request: HttpRequest, emails: Iterable[str]) -> None:
    """Look up the catalog Users of these e-mails in one query, for the page about to render."""
    cache = _cache(request)
    missing = {email.lower() for email in emails if email} - cache.keys()
    found = user_refs_by_email(emails=missing)
    for email in missing:
        cache[email] = _url(found.get(email, ""))


def person_known(request: HttpRequest, email: str, user_refs: Iterable[str]) -> None:
    """Note the catalog User of an e-mail already looked up (the signed-in person's, which
    their viewer holds), so naming them costs no query."""
    if email:
        _cache(request)[email.lower()] = _url(min(user_refs, default=""))


def _url(ref: str) -> str:
    if not ref:
        return ""
    try:
        return parse_entity_ref(ref).url
    except EntityRefError:
        return ""


def person_url(request: HttpRequest | None, email: str) -> str:
    """The catalog page of the User with this e-mail, or ""."""
    if not email:
        return ""
    key = email.lower()
    if request is None:
        return _url(user_refs_by_email(emails=[key]).get(key, ""))
    cache = _cache(request)
    if key not in cache:
        prime_people(request, [key])
    return cache[key]


def display_name(name: str, email: str, sub: str) -> str:
    """What a person is called on a page: their name, else their e-mail, else their id."""
    if sub == "system":
        return "Atrium"
    if sub.startswith("client:"):
        return f"API client {sub.removeprefix('client:')}"
    if sub.startswith("cli:"):
        return f"{sub.removeprefix('cli:')} (command line)"
    return name or email or sub or "someone"


def render_person(
    request: HttpRequest | None, *, name: str, email: str, sub: str, show_email: bool = False
) -> SafeString:
    label = display_name(name, email, sub)
    hover = email or sub
    url = person_url(request, email) if email else ""
    inner = (
        format_html('<a href="{}" title="{}">{}</a>', url, hover, label)
        if url
        else format_html('<span title="{}">{}</span>', hover, label)
    )
    if show_email and email and email != label:
        inner = format_html('{} <span class="muted email">{}</span>', inner, email)
    return format_html('<span class="person">{}</span>', inner)


@register.simple_tag(takes_context=True)
def person(context: dict[str, Any], user: Any, email: bool = False) -> SafeString:
    """A portal User by name (`{% person request.requester %}`), or "someone" for None."""
    if user is None:
        return format_html('<span class="person">{}</span>', "someone")
    return render_person(
        context.get("request"),
        name=getattr(user, "name", "") or "",
        email=getattr(user, "email", "") or "",
        sub=getattr(user, "sub", "") or "",
        show_email=email,
    )


@register.simple_tag(takes_context=True)
def person_named(
    context: dict[str, Any], name: str, email_address: str, sub: str, email: bool = False
) -> SafeString:
    """A person as a record saved them (an audit event's actor name, e-mail and id)."""
    return render_person(
        context.get("request"), name=name or "", email=email_address or "", sub=sub or "",
        show_email=email,
    )  # fmt: skip
