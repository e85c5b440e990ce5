"""What the benchmarks share: a database of their own, made anew for each run."""

from __future__ import annotations


def fresh_database(url: str) -> None:
    """The bench's own database, dropped and created again: figures from no old rows."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
