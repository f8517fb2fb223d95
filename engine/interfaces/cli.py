"""The `ratify` command: :func:`main`, its entry point. A read that ``fast`` answers (`ratify
status`) imports neither typer nor SQLAlchemy; every other command, and any doubt, goes to the
typer application in ``commands`` (``app`` here too, imported when first asked for)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.interfaces.commands import app

__all__ = ["app", "main"]


def main() -> None:
    from engine.interfaces.fast import answer

    try:
        code = answer(sys.argv[1:])
    # Ended as typer ends a command: the reader gone (`| head`) is a quiet exit 1, ^C one of 130.
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if code is not None:
        raise SystemExit(code)
    from engine.interfaces.commands import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":
        from engine.interfaces.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # python -m engine.interfaces.cli (e.g. with -X importtime)
    main()
