"""Django's database sessions, with the session read by one SQL statement of its own.

Every signed-in request reads its session; Django's ORM took longer to build and compile
`Session.objects.get(session_key=..., expire_date__gt=now)` than PostgreSQL took to answer it.
The row, the expiry test and what a missing or expired session does are Django's
(`django.contrib.sessions.backends.db`); writes are unchanged, and so is every other database
than PostgreSQL.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import connections, router
from django.utils import timezone


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> AbstractBaseSession | None:
        model = self.model
        alias = router.db_for_read(model)
        connection = connections[alias]
        if connection.vendor != "postgresql":  # elsewhere its columns need the ORM's conversion
            return super()._get_session_from_db()  # type: ignore[misc]  # not in the stubs
        if self.session_key is None:  # no key, or one Django refused as malformed
            return None
        table = connection.ops.quote_name(model._meta.db_table)
        names = ["session_key", "session_data", "expire_date"]
        columns = ", ".join(connection.ops.quote_name(name) for name in names)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {table} WHERE {connection.ops.quote_name('session_key')}"
                f" = %s AND {connection.ops.quote_name('expire_date')} > %s",
                [self.session_key, connection.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        session: AbstractBaseSession = model.from_db(alias, names, row)
        return session
