"""The console in a real browser (Playwright driving Debian's /usr/bin/chromium).

One service (uvicorn on its own thread, embedded store) and one Pieces emulator with 300
assets for the module, one browser; the tests run in order as a newcomer would: the printed
sign-in link, the wizard end to end, search, a conflict, the live feed, the sync frequency.
Every page is screenshotted into test-artifacts/console/ (gitignored) and scanned with the
vendored axe-core; no test may leave an error in the browser console.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pieces_integration.adapters.sql import migrate
from pieces_integration.bootstrap import Container, Overrides
from pieces_integration.config import load_settings
from pieces_integration.domain.model import AssetConflict, Role, new_id
from pieces_integration.emulators.pieces.server import EmulatorServer
from pieces_integration.entrypoints.api.app import create_app
from pieces_integration.service_layer.local_admin import LOCAL_ADMIN, SignInCodes
from tests.browser.service import ServiceThread
from tests.e2e.helpers import emulator_thread
from tests.fakes import HashingEmbedder

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("PIECES_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "console"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ASSETS = 300

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


class Stack:
    def __init__(self, service: ServiceThread, emulator: EmulatorServer, code: str) -> None:
        self.service = service
        self.emulator = emulator
        self.code = code

    @property
    def container(self) -> Container:
        running: Container = self.service.app.state.container
        return running

    def token(self) -> dict[str, str]:
        token = self.container.jwt.issue(LOCAL_ADMIN, Role.ADMIN, ttl_seconds=600)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("console-browser")
    settings = load_settings(data_dir=data)
    migrate.upgrade(settings.sqlalchemy_url)
    codes = SignInCodes()
    code = codes.issue()
    app = create_app(settings, overrides=Overrides(embedder=HashingEmbedder()), signin_codes=codes)
    service = ServiceThread(app)
    with emulator_thread(assets=ASSETS, seed=7) as emulator:
        service.start()
        try:
            yield Stack(service, emulator, code)
        finally:
            service.stop()


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    # After the stack: Playwright's sync API keeps an event loop running in this thread.
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(path=str(AXE))  # outside the page's CSP, like an extension
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    yield opened
    context.close()


class ConsoleErrors:
    """What the browser console reported; a test may expect one (a bad form's 422)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.expected: list[str] = []

    def expect(self, fragment: str) -> None:
        self.expected.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.seen if not any(f in e for f in self.expected)]


