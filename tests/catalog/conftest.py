"""Catalog test helpers: descriptor files served over loopback HTTP, and signed-in people."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from access.models import Role, RoleMembership
from portal.models import User


@pytest.fixture
def served(tmp_path: Path, settings: Any) -> Iterator[str]:
    """tmp_path over HTTP on loopback, which URL locations may read as an allowed host."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.CATALOG_ALLOWED_HOSTS = [f"127.0.0.1:{server.server_address[1]}"]
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def signed_in(email: str, *roles: str, email_verified: bool = True) -> Client:
    """A browser session of a person who holds these roles in the mirror, signed in with an
    e-mail Auth0 verified unless told otherwise."""
    user = User.objects.create_user(
        f"auth0|{email}", email, email.split("@")[0].title(), email_verified=email_verified
    )
    for name in roles:
        role, _ = Role.objects.get_or_create(name=name)
        RoleMembership.objects.create(user=user, role=role, source="sign_in")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def demo_catalog() -> None:
    """The demo catalog `make run` shows (demo/catalog/), ingested."""
    from catalog.services import location_refresh, location_register
    from portal.management.commands.seed_demo import DEMO_CATALOG

    location_refresh(
        location=location_register(target=str(DEMO_CATALOG), allow_kinds=["User", "Group"])
    )


def names(items: list[dict[str, Any]]) -> list[str]:
    """The names of entities as the API returns them."""
    return [item["metadata"]["name"] for item in items]
