"""`python manage.py seed_demo`: SPEC's "Demo data": the demo catalog and the devtenant's people."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from access.audit import Actor
from access.models import AuditEvent, Role
from access.registry import registry_file_read
from access.services import roles_registry_import
from catalog.services import location_import
from devtenant.admin import seed_tenant
from devtenant.demo import DEMO_MFA_CODE, DEMO_PASSWORD, DEMO_PEOPLE, demo_tenant
from devtenant.store import Tenant

DEMO_CATALOG = settings.BASE_DIR / "demo" / "catalog" / "catalog-info.yaml"
DEMO_ROLES = settings.BASE_DIR / "demo" / "roles.yaml"


def demo_roles_seed() -> list[str]:
    """The demo's role registry (demo/roles.yaml) on the demo tenant's roles; the roles changed.

    The roles are put in the mirror first, as the first sync would, so that the registry can
    name them before the devtenant runs."""
    entries = registry_file_read(str(DEMO_ROLES))
    for role in demo_tenant(portal_base_url=settings.PORTAL_BASE_URL)["roles"]:
        Role.objects.get_or_create(name=role["name"], defaults={"description": role["description"]})
    changed = roles_registry_import(
        entries=entries, actor=Actor("seed_demo", via=AuditEvent.Via.CLI)
    )
    return [name for name, _ in changed]


class Command(BaseCommand):
    help = "Registers the demo catalog and writes the demo people, roles and applications."

    def handle(self, *args: Any, **options: Any) -> None:
        # Its org.yaml holds the demo's people and teams; payments-api declares gateway routes.
        report = location_import(
            target=str(DEMO_CATALOG), allow_kinds=["User", "Group"], allow_routes=True
        )
        total = report.total
        self.stdout.write(f"Demo catalog: {total} entities from {DEMO_CATALOG}.")
        for problem in report.problems:
            self.stderr.write(str(problem))
        changed = demo_roles_seed()
        self.stdout.write(f"Demo role registry: owners set for {', '.join(changed) or 'no role'}.")
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
        self.stdout.write(
            f"  When a decision asks for a second factor, the devtenant's code is {DEMO_MFA_CODE}."
        )
