"""What a person typed into a form whose session ended before it arrived, kept across signing
in again and given back to the same person only.

A form that keeps its draft carries `draft_token(request, fields=...)` in a hidden field: a
signed value naming who typed it, on which page, and which fields to keep. When the form
arrives without a session (ended, or gone), the sign-in middleware keeps those fields' values
in the session it starts for signing in again; Django's login() carries an anonymous session's
data into the signed-in one. The page takes the draft back once the person who typed it is
signed in; signing in as anyone else drops it (`draft_forget_unless`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.http import HttpRequest

from portal.auth.redirects import safe_next_path

DRAFT_FIELD = "atrium_draft"
SESSION_KEY = "atrium_draft"
_SALT = "portal.auth.drafts"
# A form's text is bounded by its own fields; this only keeps a hostile post out of a session.
_MAX_CHARS = 4000
_MAX_FIELDS = 20


@dataclass(frozen=True)
class DraftClaim:
    """What a form's signed draft field says: whose it is, the page, the fields to keep."""

    sub: str
    path: str
    fields: tuple[str, ...]


def draft_token(request: HttpRequest, *, fields: Iterable[str]) -> str:
    """The hidden value of a form whose typed `fields` outlive a session that ends under it."""
    sub = getattr(request.user, "sub", "")
    value = {"sub": sub, "path": request.get_full_path(), "fields": list(fields)}
    return signing.dumps(value, salt=_SALT, compress=True)


def draft_claim(request: HttpRequest) -> DraftClaim | None:
    """The draft field of this POST, if the portal signed it within a session's lifetime."""
    token = request.POST.get(DRAFT_FIELD, "")
    if not token:
        return None
    lifetime: timedelta = settings.SESSION_LIFETIME
    try:
        value = signing.loads(token, salt=_SALT, max_age=lifetime)
    except signing.BadSignature:  # also an expired one
        return None
    if not isinstance(value, dict):
        return None
    sub, path, fields = value.get("sub"), value.get("path"), value.get("fields")
    if not (isinstance(sub, str) and sub and isinstance(path, str) and isinstance(fields, list)):
        return None
    names = tuple(name for name in fields[:_MAX_FIELDS] if isinstance(name, str))
    return DraftClaim(sub=sub, path=safe_next_path(path), fields=names)


def draft_keep(request: HttpRequest, claim: DraftClaim) -> None:
    """Keep what this POST typed into the claim's fields, in the session it is about to sign
    in again with."""
    values = {name: request.POST.get(name, "")[:_MAX_CHARS] for name in claim.fields}
    request.session[SESSION_KEY] = {"sub": claim.sub, "path": claim.path, "values": values}


def draft_take(request: HttpRequest) -> dict[str, str] | None:
    """What the person signed in now typed on this page before signing in again; once."""
    draft = request.session.get(SESSION_KEY)
    if not isinstance(draft, dict) or draft.get("path") != request.get_full_path():
        return None
    del request.session[SESSION_KEY]
    if not draft.get("sub") or draft.get("sub") != getattr(request.user, "sub", None):
        return None
    values = draft.get("values")
    return {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else None


def draft_forget_unless(request: HttpRequest, *, sub: str) -> None:
    """Drop a kept draft unless it is this person's: whoever signs in next on a shared
    browser never sees what someone else typed."""
    draft = request.session.get(SESSION_KEY)
    if draft is not None and (not isinstance(draft, dict) or draft.get("sub") != sub):
        del request.session[SESSION_KEY]
