"""The `ratify` command. Exit codes: 0 done, 1 refused by the rules (or verification failed),
2 invalid input. Heavy imports (database, workflows) happen inside the commands that need them,
so `ratify --help` stays fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from engine.errors import RatifyError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine.clock import Clock

__all__ = ["app", "main"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class _Group(typer.core.TyperGroup):
    """Turns ratify's own errors into a message on stderr and the error's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RatifyError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    cls=_Group,
    help="Run the ratification of an agreement by many parties, and prove it afterwards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
audit_app = typer.Typer(
    cls=_Group, help="Inspect, export and verify the log.", no_args_is_help=True
)
workflows_app = typer.Typer(
    cls=_Group, help="The party workflows ratify knows.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(workflows_app, name="workflows")


class _State:
    db: str | None = None
    engine: Engine | None = None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


_state = _State()

At = Annotated[
    str | None,
    typer.Option(
        "--at", help="Run as of this ISO date or date-time, local to the round's timezone."
    ),
]
By = Annotated[
    str | None, typer.Option("--by", help="Who records this (default RATIFY_ACTOR or the OS user).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RoundArg = Annotated[
    str, typer.Argument(help="A round id (agreement/n) or an agreement id (its latest round).")
]


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL; overrides RATIFY_DATABASE_URL.", metavar="URL"),
    ] = None,
) -> None:
    _state.db = db
    ctx.call_on_close(_state.close)


def _engine() -> Engine:
    from engine.persistence.database import connect
    from engine.settings import load_settings

    if _state.engine is None:
        _state.engine = connect(load_settings(database_url=_state.db).database_url)
    return _state.engine


def _clock(at: str | None) -> Clock:
    from engine.clock import FixedClock, SystemClock, parse_at

    return FixedClock(parse_at(at)) if at else SystemClock()


def _actor(by: str | None) -> str:
    from engine.settings import default_actor, load_settings

    if by is not None and by.strip():
        return " ".join(by.split())
    return default_actor(load_settings(database_url=_state.db))


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


@app.command()
def init() -> None:
    """Create the database schema, or check that the existing one is current."""
    from engine.persistence.database import init_schema

    out.print(init_schema(_engine()))


