"""What the pages share: the application's configuration, who is signed in, rendering a page in
the visitor's language, and turning ratify's errors into messages next to the field concerned.

Every page is a plain HTML form page: a POST answers with a redirect (303) to a page that shows
the outcome, or, when the input was refused, with the same form again, its message beside the
field and the values kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from engine.errors import AccessDenied, RatifyError, Words
from engine.interfaces.web.strings import LANGUAGE_NAMES, LANGUAGES, pick_language, words

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.runtime import Engine
    from engine.runtime.access import Keys, Principal

__all__ = [
    "LANG_COOKIE",
    "SESSION_COOKIE",
    "WEB_WORDS",
    "Forbidden",
    "SignInNeeded",
    "WebConfig",
    "config",
    "field_errors",
    "page",
    "principal",
    "require_party",
    "require_user",
    "round_path",
    "see_other",
]

SESSION_COOKIE = "ratify_session"
LANG_COOKIE = "ratify_lang"

# How the pages name what the core's messages mark as {opt.…} and {cmd.…}: the form fields.
WEB_WORDS = Words(
    options={
        "ref": "the decision reference",
        "reason": "the reason",
        "signatory": "the signatory",
        "title": "the title",
        "diary": "the diary number",
        "at": "the time",
        "by": "the name of who records",
        "expect_head": "the head to compare",
    },
    commands={
        "tick": "the scheduler",
        "init": "the schema upgrade (ratify init)",
        "outbox": "the outbox",
        "cancel": "cancelling the round",
        "audit_head": "the log's head",
        "audit_verify": "verifying the log",
    },
)


@dataclass
class WebConfig:
    """What the application runs with; on ``app.state.config``."""

    engine: Engine
    clock: Clock
    keys: Keys
    secure_cookies: bool = False
    sink_folder: Path | None = None  # the development SMTP sink's messages, shown at /sink
    mail_from: str = "ratify <ratify@example.invalid>"
    extra: dict[str, Any] = field(default_factory=dict)


class SignInNeeded(Exception):
    """Raised by a page that needs a signed-in user; the application redirects to sign-in."""

    def __init__(self, after: str) -> None:
        self.after = after


class Forbidden(Exception):
    """The visitor is signed in but may not see or do this; a 403 page."""

    def __init__(self, message: str) -> None:
        self.message = message


def config(request: Request) -> WebConfig:
    return request.app.state.config  # type: ignore[no-any-return]


def principal(request: Request) -> Principal | None:
    """Who the session cookie belongs to (read once per request), or None."""
    if hasattr(request.state, "principal"):
        return request.state.principal  # type: ignore[no-any-return]
    from engine.runtime.access import principal_of

    token = request.cookies.get(SESSION_COOKIE, "")
    found = None
    if token:
        cfg = config(request)
        try:
            found = principal_of(cfg.engine, token, cfg.clock)
        except AccessDenied:
            found = None
    request.state.principal = found
    return found


def require_user(request: Request, *roles: str) -> Principal:
    """The signed-in coordinator or auditor; sign-in first when there is none."""
    who = principal(request)
    if who is None or who.kind != "user":
        raise SignInNeeded(str(request.url.path))
    if roles and who.role not in roles:
        raise Forbidden(language_words(request)("error.role", role=who.role))
    return who


def require_party(request: Request) -> Principal:
    """The contact whose session this is (started from their link)."""
    who = principal(request)
    if who is None or who.kind != "party":
        raise Forbidden(language_words(request)("error.party_session"))
    return who


def language(request: Request) -> str:
    who = principal(request)
    default = (who.language or "") if who is not None else ""
    return pick_language(
        request.query_params.get("lang"),
        request.cookies.get(LANG_COOKIE),
        request.headers.get("accept-language"),
        default,
    )


def language_words(request: Request) -> Callable[..., str]:
    return words(language(request))


def round_path(round_id: str, *more: str) -> str:
    """A round's pages: ``/rounds/{agreement}/{number}/…`` (the id's slash is the path's)."""
    agreement, _, number = round_id.rpartition("/")
    tail = "".join("/" + quote(part, safe="") for part in more)
    return f"/rounds/{quote(agreement, safe='')}/{quote(number, safe='')}{tail}"


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def field_errors(exc: RatifyError, default_field: str = "form") -> dict[str, str]:
    """The message of a refused input, keyed by the form field it concerns (as the CLI says it,
    with the page's names for options)."""
    text = exc.worded(WEB_WORDS)
    concerned = getattr(exc, "field", None)  # InvalidInput's, or a refusal's about evidence
    return {concerned: text} if isinstance(concerned, str) and concerned else {default_field: text}


def _folder() -> Path:
    return Path(str(resources.files("ratify_templates") / "web"))


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_folder()),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # the templates ship with the package: no stat() of each per page
    )
    env.globals["round_path"] = round_path
    return env


def _dates(lang: str, zone: str | None) -> dict[str, Callable[..., str]]:
    from engine.runtime import write_date, write_moment

    def day(value: date | None, width: str = "medium") -> str:
        return "" if value is None else write_date(value, lang, width)  # type: ignore[arg-type]

    def moment(value: datetime | None, width: str = "medium") -> str:
        if value is None:
            return ""
        local = value.astimezone(ZoneInfo(zone)) if zone else value
        return write_moment(local, lang, width)  # type: ignore[arg-type]

    return {"day": day, "moment": moment}


def page(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    zone: str | None = None,
    title: str = "",
) -> HTMLResponse:
    """Render ``template`` in the visitor's language, with the CSRF token for its forms."""
    lang = language(request)
    t = words(lang)
    csrf = request.scope.get("csrftoken")
    values: dict[str, Any] = {
        "request": request,
        "t": t,
        "lang": lang,
        "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "csrf": csrf() if callable(csrf) else "",
        "who": principal(request),
        "path": request.url.path,
        "title": title,
        "errors": {},
        "values": {},
        "notice": request.query_params.get("done"),
        "sink": config(request).sink_folder is not None,
        **_dates(lang, zone),
    }
    values.update(context or {})
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            request.query_params["lang"],
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=config(request).secure_cookies,
        )
    return response


def set_session(response: Response, request: Request, token: str, expires: datetime) -> None:
    # A lifetime rather than a date: the engine's clock (a test's, a demo's) need not be the
    # browser's.
    left = expires - config(request).clock.now(expires.tzinfo or UTC)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(int(left.total_seconds()), 0),
        httponly=True,
        samesite="lax",
        secure=config(request).secure_cookies,
        path="/",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
