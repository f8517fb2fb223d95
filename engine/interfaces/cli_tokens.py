"""`ratify token`: the JSON API's clients (create one, list them, revoke one)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from engine.interfaces.common import Group, actor_for, clock_at, db_engine, err, out

__all__ = ["register"]

tokens_app = typer.Typer(
    cls=Group, help="Bearer tokens of the JSON API's clients.", no_args_is_help=True
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%d.%m.%Y %H:%M} UTC"


@tokens_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The client's name (a-z, 0-9, . _ -), given once.")],
    role: Annotated[str, typer.Option("--role", help="coordinator (reads, writes) or auditor.")],
    round_ref: Annotated[
        str | None, typer.Option("--round", help="The one round the token reaches (default: all).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Make a token. It is printed once, here; only its SHA-256 is stored."""
    from engine.runtime import jsonable
    from engine.runtime.tokens import create_token

    made = create_token(
        db_engine(), name, role, clock_at(None), actor_for(None), round_ref=round_ref
    )
    if as_json:
        out.print_json(data={**jsonable(made.info), "token": made.token})
        return
    scope = f"round {made.info.round}" if made.info.round else "every round"
    err.print(f"Token {escape(made.info.name)} ({made.info.role}, {scope}). Keep it now:")
    print(made.token)  # alone on stdout, for a pipe into a secret store


@tokens_app.command("list")
def token_list(as_json: Json = False) -> None:
    """Every token made, with its role, scope and whether it is revoked (never the token)."""
    from engine.runtime import jsonable
    from engine.runtime.tokens import tokens

    found = tokens(db_engine())
    if as_json:
        out.print_json(data=jsonable(found))
        return
    if not found:
        out.print("No tokens yet: `ratify token create NAME --role coordinator|auditor`.")
    for t in found:
        state = f"revoked {_when(t.revoked_at)}" if t.revoked_at else "active"
        scope = t.round or "every round"
        out.print(
            f"{escape(t.name)}  {t.role}  {escape(scope)}  made {_when(t.created_at)} "
            f"by {escape(t.created_by)}  {state}"
        )


@tokens_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Stop a token at once (it stays listed, revoked)."""
    from engine.runtime.tokens import revoke_token

    done = revoke_token(db_engine(), name, clock_at(None))
    out.print(f"Token {escape(done.name)} is revoked since {_when(done.revoked_at)}.")


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="token")
