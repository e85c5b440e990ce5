"""The image's steps replayed without Docker: only the runtime dependencies, installed by the
image's own script, run the Compose services' commands against PostgreSQL and Redis."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from devtenant.process import free_port
from tests.deploy.compose import (
    ROOT,
    compose,
    env_example,
    service_command,
    service_environment,
)

pytestmark = pytest.mark.integration

INSTALL_SCRIPT = ROOT / "deploy" / "install-runtime.sh"
LOCK = ROOT / "requirements" / "runtime.txt"
VENVS = ROOT / "var" / "runtime-venv"


def runtime_venv() -> Path:
    """A virtualenv holding what the image holds, made once per lock (and install script)."""
    key = hashlib.sha256()
    for source in (LOCK, INSTALL_SCRIPT, ROOT / "pyproject.toml"):
        key.update(source.read_bytes() if source.exists() else b"")
    venv = VENVS / key.hexdigest()[:16]
    if (venv / ".complete").exists():
        return venv
    shutil.rmtree(VENVS, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # As the image's RUN lines call it: `python` is the environment's own, nothing else on it.
    environment = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(venv),
        **{key: value for key, value in os.environ.items() if key.startswith("PIP_")},
    }
    for step in ("deps", "project"):
        subprocess.run(["sh", str(INSTALL_SCRIPT), step], env=environment, check=True, timeout=900)
    (venv / ".complete").touch()
    return venv


class Services:
    """The Compose services' processes, each logging to its own file under tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = (self.tmp_path / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text(errors="replace")

    def alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)}")

    def stop(self) -> dict[str, int | None]:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                codes[name] = process.wait()
        return codes


@pytest.fixture
def database() -> Iterator[dict[str, str]]:
    """A database of its own on the suite's PostgreSQL server, as the `db` service would be."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("set DATABASE_URL to a PostgreSQL server to replay the image (CI does)")
    server = {
        "host": db["HOST"] or "127.0.0.1",
        "port": str(db["PORT"] or 5432),
        "user": db["USER"],
        "password": db["PASSWORD"] or "",
    }
    name = f"{db['NAME']}_runtime_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {**server, "name": name}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_image_runs_migrate_web_worker_and_beat_from_the_lock_alone(
    tmp_path: Path, database: dict[str, str]
) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to replay the image against Redis (CI does)")
    venv = runtime_venv()
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True, text=True, check=True,
    ).stdout.lower()  # fmt: skip
    assert "pytest" not in installed, "the runtime environment holds dev dependencies"

    # .env.example with the edits the README asks for, a password Compose cannot put in a URL.
    dotenv = env_example() | {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": "p@ss:w/rd?#%",
        "AUTH0_CLIENT_ID": "portal-client",
        "AUTH0_CLIENT_SECRET": "portal-secret",
    }
    # Where the container has `db` and `redis`, this machine's servers stand in.
    local_servers = {
        "POSTGRES_HOST": database["host"],
        "POSTGRES_PORT": database["port"],
        "POSTGRES_USER": database["user"],
        "POSTGRES_DB": database["name"],
        "REDIS_URL": redis_url,
    }
    hostname = socket.gethostname()
    base = {
        "PATH": f"{venv / 'bin'}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HOSTNAME": hostname,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "ATRIUM_VAR_DIR": str(tmp_path / "var"),
        "ATRIUM_ENV_FILE": str(tmp_path / "no.env"),
        # Tasks this replay's beat sends go to its own worker, whoever else shares the broker.
        "CELERY_TASK_DEFAULT_QUEUE": f"runtime-{uuid.uuid4().hex}",
    }

    def env_of(service: str) -> dict[str, str]:
        return base | dotenv | service_environment(service, dotenv) | local_servers

    # The image's build step, then `migrate` as its container runs it.
    collect = subprocess.run(
        ["python", "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT, env=base | {"DEBUG": "false", "SECRET_KEY": "build-only"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr
    migrate = subprocess.run(
        service_command("migrate", dotenv), cwd=ROOT, env=env_of("migrate"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    services = Services(tmp_path)
    port = free_port()
    web = [
        f"--bind=127.0.0.1:{port}" if part.startswith("--bind=") else part
        for part in service_command("web", dotenv)
    ]
    try:
        services.start("web", web, env_of("web"))
        services.start("worker", service_command("worker", dotenv), env_of("worker"))
        services.start("beat", service_command("beat", dotenv), env_of("beat"))

        deadline = time.monotonic() + 60
        status, body = 0, dict[str, object]()
        while time.monotonic() < deadline:
            services.alive("web")
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, f"{body}\n{services.log('web')}"

        # Each container's own health check, run as Docker runs it.
        for service in ("worker", "beat"):
            healthcheck = healthcheck_command(service)
            deadline = time.monotonic() + 90
            while True:
                services.alive(service)
                check = subprocess.run(
                    healthcheck, cwd=ROOT, env=env_of(service),
                    capture_output=True, text=True, timeout=60,
                )  # fmt: skip
                if check.returncode == 0:
                    break
                assert time.monotonic() < deadline, (
                    f"{service}'s health check failed:\n{check.stdout}{check.stderr}\n"
                    f"{services.log(service)}"
                )
                time.sleep(1)
    finally:
        codes = services.stop()
    for name in ("web", "worker", "beat"):
        assert codes[name] in {0, -signal.SIGTERM}, f"{name}: {codes[name]}\n{services.log(name)}"


def healthcheck_command(service: str) -> list[str]:
    """A service's health check as an argv: CMD as is, CMD-SHELL through sh (with $$ as $)."""
    test = compose()["services"][service]["healthcheck"]["test"]
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["sh", "-c", rest[0].replace("$$", "$")]
    assert kind == "CMD", f"{service}: unexpected health check form {kind}"
    return list(rest)
