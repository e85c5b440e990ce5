"""Every module of the apps imports on its own, first, in a fresh interpreter: no import cycle."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("portal", "catalog", "access", "devtenant")


def app_modules() -> list[str]:
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            # Running __main__ starts the devtenant; migrations are loaded by Django's loader.
            if parts[-1] == "__main__" or "migrations" in parts:
                continue
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def import_alone(module: str) -> tuple[str, str]:
    """The error importing `module` first gives, after `django.setup()` as Django's own
    processes do; empty when it imports."""
    code = f"import django; django.setup(); import {module}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    return module, "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def test_every_app_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = app_modules()
    # A cycle shows only when a module of it is imported first, so one interpreter each.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = {module: error for module, error in pool.map(import_alone, modules) if error}
    assert "access.api" in modules and "portal.urls" in modules
    assert failures == {}
