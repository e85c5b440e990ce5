"""`python manage.py import_roles FILE [--dry-run]`: set the role registry from a YAML list."""

from __future__ import annotations

import getpass
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.audit import Actor
from access.models import AuditEvent
from access.registry import RegistryError, registry_file_read
from access.services import RequestRefused, roles_registry_import


class Command(BaseCommand):
    help = (
        "Sets who owns each Auth0 role and how it may be granted, from a YAML list of entries "
        "(SPEC's role registry). Roles the file does not name are left as they are. Any "
        "invalid entry changes nothing and exits 1 naming the entry and field."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="a YAML file: a list of {role, owners, ...} entries")
        parser.add_argument("--dry-run", action="store_true", help="print what would change")

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["file"]
        try:
            entries = registry_file_read(source)
        except RegistryError as error:
            raise CommandError(str(error)) from error
        try:
            changed = roles_registry_import(
                entries=entries, actor=Actor(f"cli:{getpass.getuser()}", via=AuditEvent.Via.CLI),
                dry_run=options["dry_run"],
            )  # fmt: skip
        except RequestRefused as refused:
            raise CommandError(f"{source}: {refused}") from refused
        for name, changes in changed:
            for field, change in changes.items():
                before, after = json.dumps(change["from"]), json.dumps(change["to"])
                self.stdout.write(f"{name}: {field} {before} → {after}")
        verb = "would change" if options["dry_run"] else "changed"
        self.stdout.write(f"{len(entries)} entries read, {len(changed)} roles {verb}.")
