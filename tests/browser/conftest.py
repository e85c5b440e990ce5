"""Playwright drives Debian's Chromium: browsers cannot be downloaded on these machines."""

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

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


# --- Accessibility: axe-core in the page ------------------------------------------------------

# Installed by `make test` (`npm ci` in this folder, pinned by its package-lock.json).
AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# What fails a page: axe's two worst impacts. Moderate and minor findings are left to review.
AXE_FAILING_IMPACTS = ("serious", "critical")


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        pytest.fail(
            f"axe-core is not installed at {AXE_SCRIPT}: run `make test`, or "
            "`npm ci` in tests/browser/"
        )
    return AXE_SCRIPT.read_text()


@pytest.fixture
def axe(axe_source: str) -> Callable[[Page], None]:
    """`axe(page)` fails the test on any serious or critical violation axe-core finds in the
    page as it is now, naming each rule, its impact, the elements and axe's help."""

    def check(page: Page) -> None:
        # Evaluated through the DevTools protocol, which the page's script-src 'self' does not
        # govern: the page is scanned under its own Content-Security-Policy, unchanged (a
        # <script> element, as `add_script_tag` makes, would be refused by it).
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(axe_source)
        results = page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,"
            " helpUrl: v.helpUrl, targets: v.nodes.map((n) => n.target.join(' '))})))"
        )
        failing = [v for v in results if v["impact"] in AXE_FAILING_IMPACTS]
        if failing:
            size = page.viewport_size or {"width": 0, "height": 0}
            pytest.fail(
                f"axe-core finds on {page.url} at {size['width']}×{size['height']} px:\n"
                + describe_violations(failing)
            )

    return check


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        lines.extend(f"    {target}" for target in violation["targets"])
    return "\n".join(lines)


# The control the keyboard is on, and whether it shows a ring: an outline of 2 px or more, or
# a box shadow (null once the keyboard has come round to a control it was on before).
FOCUSED_CONTROL = """() => {
  const control = document.activeElement;
  if (!control || control === document.body) return null;
  window.__atriumFocused = window.__atriumFocused || new WeakSet();
  if (window.__atriumFocused.has(control)) return null;
  window.__atriumFocused.add(control);
  const style = getComputedStyle(control);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
    || style.boxShadow !== "none";
  const name = (control.getAttribute("aria-label") || control.textContent || control.name || "")
    .trim().replace(/\\s+/g, " ").slice(0, 40);
  return {ring, control: `<${control.tagName.toLowerCase()}> ${name}`};
}"""


@pytest.fixture
def focus_rings() -> Callable[[Page], None]:
    """`focus_rings(page)` presses Tab through every control of the page and fails the test
    on any the keyboard reaches that shows no focus ring."""

    def check(page: Page, most: int = 400) -> None:
        without = []
        for _ in range(most):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED_CONTROL)
            if focused is None:
                break
            if not focused["ring"]:
                without.append(focused["control"])
        if without:
            pytest.fail(f"no focus ring on {page.url}:\n" + "\n".join(f"- {c}" for c in without))

    return check
