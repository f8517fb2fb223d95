"""A development SMTP server (``ratify smtp-sink``, and the tests' real server).

It stores each message it receives as ``NNNNNN-<Message-ID slug>.eml`` in a folder, as it came but
with the wire's CRLF line ends made LF (what Python's email package and text tools expect).
It can also misbehave on purpose, so that the outbox meets real 4xx and 5xx replies: refuse chosen
recipients (:meth:`MailSink.reject`) or fail the DATA of the next messages (:meth:`fail_next`).
"""

from __future__ import annotations

import asyncio
import email.policy
import hmac
import os
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["MailSink", "OnMessage", "Received"]

# on_message(path, envelope_from, rcpt_tos, subject)
OnMessage = Callable[[Path, str, list[str], str], None]

_REPLY = re.compile(r"[45]\d\d( .*)?")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_STORED = re.compile(r"(\d+)-.*\.eml")


@dataclass(frozen=True)
class Received:
    """One message the sink stored. ``login``: the AUTH user of its session, if any."""

    path: Path
    envelope_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    message_id: str | None
    login: str | None


class MailSink:
    """An SMTP server on a thread of its own: ``start()`` it, send to it, ``stop()`` it.

    ``credentials`` (user, password) make it offer AUTH — over plain text, so loopback only.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        on_message: OnMessage | None = None,
        reject: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._on_message = on_message
        self._credentials = credentials
        self._lock = threading.Lock()  # the server's thread and the caller's share what follows
        self._rejects: dict[str, str] = {}
        self._failures: list[str] = []
        self._received: list[Received] = []
        self._connections = 0
        self._counter = 0
        self._controller: _Controller | None = None
        for address, reply in (reject or {}).items():
            self.reject(address, reply)

    # --- misbehaving on purpose -------------------------------------------------------------

    def reject(self, address: str, reply: str) -> None:
        """Answer RCPT TO:<address> with ``reply``, e.g. "550 5.1.1 no such user"."""
        with self._lock:
            self._rejects[address.lower()] = _checked(reply)

    def fail_next(self, n: int, reply: str = "451 4.3.0 try again later") -> None:
        """Answer the DATA of the next ``n`` messages with ``reply`` (replacing what was pending).

        A 421 reply also closes the connection, as RFC 5321 has a server do.
        """
        if n < 0:
            raise ValueError(f"n must be 0 or more, not {n}")
        with self._lock:
            self._failures = [_checked(reply)] * n

    # --- what happened ----------------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    @property
    def connections(self) -> int:
        """SMTP connections accepted since start (not counting the start-up probe)."""
        with self._lock:
            return self._connections

    # --- running ----------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 8025) -> tuple[str, int]:
        """Listen on host:port (port 0: a free one) and return where it listens."""
        if self._controller is not None:
            raise RuntimeError("the sink is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counter = max(
            (int(m[1]) for p in self.directory.iterdir() if (m := _STORED.fullmatch(p.name))),
            default=0,
        )  # a restarted sink goes on numbering, never overwrites
        options: dict[str, Any] = {}
        if self._credentials is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        # Bound here, not on the server's thread: a port in use fails at once (aiosmtpd would
        # sit out its ready timeout), and port 0 is resolved before anyone needs it.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server((host, port), family=family)
        controller = _Controller(
            _Handler(self), listener, self._connected, hostname=host, **options
        )
        try:
            controller.start()
        except BaseException:
            controller.stop(no_assert=True)
            if not controller.loop.is_closed():  # its thread ended before running the loop
                controller.loop.close()
            listener.close()
            raise
        with self._lock:
            self._connections = 0  # the controller's own probe, on start, is not a client
        self._controller = controller
        return host, controller.port

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    # --- called on the server's thread ------------------------------------------------------

    def _connected(self) -> None:
        with self._lock:
            self._connections += 1

    def _reply_for_rcpt(self, address: str) -> str | None:
        with self._lock:
            return self._rejects.get(address.lower())

    def _take_failure(self) -> str | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self._credentials is not None
        user, password = self._credentials
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, user.encode())
            and hmac.compare_digest(auth_data.password, password.encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    def _store(self, envelope_from: str, rcpt_tos: list[str], content: bytes, login: Any) -> str:
        headers = BytesParser(policy=email.policy.default).parsebytes(content, headersonly=True)
        message_id = headers.get("message-id")
        subject = str(headers.get("subject", ""))
        slug = _slug(str(message_id)) if message_id else "no-message-id"
        with self._lock:
            self._counter += 1
            path = self.directory / f"{self._counter:06d}-{slug}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(content)
        partial.replace(path)  # a reader of the folder never sees half a message
        received = Received(
            path,
            envelope_from,
            tuple(rcpt_tos),
            subject,
            str(message_id) if message_id else None,
            login if isinstance(login, str) else None,
        )
        with self._lock:
            self._received.append(received)
        if self._on_message is not None:
            self._on_message(path, envelope_from, rcpt_tos, subject)
        return path.name


class _Handler:
    """aiosmtpd's hooks (found by name), handing over to the sink."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._sink._reply_for_rcpt(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self._sink._take_failure()
        if failure is not None:
            if failure.startswith("421") and server.transport is not None:
                # Runs after aiosmtpd has written the reply (it writes before it next yields);
                # close() sends what is buffered first.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return failure
        login = session.auth_data if session.authenticated else None
        content = (envelope.original_content or b"").replace(b"\r\n", b"\n")
        name = self._sink._store(envelope.mail_from or "", list(envelope.rcpt_tos), content, login)
        return f"250 2.0.0 OK stored as {name}"


class _Controller(Controller):
    """aiosmtpd's threaded controller, serving on a socket already bound, counting connections."""

    def __init__(
        self,
        handler: _Handler,
        listener: socket.socket,
        on_connection: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, port=listener.getsockname()[1], **kwargs)
        self._listener = listener
        self._on_connection = on_connection

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._listener)

    def factory(self) -> SMTP:  # called once per accepted connection
        self._on_connection()
        server: SMTP = super().factory()  # type: ignore[no-untyped-call]
        return server


def _checked(reply: str) -> str:
    if not _REPLY.fullmatch(reply):
        raise ValueError(f"an SMTP error reply is a 4xx or 5xx code and text, not {reply!r}")
    return reply


def _slug(message_id: str) -> str:
    local = message_id.strip().strip("<>").split("@", 1)[0]
    return _UNSAFE.sub("-", local).strip("-.")[:64] or "no-message-id"
