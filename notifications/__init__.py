"""Telling people: the reminder policy (``policy``), rendering (``render``), the durable outbox
(``outbox``), SMTP delivery (``mailer``) and a development SMTP sink (``sink``).

Importing the package stays light; each module brings its own libraries (Jinja2, babel,
aiosmtplib, aiosmtpd) only when it is imported.
"""

from notifications.message import KINDS, Attachment, OutgoingMessage

__all__ = ["KINDS", "Attachment", "OutgoingMessage"]
