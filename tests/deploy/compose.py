"""Reading docker-compose.yml and .env.example as Compose would, for tests that replay them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, and $$.
_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class MissingVariable(Exception):
    """A `${NAME:?message}` whose variable is unset, as `docker compose config` refuses it."""


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation of one string (the subset of the syntax the stack uses)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        current = variables.get(name)
        empty = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in {"-", ":-"} and (current is None if op == "-" else empty):
            return arg or ""
        if op in {"?", ":?"} and (current is None if op == "?" else empty):
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def compose() -> dict[str, Any]:
    """docker-compose.yml as loaded (merge keys resolved, nothing interpolated)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def env_example() -> dict[str, str]:
    """.env.example's variables, as Compose reads an env file (KEY=VALUE, # comments)."""
    variables = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        variables[key.strip()] = value.strip()
    return variables


def service_command(name: str, variables: dict[str, str]) -> list[str]:
    """A service's command, interpolated, as the container would run it."""
    command = compose()["services"][name]["command"]
    assert isinstance(command, list), f"{name}: command should be a list (exec form)"
    return [interpolate(str(part), variables) for part in command]


def service_environment(name: str, variables: dict[str, str]) -> dict[str, str]:
    """A service's `environment:`, interpolated with the env file's variables."""
    environment = compose()["services"][name].get("environment") or {}
    return {key: interpolate(str(value), variables) for key, value in environment.items()}
