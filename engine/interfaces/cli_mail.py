"""`ratify worker`, `reminders`, `outbox` and `smtp-sink`: the scheduler and the email."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from engine.errors import InvalidInput
from engine.interfaces.common import (
    At,
    Group,
    Json,
    clock_at,
    current_keys,
    current_settings,
    db_engine,
    out,
    print_json,
)
from engine.wording import counted

__all__ = ["register"]

_commands = typer.Typer()


@_commands.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    at: At = None,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between ticks.")
    ] = 60.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --once: print what the tick did as JSON.")
    ] = False,
) -> None:
    """Tick: timed transitions, reminders and escalations due, the outbox sent. SIGTERM stops it
    after the tick under way."""
    from engine.runtime import TickReport, jsonable, run_worker, tick_once
    from notifications.mailer import Mailer

    settings = current_settings()
    mailer = Mailer.from_settings(settings)
    clock = clock_at(at)
    if once:
        from engine.runtime.worker_lock import single_worker

        engine = db_engine()
        with single_worker(engine):  # not beside a running worker on SQLite
            done = tick_once(engine, clock, mailer, settings.mail_from, current_keys())
        if as_json:
            print_json(jsonable(done))
        else:
            out.print(done.summary())
        return
    if at is not None:
        raise typer.BadParameter("--at needs --once: a running worker follows the system clock")

    def report(tick: TickReport) -> None:
        for moved in tick.moved:
            out.print(f"{moved.round} {moved.party}: → {moved.to_state}")
        if tick.queued or tick.sent or tick.calendars:
            out.print(tick.summary())

    out.print(
        f"ratify worker: ticking every {interval:g} s; {mailer!r}. SIGTERM or Ctrl-C stops it."
    )
    run_worker(db_engine(), clock, mailer, settings.mail_from, interval, report, current_keys())
    out.print("ratify worker: stopped.")


@_commands.command()
def reminders(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Preview, without sending, what a tick at that time would send."""
    from rich.table import Table

    from engine.runtime import jsonable, preview

    items = jsonable(preview(db_engine(), clock_at(at), round_ref))
    if as_json:
        print_json(items)
        return
    if not items:
        out.print("Nothing is due.")
        return
    table = Table("round", "party", "kind", "recipients", "due", "status")
    for i in items:
        numbered = i["number"] and i["kind"] in ("reminder", "deadline")
        what = i["kind"] + (f" #{i['number']}" if numbered else "")
        if i.get("meeting"):  # an agenda reminder's or follow-up's meeting
            day = date.fromisoformat(i["meeting"])
            what += f" ({i['body']} {day.day}.{day.month}.{day.year})"
        table.add_row(
            i["round"],
            i["party"] or "—",
            what,
            ", ".join(i["recipients"]),
            i["due"].replace("T", " "),
            "queued" if i["queued"] else "due",
        )
    out.print(table)


outbox_app = typer.Typer(
    cls=Group, help="The messages: queued, sent, failed.", invoke_without_command=True
)


@outbox_app.callback()
def outbox_list(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option("--state", help="pending, sending, sent, failed or skipped.")
    ] = None,
    as_json: Json = False,
) -> None:
    """List the outbox's messages and their delivery state."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from engine.runtime import jsonable, outbox_messages

    rows: list[dict[str, Any]] = jsonable(outbox_messages(db_engine(), state))
    if as_json:
        print_json(rows)
        return
    if not rows:
        out.print(f"No {state} messages." if state else "The outbox is empty.")
        return
    table = Table("id", "party", "kind", "to", "state", "tries")
    table.add_column("next try / sent (UTC)", no_wrap=True)
    table.add_column("error")
    for r in rows:
        when = r["sent_at"] or (r["next_attempt_at"] if r["state"] == "pending" else "")
        table.add_row(
            str(r["id"]),
            r["party"] or "(coordinator)",
            r["kind"],
            ", ".join(r["recipients"]),
            r["state"],
            str(r["attempts"]),
            (when or "")[:16].replace("T", " "),
            escape(r["last_error"] or ""),
        )
    out.print(table)
    failed = sum(r["state"] == "failed" for r in rows)
    if failed:
        out.print(
            f"[bold red]{counted(failed, 'message')} failed[/]: "
            "`ratify outbox retry ID` sends one again."
        )


@outbox_app.command("retry")
def outbox_retry(
    message_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**31 - 1)],
    at: At = None,
) -> None:
    """Send a failed message again at the next tick."""
    from engine.runtime import retry_message

    row = retry_message(db_engine(), message_id, clock_at(at))
    out.print(f"message {row.id} ({row.kind} to {', '.join(row.recipients)}) is pending again.")


@_commands.command("smtp-sink")
def smtp_sink(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on (127.0.0.1).")
    ] = 8025,
    directory: Annotated[Path, typer.Option("--dir", help="Where to store the .eml files.")] = Path(
        "mail"
    ),
) -> None:
    """A development SMTP server: stores every message as an .eml file and prints a line for it."""
    import signal
    import threading

    from notifications.sink import MailSink

    def show(path: Path, sender: str, recipients: list[str], subject: str) -> None:
        out.print(f"{path.name}  {', '.join(recipients)}  {subject}", markup=False)

    sink = MailSink(directory, on_message=show)
    try:
        host, bound = sink.start(port=port)
    except (OSError, OverflowError) as exc:
        raise InvalidInput(f"--port {port}: cannot listen there ({exc})") from None
    out.print(f"smtp-sink: listening on {host}:{bound}, storing messages in {directory}/")
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        sink.stop()
        out.print("smtp-sink: stopped.")


def register(app: typer.Typer) -> None:
    """Add these commands to the root app."""
    for command in _commands.registered_commands:
        app.registered_commands.append(command)
    app.add_typer(outbox_app, name="outbox")
