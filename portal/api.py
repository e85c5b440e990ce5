"""The JSON API assembled: one NinjaAPI with every router and error handler, for portal.urls.

The routers and what they share (portal.apikit) never import this module; only the URLs do.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from access.api import audit_router
from access.api import router as access_router
from access.authz_api import router as authz_router
from access.review_api import router as reviews_router
from access.reviews import ReviewConflict, ReviewNotAllowed, ReviewRefused
from access.services import AlreadyDecided, NotAllowed, RequestRefused, StepUpRequired
from catalog.api import router as catalog_router
from portal.apikit import ERROR_NAMES, RENDERER, authenticate, error_response
from portal.auth.bearer import BearerError
from portal.auth.mfa import MFA_ACR
from portal.bounds import BodyRefused, JsonBody, body_limit_message, data_error
from portal.ratelimits import RateLimited

api = NinjaAPI(
    title="Atrium API",
    version="1",
    description="Atrium's catalog and access API. Authenticate with an Auth0 bearer token "
    "or a browser session (writes then need the X-CSRFToken header).",
    auth=authenticate,
    urls_namespace="api",
    docs_url=None,
    parser=JsonBody(),
    renderer=RENDERER,
)


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


@api.exception_handler(StepUpRequired)
def _step_up_required(request: HttpRequest, error: StepUpRequired) -> HttpResponse:
    """RFC 9470's answer: sign in again with a second factor (`acr_values`), at most
    `max_age` seconds before deciding. A browser's own pages do that round trip themselves."""
    max_age = int(settings.ACCESS_STEP_UP_MAX_AGE.total_seconds())
    challenge = (
        'Bearer error="insufficient_user_authentication", '
        f'error_description="{str(error).replace(chr(34), chr(39))}", '
        f'acr_values="{MFA_ACR}", max_age={max_age}'
    )
    return error_response(
        request, 401, "StepUpRequired", str(error), {"WWW-Authenticate": challenge}
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


# And the access reviews', the same way.
REFUSALS.update({ReviewRefused: 400, ReviewNotAllowed: 403, ReviewConflict: 409})

for refusal in REFUSALS:
    api.add_exception_handler(refusal, _refused)


@csrf_exempt  # it changes nothing, whatever the method
@login_not_required  # the API answers for itself, never with the sign-in redirect
def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other path under /api/: a JSON 404 in the API's error shape, not the HTML page."""
    return error_response(
        request, 404, "NotFoundError", f"No API route for {request.method} {request.path}"
    )


api.add_router("/access/", access_router)
api.add_router("/access/reviews", reviews_router)
api.add_router("/audit/", audit_router)
api.add_router("/catalog/", catalog_router)
api.add_router("/authz/", authz_router)
