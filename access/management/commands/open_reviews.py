"""`python manage.py open_reviews [--now] [--role NAME]`: open the access reviews falling due."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.audit import Actor
from access.models import AccessReview, AuditEvent, Role
from access.reviews import reviews_open_due


class Command(BaseCommand):
    help = (
        "Opens the access review of each role whose next one falls due within "
        "ACCESS_REVIEW_OPEN_BEFORE, as beat does every 15 minutes. With --now, opens the next "
        "review of every role with a schedule now (due on its scheduled day), unless one is "
        "open already."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now", action="store_true", help="open the next review now, however far off"
        )
        parser.add_argument(
            "--role", action="append", default=None, metavar="NAME",
            help="only this role (repeatable)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        roles = options["role"]
        if roles:
            known = set(Role.objects.filter(name__in=roles).values_list("name", flat=True))
            unscheduled = [
                name for name in roles
                if name not in known
                or not Role.objects.filter(name=name, review_every__isnull=False).exists()
            ]  # fmt: skip
            if unscheduled:
                raise CommandError(
                    "no review schedule (reviewEvery) for: "
                    + ", ".join(unscheduled)
                    + "; set one on the role's page, with PUT /api/access/roles/{name} or "
                    "import_roles"
                )
        actor = Actor(f"cli:{getpass.getuser()}", via=AuditEvent.Via.CLI)
        opened = reviews_open_due(force=options["now"], roles=roles, actor=actor)
        for review in AccessReview.objects.filter(pk__in=opened).select_related("role"):
            self.stdout.write(
                f"opened review {review.pk} of {review.role.name}: {review.holders_total} "
                f"holders, due {review.due_at:%Y-%m-%d}"
            )
        self.stdout.write(f"{len(opened)} review{'s' if len(opened) != 1 else ''} opened.")
