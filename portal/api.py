"""The JSON API: one NinjaAPI, by session or Auth0 bearer token, with Backstage's error shape."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from access.services import AlreadyDecided, NotAllowed, RequestRefused
from portal.auth.bearer import BearerError, Principal, principal_from_token
from portal.bounds import BodyRefused, JsonBody, body_limit_message, data_error
from portal.models import User
from portal.ratelimits import (
    API_CALLS,
    BAD_TOKENS,
    RateLimited,
    client_address,
    limit_check,
    limit_count,
    limit_hit,
)
from portal.scopes import API_SCOPES

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
        principal = Principal(sub=request.user.sub, via="session", scopes=frozenset(API_SCOPES))
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


api = NinjaAPI(
    title="Atrium API",
    version="1",
    description="Atrium's catalog and access API. Authenticate with an Auth0 bearer token "
    "or a browser session (writes then need the X-CSRFToken header).",
    auth=authenticate,
    urls_namespace="api",
    docs_url=None,
    parser=JsonBody(),
)


def json_response(request: HttpRequest, body: Any, *, status: int = 200) -> HttpResponse:
    return api.create_response(request, body, status=status)


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
    response = api.create_response(request, body, status=status)
    for header, value in (headers or {}).items():
        response[header] = value
    return response


@api.exception_handler(BearerError)
def _bearer_error(request: HttpRequest, error: BearerError) -> HttpResponse:
    name = "AuthenticationError" if error.status == 401 else "NotAllowedError"
    return error_response(
        request,
        error.status,
        name,
        error.description,
        {"WWW-Authenticate": error.www_authenticate},
    )


@api.exception_handler(RateLimited)
def _rate_limited(request: HttpRequest, error: RateLimited) -> HttpResponse:
    retry_after = {"Retry-After": str(error.retry_after)}
    return error_response(request, 429, ERROR_NAMES[429], str(error), retry_after)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: Exception) -> HttpResponse:
    return error_response(
        request,
        401,
        "AuthenticationError",
        "sign in, or send an Auth0 access token as Authorization: Bearer <token>",
        {"WWW-Authenticate": 'Bearer realm="atrium"'},
    )


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, error: ValidationError) -> HttpResponse:
    details: list[dict[str, Any]] = error.errors
    where = "; ".join(
        f"{'.'.join(str(part) for part in item.get('loc', []))}: {item.get('msg')}"
        for item in details
    )
    return error_response(request, 400, "InputError", where or "invalid input")


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    name = ERROR_NAMES.get(error.status_code, "Error")
    refused = error.__cause__ if isinstance(error.__cause__, BodyRefused) else error
    return error_response(request, error.status_code, name, str(refused))


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, error: RequestDataTooBig) -> HttpResponse:
    return error_response(request, 400, "InputError", body_limit_message())


@api.exception_handler(DataError)
def _out_of_range(request: HttpRequest, error: DataError) -> HttpResponse:
    return data_error(request, error)


# The access services' refusals, answered as the pages say them: what was refused and why.
REFUSALS: dict[type[Exception], int] = {RequestRefused: 400, NotAllowed: 403, AlreadyDecided: 409}


def _refused(request: HttpRequest, error: Exception | type[Exception]) -> HttpResponse:
    status = REFUSALS[error if isinstance(error, type) else type(error)]
    return _http_error(request, HttpError(status, str(error)))


for refusal in REFUSALS:
    api.add_exception_handler(refusal, _refused)


@csrf_exempt  # it changes nothing, whatever the method
@login_not_required  # the API answers for itself, never with the sign-in redirect
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under /api/: a JSON 404 in the API's error shape, not the HTML page."""
    return error_response(
        request, 404, "NotFoundError", f"No API route for {request.method} {request.path}"
    )


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


api.add_router("/access/", "access.api.router")
api.add_router("/audit/", "access.api.audit_router")
api.add_router("/catalog/", "catalog.api.router")
