"""What the web tests share: an application over a real database, clients that sign in or start
a party's session the way a browser does, and the links read out of the emails a real SMTP server
received."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from engine.clock import FakeClock
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig
from engine.runtime import Engine, launch, load_agreement, tick_once
from engine.runtime.access import Keys
from notifications.mailer import Mailer
from tests.smtp import SmtpServer

__all__ = [
    "BASE",
    "EXAMPLE",
    "KEYS",
    "Site",
    "csrf_of",
    "links_in",
    "make_site",
    "post_form",
]

BASE = "http://testserver"
KEYS = Keys(secret=b"k" * 32, base_url=BASE)
EXAMPLE = Path(__file__).parent.parent / "examples" / "kanta-hame" / "agreement.toml"
_LINK = re.compile(re.escape(BASE) + r"/p/[A-Za-z0-9_-]+")


def links_in(message: EmailMessage) -> list[str]:
    """The personal links in a message's text part."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return _LINK.findall(part.get_content())


def csrf_of(client: TestClient) -> str:
    token = client.cookies.get("csrftoken")
    if token is None:
        client.get("/signin")
        token = client.cookies.get("csrftoken")
    assert token, "the application sets its CSRF cookie on a page"
    return token


def post_form(
    client: TestClient,
    url: str,
    data: dict[str, str],
    files: dict[str, Any] | list[tuple[str, Any]] | None = None,  # a list: a field sent twice
    *,
    csrf: bool = True,
) -> Any:
    """A form posted as a browser does: the CSRF token first, no redirect followed."""
    fields = {"csrftoken": csrf_of(client)} if csrf else {}
    fields |= data
    return client.post(url, data=fields, files=files, follow_redirects=False)


@dataclass
class Site:
    """The Kanta-Häme round launched on a database, its invitations delivered to a real SMTP
    server, and the application to use it through."""

    db: Engine
    clock: FakeClock
    smtp: SmtpServer
    app: Any
    round_id: str

    def client(self) -> TestClient:
        return TestClient(self.app, base_url=BASE)

    def tick(self) -> None:
        mailer = Mailer("127.0.0.1", self.smtp.port, timeout=5)
        tick_once(self.db, self.clock, mailer, "ratify <ratify@example.invalid>", KEYS)

    def link_of(self, email: str) -> str:
        """The newest personal link sent to ``email``."""
        for message in reversed(self.smtp.messages()):
            if email in str(message["To"]):
                found = links_in(message)
                if found:
                    return found[-1]
        raise AssertionError(f"no link was sent to {email}")

    def party_client(self, email: str) -> TestClient:
        """A browser that opened ``email``'s link and pressed the button."""
        client = self.client()
        link = self.link_of(email).removeprefix(BASE)
        assert client.get(link).status_code == 200
        started = post_form(client, link, {})
        assert started.status_code == 303, started.text
        return client


def make_site(db: Engine, clock: FakeClock, smtp: SmtpServer, *, sink: Path | None = None) -> Site:
    round_id = launch(db, load_agreement(EXAMPLE), clock, "coordinator").round
    site = Site(db, clock, smtp, create_app(WebConfig(db, clock, KEYS, sink_folder=sink)), round_id)
    site.tick()
    return site
