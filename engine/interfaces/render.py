"""Rich renderings of rounds and logs, shared by the CLI and the demo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.markup import escape
from rich.table import Table

__all__ = ["log_table", "status_table"]

# By a state's role, whatever the workflow calls the state.
_ROLE_STYLE = {
    "done": "green",
    "failed": "red",
    "signing": "cyan",
    "legal_force": "yellow",
    "on_hold": "magenta",
    "preparing": "dim",
}


def status_table(status: dict[str, Any]) -> Table:
    effective = f", effective {status['effective_date']}" if status["effective_date"] else ""
    table = Table(
        title=f"{status['round']} — {status['state']}{effective} — "
        f"{status['signed']}/{len(status['parties'])} signed",
        caption=_caption(status),
        title_justify="left",
    )
    for column in ("party", "state", "since", "step", "signatures", "allowed now"):
        table.add_column(column)
    for p in status["parties"]:
        step = p["body"] or ""
        if p["legal_force_from"] and p["role"] == "legal_force":
            step = f"final from {p['legal_force_from']}"
        if p["role"] == "signing" and p.get("may_sign"):
            waiting = [s["name"] for s in p["may_sign"] if s["name"] not in p["signatories"]]
            step = "may sign: " + ", ".join(waiting)
        style = _ROLE_STYLE.get(p["role"], "")
        table.add_row(
            escape(p["id"]),
            f"[{style}]{p['state']}[/]" if style else p["state"],
            p["since"][:16].replace("T", " "),
            escape(step),
            f"{p['signatures']}/{p['signatures_required']}",
            ", ".join(p["allowed"]),
        )
    return table


def _caption(status: dict[str, Any]) -> str:
    caption = f"document v{status['document_version']} sha256 {status['document_sha256'][:16]}…"
    mail = status.get("outbox") or {}
    if mail:
        caption += "; email " + ", ".join(f"{n} {state}" for state, n in sorted(mail.items()))
    if mail.get("failed"):
        caption += " ([bold red]see `ratify outbox --state failed`[/])"
    return caption


# The entries that bind a party to a text: the log shows which one.
_BINDING = ("approve", "return", "reject", "sign")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _evidence(entry: Mapping[str, Any]) -> str:
    evidence = entry["evidence"]
    if entry["event"] == "launch":
        return f"{len(evidence.get('parties', []))} parties; text {evidence.get('document')}"
    shown = []
    for key, value in evidence.items():
        if value in (None, "", []) or key in ("message", "step_since", "previous_sha256"):
            continue
        text = str(value)
        shown.append(f"{key}={text[:57] + '…' if len(text) > 60 else text}")
    if entry["event"] in _BINDING and entry.get("document_sha256"):
        shown.append(f"text={entry['document_sha256'][:12]}")  # which text it applies to
    return "; ".join(shown)


def log_table(entries: Sequence[Mapping[str, Any]]) -> Table:
    """The log for reading, times local to the round as `status` shows them; `audit log --json`
    and `audit export` give every field (times in UTC)."""
    launch = entries[0]["evidence"] if entries and entries[0]["event"] == "launch" else {}
    zone = ZoneInfo(launch.get("timezone", "UTC"))
    table = Table(title_justify="left", caption=f"times in {zone.key}; * = given with --at")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("recorded", no_wrap=True)
    for column in ("party", "event", "from → to", "by", "evidence"):
        table.add_column(column, overflow="fold")
    table.add_column("hash", no_wrap=True)
    for e in entries:
        mark = "" if e["clock"] == "system" else "*"
        table.add_row(
            str(e["seq"]),
            f"{_moment(e['recorded_at']).astimezone(zone):%Y-%m-%d %H:%M}{mark}",
            e["party"] or "—",
            e["event"],
            f"{e['from_state'] or '—'} → {e['to_state'] or '—'}",
            escape(e["actor"]),
            escape(_evidence(e)),
            e["hash"][:8],
        )
    return table
