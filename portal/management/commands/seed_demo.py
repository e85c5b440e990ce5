"""`python manage.py seed_demo`: the demo tenant of SPEC's "Demo data" in the devtenant."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from devtenant.admin import seed_tenant
from devtenant.demo import DEMO_PASSWORD, DEMO_PEOPLE, demo_tenant
from devtenant.store import Tenant


class Command(BaseCommand):
    help = "Writes the demo people, roles and applications into the devtenant's state file."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.USING_DEVTENANT:
            self.stdout.write(
                f"Auth0 is configured ({settings.AUTH0_ISSUER}): the demo tenant is for the "
                "devtenant only, so no people or roles were written."
            )
            return
        # The same file `python -m devtenant` serves; a running devtenant picks the change up.
        tenant = Tenant(settings.VAR_DIR / "devtenant.json", settings.AUTH0_ISSUER)
        seed_tenant(tenant, demo_tenant(portal_base_url=settings.PORTAL_BASE_URL))
        self.stdout.write(f"Demo tenant written for {settings.PORTAL_BASE_URL}. Sign in as:")
        for email, _, who in DEMO_PEOPLE:
            self.stdout.write(f"  {email:<20} password {DEMO_PASSWORD}   ({who})")
