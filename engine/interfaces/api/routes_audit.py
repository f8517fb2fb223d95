"""The log: its entries a page at a time, exports, the head, and verification."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from engine.interfaces.api.auth import INT_MAX, Client, Number, config, reach, round_id
from engine.interfaces.api.common import ERRORS
from engine.runtime.audit import HeadReport, VerifyReport
from engine.runtime.log_page import PAGE_MAX, LogPage

__all__ = ["router"]

router = APIRouter(tags=["log"], responses=ERRORS)
ROUND = "/rounds/{agreement}/{number}"
_MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


@router.get(ROUND + "/log", summary="The round's log, a page at a time")
def log(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    since: Annotated[
        int, Query(ge=0, le=INT_MAX, description="The seq of the last entry already read.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
) -> LogPage:
    """Entries after ``since``, oldest first, each with its hash and the hash before it. Follow
    a round by asking again with ``next_since``."""
    from engine.runtime.log_page import log_page

    ref = reach(client, round_id(agreement, number))
    return log_page(config(request).engine, ref, since, limit)


@router.get(
    ROUND + "/export",
    summary="Export the log",
    response_class=Response,
    responses={200: {"content": {m: {} for m in _MEDIA.values()}}},
)
def export(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> Response:
    """The whole log as JSON lines (what `ratify audit verify --file` checks) or CSV."""
    from engine.runtime import export as do_export

    ref = reach(client, round_id(agreement, number))
    text = do_export(config(request).engine, ref, format)
    name = ref.replace("/", "-") + "." + format
    return Response(
        text,
        media_type=_MEDIA[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(ROUND + "/head", summary="The log's head")
def head(request: Request, client: Client, agreement: str, number: Number) -> HeadReport:
    """The log's length and its last entry's hash: what to keep elsewhere to hold it to account."""
    from engine.runtime import heads

    ref = reach(client, round_id(agreement, number))
    return heads(config(request).engine, ref)[0]


@router.get(ROUND + "/verify", summary="Verify the log")
def verify(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    expect_head: Annotated[
        str | None, Query(description="A head noted earlier: verify that the chain holds it.")
    ] = None,
) -> VerifyReport:
    """Check the chain, its anchors and that replaying it gives the stored states (409 naming
    the first bad entry when it does not)."""
    from engine.runtime import verify as do_verify

    ref = reach(client, round_id(agreement, number))
    return do_verify(config(request).engine, ref, expect_head=expect_head)
