"""A URLconf in which two of the bar's sections are routed, as later apps will route them."""

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns
from portal.views import home


def placeholder(request: HttpRequest) -> HttpResponse:
    return home(request)


catalog_patterns = ([path("", placeholder, name="entity_list")], "catalog")
access_patterns = (
    [
        path("", placeholder, name="overview"),
        path("approvals/", placeholder, name="approvals"),
    ],
    "access",
)

urlpatterns = [
    path("catalog/", include(catalog_patterns)),
    path("access/", include(access_patterns)),
    *portal_urlpatterns,
]
