"""Every module of the apps imports on its own, first, in a fresh interpreter: no import cycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("portal", "catalog", "access", "devtenant")

# Run in a process of its own, with no module of the apps imported: it imports the libraries
# the apps build on (not the code under test, and most of the time an import takes), then
# forks one child per module, which sets Django up as Django's own processes do and imports
# that module first. It prints {module: the error, or ""}.
FORKING_IMPORTER = """
import importlib, json, os, sys
import celery, django, flask, httpx, ninja, pydantic, requests, yaml

results, pending, running = {}, list(sys.argv[1:]), {}
while pending or running:
    while pending and len(running) < (os.cpu_count() or 2):
        module = pending.pop()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                django.setup()
                importlib.import_module(module)
                error = ""
            except BaseException as failure:
                error = f"{type(failure).__name__}: {failure}"
            os.write(write_end, error[:2000].encode())
            os._exit(0)
        os.close(write_end)
        running[pid] = (module, read_end)
    pid, status = os.wait()
    module, read_end = running.pop(pid)
    with os.fdopen(read_end, "rb") as pipe:
        error = pipe.read().decode()
    results[module] = error or ("" if status == 0 else f"the import ended with status {status}")
print(json.dumps(results))
"""


def app_modules() -> list[str]:
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__main__":  # running it starts the devtenant
                continue
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_every_app_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = app_modules()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    done = subprocess.run(
        [sys.executable, "-c", FORKING_IMPORTER, *modules],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    results: dict[str, str] = json.loads(done.stdout)
    assert sorted(results) == sorted(modules)
    assert {"access.api", "catalog.api", "portal.urls"} <= set(results)
    assert {module: error for module, error in results.items() if error} == {}
