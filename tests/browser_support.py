"""What the browser tests share: Debian's chromium driven by Playwright, axe-core, a live server.

Nothing here downloads anything. The browser is the system's ``/usr/bin/chromium`` (``apt-get
install chromium``; never ``playwright install``) and axe-core is read from
``tests/browser/node_modules`` (``npm ci --prefix tests/browser``) and injected into the page.
Without either, a browser test is skipped, except under ``CI=true``, where it fails.

A test module opens one browser for all its tests::

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Browser]:
        with launch_chromium() as browser:
            yield browser
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypedDict, cast
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright
from playwright.sync_api import Error as PlaywrightError

__all__ = [
    "AXE_JS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "WCAG_TAGS",
    "LiveServer",
    "axe_available",
    "block_external",
    "check_axe",
    "chromium_available",
    "launch_chromium",
    "open_page",
    "require_browser",
]

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container: no sandbox (it needs user namespaces), no GPU, and none of the
# browser's own traffic (updates, sync, safe browsing lists), so every request is the page's.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
AXE_JS = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")

INSTALL_CHROMIUM = "apt-get install chromium (Debian's; never `playwright install`)"
INSTALL_AXE = "npm ci --prefix tests/browser"


def chromium_available() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


def axe_available() -> bool:
    return AXE_JS.is_file()


def _missing(what: str, how: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{what}, and CI=true requires it: {how}", pytrace=False)
    pytest.skip(f"{what} ({how}; under CI=true this fails)")


def require_browser(*, axe: bool = True) -> None:
    """Skip the test (fail it under CI=true) unless chromium, and axe-core if asked, are here."""
    if not chromium_available():
        _missing(f"no chromium at {CHROMIUM}", INSTALL_CHROMIUM)
    if axe and not axe_available():
        _missing(f"axe-core is not installed at {AXE_JS}", INSTALL_AXE)


@contextmanager
def launch_chromium(*, axe: bool = True) -> Iterator[Browser]:
    """Debian's chromium, headless, closed on exit (see :func:`require_browser` for ``axe``)."""
    require_browser(axe=axe)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --- requests that leave the live server ---------------------------------------------------------


def block_external(target: Page | BrowserContext, *, allow: str) -> list[str]:
    """Abort every request of ``target`` that is not to ``allow``'s origin; return their URLs.

    The list fills up as the page loads, so a test can assert it is empty afterwards. Inline
    ``data:`` and ``blob:`` URLs stay allowed: they fetch nothing.
    """
    origin = _origin(allow)
    blocked: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or _origin(url) == origin:
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    target.route("**/*", handle)
    return blocked


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


@contextmanager
def open_page(browser: Browser, server: LiveServer | str) -> Iterator[tuple[Page, list[str]]]:
    """A page in a fresh context (no cookies or cache of other tests) and what it tried to fetch
    from anywhere but ``server``.

    The context bypasses the page's Content-Security-Policy: the application forbids inline
    scripts (``default-src 'none'``), which would block axe-core's injection. The CSP header is
    still sent, so a test of the header itself reads the response.
    """
    base = server.url if isinstance(server, LiveServer) else server
    context = browser.new_context(base_url=base, bypass_csp=True)
    try:
        blocked = block_external(context, allow=base)
        yield context.new_page(), blocked
    finally:
        context.close()


# --- axe-core ------------------------------------------------------------------------------------


class _Node(TypedDict):
    target: list[str]
    html: str
    summary: str


class _Violation(TypedDict):
    id: str
    impact: str | None
    help: str
    nodes: list[_Node]


# Shadow DOM and frame targets are lists of selectors; each is joined into one line.
_RUN_AXE = """async (tags) => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: tags},
    resultTypes: ["violations"],
  });
  return results.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({
      target: n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : String(t))),
      html: n.html,
      summary: n.failureSummary || "",
    })),
  }));
}"""


def check_axe(page: Page, *, context: str = "") -> None:
    """Run axe-core's WCAG 2.1 A and AA rules on ``page``; raise listing every violation."""
    require_browser()
    if not page.evaluate("() => typeof window.axe === 'object'"):
        try:
            page.add_script_tag(content=_axe_source())
        except PlaywrightError as exc:
            raise AssertionError(
                f"axe-core could not be injected into {page.url} ({exc.message.splitlines()[0]}); "
                "if a Content-Security-Policy forbids inline scripts, open the page with "
                "open_page(), whose context bypasses it"
            ) from None
    violations = cast(list[_Violation], page.evaluate(_RUN_AXE, list(WCAG_TAGS)))
    if violations:
        raise AssertionError(_report(violations, context or page.url))


_axe_cache: list[str] = []


def _axe_source() -> str:
    if not _axe_cache:  # 550 kB: read once per run
        _axe_cache.append(AXE_JS.read_text("utf-8"))
    return _axe_cache[0]


def _report(violations: list[_Violation], where: str) -> str:
    lines = [f"axe-core found {len(violations)} WCAG 2.1 A/AA violation(s) on {where}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact'] or 'no impact given'}): {v['help']}")
        for node in v["nodes"]:
            lines.append(f"    at {', '.join(node['target'])}: {_clip(node['html'])}")
            lines.extend(f"      {s}" for s in node["summary"].splitlines() if s.strip())
    return "\n".join(lines)


def _clip(html: str, limit: int = 200) -> str:
    flat = " ".join(html.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- a live server -------------------------------------------------------------------------------


class LiveServer:
    """An ASGI application served by uvicorn on a free local port, in a background thread.

    ::

        with LiveServer(app) as server:
            page.goto(server.url + "/")
    """

    def __init__(self, app: Callable[..., Any], *, startup_timeout: float = 10.0) -> None:
        self.app = app
        self.startup_timeout = startup_timeout
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def __enter__(self) -> LiveServer:
        # Bound here and handed to uvicorn, so the port is known before it starts and no other
        # process can take it in between (as it could with "find a free port, then bind").
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # leave the process's logging (and pytest's capture) alone
            access_log=False,
            ws="none",  # the pages use no websockets; the websockets library's import warns
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
        )
        self._server, self._thread, self._sock = server, thread, sock
        thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not server.started:
            if not thread.is_alive():
                sock.close()
                raise RuntimeError("the live server stopped while starting (see the log above)")
            if time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"the live server did not start in {self.startup_timeout} s")
            time.sleep(0.005)
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the live server did not stop within 10 s")
        # The socket is ours (uvicorn was handed it): closed here, the port is free on return.
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
