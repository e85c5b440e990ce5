"""Playwright drives Debian's Chromium: browsers cannot be downloaded on these machines."""

import os
import shutil
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `apt-get install -y chromium` "
            "(or set CHROMIUM_PATH)"
        )
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(os.path.dirname(__file__)):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def portal(live_server: Any, devtenant_process: Any, settings: Any) -> Any:
    """Atrium served for the browser, signing in through the devtenant."""
    settings.PORTAL_BASE_URL = live_server.url
    settings.AUTH0_ISSUER = devtenant_process.issuer
    devtenant_process.reset(portal_base_url=live_server.url)
    return live_server


def demo_seed() -> None:
    """What `make run` shows: the demo catalog, with its people and teams, and the demo's role
    registry (seed_demo's own steps, without writing the devtenant's file)."""
    from catalog.services import location_refresh, location_register
    from portal.management.commands.seed_demo import DEMO_CATALOG, demo_roles_seed

    location = location_register(target=str(DEMO_CATALOG), allow_kinds=["User", "Group"])
    location_refresh(location=location)
    demo_roles_seed()
