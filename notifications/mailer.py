"""SMTP delivery of a batch of messages over one reused connection, with outcomes the outbox keeps.

A ``Delivery`` says what became of one message: ``sent`` (perhaps with some recipients refused),
``temporary`` (retry later, with :func:`backoff`) or ``permanent`` (a 5xx: do not retry).
An ``on_delivery`` callback hears each outcome before the server can take the next message, so
that the caller can record it first (the outbox marks a message sent there): it runs while the
next message's bytes are with the server, before the line that ends them, so that recording one
message overlaps the server's reading of the next (:class:`_Client`).
"""

from __future__ import annotations

import asyncio
import email.message
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.typing import Default, SMTPStatus

from notifications.mime import Wire

if TYPE_CHECKING:
    from engine.settings import Settings

__all__ = ["Delivery", "Later", "Mailer", "OnDelivery", "Outcome", "Sendable", "Tls", "backoff"]

log = logging.getLogger(__name__)

Outcome = Literal["sent", "temporary", "permanent"]
Tls = Literal["starttls", "tls", "none"]

# Connecting, TLS and login: whatever goes wrong there says nothing about the messages, so it is
# temporary for all of them, even a 5xx (a wrong password must not fail every message for good).
_SETUP_ERRORS = (aiosmtplib.SMTPException, OSError)


@dataclass(frozen=True)
class Delivery:
    """What became of one message of a batch. ``refused``: recipient -> "code message"."""

    ref: object
    outcome: Outcome
    error: str | None = None
    refused: dict[str, str] = field(default_factory=dict)


class Later:
    """A message written out only when its turn comes: while the server reads the one before it
    (see :meth:`Mailer.deliver`), so that writing it overlaps the server's work. What ``make``
    raises is what sending it raised (a ValueError: it cannot be sent, ``permanent``)."""

    def __init__(self, make: Callable[[], email.message.EmailMessage | Wire]) -> None:
        self._make: Callable[[], email.message.EmailMessage | Wire] | None = make
        self._made: email.message.EmailMessage | Wire | None = None
        self._error: Exception | None = None

    def prepare(self) -> None:
        """Write it out now, keeping what it raises for :meth:`made`."""
        if self._make is not None:
            make, self._make = self._make, None
            try:
                self._made = make()
            except Exception as exc:
                self._error = exc

    def made(self) -> email.message.EmailMessage | Wire:
        self.prepare()
        if self._error is not None:
            raise self._error
        assert self._made is not None
        return self._made


# What the mailer sends: a message of the email package's, or one already written out as bytes
# with its envelope (notifications.mime), or one to write out when its turn comes.
Sendable = email.message.EmailMessage | Wire | Later

# Called with each message's Delivery once it is known, before the server can take the next one.
OnDelivery = Callable[[Delivery], None]


class _Unrecorded(Exception):
    """What ``on_delivery`` raised, carried out of aiosmtplib's call (whose handlers must not
    take it for a failure of the message withdrawn) to :meth:`Mailer.deliver`, which raises it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, but its DATA runs ``before_end`` once the message's bytes are
    written and before the line that ends them: the server reads the message meanwhile, but has
    not taken it. So the work done there (telling ``on_delivery`` of the message before) overlaps
    the server's, and a failure there still withdraws the message: the connection is closed
    before its end, and a server drops a message it had no end of."""

    def __init__(self, before_end: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.before_end = before_end

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,
    ) -> aiosmtplib.SMTPResponse:
        # As aiosmtplib's data() and its protocol's DATA command, but for the hook; sendmail()
        # has sent EHLO before it calls this.
        protocol = self.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        wait = self.timeout if timeout is Default.token else timeout
        raw = message.encode("ascii") if isinstance(message, str) else message
        body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(raw))
        try:
            start = await protocol.execute_command(b"DATA", timeout=wait)
            if start.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(start.code, start.message)
            protocol.write(body)
            try:
                self.before_end()
            except BaseException as exc:
                self.close()  # the message unended: the server never takes it
                raise _Unrecorded(exc) from exc
            protocol.write(b".\r\n")
            response = await protocol.read_response(timeout=wait)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if response.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response


