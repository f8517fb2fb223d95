"""The web application: FastAPI with server-rendered pages, each calling the service layer, and
the JSON API (``engine.interfaces.api``) beside them under /api/v1.

``create_app`` wires the routers of each audience (parties, coordinators, auditors, the
development mail sink), the error pages, a form-field CSRF check on every POST (asgi-csrf: the
token is a signed cookie that each form repeats as its first field) and headers that keep the
pages from being framed, sniffed, cached or leaking a party's link in a Referer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import AccessDenied, NotFound, RatifyError
from engine.interfaces.web.common import (
    WEB_WORDS,
    Forbidden,
    SignInNeeded,
    WebConfig,
    page,
    see_other,
)

__all__ = ["create_app"]

CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
MAX_BODY = 12 * 1024 * 1024  # a minutes extract (10 MiB) or an agreement and its text, and a form


def _css() -> str:
    return (Path(str(resources.files("ratify_templates") / "web")) / "ratify.css").read_text(
        encoding="utf-8"
    )


def create_app(cfg: WebConfig) -> Any:
    """The ASGI application (FastAPI inside the CSRF check)."""
    from asgi_csrf import asgi_csrf

    from engine.interfaces.web import pages_auth, pages_party

    app = FastAPI(title="ratify", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = cfg
    app.include_router(pages_auth.router)
    app.include_router(pages_party.router)
    # The auditor's fixed paths (…/log, …/verify) before the coordinator's round pages.
    for name in (
        "pages_auditor",
        "pages_dashboard",
        "pages_launch",
        "pages_round",
        "pages_coordinator",
        "pages_sink",
    ):
        try:  # the routers of each audience, as they land
            module = __import__(f"engine.interfaces.web.{name}", fromlist=["router"])
        except ModuleNotFoundError:
            continue
        app.include_router(module.router)

    css = _css()

    @app.get("/ratify.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @app.get("/healthz", include_in_schema=False)
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return PlainTextResponse("the request is too large", status_code=413)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"  # a party's link is in its path
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, exc: SignInNeeded) -> Response:
        return see_other(f"/signin?next={exc.after}")

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, "error.html.j2", {"message": exc.message}, status=403)

    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> Response:
        return page(request, "error.html.j2", {"message": exc.worded(WEB_WORDS)}, status=403)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return page(request, "error.html.j2", {"message": exc.worded(WEB_WORDS)}, status=404)

    @app.exception_handler(RatifyError)
    async def refused(request: Request, exc: RatifyError) -> Response:
        return page(request, "error.html.j2", {"message": exc.worded(WEB_WORDS)}, status=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "" if exc.status_code == 404 else str(exc.detail)
        return page(request, "error.html.j2", {"message": message}, status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_form(request: Request, exc: RequestValidationError) -> Response:
        names = sorted({str(e["loc"][-1]) for e in exc.errors()})
        return page(
            request,
            "error.html.j2",
            {"message": "missing or invalid: " + ", ".join(names)},
            status=400,
        )

    pages = asgi_csrf(
        app,
        signing_secret=cfg.keys.secret.hex(),
        cookie_secure=cfg.secure_cookies,
        cookie_samesite="Lax",
        always_set_cookie=True,
        # asgi-csrf lets a POST without any cookie through (it can ride no session); signing in
        # is checked all the same, so that no page can sign a browser in as someone else.
        always_protect={"/signin"},
    )
    from engine.interfaces.api.app import create_api, is_api

    api = create_api(cfg)

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        """The JSON API (its own errors, bearer tokens, no cookies so no CSRF), or the pages."""
        if scope["type"] == "http" and is_api(scope):
            await api(scope, receive, send)
        else:
            await pages(scope, receive, send)

    return dispatch
