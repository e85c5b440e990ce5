"""`python manage.py import_catalog PATH_OR_URL... [--dry-run]`: register and ingest descriptors."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from access.models import AuditEvent
from access.services import Actor
from catalog.services import location_import


class Command(BaseCommand):
    help = (
        "Registers descriptor files, folders or URLs as locations and ingests them. Exits 1 "
        "with one line per problem (file:document: message) when any descriptor is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
        parser.add_argument(
            "--dry-run", action="store_true", help="check and report, but change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        problems = []
        # One transaction for every target, so a dry run also shows conflicts between them.
        with transaction.atomic():
            for target in options["targets"]:
                report = location_import(target=target)
                suffix = " (dry run: nothing was changed)" if dry_run else ""
                self.stdout.write(
                    f"{report.location.target}: {len(report.added)} added, "
                    f"{len(report.updated)} updated, {len(report.removed)} removed, "
                    f"{report.unchanged} unchanged, {len(report.problems)} problems{suffix}"
                )
                problems.extend(report.problems)
                if not dry_run:
                    Actor(f"cli:{getpass.getuser()}", via=AuditEvent.Via.CLI).record(
                        "catalog.location_registered", report.location.target,
                        added=len(report.added), problems=len(report.problems),
                    )  # fmt: skip
            if dry_run:
                transaction.set_rollback(True)
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise SystemExit(1)
