"""The `ratify` command's commands (``cli.main`` runs them, when ``fast`` has not answered). Exit
codes: 0 done, 1 refused by the rules (or verification failed), 2 invalid input. Heavy imports
(database, workflows, mail) happen inside the commands that need them, so `ratify --help` stays
fast. The audit, workflow and mail commands live beside this file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from engine.errors import InvalidInput
from engine.interfaces import (
    cli_audit,
    cli_mail,
    cli_proposals,
    cli_tokens,
    cli_web,
    cli_webhooks,
)
from engine.interfaces.common import (
    At,
    By,
    Group,
    Json,
    RoundArg,
    actor_for,
    clock_at,
    db_engine,
    out,
    print_json,
    state,
)
from engine.interfaces.fast import NO_ROUNDS
from engine.wording import counted

__all__ = ["app"]

app = typer.Typer(
    cls=Group,
    help="Run the ratification of an agreement by many parties, and prove it afterwards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL; overrides RATIFY_DATABASE_URL.", metavar="URL"),
    ] = None,
) -> None:
    state.db = db
    ctx.call_on_close(state.close)


@app.command()
def init() -> None:
    """Create the database schema, or check that the existing one is current."""
    from engine.runtime import init_schema

    out.print(init_schema(db_engine()))


@app.command()
def launch(
    file: Annotated[Path, typer.Argument(help="The agreement file (TOML).")],
    at: At = None,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Validate an agreement file and launch a round of it, every party at its workflow's start."""
    from engine.runtime import launch as do_launch

    done = do_launch(db_engine(), file, clock_at(at), actor_for(by))
    if as_json:
        print_json({"round": done.round})
        return
    out.print(
        f"Launched round [bold]{done.round}[/]: {counted(done.parties, 'party', 'parties')} "
        f"invited; document sha256 {done.document_sha256}"
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
    from engine.runtime import jsonable
    from engine.runtime import status as get_status

    rounds = jsonable(get_status(db_engine(), round_ref))
    if as_json:
        print_json(rounds[0] if round_ref is not None else rounds)
        return
    if not rounds:
        out.print(NO_ROUNDS)
    for r in rounds:
        out.print(status_table(r))


@app.command()
def calendar(
    round_ref: RoundArg,
    party: Annotated[
        str | None, typer.Argument(help="One party's (default: every party's).")
    ] = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Each body's next meetings and the day its agenda closes for each (the calendars the
    agreement file gave)."""
    from engine.runtime import calendar as get_calendar
    from engine.runtime import jsonable

    found = get_calendar(db_engine(), round_ref, clock_at(at), party)
    if as_json:
        print_json(jsonable(found))
        return
    if not found:
        out.print("No meeting calendars: give them in the agreement file (parties' `calendars`).")
    for body in found:
        out.print(f"{escape(body.party_name)}: {escape(body.body)} ({escape(body.source)})")
        if body.warning:
            out.print(f"  warning: {escape(body.warning)}")
        if not body.next:
            out.print("  no meetings known from today on")
        for m in body.next:
            out.print(f"  meets {m.day:%d.%m.%Y}; its agenda closes {m.agenda_closes:%d.%m.%Y}")


@app.command()
def forecast(
    round_ref: RoundArg,
    at: At = None,
    signing_days: Annotated[
        int,
        typer.Option(
            "--signing-days",
            help="Working days from a decision's legal force to the last signature.",
        ),
    ] = 5,
    as_json: Json = False,
) -> None:
    """The earliest date each party can have signed (its bodies' next meetings whose agenda can
    still take the agreement, the legal-force waits, a signing lag), and the round's entry into
    force with the party that holds it back."""
    from engine.runtime import forecast as get_forecast
    from engine.runtime import jsonable

    found = get_forecast(db_engine(), round_ref, clock_at(at), signing_days)
    if as_json:
        print_json(jsonable(found))
        return
    for p in found.parties:
        when = f"{p.signed_by:%d.%m.%Y}" if p.signed_by else "no date"
        late = "  LATE: after the deadline" if p.late else ""
        out.print(f"{escape(p.party)}: signed at the earliest {when} ({escape(p.note)}){late}")
        for step in p.steps:
            what = {"decision": "decides", "legal_force": "final", "signed": "signed"}[step.what]
            basis = "" if step.known or step.what == "signed" else " (assumed)"
            body = f"{escape(step.body)} " if step.body else ""
            out.print(f"  {body}{what} {step.on:%d.%m.%Y}{basis}")
    if found.in_force is not None:
        by = f" by {found.behind_days} days" if found.behind_days else ""
        out.print(
            f"In force at the earliest {found.in_force:%d.%m.%Y}; "
            f"{escape(found.critical or '')} holds the round back{by}."
        )
        if found.late_days:
            out.print(f"That is {found.late_days} days after the deadline.")
    else:
        out.print("No entry into force to forecast (a party has no date, or the round is closed).")


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
        str | None,
        typer.Option(
            "--title", help="The signatory's title (sign; a listed signatory's by default)."
        ),
    ] = None,
    diary: Annotated[
        str | None,
        typer.Option(
            "--diary", help="The party's diary number, as its system writes it (optional)."
        ),
    ] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record an event for a party: checked against its workflow, written with its log entry."""
    from engine.runtime import Evidence, jsonable
    from engine.runtime import record as do_record

    done = do_record(
        db_engine(),
        round_ref,
        party,
        event,
        Evidence(ref=ref, reason=reason, signatory=signatory, title=title, diary=diary),
        clock_at(at),
        actor_for(by),
    )
    result = jsonable(done)
    if as_json:
        print_json(result)
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
    from engine.runtime import jsonable
    from engine.runtime import tick as do_tick

    moved = jsonable(do_tick(db_engine(), clock_at(at)))
    if as_json:
        print_json(moved)
        return
    for m in moved:
        out.print(f"{m['round']} {m['party']}: {m['from_state']} → [bold]{m['to_state']}[/]")
    out.print(f"{counted(len(moved), 'party', 'parties')} moved.")


@app.command()
def amend(
    round_ref: RoundArg,
    document: Annotated[Path, typer.Argument(help="The new text of the agreement.")],
    reason: Annotated[str | None, typer.Option("--reason", help="What changed and why.")] = None,
    text: Annotated[
        list[str] | None,
        typer.Option(
            "--text",
            metavar="LANG=FILE",
            help="A round in several languages: the new text in another of them, as sv=avtal.md "
            "(DOCUMENT is the text in the round's language). Once per language.",
        ),
    ] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Continue the round with a new text; approvals of the old text must be renewed."""
    from engine.runtime import amend as do_amend
    from engine.runtime import jsonable

    texts: dict[str, Path] = {}
    for given in text or []:
        language, sep, path = given.partition("=")
        if not sep or not language.strip() or not path.strip() or language.strip() in texts:
            raise InvalidInput(
                f"{{opt.text}} {given!r}: write it as LANG=FILE, once per language, "
                "for example --text sv=avtal.md",
                field="text",
            )
        texts[language.strip()] = Path(path.strip())
    result = jsonable(
        do_amend(db_engine(), round_ref, document, reason, clock_at(at), actor_for(by), texts=texts)
    )
    if as_json:
        print_json(result)
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
    from engine.runtime import cancel as do_cancel

    cancelled = do_cancel(db_engine(), round_ref, reason, clock_at(at), actor_for(by))
    out.print(f"Round {cancelled} is cancelled.")


@app.command()
def demo(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Agreement to play (default: the Kanta-Häme example)."),
    ] = None,
) -> None:
    """Play the Kanta-Häme round on a simulated clock in a temporary database."""
    from engine.interfaces.demo import run_demo

    raise typer.Exit(run_demo(out, file))


# After the commands above, so that --help lists the round's commands first.
cli_mail.register(app)
cli_web.register(app)
cli_tokens.register(app)
cli_webhooks.register(app)
cli_proposals.register(app)
app.add_typer(cli_audit.audit_app, name="audit")
app.add_typer(cli_audit.workflows_app, name="workflows")
