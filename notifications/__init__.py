"""Reminder policy, durable outbox, rendering and SMTP delivery (to come: issue 3)."""

__all__: list[str] = []
