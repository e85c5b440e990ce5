"""Entities by title: `{% entity_link ref %}` wherever a page names an entity by its ref.

Its title (a group's or person's display name), linked to its page, the ref on hover; a ref
the catalog does not hold is shown as code. A view may `prime_entities(request, refs)` to look
a page's refs up in one query; otherwise each new ref costs one, remembered for the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import template
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from catalog.selectors import EntityLabel, entity_labels
from catalog.templatetags.people import request_cache

register = template.Library()


def _cache(request: HttpRequest | None) -> dict[str, EntityLabel]:
    return request_cache(request, "_atrium_entities")


def prime_entities(request: HttpRequest | None, refs: Iterable[str]) -> dict[str, EntityLabel]:
    """The labels of these refs, looked up together and kept for the request."""
    cache = _cache(request)
    wanted = {ref.lower() for ref in refs if ref}
    cache.update(entity_labels(refs=wanted - cache.keys()))
    return {ref: cache[ref] for ref in wanted if ref in cache}


def render_entity(label: EntityLabel | None, ref: str) -> SafeString:
    if label is None or not label.url:
        return format_html("<code>{}</code>", ref)
    # A person or a service is named by name alone.
    noun = "" if label.noun in ("user", "component") else label.noun
    link = format_html('<a href="{}" title="{}">{}</a>', label.url, label.ref, label.title)
    return format_html("{} {}", link, noun) if noun else link


@register.simple_tag(takes_context=True)
def entity_link(context: dict[str, Any], ref: str) -> SafeString:
    """`{% entity_link "group:default/team-payments" %}` → Payments team, linked."""
    if not ref:
        return format_html("{}", "")
    request = context.get("request")
    labels = prime_entities(request, [ref]) if request is not None else entity_labels(refs=[ref])
    return render_entity(labels.get(ref.lower()), ref)
