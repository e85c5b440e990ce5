"""docker-compose.yml read as Compose would read it (no Docker here): what the stack promises."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.deploy.compose import ROOT, MissingVariable, compose, env_example, interpolate

# The Compose specification's keys (compose-spec.io), those a file may use at the top level and
# in a service: anything else `docker compose config` refuses.
TOP_LEVEL_KEYS = {"version", "name", "services", "networks", "volumes", "secrets", "configs",
                  "include", "models"}  # fmt: skip
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "depends_on",
    "restart", "ports", "expose", "volumes", "healthcheck", "stop_grace_period", "stop_signal",
    "networks", "labels", "user", "working_dir", "deploy", "profiles", "logging", "init",
    "secrets", "configs", "extra_hosts", "hostname", "cap_add", "cap_drop", "read_only",
    "tmpfs", "ulimits", "container_name", "develop", "pull_policy", "scale", "sysctls",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval",
                    "disable"}  # fmt: skip
LONG_RUNNING = {"web", "worker", "beat", "caddy", "db", "redis"}


def seconds(duration: str) -> float:
    """A Compose duration (`45s`, `1m30s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts and duration, f"unreadable duration {duration!r}"
    return int(parts.group(1) or 0) * 60 + int(parts.group(2) or 0)


def test_every_key_is_one_the_compose_specification_defines() -> None:
    stack = compose()

    assert set(stack) - {"x-atrium"} <= TOP_LEVEL_KEYS
    for name, service in stack["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS, name
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for entry in service.get("env_file", []):
            # `required` is what needs Compose 2.24; the README says so.
            assert set(entry) <= {"path", "required", "format"}, name
    assert set(stack["services"]) == LONG_RUNNING | {"migrate"}


def test_only_caddy_publishes_ports_and_web_is_reached_on_the_network() -> None:
    services = compose()["services"]

    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"caddy"}
    assert {"80:80", "443:443"} <= set(services["caddy"]["ports"])
    assert services["web"]["expose"] == ["8000"]
    assert "--bind=0.0.0.0:8000" in services["web"]["command"]
    assert services["caddy"]["environment"]["ATRIUM_UPSTREAM"] == "web:8000"
    assert "./deploy/caddy/Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]


def test_every_long_running_service_has_a_health_check_and_the_one_shot_none() -> None:
    services = compose()["services"]

    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    # Beat's check asks beat itself, which only answers when started to.
    assert "--enable-remote-control" in services["beat"]["command"]
    assert "celerybeat@$$HOSTNAME" in services["beat"]["healthcheck"]["test"][1]


def test_containers_get_more_time_to_stop_than_gunicorn_takes_to_finish_requests() -> None:
    web = compose()["services"]["web"]
    graceful = next(
        int(part.split("=", 1)[1])
        for part in web["command"]
        if part.startswith("--graceful-timeout=")
    )

    assert seconds(web["stop_grace_period"]) > graceful
    assert seconds(compose()["services"]["worker"]["stop_grace_period"]) >= 60


def test_env_example_holds_every_variable_the_stack_requires() -> None:
    variables = env_example()
    text = (ROOT / "docker-compose.yml").read_text()

    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == {"ATRIUM_HOST", "POSTGRES_PASSWORD"}
    assert required <= set(variables)
    for name in required:
        interpolate(f"${{{name}:?missing}}", variables)
    with pytest.raises(MissingVariable, match="ATRIUM_HOST"):
        interpolate(compose()["services"]["caddy"]["environment"]["ATRIUM_HOST"], {})
    assert variables["ATRIUM_HOST"] == urlsplit(variables["PORTAL_BASE_URL"]).hostname
    assert variables["BEHIND_TLS_PROXY"] == "true"
    # Services find the database by its parts, so the password is never put in a URL.
    environment = compose()["services"]["web"]["environment"]
    assert "DATABASE_URL" not in environment and environment["POSTGRES_HOST"] == "db"


def test_the_image_installs_with_the_script_the_runtime_test_replays() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()

    assert "RUN sh deploy/install-runtime.sh deps" in dockerfile
    assert "RUN sh deploy/install-runtime.sh project" in dockerfile
    assert "requirements/runtime.txt" in dockerfile
    for artefact in ("**/node_modules", ".env", ".venv", "var", "test-results", ".coverage"):
        assert artefact in ignored
