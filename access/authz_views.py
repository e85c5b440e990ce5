"""`/authz/explain`: what the gateways' decision endpoint would do with a token, for people."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods

from access.forms import GatewayExplainForm
from access.gateway import Target, gateway_explain
from access.policy import viewer_for
from catalog.routes import request_host
from portal.ratelimits import AUTHZ_EXPLAIN, RateLimited, limit_hit, person_key, too_many_page


@require_http_methods(["GET", "POST"])
@sensitive_post_parameters("token")
@sensitive_variables("form")
@never_cache
def authz_explain(request: HttpRequest) -> HttpResponse:
    """The form, and after a POST the steps the decision took, ending in its answer. The
    token is checked and forgotten: the page never renders it back."""
    if request.method != "POST":
        # An entity page links here with its route filled in; never a token from a URL.
        given = {key: request.GET[key][:2_000] for key in ("method", "host", "path")
                 if request.GET.get(key)}  # fmt: skip
        form = GatewayExplainForm(initial=given) if given else GatewayExplainForm()
        return render(request, "access/authz_explain.html", {"form": form})
    form = GatewayExplainForm(request.POST)
    explanation = None
    if form.is_valid():
        try:
            limit_hit(AUTHZ_EXPLAIN, request=request, key=person_key(request))
        except RateLimited as refusal:
            return too_many_page(request, refusal)
        data = form.cleaned_data
        target = Target(method=data["method"], host=request_host(data["host"]),
                        raw_path=data["path"])  # fmt: skip
        explanation = gateway_explain(
            target=target,
            token=data["token"],
            viewer=viewer_for(request.user),  # type: ignore[arg-type]
        )
    # The form is shown again with what was typed, but the token.
    shown = GatewayExplainForm(
        initial={key: form.data.get(key, "") for key in ("method", "host", "path")}
    )
    context = {"form": shown, "errors": form.errors, "explanation": explanation}
    return render(
        request, "access/authz_explain.html", context, status=200 if form.is_valid() else 400
    )