@pytest.fixture(autouse=True)
def console_errors(page: Any) -> Iterator[ConsoleErrors]:
    report = ConsoleErrors()
    errors = report.seen

    def on_console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_error(error: Any) -> None:
        errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_error)
    yield report
    page.remove_listener("console", on_console)
    page.remove_listener("pageerror", on_error)
    assert report.unexpected() == []


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_violations(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return found


def test_the_sign_in_link_opens_the_console(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.service.url}/")  # no session yet: the sign-in page
    assert page.url.startswith(f"{stack.service.url}/console/sign-in")
    assert serious_violations(page) == []
    shoot(page, "sign-in")
    response = page.goto(f"{stack.service.url}/api/v1/auth/local-signin?code={stack.code}")
    assert response is not None and response.ok
    assert response.headers["content-type"].startswith("text/html")
    assert page.url.endswith("/console/setup")  # a newcomer starts with the wizard
    assert page.locator("h1").inner_text() == "Set up"


def test_the_wizard_runs_end_to_end_with_a_300_asset_sync(stack: Stack, page: Any) -> None:
    page.fill("#url", stack.emulator.base_url)
    page.click("button:has-text('Detect')")
    assert "Found Pieces OS" in page.locator("#detect-result").inner_text()
    shoot(page, "setup-1-detect")
    page.click("text=Next: connect")
    assert page.input_value("#url") == stack.emulator.base_url
    shoot(page, "setup-2-connect")
    page.click("button:has-text('Connect')")
    page.wait_for_url("**/console/setup?step=sync*")
    page.click("#start-sync")
    page.wait_for_url("**step=sync&started=1")
    # Leave at once, as if the tab were closed: the run belongs to the server.
    page.goto("about:blank")
    page.goto(f"{stack.service.url}/console/setup?step=sync")
    page.wait_for_selector("#sync-numbers")
    page.wait_for_function(
        "() => document.querySelector('#sync-next') !== null", timeout=90_000, polling=200
    )
    numbers = page.locator("#sync-numbers").inner_text()
    # The connection's first stream frame may have started the import before the button:
    # the run shown is the last one, the library holds everything either way.
    assert "100 %" in numbers and "0 errors" in numbers
    assert f"{ASSETS} assets in your library" in numbers
    bar = page.locator("#sync-bar")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    shoot(page, "setup-3-sync")
    page.click("#sync-next")
    shoot(page, "setup-4-aiwfe")
    page.click("#aiwfe-next")
    page.fill("#sync_frequency_seconds", "60")
    shoot(page, "setup-5-preferences")
    page.click("#save-preferences")
    page.wait_for_url("**step=done")
    assert page.locator("#setup-done").is_visible()
    shoot(page, "setup-6-done")
    assert stack.container.sync.scheduler.interval_for(LOCAL_ADMIN) == 60


def test_search_as_you_type_finds_an_asset(stack: Stack, page: Any) -> None:
    name = next(iter(stack.emulator.state.assets.values())).name
    page.goto(f"{stack.service.url}/console/assets")
    page.locator("#q").press_sequentially(name, delay=20)
    page.wait_for_selector(f"#results .asset-name:text-is('{name}')")
    assert "match" in page.locator("#result-count").inner_text()
    shoot(page, "assets")
    page.click(f"#results .asset-name:text-is('{name}')")
    page.wait_for_selector(".code .highlight")
    shoot(page, "asset-detail")


def test_a_conflict_is_resolved(stack: Stack, page: Any) -> None:
    listed = httpx.get(
        f"{stack.service.url}/api/v1/assets", params={"limit": 1}, headers=stack.token()
    ).json()
    asset = listed[0]  # a list, with the cursor in the Link header
    conflict = AssetConflict(
        id=new_id(),
        user_id=LOCAL_ADMIN,
        asset_id=asset["id"],
        side="pieces",
        base={"name": asset["name"], "content": "base\n"},
        ours={"name": asset["name"], "content": asset["content"]},
        theirs={"name": asset["name"], "content": "changed in Pieces\n"},
        strategy="manual",
    )

    async def add() -> None:
        async with stack.container.uow() as uow:
            await uow.conflicts.add(conflict)
            await uow.commit()

    stack.service.call(add)
    page.goto(f"{stack.service.url}/console/conflicts")
    shoot(page, "conflicts")
    page.click(f"a[href='/console/conflicts/{conflict.id}']")
    assert page.locator(".diff").is_visible()
    shoot(page, "conflict")
    page.check("#r-theirs")
    page.click("#resolve")
    page.wait_for_selector("#resolved")
    stored = httpx.get(f"{stack.service.url}/api/v1/assets/{asset['id']}", headers=stack.token())
    assert stored.json()["content"] == "changed in Pieces\n"


def test_a_live_event_appears_within_a_second_of_an_api_write(stack: Stack, page: Any) -> None:
    page.goto(f"{stack.service.url}/console/feed")
    page.wait_for_selector("#feed[data-live='1']", state="attached")
    name = f"live {new_id()[:8]}"
    started = time.monotonic()
    created = httpx.post(
        f"{stack.service.url}/api/v1/assets",
        json={"name": name, "content": "print('live')"},
        headers=stack.token(),
    )
    assert created.status_code == 201
    page.wait_for_selector(f"#feed li:has-text('{name}')", timeout=1_000)
    assert time.monotonic() - started < 1.0
    shoot(page, "feed")


def _seconds(text: str) -> int:
    match = re.search(r"(\d+)", text)
    assert match is not None, text
    return int(match[1])


def _scheduled_text(page: Any, url: str) -> str:
    """The status page's next-sync text once the scheduler has the user's connection: on a
    loaded machine the page can be served just before the scheduler registers it. Bounded."""
    deadline = time.monotonic() + 20
    while True:
        page.goto(url)
        text: str = page.locator("#next-sync").inner_text()
        if re.search(r"\d", text) or time.monotonic() > deadline:
            return text
        time.sleep(0.5)


def test_changing_the_sync_frequency_changes_the_next_scheduled_run(
    stack: Stack, page: Any, console_errors: ConsoleErrors
) -> None:
    before_text = _scheduled_text(page, f"{stack.service.url}/console/status")
    assert _seconds(page.locator("#sync-interval").inner_text()) == 60
    before = _seconds(before_text)
    assert before <= 72  # 60 s with 20 % jitter
    shoot(page, "status")
    page.goto(f"{stack.service.url}/console/preferences")
    console_errors.expect("status of 422")  # the refused form's own answer
    page.fill("#sync_frequency_seconds", "-5")
    page.click("#save-preferences")
    assert "between" in page.locator("#sync_frequency_seconds-error").inner_text()
    page.fill("#sync_frequency_seconds", "3600")
    page.click("#save-preferences")
    page.wait_for_selector("#saved")
    shoot(page, "preferences")
    page.goto(f"{stack.service.url}/console/status")
    assert _seconds(page.locator("#sync-interval").inner_text()) == 3600
    after = _seconds(page.locator("#next-sync").inner_text())
    assert 2800 <= after <= 4320 and after > before


PAGES = [
    "/console/status",
    "/console/setup",
    "/console/setup?step=sync",
    "/console/setup?step=preferences",
    "/console/assets",
    "/console/conflicts",
    "/console/suggestions?keywords=def,return&language=python",
    "/console/feed",
    "/console/preferences",
    "/console/admin",
    "/console/bridges",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe_and_is_screenshotted(stack: Stack, page: Any, scheme: str) -> None:
    page.emulate_media(color_scheme=scheme)
    problems = {}
    for path in PAGES:
        page.goto(stack.service.url + path)
        page.wait_for_load_state("networkidle")
        found = serious_violations(page)
        if found:
            problems[path] = found
        slug = re.sub(r"[^a-z0-9]+", "-", path.removeprefix("/console").lower()).strip("-")
        shoot(page, f"{scheme}-{slug or 'home'}")
    page.emulate_media(color_scheme="light")
    assert problems == {}
