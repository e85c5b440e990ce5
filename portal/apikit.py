"""What the API's routers share: authentication, the caller, and Backstage's error shape.

It imports no router and builds no `NinjaAPI` (portal.api assembles that), so a router
(access.api, catalog.api) and any module may import it without importing every router.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja.errors import HttpError
from ninja.renderers import JSONRenderer

from portal.auth.bearer import BearerError, Principal, principal_from_token
from portal.auth.mfa import session_mfa_at
from portal.models import User
from portal.ratelimits import (
    API_CALLS,
    BAD_TOKENS,
    client_address,
    limit_check,
    limit_count,
    limit_hit,
)
from portal.scopes import API_SCOPES

# The API renders with this one renderer (portal.api hands it to the NinjaAPI), so a body
# written here reads as the API's own.
RENDERER = JSONRenderer()

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda _: HttpResponse())
    check.process_request(request)
    result: HttpResponse | None = check.process_view(request, lambda _: HttpResponse(), (), {})
    return result


def authenticate(request: HttpRequest) -> Principal | None:
    """A bearer token when one is sent (and only then), else the browser's session."""
    header = request.headers.get("Authorization")
    if header is not None:
        # An address that sent too many bad tokens has no more of them verified for a while.
        address = client_address(request)
        limit_check(BAD_TOKENS, request=request, key=address)
        try:
            principal = _bearer_principal(header)
        except BearerError:
            limit_count(BAD_TOKENS, request=request, key=address)
            raise
    elif request.user.is_authenticated:
        if request.method not in SAFE_METHODS and _csrf_failure(request) is not None:
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header")
        # A person in the browser may use the whole API; the policy decides what they may do.
        principal = Principal(
            sub=request.user.sub, via="session", scopes=frozenset(API_SCOPES),
            mfa_at=session_mfa_at(request),
        )  # fmt: skip
    else:
        limit_hit(API_CALLS, request=request, key=f"address:{client_address(request)}")
        return None
    # A person counts the same by session and by token; a machine client by its id.
    limit_hit(API_CALLS, request=request, key=f"caller:{principal.actor}")
    request.principal = principal  # type: ignore[attr-defined]
    return principal


def _bearer_principal(header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BearerError("send the token as: Authorization: Bearer <token>")
    return principal_from_token(token.strip())


def json_response(request: HttpRequest, body: Any, *, status: int = 200) -> HttpResponse:
    content = RENDERER.render(request, body, response_status=status)
    return HttpResponse(
        content, status=status, content_type=f"{RENDERER.media_type}; charset={RENDERER.charset}"
    )


def json_text_response(text: str, *, status: int = 200) -> HttpResponse:
    """An answer already encoded as JSON (the catalog joins its entities' texts), sent as
    `json_response` sends a body."""
    return HttpResponse(
        text, status=status, content_type=f"{RENDERER.media_type}; charset={RENDERER.charset}"
    )


# The names Backstage's error handler gives each status (`@backstage/errors`); its clients tell
# errors apart by name.
ERROR_NAMES = {
    304: "NotModifiedError", 400: "InputError", 401: "AuthenticationError",
    403: "NotAllowedError", 404: "NotFoundError", 409: "ConflictError",
    # @backstage/errors has no class for 429; this is the name http-errors gives it, which
    # Backstage's error handler passes on.
    429: "TooManyRequestsError",
    501: "NotImplementedError", 503: "ServiceUnavailableError",
}  # fmt: skip


def error_response(
    request: HttpRequest,
    status: int,
    name: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """Backstage's error body. Its `request` and `response` parts are what Backstage's clients
    (`ResponseError.fromResponse`) look for before they trust the error's name and message."""
    body = {
        "error": {"name": name, "message": message},
        "request": {"method": request.method, "url": request.get_full_path()},
        "response": {"statusCode": status},
    }
    response = json_response(request, body, status=status)
    for header, value in (headers or {}).items():
        response[header] = value
    return response


def principal_of(request: HttpRequest) -> Principal:
    principal: Principal = request.principal  # type: ignore[attr-defined]
    return principal


def person_of(request: HttpRequest) -> User | None:
    """The person calling, if a person is: the session's user, or a bearer token's `sub`."""
    principal = principal_of(request)
    if principal.is_machine:
        return None
    if principal.via == "session":
        user: User = request.user  # type: ignore[assignment]
        return user
    return User.objects.filter(sub=principal.sub).first()
