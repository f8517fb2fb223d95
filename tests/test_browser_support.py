"""The browser-test infrastructure itself: axe-core catches what it should, the blocker blocks,
the live server starts and stops. One browser and one server for the whole module."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from tests import browser_support
from tests.browser_support import LiveServer, check_axe, launch_chromium, open_page

ACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign the agreement</title></head>
<body><main><h1>Sign the agreement</h1>
<form><label for="name">Your name</label> <input id="name" name="name" type="text">
<button type="submit">Sign</button></form></main></body></html>"""

# No label on the input, and light grey text on white (about 1.6:1).
INACCESSIBLE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign</title></head>
<body><main><h1>Sign</h1><p style="color:#cccccc;background:#ffffff">Fine print</p>
<input type="text" name="name"></main></body></html>"""

FETCHES_OUTSIDE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Logo</title>
<link rel="stylesheet" href="/local.css"></head>
<body><main><h1>Logo</h1><img src="https://example.invalid/x.png" alt="logo"></main>
</body></html>"""

PAGES = {"/ok": ACCESSIBLE, "/bad": INACCESSIBLE, "/outside": FETCHES_OUTSIDE}


async def _page(request: Request) -> Response:
    return HTMLResponse(PAGES[request.url.path])


async def _css(request: Request) -> Response:
    return Response("main { margin: 1rem; }", media_type="text/css")


APP = Starlette(
    routes=[
        *(Route(path, _page) for path in PAGES),
        Route("/local.css", _css),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(APP) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


def test_the_live_server_serves_and_stops() -> None:
    with LiveServer(APP) as live:
        assert live.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{live.url}/ok", timeout=5) as answer:
            assert answer.status == 200
        port = int(live.url.rsplit(":", 1)[1])
    # Nothing listens on the port any more: the server stopped (a bind would also meet the
    # closed connection's TIME_WAIT, which says nothing about the server).
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_an_accessible_page_passes_axe(browser: Browser, server: LiveServer) -> None:
    with open_page(browser, server) as (page, blocked):
        page.goto("/ok")
        check_axe(page)
        assert blocked == []


def test_an_unlabelled_input_and_faint_text_fail_axe(browser: Browser, server: LiveServer) -> None:
    with open_page(browser, server) as (page, _):
        page.goto("/bad")
        with pytest.raises(AssertionError) as failed:
            check_axe(page, context="the bad page")
    report = str(failed.value)
    assert "on the bad page" in report
    assert "- label (critical)" in report
    assert "- color-contrast (serious)" in report
    # Each offending node is named by its selector and its markup.
    assert '<input type="text" name="name">' in report
    assert "Fine print" in report


def test_axe_still_loads_under_a_strict_content_security_policy(
    browser: Browser, server: LiveServer
) -> None:
    # The application's CSP forbids inline scripts; open_page's context lets axe in regardless.
    def strict(html: str) -> None:
        page.route(
            f"{server.url}/csp",
            lambda route: route.fulfill(
                body=html,
                content_type="text/html",
                headers={"Content-Security-Policy": "default-src 'none'"},
            ),
        )

    with open_page(browser, server) as (page, _):
        strict(ACCESSIBLE)
        page.goto("/csp")
        check_axe(page)
    context = browser.new_context()  # without the bypass: the message says what to do
    try:
        page = context.new_page()
        strict(ACCESSIBLE)
        page.goto(f"{server.url}/csp")
        with pytest.raises(AssertionError, match="open_page"):
            check_axe(page)
    finally:
        context.close()


def test_requests_that_leave_the_server_are_blocked_and_listed(
    browser: Browser, server: LiveServer
) -> None:
    with open_page(browser, server) as (page, blocked):
        page.goto("/outside")
        served = page.evaluate("() => getComputedStyle(document.querySelector('main')).margin")
        broken = page.evaluate("() => document.querySelector('img').naturalWidth")
    assert blocked == ["https://example.invalid/x.png"]
    assert served == "16px"  # the server's own stylesheet came through
    assert broken == 0


@pytest.mark.parametrize("ci", [False, True], ids=["local", "ci"])
@pytest.mark.parametrize("missing", ["CHROMIUM", "AXE_JS"])
def test_a_missing_browser_or_axe_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: bool, missing: str
) -> None:
    monkeypatch.setattr(browser_support, "IN_CI", ci)
    monkeypatch.setattr(browser_support, missing, tmp_path / "absent")
    outcome = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(outcome) as stopped:
        browser_support.require_browser()
    how = "npm ci --prefix tests/browser" if missing == "AXE_JS" else "apt-get install chromium"
    assert how in str(stopped.value)
    if missing == "AXE_JS":  # a test that injects no axe-core runs without it
        browser_support.require_browser(axe=False)
