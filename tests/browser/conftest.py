"""Fixtures for the end-to-end browser tests: the app served from a thread, headless chromium.

Playwright drives Debian's chromium (``apt-get install chromium``; ``.ci/run`` installs it). Outside
CI a missing chromium skips these tests with the reason; in CI it fails them.

The browser tests run on SQLite only, not on PostgreSQL: the flows exercise the web layer, which
the Flask-client tests already run on both databases, and one backend keeps CI fast.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Overrides the root fixture: one migrated SQLite database, no PostgreSQL parameter."""
    from experiments.db.migrate import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('browser-template') / 'template.db'}"
    upgrade(url)
    yield "sqlite", url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver"
        if IN_CI:
            pytest.fail(f"{reason} (CI must run the browser tests)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app on 127.0.0.1 (a free port), served by a background thread; yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def new_page(browser, live_server) -> Iterator[Callable[[], Any]]:  # type: ignore[no-untyped-def]
    """Opens pages in fresh browser contexts (one per user); all closed after the test."""
    contexts = []

    def open_page() -> Any:
        context = browser.new_context(base_url=live_server, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def login(app, new_page) -> Callable[[str, str], Any]:  # type: ignore[no-untyped-def]
    """``login(email, role)`` creates the account and logs in through the form; returns the page."""
    from experiments.services import accounts

    def log_in(email: str, role: str) -> Any:
        with app.extensions["liftlab.sessions"].begin() as session:
            accounts.create_account(session, email=email, password=PASSWORD, role=role)
        page = new_page()
        page.goto("/auth/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        return page

    return log_in