@app.command()
def launch(
    file: Annotated[Path, typer.Argument(help="The agreement file (TOML).")],
    at: At = None,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Validate an agreement file and launch a round of it, every party in draft."""
    from engine.agreement import load_agreement
    from engine.runtime.rounds import launch as do_launch

    agreement = load_agreement(file)
    round_id = do_launch(_engine(), agreement, _clock(at), _actor(by))
    if as_json:
        _json({"round": round_id})
        return
    out.print(
        f"Launched round [bold]{round_id}[/]: {len(agreement.parties)} parties in draft; "
        f"document sha256 {agreement.document_sha256}"
    )


@app.command()
def status(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Show a round's parties and their states (every round without ROUND)."""
    from engine.interfaces.render import status_table
    from engine.runtime.rounds import status as get_status

    rounds = get_status(_engine(), round_ref)
    if as_json:
        _json(rounds[0] if round_ref is not None else rounds)
        return
    if not rounds:
        out.print("No rounds yet. Launch one with `ratify launch FILE`.")
    for r in rounds:
        out.print(status_table(r))


@app.command()
def record(
    round_ref: RoundArg,
    party: Annotated[str, typer.Argument(help="The party's id.")],
    event: Annotated[
        str,
        typer.Argument(help="submit, approve, return, reject, sign, appeal or appeal-resolved."),
    ],
    ref: Annotated[
        str | None, typer.Option("--ref", help="Decision reference: 'Body dd.mm.yyyy § n'.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (return, reject, appeal).")
    ] = None,
    signatory: Annotated[str | None, typer.Option("--signatory", help="Who signs (sign).")] = None,
    title: Annotated[
        str | None, typer.Option("--title", help="The signatory's title (sign).")
    ] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record an event for a party: checked against its workflow, written with its log entry."""
    from engine.evidence import Evidence
    from engine.runtime.events import record as do_record

    result = do_record(
        _engine(),
        round_ref,
        party,
        event,
        Evidence(ref=ref, reason=reason, signatory=signatory, title=title),
        _clock(at),
        _actor(by),
    )
    if as_json:
        _json(result)
        return
    line = f"{result['party']}: {result['from_state']} → [bold]{result['to_state']}[/]"
    line += f" (entry #{result['seq']})"
    if result["event"] == "sign":
        line += f", signatures {result['signatures']}/{result['signatures_required']}"
    if result["to_state"] == "legal_force_wait":
        line += f", final from {result['legal_force_from']}"
    out.print(line)
    if result["round_state"] == "active":
        out.print(
            f"[bold green]Round {result['round']} is active, "
            f"effective {result['effective_date']}.[/]"
        )
    elif result["round_state"] == "failed":
        out.print(f"[bold red]Round {result['round']} has failed.[/]")


@app.command()
def tick(at: At = None, as_json: Json = False) -> None:
    """Apply the timed transitions that are due (legal force)."""
    from engine.runtime.events import tick as do_tick

    moved = do_tick(_engine(), _clock(at))
    if as_json:
        _json(moved)
        return
    for m in moved:
        out.print(f"{m['round']} {m['party']}: {m['from_state']} → [bold]{m['to_state']}[/]")
    out.print(f"{len(moved)} party(ies) moved.")


@app.command()
def amend(
    round_ref: RoundArg,
    document: Annotated[Path, typer.Argument(help="The new text of the agreement.")],
    reason: Annotated[str | None, typer.Option("--reason", help="What changed and why.")] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Continue the round with a new text; approvals of the old text must be renewed."""
    from engine.runtime.rounds import amend as do_amend

    result = do_amend(_engine(), round_ref, document, reason, _clock(at), _actor(by))
    if as_json:
        _json(result)
        return
    out.print(
        f"Round {result['round']} now runs on version {result['version']} "
        f"(sha256 {result['document_sha256']}); "
        f"back to draft: {', '.join(result['reopened']) or 'none'}"
    )


@app.command()
def cancel(
    round_ref: RoundArg,
    reason: Annotated[str, typer.Option("--reason", help="Why the round ends.")],
    by: By = None,
    at: At = None,
) -> None:
    """End an open round."""
    from engine.runtime.rounds import cancel as do_cancel

    out.print(
        f"Round {do_cancel(_engine(), round_ref, reason, _clock(at), _actor(by))} is cancelled."
    )


@audit_app.command("log")
def audit_log(round_ref: RoundArg, as_json: Json = False) -> None:
    """The round's log entries, oldest first."""
    from engine.interfaces.render import log_table
    from engine.runtime.auditing import log_entries

    entries = log_entries(_engine(), round_ref)
    if as_json:
        _json(entries)
    else:
        out.print(log_table(entries))


@audit_app.command("verify")
def audit_verify(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Verify an export (jsonl or csv) with no database."),
    ] = None,
) -> None:
    """Check the hash chain and replay the log; name the first bad entry (exit 1) if any."""
    from engine.runtime.auditing import verify_database, verify_file

    if file is not None:
        report = verify_file(file)
        out.print(
            f"{file}: round {report.round}, {report.entries} entries intact; head {report.head}"
        )
        return
    reports = verify_database(_engine(), round_ref)
    for r in reports:
        out.print(f"round {r.round}: {r.entries} entries intact; head {r.head}")
    if not reports:
        out.print("No rounds to verify.")


@audit_app.command("export")
def audit_export(
    round_ref: RoundArg,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Export a round's log; `ratify audit verify --file` checks the jsonl with no database."""
    from engine.runtime.auditing import export

    text = export(_engine(), round_ref, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")
        err.print(f"wrote {output}")


def _settings() -> Any:
    from engine.settings import load_settings

    return load_settings(database_url=_state.db)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="Run one tick and exit.")] = False,
    at: At = None,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between ticks.")
    ] = 60.0,
) -> None:
    """Tick: timed transitions, reminders and escalations due, the outbox sent. SIGTERM stops it
    after the tick under way."""
    from engine.runtime.worker import TickReport, run_worker, tick_once
    from notifications.mailer import Mailer

    settings = _settings()
    mailer = Mailer.from_settings(settings)
    clock = _clock(at)
    if once:
        out.print(tick_once(_engine(), clock, mailer, settings.mail_from).summary())
        return
    if at is not None:
        raise typer.BadParameter("--at needs --once: a running worker follows the system clock")

    def report(tick: TickReport) -> None:
        for moved in tick.moved:
            out.print(f"{moved['round']} {moved['party']}: → {moved['to_state']}")
        if tick.queued or tick.sent:
            out.print(tick.summary())

    out.print(
        f"ratify worker: ticking every {interval:g} s; {mailer!r}. SIGTERM or Ctrl-C stops it."
    )
    run_worker(_engine(), clock, mailer, settings.mail_from, interval, report)
    out.print("ratify worker: stopped.")


