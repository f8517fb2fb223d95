"""Signing in and out: coordinators' and auditors' accounts (``ratify user add``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from engine.errors import AccessDenied
from engine.interfaces.web.common import (
    SESSION_COOKIE,
    WEB_WORDS,
    clear_session,
    config,
    page,
    principal,
    see_other,
    set_session,
)

__all__ = ["router"]

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only a path of this site: "//host" or "https://…" would send a signed-in user elsewhere.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/signin")
def sign_in_form(request: Request, next: str = "/") -> Response:
    who = principal(request)
    if who is not None and who.kind == "user":
        return see_other(_safe_next(next))
    return page(request, "signin.html.j2", {"values": {"next": _safe_next(next)}}, title="Sign in")


@router.post("/signin")
def sign_in(
    request: Request,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    from engine.runtime.access import sign_in as check

    cfg = config(request)
    try:
        token, who = check(cfg.engine, name, password, cfg.clock)
    except AccessDenied as exc:
        status = 429 if exc.reason == "throttled" else 401
        key = "signin.throttled" if exc.reason == "throttled" else "signin.wrong"
        return page(
            request,
            "signin.html.j2",
            {
                "errors": {"form": exc.worded(WEB_WORDS)},
                "error_key": key,
                "wait": exc.details.get("wait", 0),
                "values": {"name": name, "next": _safe_next(next)},
            },
            status=status,
            title="Sign in",
        )
    response = see_other(_safe_next(next))
    set_session(response, request, token, who.expires_at)
    return response


@router.post("/signout")
def sign_out(request: Request) -> Response:
    from engine.runtime.access import sign_out as end

    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        end(config(request).engine, token)
    who = principal(request)
    response = see_other("/signin?done=signed_out" if who is None or who.kind == "user" else "/")
    clear_session(response)
    return response
