"""`ratify webhook`: post log entries to other systems (add, list, remove, rotate, deliveries,
retry)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from engine.interfaces.common import Group, actor_for, clock_at, current_keys, db_engine, err, out

__all__ = ["register"]

webhooks_app = typer.Typer(
    cls=Group, help="Webhooks: log entries posted, signed, to other systems.", no_args_is_help=True
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Id = Annotated[int, typer.Argument(help="The webhook's number (`ratify webhook list`).")]


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%d.%m.%Y %H:%M} UTC"


@webhooks_app.command("add")
def webhook_add(
    url: Annotated[str, typer.Argument(help="Where to post (https://…).")],
    events: Annotated[
        str,
        typer.Option("--events", help="Events to post, comma-separated (launch,approve,…) or *."),
    ],
    round_ref: Annotated[
        str | None, typer.Option("--round", help="Only this round's entries (default: all).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Post every later log entry of those events, signed (Standard Webhooks). The signing
    secret is printed once, here."""
    from engine.runtime import jsonable
    from engine.runtime.webhooks import add_webhook

    made = add_webhook(
        db_engine(),
        current_keys().secret,
        url,
        events.split(","),
        clock_at(None),
        actor_for(None),
        round_ref=round_ref,
    )
    if as_json:
        out.print_json(data={**jsonable(made.info), "secret": made.secret})
        return
    scope = f"round {made.info.round}" if made.info.round else "every round"
    err.print(
        f"Webhook {made.info.id}: {', '.join(made.info.events)} of {escape(scope)} to "
        f"{escape(made.info.url)}. Its signing secret (keep it now):"
    )
    print(made.secret)


@webhooks_app.command("list")
def webhook_list(as_json: Json = False) -> None:
    """Every webhook, with its deliveries waiting and given up."""
    from engine.runtime import jsonable
    from engine.runtime.webhooks import webhooks

    found = webhooks(db_engine())
    if as_json:
        out.print_json(data=jsonable(found))
        return
    if not found:
        out.print("No webhooks: `ratify webhook add URL --events approve,sign,activate`.")
    for w in found:
        state = f"removed {_when(w.removed_at)}" if w.removed_at else "active"
        out.print(
            f"{w.id}  {escape(w.url)}  {','.join(w.events)}  {escape(w.round or 'every round')}"
            f"  {state}  waiting {w.pending}, given up {w.failed}"
        )


@webhooks_app.command("remove")
def webhook_remove(webhook_id: Id) -> None:
    """Stop a webhook; its waiting deliveries are given up."""
    from engine.runtime.webhooks import remove_webhook

    done = remove_webhook(db_engine(), webhook_id, clock_at(None))
    out.print(f"Webhook {done.id} is removed since {_when(done.removed_at)}.")


@webhooks_app.command("rotate")
def webhook_rotate(webhook_id: Id) -> None:
    """A new signing secret (printed once); for 7 days deliveries carry both signatures."""
    from engine.runtime.webhooks import rotate_webhook

    made = rotate_webhook(db_engine(), current_keys().secret, webhook_id, clock_at(None))
    err.print(
        f"Webhook {made.info.id}: a new secret; the old one also signs for 7 days. Keep it now:"
    )
    print(made.secret)


@webhooks_app.command("deliveries")
def webhook_deliveries(
    webhook_id: Annotated[int | None, typer.Argument(help="One webhook's (default: all).")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="pending, sending, delivered or failed.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Deliveries, newest first: what was posted, what waits, what was given up and why."""
    from engine.runtime import jsonable
    from engine.runtime.webhooks import deliveries

    found = deliveries(db_engine(), webhook_id, state)
    if as_json:
        out.print_json(data=jsonable(found))
        return
    for d in found:
        why = f"  {escape(d.last_error)}" if d.last_error else ""
        out.print(
            f"{d.id}  webhook {d.webhook}  {escape(d.round)} #{d.seq} {d.event}  {d.state}"
            f"  tries {d.attempts}{why}"
        )


@webhooks_app.command("retry")
def webhook_retry(
    delivery_id: Annotated[int, typer.Argument(help="The delivery's number.")],
) -> None:
    """Try a delivery that was given up again, at the next tick."""
    from engine.runtime.webhooks import retry_delivery

    done = retry_delivery(db_engine(), delivery_id, clock_at(None))
    out.print(f"Delivery {done.id} is {done.state}.")


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhook")
