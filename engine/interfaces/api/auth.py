"""Who a request comes from (its bearer token), what it may reach, and its once-only key."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.errors import AccessDenied, InvalidInput
from engine.interfaces.web.common import WebConfig
from engine.runtime.tokens import ApiClient, authenticate
from engine.runtime.writes import Once

__all__ = [
    "INT_MAX",
    "Client",
    "Idempotency",
    "Number",
    "Writer",
    "config",
    "once_of",
    "reach",
    "round_id",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from `ratify token create NAME --role coordinator|auditor`.",
)
KEY_MAX = 128
INT_MAX = 2**31 - 1  # the database's integers: a larger number names nothing


def config(request: Request) -> WebConfig:
    return request.app.state.config  # type: ignore[no-any-return]


def _client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiClient:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AccessDenied("send a bearer token: Authorization: Bearer ratify_…", reason="token")
    return authenticate(config(request).engine, credentials.credentials)


def _writer(client: Annotated[ApiClient, Depends(_client)]) -> ApiClient:
    if not client.may_write():
        raise AccessDenied(
            f"token {client.name!r} is an auditor's: it reads and never writes", reason="role"
        )
    return client


Client = Annotated[ApiClient, Depends(_client)]
Writer = Annotated[ApiClient, Depends(_writer)]
Idempotency = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Any one line of at most 128 characters: the same key with the same request "
        "gives the first answer again and writes nothing more; with another request, 422.",
    ),
]


Number = Annotated[int, Path(ge=1, le=INT_MAX, description="The round's number.")]


def round_id(agreement: str, number: int) -> str:
    return f"{agreement}/{number}"


def reach(client: ApiClient, round_ref: str) -> str:
    """``round_ref`` if the token reaches it; a token scoped to a round sees nothing else (and
    is not told whether the other round exists)."""
    if not client.reaches(round_ref):
        raise AccessDenied(
            f"token {client.name!r} reaches round {client.round} only", reason="scope"
        )
    return round_ref


def once_of(request: Request, client: ApiClient, key: str | None, *parts: bytes) -> Once | None:
    """The once-only key of a write: the client's key, kept per client, with the SHA-256 of the
    method, the path and ``parts`` (what was asked: the JSON body as parsed, the files' bytes)."""
    if key is None:
        return None
    if not key or len(key) > KEY_MAX or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key: give 1 to {KEY_MAX} printable ASCII characters", field="once"
        )
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), *parts):
        digest.update(len(part).to_bytes(8, "big") + part)
    return Once(f"api:{client.name}:{key}", digest.hexdigest())
