"""`ratify proposals` and `ratify proposal …`: decisions proposed from the parties' published
minutes, to confirm (recorded as the party's decision, with where it was read) or dismiss."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

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
)
from engine.wording import counted

if TYPE_CHECKING:
    from engine.runtime import Proposal

__all__ = ["register"]

proposal_app = typer.Typer(
    cls=Group,
    help="Decisions proposed from the parties' published minutes: confirm, dismiss, paste, poll.",
    no_args_is_help=True,
)
Id = Annotated[int, typer.Argument(help="The proposal's number (`ratify proposals ROUND`).")]


def _line(p: Proposal) -> str:
    where = f"{p.kind}, read {p.fetched_at:%d.%m.%Y %H:%M} UTC"
    line = f"#{p.id} {escape(p.party_name)} ({p.party}): {escape(p.question)} ({p.state})"
    line += f"\n    {escape(p.title)}" + (f", Dno {escape(p.diary)}" if p.diary else "")
    line += f"\n    {escape(p.item_url)} ({where}; SHA-256 {p.sha256[:12]}…)"
    if p.seq is not None:
        line += f"\n    recorded as entry #{p.seq} by {escape(p.settled_by or '')}"
    elif p.settled_by:
        line += f"\n    {p.state} by {escape(p.settled_by)}"
    return line


def proposals(
    round_ref: RoundArg,
    party: Annotated[
        str | None, typer.Argument(help="One party's (default: every party's).")
    ] = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="Only those not yet confirmed or dismissed.")
    ] = False,
    as_json: Json = False,
) -> None:
    """The decisions found in the parties' published minutes, proposed for confirming."""
    from engine.runtime import jsonable
    from engine.runtime import proposals as listed

    found = listed(db_engine(), round_ref, party, pending=pending)
    if as_json:
        print_json(jsonable(found))
        return
    if not found:
        out.print(
            "No proposals. The worker reads each party's decision source (the agreement "
            "file's `source`) on working days; `ratify proposal paste` adds one by hand."
        )
    for p in found:
        out.print(_line(p))


@proposal_app.command("confirm")
def confirm(
    pid: Id,
    event: Annotated[
        str, typer.Option("--event", help="approve (default), reject or return.")
    ] = "approve",
    reason: Annotated[str | None, typer.Option("--reason", help="Why (reject, return).")] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """Record the proposed decision as the party's, with its source, fetch time and hash."""
    from engine.runtime import confirm_proposal, jsonable

    done = confirm_proposal(
        db_engine(), pid, clock_at(at), actor_for(by), event=event, reason=reason
    )
    if as_json:
        print_json(jsonable(done))
        return
    r = done.recorded
    out.print(
        f"{r.party}: {r.from_state} → [bold]{r.to_state}[/] (entry #{r.seq}), "
        f"{escape(done.proposal.decision)} from {escape(done.proposal.item_url)}"
    )


@proposal_app.command("dismiss")
def dismiss(pid: Id, by: By = None, at: At = None, as_json: Json = False) -> None:
    """The item was not the party's decision: set the proposal aside, record nothing."""
    from engine.runtime import dismiss_proposal, jsonable

    done = dismiss_proposal(db_engine(), pid, clock_at(at), actor_for(by))
    if as_json:
        print_json(jsonable(done))
        return
    out.print(f"Proposal #{done.id} dismissed: {escape(done.decision)}; nothing was recorded.")


@proposal_app.command("paste")
def paste(
    round_ref: RoundArg,
    party: Annotated[str, typer.Argument(help="The party's id.")],
    url: Annotated[str, typer.Argument(help="The minutes' address (https://…).")],
    ref: Annotated[str, typer.Argument(help="The decision: 'Kunnanhallitus 14.12.2026 § 5'.")],
    diary: Annotated[str | None, typer.Option("--diary", help="The diary number.")] = None,
    by: By = None,
    at: At = None,
    as_json: Json = False,
) -> None:
    """A manual source: propose a decision from its minutes' address and reference."""
    from engine.runtime import jsonable, paste_proposal

    text = "\n".join([url, ref, *([f"Dno {diary}"] if diary else [])])
    made = paste_proposal(db_engine(), round_ref, party, text, clock_at(at), actor_for(by))
    if as_json:
        print_json(jsonable(made))
        return
    out.print(_line(made))


@proposal_app.command("sources")
def list_sources(round_ref: RoundArg, as_json: Json = False) -> None:
    """Each party's decision source, when it was last read, and its warning if it failed."""
    from engine.runtime import jsonable, sources

    found = sources(db_engine(), round_ref)
    if as_json:
        print_json(jsonable(found))
        return
    if not found:
        out.print("No decision sources: name them in the agreement file (parties' `source`).")
    for s in found:
        read = f"read {s.polled_at:%d.%m.%Y %H:%M} UTC" if s.polled_at else "not read yet"
        if s.next_poll_at is not None:
            read += f", next from {s.next_poll_at:%d.%m.%Y %H:%M} UTC"
        line = f"{escape(s.party_name)} ({s.party}): {s.kind} {escape(s.url or '')} — {read}"
        out.print(line + (f"\n  warning: {escape(s.warning)}" if s.warning else ""))


@proposal_app.command("poll")
def poll(at: At = None, as_json: Json = False) -> None:
    """Read the decision sources that are due now (the worker does so on each tick)."""
    from engine.runtime import jsonable, poll_sources

    polled = poll_sources(db_engine(), clock_at(at))
    if as_json:
        print_json(jsonable(polled))
        return
    for p in polled:
        said = f"{p.round} {p.party} ({p.kind}): {counted(p.items, 'item')} read, "
        said += f"{counted(p.proposed, 'decision')} proposed"
        out.print(escape(said) + (f"\n  warning: {escape(p.warning)}" if p.warning else ""))
    out.print(f"{counted(len(polled), 'source')} read.")


def register(app: typer.Typer) -> None:
    app.command("proposals")(proposals)
    app.add_typer(proposal_app, name="proposal")