@app.command()
def reminders(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Preview, without sending, what a tick at that time would send."""
    from rich.table import Table

    from engine.runtime.notify import preview

    items = preview(_engine(), _clock(at), round_ref)
    if as_json:
        _json(items)
        return
    if not items:
        out.print("Nothing is due.")
        return
    table = Table("round", "party", "kind", "recipients", "due", "")
    for i in items:
        what = i["kind"] + (f" #{i['number']}" if i["number"] and i["kind"] == "reminder" else "")
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
    cls=_Group, help="The messages: queued, sent, failed.", invoke_without_command=True
)
app.add_typer(outbox_app, name="outbox")


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

    from engine.errors import InvalidInput
    from engine.persistence.database import ensure_schema, transaction
    from notifications import outbox

    if state is not None and state not in outbox.STATES:
        raise InvalidInput(f"--state {state!r}: use one of {', '.join(outbox.STATES)}")
    engine = _engine()
    ensure_schema(engine)
    with transaction(engine) as session:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "round": r.round_id,
                "party": r.party_id,
                "kind": r.kind,
                "recipients": r.recipients,
                "subject": r.subject,
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt_at": r.next_attempt_at.isoformat(),
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "last_error": r.last_error,
                "refused": r.refused,
                "message_id": r.message_id,
            }
            for r in outbox.messages(session, state)
        ]
    if as_json:
        _json(rows)
        return
    table = Table("id", "party", "kind", "to", "state", "tries", "error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["party"] or "(coordinator)",
            r["kind"],
            ", ".join(r["recipients"]),
            r["state"],
            str(r["attempts"]),
            escape(r["last_error"] or ""),
        )
    out.print(table)
    failed = sum(r["state"] == "failed" for r in rows)
    if failed:
        out.print(
            f"[bold red]{failed} message(s) failed[/]: `ratify outbox retry ID` sends one again."
        )


@outbox_app.command("retry")
def outbox_retry(message_id: Annotated[int, typer.Argument(metavar="ID")], at: At = None) -> None:
    """Send a failed message again at the next tick."""
    from engine.clock import DEFAULT_ZONE
    from engine.persistence.database import ensure_schema, transaction
    from notifications import outbox

    engine = _engine()
    ensure_schema(engine)
    with transaction(engine) as session:
        row = outbox.retry(session, message_id, _clock(at).now(DEFAULT_ZONE))
        out.print(f"message {row.id} ({row.kind} to {', '.join(row.recipients)}) is pending again.")


@app.command("smtp-sink")
def smtp_sink(
    port: Annotated[int, typer.Option("--port", help="Port to listen on (127.0.0.1).")] = 8025,
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
    host, bound = sink.start(port=port)
    out.print(f"smtp-sink: listening on {host}:{bound}, storing messages in {directory}/")
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        sink.stop()
        out.print("smtp-sink: stopped.")


@workflows_app.command("list")
def workflows_list(as_json: Json = False) -> None:
    """The workflows, their versions and default bodies."""
    from rich.table import Table

    from workflows import available_workflows

    defs = available_workflows()
    if as_json:
        _json(
            [
                {
                    "name": d.name,
                    "version": d.version,
                    "description": d.description,
                    "default_bodies": list(d.default_bodies),
                    "await_legal_force": d.await_legal_force,
                    "bodies": [
                        {"name": b.name, "kind": b.kind, "appeal_days": b.appeal_days}
                        for b in d.bodies
                    ],
                }
                for d in defs
            ]
        )
        return
    table = Table()
    table.add_column("workflow", no_wrap=True)
    table.add_column("v")
    table.add_column("default body", no_wrap=True)
    table.add_column("legal force")
    table.add_column("description")
    for d in defs:
        table.add_row(
            d.name,
            str(d.version),
            ", ".join(d.default_bodies),
            "await" if d.await_legal_force else "no",
            d.description,
        )
    out.print(table)


@workflows_app.command("show")
def workflows_show(
    name: Annotated[str, typer.Argument(help="A workflow's name.")],
    version: Annotated[int | None, typer.Option("--version", help="Default: the latest.")] = None,
    mermaid: Annotated[
        bool, typer.Option("--mermaid", help="Print a Mermaid state diagram.")
    ] = False,
) -> None:
    """A workflow's states, events and bodies."""
    from workflows import load_definition, machine_for

    d = load_definition(name, version)
    machine = machine_for(d.name, d.version)
    if mermaid:
        sys.stdout.write(machine.mermaid() + "\n")
        return
    out.print(f"[bold]{d.name}[/] v{d.version}: {d.description}")
    out.print(
        "bodies: " + ", ".join(f"{b.name} ({b.kind}, appeal {b.appeal_days} d)" for b in d.bodies)
    )
    out.print(f"default: {', '.join(d.default_bodies)}; await legal force: {d.await_legal_force}")
    for state in d.states:
        final = " (final)" if state in d.final else ""
        moves = [
            f"{t.event} → {t.dest or state}"
            + (f" [if {', '.join(t.conditions)}]" if t.conditions else "")
            for t in d.transitions
            if state in t.sources
        ]
        out.print(f"  {state}{final}: " + ("; ".join(moves) or "—"), markup=False)


@app.command()
def demo(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Agreement to play (default: the Kanta-Häme example)."),
    ] = None,
) -> None:
    """Play the Kanta-Häme round on a simulated clock in a temporary database."""
    from engine.demo import run_demo

    raise typer.Exit(run_demo(out, file))


def main() -> None:
    app()
