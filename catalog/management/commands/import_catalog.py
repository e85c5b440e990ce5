"""`python manage.py import_catalog PATH_OR_URL... [--dry-run] [--allow-kinds User,Group]
[--allow-routes | --no-allow-routes]`:
register and ingest descriptors."""

from __future__ import annotations

import getpass
from argparse import BooleanOptionalAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from access.audit import Actor
from access.models import AuditEvent
from catalog.services import LocationRefused, location_import


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
        parser.add_argument(
            "--allow-kinds",
            metavar="KINDS",
            help=(
                "comma-separated kinds these locations may define besides Component, API, "
                "Resource, System, Domain and Location: User, Group. Sets exactly these (an "
                "empty value allows none); without it a registered location keeps its own"
            ),
        )

        parser.add_argument(
            "--allow-routes",
            action=BooleanOptionalAction,
            help=(
                "whether these locations' API and Component entities may declare gateway routes "
                "(atrium.dev/gateway-routes); without it a registered location keeps its own, "
                "a new one may not"
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        raw_kinds: str | None = options["allow_kinds"]
        allow_kinds = None
        if raw_kinds is not None:
            allow_kinds = [kind.strip() for kind in raw_kinds.split(",") if kind.strip()]
        problems = []
        # One transaction for every target, so a dry run also shows conflicts between them.
        with transaction.atomic():
            for target in options["targets"]:
                try:
                    report = location_import(
                        target=target, allow_kinds=allow_kinds, allow_routes=options["allow_routes"]
                    )
                except LocationRefused as error:
                    raise CommandError(str(error)) from error
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
                        **report.allow_kinds_detail,
                    )  # fmt: skip
            if dry_run:
                transaction.set_rollback(True)
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise SystemExit(1)
