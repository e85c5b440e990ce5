"""The audit log is append-only: on PostgreSQL the database itself refuses changes."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from access.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access_auditevent SET actor = 'someone-else' WHERE id = %s",
        "DELETE FROM access_auditevent WHERE id = %s",
    ],
)
def test_the_audit_table_refuses_update_and_delete(statement: str) -> None:
    event = AuditEvent.objects.create(actor="auth0|ada", via="web", action="request.created")

    refused = pytest.raises(DatabaseError, match="the audit log is append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).actor == "auth0|ada"


@pytest.mark.django_db(transaction=True)
def test_the_names_arrive_beside_the_records_already_kept() -> None:
    """Migration 0008 adds the actor's name and e-mail to a table whose trigger refuses every
    UPDATE: older records stay as they were, blank in the new fields, and the trigger stays."""
    executor = MigrationExecutor(connection)
    before = [("access", "0007_role_registry")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    old_apps.get_model("access", "AuditEvent").objects.create(
        actor="auth0|ada", via="web", action="request.created"
    )

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    kept = AuditEvent.objects.get()
    assert (kept.actor, kept.actor_name, kept.actor_email) == ("auth0|ada", "", "")
    if connection.vendor == "postgresql":
        refused = pytest.raises(DatabaseError, match="the audit log is append-only")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE access_auditevent SET actor_name = 'A' WHERE id = %s", [kept.pk])
