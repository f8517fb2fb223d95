"""Every field of the API's answers described in /openapi.json, from the code that defines it.

The answers are the service layer's own dataclasses (and the log's ``Entry``), which stay free of
any web library; what their fields mean is written beside each field as a comment. This reads
those comments (and each class's docstring) from the source and puts them into the document, so
the description cannot drift from the definition; the few fields whose name says it all in the
code take their words from :data:`GLOSSARY`.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize
from collections.abc import Iterable
from typing import Any

__all__ = ["GLOSSARY", "describe", "field_comments"]

# Words for fields that carry no comment, by name (the same name means the same thing throughout).
GLOSSARY = {
    "round": "The round's id: the agreement's id and the round's number (agreement/n).",
    "party": "The party's id, as the agreement file gives it.",
    "id": "The identifier.",
    "name": "The name, as written in the agreement file or given when it was made.",
    "state": "The state it is in now.",
    "role": "The role of the state (preparing, review, legal_force, on_hold, signing, done, "
    "failed): what the engine does with a party there.",
    "title": "The title.",
    "email": "The email address.",
    "language": "The language of the messages: fi, sv or en.",
    "event": "The event (submit, approve, sign, …; the engine's own: launch, activate, remind, …).",
    "seq": "The entry's number in the round's log, from 1.",
    "hash": "The SHA-256 of the entry (every field but this one), hex.",
    "prev_hash": "The hash of the entry before (64 zeros for the first).",
    "head": "The hash of the log's last entry.",
    "entries": "How many entries the log holds.",
    "parties": "The parties.",
    "agreement": "The agreement's id.",
    "effective_date": "The date the agreement is in force from, once the round is active.",
    "legal_force_from": "The date its decision becomes final (legal force), once known.",
    "signatures": "Signatures recorded so far.",
    "signatures_required": "Signatures the party needs.",
    "deadline": "The date by which every party should have signed.",
    "document_sha256": "The SHA-256 of the agreement's text, hex.",
    "document_version": "The text's version: 1 at launch, one more with each amendment.",
    "version": "The version.",
    "sha256": "The SHA-256, hex.",
    "kind": "What kind of message.",
    "recipients": "To whom.",
    "subject": "The subject line.",
    "attempts": "How many times it was tried.",
    "next_attempt_at": "When it is tried next.",
    "sent_at": "When it was sent.",
    "last_error": "Why the last try failed.",
    "refused": "Recipients the server refused, and why.",
    "message_id": "The Message-ID header: the same on every copy of one message.",
    "number": "Its number.",
    "due": "When it is due.",
    "queued": "Whether it is already in the outbox.",
    "url": "Where deliveries are posted.",
    "events": 'The events it wants (["*"]: all).',
    "generation": "The secret's generation: one more with each rotation.",
    "created_by": "Who made it.",
    "created_at": "When it was made.",
    "removed_at": "When it was removed (null: it is in use).",
    "pending": "Deliveries waiting, or being tried again.",
    "failed": "Deliveries given up.",
    "webhook": "The webhook's number.",
    "last_status": "The HTTP status the receiver gave last.",
    "delivered_at": "When the receiver took it.",
    "problem": "What is wrong with the chain (null: it verifies).",
    "chains": "One chain per round verified.",
    "file": "The export verified (null: the database).",
    "expected": "Where the head asked for is in the chain, when one was asked for.",
    "after": "Entries after it (0: it is still the head).",
    "from_state": "The party's (or round's) state before the entry.",
    "to_state": "The state after it.",
    "actor": "Who recorded it (a person, or an API client's token name).",
    "recorded_at": "When, in UTC to the microsecond.",
    "clock": "Where its time came from: system, or at (a time given by hand).",
    "evidence": "What the event carried: decision references, reasons, signatories, how it came.",
    "reason": "Why.",
    "secret": "The signing secret (whsec_…), shown here once and never stored.",
    "parties_count": "How many parties.",
    "text": "The text.",
    "source": "The file name it was read from.",
    "reopened": "The parties sent back to draft by the new text.",
    "signed": "Parties done (signed).",
    "total": "Parties in all.",
    "zone": "The round's timezone.",
    "launched_at": "When the round was launched, in its zone.",
    "log_entries": "How many entries its log holds.",
    "outbox": "Its messages, by delivery state.",
    "since": "When it came to its current state.",
    "allowed": "The events a person may record now.",
    "contacts": "Whom its messages go to.",
    "workflow": "Its workflow, name@version.",
    "bodies": "Its bodies that decide, in order.",
    "body": "The body its step waits on, if any.",
    "signatories": "Who has signed.",
    "may_sign": "Who may sign (empty: anyone the party names).",
    "unfinished": "The names of the parties neither done nor failed.",
    "escalated": "The names of the parties escalated since their step began.",
    "more": "Whether the log goes on after this page.",
    "next_since": "What to ask for next: the last entry's seq (or since again).",
    "entries_total": "How many entries the log held when the page was read.",
    "chase": "For reminders and escalations: what it chases.",
    "outcome": "What became of it.",
    "error": "Why it failed.",
    "key": "What makes it unique.",
    "round_state": "The round's state after it: open, active, failed or cancelled.",
}

_FIELD = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s*:")


def field_comments(cls: type) -> dict[str, str]:
    """``name: type  # comment`` lines of a class's body, as {name: comment}."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        row = token.start[0] - 1
        match = _FIELD.match(lines[row])
        if match and match.group(1) not in found:
            text = token.string.lstrip("#").strip()
            found[match.group(1)] = text[:1].upper() + text[1:]
    return found


def describe(document: dict[str, Any], classes: Iterable[type]) -> dict[str, Any]:
    """``document`` with a description on every property of the schemas of ``classes``."""
    schemas = document.get("components", {}).get("schemas", {})
    for cls in classes:
        schema = schemas.get(cls.__name__)
        if schema is None:
            continue
        doc = inspect.getdoc(cls)
        if doc and not doc.startswith(f"{cls.__name__}("):  # not a dataclass's made-up one
            schema["description"] = doc
        elif "description" in schema and schema["description"].startswith(f"{cls.__name__}("):
            del schema["description"]
        comments = field_comments(cls)
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop:
                words = comments.get(name) or GLOSSARY.get(name)
                if words:
                    prop["description"] = words
    return document
