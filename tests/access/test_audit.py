"""The audit log is append-only: on PostgreSQL the database itself refuses changes."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

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
