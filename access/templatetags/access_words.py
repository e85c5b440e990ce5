"""The words of access/words.py for templates: `{{ event.action|action_words }}`,
`{{ event.via|via_words }}`, `{{ membership.source|source_words:"your" }}`, and who decided a
request, `{{ request|decided_by:"approved" }}`."""

from __future__ import annotations

from django import template

from access import words
from access.models import AccessRequest

register = template.Library()

register.filter("action_words", words.action_words)
register.filter("via_words", words.via_words)
register.filter("source_words", words.source_words)


@register.filter
def decided_by(request: AccessRequest, outcome: str) -> str:
    """Who approved (or denied) a request, by name: "Grace Hopper and Alan Turing"."""
    return words.names_words(
        [str(d.approver) for d in request.decisions.all() if d.outcome == outcome]
    )


@register.filter
def detail_words(value: object) -> str:
    """A value of an audit record's detail as a page prints it: a list as its items, comma
    separated (`auth0|1, auth0|2`), anything else as it is."""
    if isinstance(value, list | tuple):
        return ", ".join(str(each) for each in value)
    return str(value)
