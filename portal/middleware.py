"""Middleware of the portal app."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from portal import views

_PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
}


class HealthCheckMiddleware:
    """Answer the probes before host validation and the https redirect.

    Container and load-balancer probes call the process by its internal address over plain
    http; they must not be refused for their Host header or redirected to https.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = _PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)
