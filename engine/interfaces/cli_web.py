"""`ratify serve`, `user`, `party` (contacts, links, signatories) and `annotate`: the web
application, its accounts, and the corrections a running round may need (each a log entry)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from engine.interfaces.common import (
    At,
    By,
    Group,
    RoundArg,
    actor_for,
    clock_at,
    current_keys,
    current_settings,
    db_engine,
    out,
    system_clock,
)

__all__ = ["register"]

users_app = typer.Typer(
    cls=Group, help="Coordinators' and auditors' accounts.", no_args_is_help=True
)
party_app = typer.Typer(
    cls=Group,
    help="Correct a party of a running round: contacts, links, signatories.",
    no_args_is_help=True,
)
contacts_app = typer.Typer(cls=Group, help="A party's contact persons.", no_args_is_help=True)
Reason = Annotated[str | None, typer.Option("--reason", help="Why (kept in the log).")]
Party = Annotated[str, typer.Argument(help="The party's id.")]


@users_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="The user name to sign in with.")],
    role: Annotated[str, typer.Option("--role", help="coordinator or auditor.")],
) -> None:
    """Create an account (or set its role and password). The password is read from standard
    input (at least 12 characters); it is stored as an argon2 hash."""
    from engine.runtime.access import add_user

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    made = add_user(db_engine(), name, role, password, clock_at(None))
    out.print(f"User {escape(made.name)} ({made.role}) can sign in.")


@users_app.command("list")
def user_list() -> None:
    """Every account and its role."""
    from engine.runtime.access import users

    for user in users(db_engine()):
        out.print(f"{escape(user.name)}\t{user.role}\t{user.created_at:%Y-%m-%d}")


@contacts_app.command("add")
def contact_add(
    round_ref: RoundArg,
    party: Party,
    name: Annotated[str, typer.Option("--name")],
    email: Annotated[str, typer.Option("--email")],
    language: Annotated[str, typer.Option("--language")] = "fi",
    reason: Reason = None,
    at: At = None,
    by: By = None,
) -> None:
    """Add a contact; the next messages go to it too, with its own link."""
    from engine.runtime.corrections import add_contact

    seq = add_contact(
        db_engine(), round_ref, party, name, email, language, clock_at(at), actor_for(by), reason
    )
    out.print(f"Added a contact to {party} (log entry #{seq}).")


@contacts_app.command("change")
def contact_change(
    round_ref: RoundArg,
    party: Party,
    email: Annotated[str, typer.Argument(help="The contact's current address.")],
    name: Annotated[str, typer.Option("--name")],
    new_email: Annotated[str, typer.Option("--email", help="The new address.")],
    language: Annotated[str, typer.Option("--language")] = "fi",
    reason: Reason = None,
    at: At = None,
    by: By = None,
) -> None:
    """Change a contact: its link is withdrawn, and what waited for or bounced from the old
    address goes to the new one."""
    from engine.runtime.corrections import change_contact

    seq = change_contact(
        db_engine(),
        round_ref,
        party,
        email,
        name=name,
        new_email=new_email,
        language=language,
        clock=clock_at(at),
        actor=actor_for(by),
        reason=reason,
    )
    out.print(f"Changed a contact of {party} (log entry #{seq}).")


@contacts_app.command("remove")
def contact_remove(
    round_ref: RoundArg,
    party: Party,
    email: Annotated[str, typer.Argument(help="The contact's address.")],
    reason: Reason = None,
    at: At = None,
    by: By = None,
) -> None:
    """Remove a contact (not the party's last): its link is withdrawn."""
    from engine.runtime.corrections import remove_contact

    seq = remove_contact(db_engine(), round_ref, party, email, clock_at(at), actor_for(by), reason)
    out.print(f"Removed a contact of {party} (log entry #{seq}).")


@party_app.command("link")
def party_link(
    round_ref: RoundArg,
    party: Party,
    email: Annotated[str, typer.Argument(help="The contact's address.")],
    new: Annotated[
        bool, typer.Option("--new", help="Send the contact a new link (the invitation again).")
    ] = False,
    reason: Reason = None,
    at: At = None,
    by: By = None,
) -> None:
    """Withdraw a contact's personal link (and with --new, send a new one)."""
    from engine.runtime.corrections import revoke_link

    seq = revoke_link(
        db_engine(),
        round_ref,
        party,
        email,
        clock_at(at),
        actor_for(by),
        reissue=new,
        reason=reason,
    )
    what = "withdrawn; a new one goes out with the next tick" if new else "withdrawn"
    out.print(f"The link of that contact of {party} is {what} (log entry #{seq}).")


@party_app.command("signatories")
def party_signatories(
    round_ref: RoundArg,
    party: Party,
    signatory: Annotated[
        list[str] | None,
        typer.Option("--signatory", help="'Name; title', repeated; none: anyone may sign."),
    ] = None,
    reason: Reason = None,
    at: At = None,
    by: By = None,
) -> None:
    """Replace the list of who may sign for the party."""
    from engine.errors import InvalidInput
    from engine.runtime.corrections import set_signatories

    listed = []
    for given in signatory or []:
        name, sep, title = given.partition(";")
        if not sep:
            raise InvalidInput(
                f"--signatory {given!r}: write it as 'Name; title'", field="signatories"
            )
        listed.append((name.strip(), title.strip()))
    seq = set_signatories(
        db_engine(), round_ref, party, listed, clock_at(at), actor_for(by), reason
    )
    out.print(f"The signatories of {party} are set (log entry #{seq}).")


def annotate(
    round_ref: RoundArg,
    seq: Annotated[int, typer.Argument(help="The number of the entry the note is on.")],
    note: Annotated[str, typer.Option("--note", help="What the entry is to be read with.")],
    at: At = None,
    by: By = None,
) -> None:
    """Append a note on an entry of the log (a correction never edits the entry itself)."""
    from engine.runtime.corrections import annotate as append_note

    made = append_note(db_engine(), round_ref, seq, note, clock_at(at), actor_for(by))
    out.print(f"Noted on entry #{seq} (log entry #{made}).")


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve pages only; run `ratify worker` apart.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between ticks.")
    ] = 60.0,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Development: a local SMTP sink shown at /sink, the example round launched "
            "into an empty database, and a coordinator with a new password printed.",
        ),
    ] = False,
) -> None:
    """Serve the web application (with the worker in the same process unless --no-worker)."""
    from engine.interfaces.serve import run_server

    run_server(
        db_engine(),
        current_settings(),
        host=host,
        port=port,
        worker=not no_worker,
        interval=interval,
        dev=dev,
        keys=current_keys,
        clock=system_clock(),
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(annotate)
    app.add_typer(users_app, name="user")
    party_app.add_typer(contacts_app, name="contacts")
    app.add_typer(party_app, name="party")
