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


def databases_drop(url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with `prefix` (a peer's, made by its plugins), on
    the server of `url`; the names dropped."""
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT datname FROM pg_database WHERE left(datname, length(%s)) = %s",
                [prefix, prefix],
            )
        ]
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names


def percentile(samples: list[float], share: float) -> float:
    """The sample at this share of the sorted samples (0.5: the median, 0.95: the 95th)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def peak_rss_mib(pid: int) -> float | None:
    """The most resident memory the process has had (VmHWM), in MiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def child_pids(pid: int) -> list[int]:
    """The process's direct children (a gunicorn master's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []
