"""`ratify audit …` and `ratify workflows …`: reading the log, and the workflows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.errors import InvalidInput
from engine.interfaces.common import (
    Group,
    Json,
    RoundArg,
    db_engine,
    err,
    out,
    print_json,
)
from engine.interfaces.fast import show_heads
from engine.wording import counted

__all__ = ["audit_app", "workflows_app"]

audit_app = typer.Typer(cls=Group, help="Inspect, export and verify the log.", no_args_is_help=True)
workflows_app = typer.Typer(
    cls=Group, help="The party workflows ratify knows.", no_args_is_help=True
)


@audit_app.command("log")
def audit_log(round_ref: RoundArg, as_json: Json = False) -> None:
    """The round's log entries, oldest first."""
    from engine.interfaces.render import log_table
    from engine.runtime import log_entries

    entries = log_entries(db_engine(), round_ref)
    if as_json:
        print_json(entries)
    else:
        out.print(log_table(entries))


@audit_app.command("head")
def audit_head(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Each round's head: its entries and the last one's hash. Keep it where the database's
    administrators cannot write; `ratify audit verify --expect-head` checks the log against it."""
    from engine.runtime import heads

    show_heads(heads(db_engine(), round_ref), as_json, out)


@audit_app.command("verify")
def audit_verify(
    round_ref: Annotated[
        str | None, typer.Argument(metavar="[ROUND]", help="Default: every round.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Verify an export (jsonl or csv) with no database."),
    ] = None,
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            metavar="HASH",
            help="A head noted earlier (64 hex digits): fail if the log no longer holds it.",
        ),
    ] = None,
) -> None:
    """Check the hash chain and replay the log; name the first bad entry (exit 1) if any."""
    from engine.runtime import verify, verify_file

    if file is not None and round_ref is not None:
        raise InvalidInput(f"give a ROUND or --file, not both: {file} is verified with no database")
    if file is not None:
        report = verify_file(file, expect_head=expect_head)
    else:
        report = verify(db_engine(), round_ref, expect_head=expect_head)
    for r in report.chains:
        where = f"{report.file}: round {r.round}" if report.file else f"round {r.round}"
        intact = counted(r.entries, "entry", "entries")
        out.print(f"{where}: {intact} intact; head {r.head}", soft_wrap=True)
    if not report.chains:
        out.print("No rounds to verify.")
    if (found := report.expected) is not None:
        if found.after == 0:
            out.print(f"round {found.round}: its head is the one expected", soft_wrap=True)
        else:
            later = counted(found.after, "entry has", "entries have")
            out.print(
                f"round {found.round}: the expected head is entry #{found.seq}; {later} been "
                "added since (the log grew after that head was noted)",
                soft_wrap=True,
            )


@audit_app.command("export")
def audit_export(
    round_ref: RoundArg,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Export a round's log; `ratify audit verify --file` checks it with no database. In the csv,
    a cell that a spreadsheet would run as a formula (=, +, -, @, tab, CR) starts with a '."""
    from engine.runtime import export

    text = export(db_engine(), round_ref, fmt)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text, "utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"--output {output}: cannot write it ({exc.strerror or exc})"
            ) from None
        err.print(f"wrote {output}")


def _write(output: Path, data: bytes) -> None:
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise InvalidInput(f"--output {output}: cannot write it ({exc.strerror or exc})") from None
    err.print(f"wrote {output}")


Output = Annotated[Path, typer.Option("-o", "--output", help="The file to write.")]
Language = Annotated[
    str | None, typer.Option("--language", help="fi, sv or en. Default: the round's language.")
]


@audit_app.command("certificate")
def audit_certificate(round_ref: RoundArg, output: Output, language: Language = None) -> None:
    """The round's certificate: a PDF, or HTML when FILE ends in .html. An open, failed or
    cancelled round's, or one whose log does not verify, says it is no certificate of completion."""
    from engine.runtime import certificate, certificate_pdf, render_certificate_html

    cert = certificate(db_engine(), round_ref)
    chosen = language or cert.language
    if output.suffix.lower() in (".html", ".htm"):
        data = render_certificate_html(cert, chosen).encode("utf-8")
    else:
        data = certificate_pdf(cert, chosen)
    _write(output, data)
    if not cert.complete:
        why = cert.state if cert.chain.verified else "not verified: " + (cert.chain.problem or "")
        err.print(f"note: not a certificate of completion: round {cert.round} is {why}")


@audit_app.command("pack")
def audit_pack(round_ref: RoundArg, output: Output, language: Language = None) -> None:
    """The round's evidence pack (a zip): its texts, minutes extracts, log (jsonl) and certificate,
    with a README.txt telling an auditor how to check them without ratify."""
    from engine.runtime import evidence_pack

    _write(output, evidence_pack(db_engine(), round_ref, language))


@workflows_app.command("list")
def workflows_list(as_json: Json = False) -> None:
    """The workflows, their versions and default bodies."""
    from rich.table import Table

    from engine.runtime import workflows

    defs = workflows()
    if as_json:
        print_json(
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
    from engine.runtime import workflow

    d, machine = workflow(name, version)
    if mermaid:
        sys.stdout.write(machine.mermaid() + "\n")
        return
    out.print(f"[bold]{d.name}[/] v{d.version}: {d.description}")
    out.print(
        "bodies: " + ", ".join(f"{b.name} ({b.kind}, appeal {b.appeal_days} d)" for b in d.bodies)
    )
    waits = "yes" if d.await_legal_force else "no"
    out.print(f"default: {', '.join(d.default_bodies)}; await legal force: {waits}")
    for state in d.states:
        final = " (final)" if state in d.final else ""
        role = d.role(state)
        moves = [
            f"{t.event} → {t.dest or state}"
            + (f" [if {', '.join(t.conditions)}]" if t.conditions else "")
            for t in d.transitions
            if state in t.sources
        ]
        out.print(f"  {state} [{role}]{final}: " + ("; ".join(moves) or "—"), markup=False)
