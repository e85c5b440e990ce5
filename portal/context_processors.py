"""Template context every page shares."""

from django.http import HttpRequest

from portal.navigation import NavItem, nav_items


def portal(request: HttpRequest) -> dict[str, list[NavItem]]:
    return {"nav_items": nav_items(path=request.path)}
