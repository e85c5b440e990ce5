"""The locks hold the whole tree, hashed, at pyproject.toml's pins, and agree with each other."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def locked(name: str) -> dict[str, tuple[str, list[str]]]:
    """requirements/NAME.txt as {package: (version, hashes)}."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split("\\", 1)[0].split(";", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        requirement = Requirement(first)
        (version,) = (spec.version for spec in requirement.specifier if spec.operator == "==")
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries[canonicalize_name(requirement.name)] = (version, hashes)
    return entries


def pins(group: str | None = None) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["optional-dependencies"][group] if group else project["dependencies"]
    result: dict[str, str] = {}
    for line in listed:
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        result[canonicalize_name(requirement.name)] = spec.version
    return result


def test_every_direct_pin_is_locked_at_its_version() -> None:
    runtime, dev = locked("runtime"), locked("dev")

    for name, version in pins().items():
        assert runtime[name][0] == version, f"{name}: run `make lock`"
        assert dev[name][0] == version, f"{name}: run `make lock`"
    for name, version in pins("dev").items():
        assert dev[name][0] == version, f"{name}: run `make lock`"
        assert name not in runtime, f"{name} is a dev dependency, not the image's"


def test_the_image_runs_the_versions_ci_tested_and_every_file_is_hashed() -> None:
    runtime, dev = locked("runtime"), locked("dev")

    assert "packaging" in runtime, "kombu's Redis transport needs it"
    for name, (version, hashes) in runtime.items():
        assert dev[name][0] == version, name
        assert hashes, name
    assert all(hashes for _, hashes in dev.values())
