"""`python manage.py expire_grants`: end grants whose time is up, in Auth0 and locally."""

from typing import Any

from django.core.management.base import BaseCommand

from access.services import grants_expire


class Command(BaseCommand):
    help = "End grants whose time is up: the role is removed in Auth0, then the grant expires."

    def handle(self, *args: Any, **options: Any) -> None:
        ended = grants_expire()
        self.stdout.write(f"{len(ended)} grant{'s' if len(ended) != 1 else ''} ended")
