"""`python manage.py sync_roles [--dry-run] [--force]`: mirror Auth0's roles now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.models import RoleSyncRun
from access.sync import SyncBusy, roles_sync


class Command(BaseCommand):
    help = (
        "Reads every Auth0 role and its members and brings the portal's mirror in step, as the "
        "periodic sync does. Exits 1 when the sync failed or its breaker stopped it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="read and report, but change nothing"
        )
        parser.add_argument(
            "--force", action="store_true", help="apply even a mass removal the breaker stops"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = roles_sync(dry_run=options["dry_run"], force=options["force"])
        except SyncBusy as busy:
            raise CommandError(str(busy)) from busy
        for sub, role in report.added:
            self.stdout.write(f"+ {role} → {sub}")
        for sub, role in report.removed:
            self.stdout.write(f"- {role} → {sub}")
        for role in report.gone_roles:
            self.stdout.write(f"! role {role} no longer exists in Auth0")
        for sub, state in report.deactivated:
            self.stdout.write(f"x {sub} is {state} in Auth0: signed out at their next request")
        for sub in report.reactivated:
            self.stdout.write(f"✓ {sub} was unblocked in Auth0: may sign in again")
        self.stdout.write(
            f"{report.roles} roles, {len(report.added)} members added, "
            f"{len(report.removed)} removed, {report.accounts_checked} accounts checked, "
            f"{report.api_calls} API calls, "
            f"{report.seconds:.1f} s: {report.run.get_outcome_display()}"
        )
        if report.outcome in {RoleSyncRun.Outcome.FAILED, RoleSyncRun.Outcome.BLOCKED}:
            self.stderr.write(report.run.message)
            raise SystemExit(1)
