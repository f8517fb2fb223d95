"""A round's bodies' calendars and its forecast: when each party can at the earliest have signed,
and when the agreement can be in force."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from engine.interfaces.api.auth import Client, Number, config, reach, round_id
from engine.interfaces.api.common import ERRORS
from engine.runtime import BodyMeetings, RoundForecast

__all__ = ["router"]

router = APIRouter(tags=["forecast"], responses=ERRORS)
ROUND = "/rounds/{agreement}/{number}"


@router.get(ROUND + "/forecast", summary="The round's forecast")
def forecast(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    signing_days: Annotated[
        int,
        Query(ge=0, le=250, description="Working days from legal force to the last signature."),
    ] = 5,
) -> RoundForecast:
    """Each unsigned party's earliest day to have signed, step by step (its bodies' first
    meetings whose agenda can still take the agreement, the legal-force waits, the signing lag),
    the round's earliest entry into force and the party holding it back, and by how long."""
    from engine.runtime import forecast as get_forecast

    cfg = config(request)
    ref = reach(client, round_id(agreement, number))
    return get_forecast(cfg.engine, ref, cfg.clock, signing_days)


@router.get(ROUND + "/calendar", summary="The bodies' next meetings")
def calendar(
    request: Request,
    client: Client,
    agreement: str,
    number: Number,
    party: Annotated[
        str | None, Query(max_length=100, description="One party's id (default: every party's).")
    ] = None,
) -> list[BodyMeetings]:
    """Each body's next meetings, and the last working day to put the agreement on the agenda
    of each (the calendars the agreement file gave)."""
    from engine.runtime import calendar as get_calendar

    cfg = config(request)
    ref = reach(client, round_id(agreement, number))
    return get_calendar(cfg.engine, ref, cfg.clock, party)
