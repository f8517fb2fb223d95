"""The API's application: its routes under /api/v1, its document at /openapi.json, and every
error as problem details (never an HTML page, never a bare 500)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import RatifyError
from engine.interfaces.api.problems import BASE, Problem, problem_of, problem_response
from engine.interfaces.web.common import WebConfig

__all__ = ["PREFIX", "create_api"]

PREFIX = "/api/v1"
# A minutes extract of 10 MiB in base64 (4/3 of it) and the rest of the event, or an upload.
MAX_BODY = 16 * 1024 * 1024
log = logging.getLogger(__name__)

DESCRIPTION = """\
The ratification of an agreement among many parties, driven and followed by other systems.

Authenticate with a bearer token (`ratify token create NAME --role coordinator|auditor
[--round ID]`). Auditors read; coordinators read and write; a token made for one round reaches
nothing else. Send an `Idempotency-Key` with a write to make it happen once: the same key and
request again give the first answer. Errors are problem details (`application/problem+json`).
"""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ratify")
    except PackageNotFoundError:
        return "0"


def create_api(cfg: WebConfig) -> FastAPI:
    from engine.interfaces.api import (
        routes_audit,
        routes_forecast,
        routes_mail,
        routes_parties,
        routes_proposals,
        routes_rounds,
        routes_webhooks,
    )

    api = FastAPI(
        title="ratify API",
        version=_version(),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.config = cfg
    api.openapi = lambda: _document(api)  # type: ignore[method-assign]

    @api.middleware("http")
    async def limits(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return problem_response(
                Problem(
                    type=BASE + "too-large",
                    title="Request too large",
                    status=413,
                    detail=f"the request is larger than {MAX_BODY // (1024 * 1024)} MiB",
                )
            )
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    for module in (
        routes_rounds,
        routes_parties,
        routes_audit,
        routes_forecast,
        routes_proposals,
        routes_mail,
        routes_webhooks,
    ):
        api.include_router(module.router, prefix=PREFIX)

    @api.exception_handler(RatifyError)
    async def ratify_error(request: Request, exc: RatifyError) -> Response:
        problem = problem_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if problem.status == 401 else None
        return problem_response(problem, headers)

    @api.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        names = sorted({str(e["loc"][-1]) for e in errors if e["loc"]})
        return problem_response(
            Problem(
                type=BASE + "invalid-request",
                title="Invalid request",
                status=422,
                detail="missing or invalid: " + ", ".join(names),
                field=names[0] if len(names) == 1 else None,
                errors=errors,
            )
        )

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body that does not parse (FastAPI's words): invalid input
            return problem_response(
                Problem(
                    type=BASE + "invalid-request",
                    title="Invalid request",
                    status=422,
                    detail=f"{exc.detail}: send JSON (or, for uploads, multipart/form-data)",
                )
            )
        name = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        detail = "no such resource" if exc.status_code == 404 else str(exc.detail)
        return problem_response(
            Problem(type=BASE + name, title=str(exc.detail), status=exc.status_code, detail=detail),
            dict(exc.headers or {}),
        )

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("the API failed on %s %s", request.method, request.url.path)
        return problem_response(
            Problem(
                type=BASE + "internal",
                title="Internal error",
                status=500,
                detail="ratify failed on this request; the server's log says why",
            )
        )

    return api


def _answers() -> list[type]:
    """The types the API answers with, whose fields the document describes."""
    from engine.interfaces.api.models import RoundRef
    from engine.interfaces.api.routes_webhooks import NewWebhookOut
    from engine.runtime import (
        BodyMeetings,
        ChainReport,
        Entry,
        Meeting,
        PartyForecast,
        Proposal,
        ProposalConfirmed,
        RoundForecast,
        SourceInfo,
        results,
    )
    from engine.runtime.audit import HeadFound, HeadReport, VerifyReport
    from engine.runtime.forecasts import Step
    from engine.runtime.log_page import LogPage
    from engine.runtime.views import RoundSummary
    from engine.runtime.webhooks import DeliveryInfo, WebhookInfo

    found: list[type] = [getattr(results, name) for name in results.__all__ if name != "jsonable"]
    return [
        *found,
        ChainReport,
        Entry,
        RoundRef,
        NewWebhookOut,
        HeadFound,
        HeadReport,
        VerifyReport,
        LogPage,
        RoundSummary,
        DeliveryInfo,
        WebhookInfo,
        RoundForecast,
        PartyForecast,
        Step,
        BodyMeetings,
        Meeting,
        Proposal,
        ProposalConfirmed,
        SourceInfo,
    ]


def _document(api: FastAPI) -> dict[str, Any]:
    """/openapi.json: FastAPI's document, every field of every answer described (``describe``)."""
    if api.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from engine.interfaces.api.describe import describe

        document = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        api.openapi_schema = describe(document, _answers())
    return api.openapi_schema


def is_api(scope: dict[str, Any]) -> bool:
    path: str = scope.get("path", "")
    return path == "/openapi.json" or path == PREFIX or path.startswith(PREFIX + "/")
