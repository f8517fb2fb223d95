"""A rendered email as a value: what the outbox stores and the mailer sends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

__all__ = ["KINDS", "Attachment", "OutgoingMessage", "message_id_for"]

# invitation: at launch, to each party's contacts; reminder: a pending step (at fixed intervals);
# deadline: before the round's deadline; agenda: before the agenda of the meeting of the body a
# step waits on closes; followup: after such a meeting passed undecided; escalation: to the
# coordinator when a party stalls or a message bounced; receipt: an event was recorded for the
# party; active / failed / cancelled / amended: notices about the round, to everyone; witness: the
# heads of every round's log, to RATIFY_WITNESS_EMAIL, so that a copy lives outside the database.
KINDS = (
    "invitation",
    "reminder",
    "escalation",
    "deadline",
    "agenda",
    "followup",
    "receipt",
    "active",
    "failed",
    "cancelled",
    "amended",
    "witness",
)


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar"
    data: bytes


@dataclass(frozen=True)
class OutgoingMessage:
    """One email to one or more recipients, rendered, with the key that makes it unique."""

    key: str  # e.g. "reminder:kanta-hame-strategic-2026/1:hattula:board_review:…:2:addr"
    kind: str
    to: tuple[str, ...]
    language: str
    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = field(default=())

    @property
    def message_id(self) -> str:
        return message_id_for(self.key)


def message_id_for(key: str, domain: str = "ratify.invalid") -> str:
    """A Message-ID derived from the unique key: a resend of the same row has the same id."""
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
