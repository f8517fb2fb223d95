"""Who is told what, and when. The pieces: ``messages`` (invitations, receipts, notices, queued
with their events), ``chasing`` (reminders and escalations due at a tick) and ``sending`` (the
outbox out)."""

from __future__ import annotations

from engine.runtime.chasing import Chase, enqueue_due, preview
from engine.runtime.messages import on_event, on_launch, on_round
from engine.runtime.sending import send_due

__all__ = ["Chase", "enqueue_due", "on_event", "on_launch", "on_round", "preview", "send_due"]