class Mailer:
    """Delivers batches to one SMTP server. Holds no connection between batches."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: Tls = "none",
        timeout: float = 30.0,
    ) -> None:
        if tls not in get_args(Tls):
            raise ValueError(f"tls must be one of {', '.join(get_args(Tls))}, not {tls!r}")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.tls: Tls = tls
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer:
        secret = settings.smtp_password
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=secret.get_secret_value() if secret is not None else None,
            tls=settings.smtp_tls,
            timeout=settings.smtp_timeout,
        )

    def __repr__(self) -> str:  # never the password
        user = f" as {self.username!r}" if self.username else ""
        return f"Mailer({self.host}:{self.port}{user}, tls={self.tls})"

    async def deliver(
        self,
        batch: Sequence[tuple[object, Sendable]],
        on_delivery: OnDelivery | None = None,
    ) -> list[Delivery]:
        """Send every message of the batch; one Delivery per message, in the batch's order.

        One connection serves the whole batch. If it drops, it is reopened once for the messages
        not yet tried; the message that was in flight is ``temporary`` (the server may or may not
        have taken it: the outbox retries it later, with the same Message-ID).

        ``on_delivery`` is called with each Delivery, in the batch's order, and returns before
        the server can take the next message: while the next one's bytes are with the server,
        before the line that ends them (or before the next Delivery is known, or at the end).
        It runs on the event loop's thread, and may block it: nothing else runs there
        meanwhile. If it raises, no further message is sent: the one whose end it held up is
        withdrawn unended (the connection closed), the exception propagates, and the messages
        not yet tried, that one among them, have no Delivery (a caller that cannot record what
        it sent must stop sending).
        """
        results: list[Delivery] = []
        untold: deque[Delivery] = deque()  # known, not yet told to on_delivery

        def tell() -> None:
            while untold:
                delivery = untold.popleft()
                if on_delivery is not None:
                    on_delivery(delivery)

        def known(delivery: Delivery) -> None:
            tell()  # the one before first: on_delivery hears them in order
            results.append(delivery)
            untold.append(delivery)

        try:
            await self._deliver(deque(batch), known, tell)
        except _Unrecorded as stop:
            raise stop.error from None
        tell()
        return results

    async def _deliver(
        self,
        queue: deque[tuple[object, Sendable]],
        known: Callable[[Delivery], None],
        tell: Callable[[], None],
    ) -> None:
        def meanwhile() -> None:
            # While the server reads a message: the one before told, the next one written out.
            tell()
            if queue and isinstance(queue[0][1], Later):
                queue[0][1].prepare()

        dropped: str | None = None
        for _attempt in range(2):  # the first connection and one reconnection
            if not queue:
                break
            smtp = self._client(meanwhile)
            try:
                await smtp.connect()
            except _SETUP_ERRORS as exc:  # connect() closes the transport itself
                error = self._describe(exc)
                log.warning("SMTP %r unreachable: %s", self, error)
                while queue:
                    known(Delivery(queue.popleft()[0], "temporary", error))
                return
            async with smtp:  # QUIT politely and close the transport, whatever happens
                while queue and smtp.is_connected:
                    ref, message = queue.popleft()
                    delivery = await self._send(smtp, ref, message)
                    if not smtp.is_connected:
                        dropped = delivery.error or "the server closed the connection"
                    known(delivery)
        if queue:  # dropped again after the reconnection: leave the rest for a later tick
            error = f"connection lost: {dropped}"
            while queue:
                known(Delivery(queue.popleft()[0], "temporary", error))

    def deliver_sync(
        self,
        batch: Sequence[tuple[object, Sendable]],
        on_delivery: OnDelivery | None = None,
    ) -> list[Delivery]:
        """:meth:`deliver` from synchronous code (not from inside a running event loop)."""
        return asyncio.run(self.deliver(batch, on_delivery))

    def _client(self, before_end: Callable[[], None] = lambda: None) -> aiosmtplib.SMTP:
        return _Client(
            before_end,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            timeout=self.timeout,
            use_tls=self.tls == "tls",
            # False for "none" too: aiosmtplib's default (None) upgrades opportunistically.
            start_tls=self.tls == "starttls",
        )

    async def _send(self, smtp: aiosmtplib.SMTP, ref: object, sendable: Sendable) -> Delivery:
        try:
            message = sendable.made() if isinstance(sendable, Later) else sendable
            if isinstance(message, Wire):
                errors, _reply = await smtp.sendmail(
                    message.sender, message.recipients, message.data
                )
            else:
                errors, _reply = await smtp.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = {r.recipient: f"{r.code} {r.message}" for r in exc.recipients}
            permanent = any(r.code >= 500 for r in exc.recipients)
            error = "all recipients refused: " + "; ".join(f"{a}: {m}" for a, m in refused.items())
            return self._failed(ref, "permanent" if permanent else "temporary", error, refused)
        except aiosmtplib.SMTPResponseException as exc:
            outcome: Outcome = "permanent" if exc.code >= 500 else "temporary"
            return self._failed(ref, outcome, f"{exc.code} {exc.message}")
        except (aiosmtplib.SMTPNotSupported, ValueError) as exc:
            # The message itself cannot be sent (a malformed or non-ASCII address the server
            # cannot take, no From): trying again will not help.
            return self._failed(ref, "permanent", self._describe(exc))
        except (aiosmtplib.SMTPException, OSError) as exc:  # dropped, timed out
            return self._failed(ref, "temporary", self._describe(exc))
        refused = {addr: f"{r.code} {r.message}" for addr, r in errors.items()}
        if refused:
            # Counts only: addresses are personal data and stay in the outbox, out of the logs.
            log.warning("message %s: sent, but %d recipient(s) refused", _name(ref), len(refused))
        return Delivery(ref, "sent", refused=refused)

    def _failed(
        self, ref: object, outcome: Outcome, error: str, refused: dict[str, str] | None = None
    ) -> Delivery:
        error = self._scrub(error)
        log.warning("message %s: %s failure (%s)", _name(ref), outcome, error.split(" ", 1)[0])
        return Delivery(ref, outcome, error, refused or {})

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"{exc.code} {exc.message}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return self._scrub(text)

    def _scrub(self, text: str) -> str:
        # No library puts the password in an error today; a server echoing it must not leak it.
        return text.replace(self._password, "***") if self._password else text


def _name(ref: object) -> str:
    """How a log line names a message: its outbox id, never its content or recipients."""
    return str(getattr(ref, "id", None) or type(ref).__name__)


def backoff(attempts: int, base: float = 60.0, cap: float = 3600.0) -> float:
    """Seconds to wait before the next try after ``attempts`` failures: 60, 120, 240… ≤ cap."""
    if attempts < 1:
        raise ValueError(f"attempts counts failures and starts at 1, not {attempts}")
    # The exponent is bounded so that a row failing for months cannot overflow a float.
    return float(min(cap, base * 2.0 ** min(attempts - 1, 64)))
