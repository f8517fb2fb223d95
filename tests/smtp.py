"""A real SMTP server for tests: a MailSink on a free loopback port, in a folder of its own.

with SmtpServer(tmp_path / "mail") as smtp:
    Mailer("127.0.0.1", smtp.port).deliver_sync(batch)
    assert smtp.messages()[0]["Subject"] == "…"

``on_message`` runs on the server's thread as each message is stored, before the server answers
250 (so the client is still waiting for that message's outcome); :meth:`SmtpServer.wait_received`
waits for a number of messages to have arrived.
"""

from __future__ import annotations

import email
import email.policy
import socket
import tempfile
import threading
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType

from notifications.sink import MailSink, OnMessage, Received

__all__ = ["SmtpServer", "unused_port"]

HOST = "127.0.0.1"


class SmtpServer:
    """Starts on ``with`` (or :meth:`start`), stops on leaving it. Without a folder, a temp one."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        reject: Mapping[str, str] | None = None,
        credentials: tuple[str, str] | None = None,
        on_message: OnMessage | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ratify-smtp-")
            directory = Path(self._tmp.name)
        self.directory = directory
        self._on_message = on_message
        self._arrived = threading.Condition()
        self.sink = MailSink(
            self.directory, reject=reject, credentials=credentials, on_message=self._stored
        )
        self.host = HOST
        self.port = 0

    def start(self) -> SmtpServer:
        self.host, self.port = self.sink.start(HOST, 0)
        return self

    def stop(self) -> None:
        self.sink.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        """The stored messages, in the order received, parsed back from their .eml files."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]

    @property
    def received(self) -> list[Received]:
        """Envelopes too: who the server actually took each message for."""
        return self.sink.received

    def wait_received(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` messages have been stored: True, or False after
        ``timeout`` seconds without. It returns as soon as the count is reached."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.sink.received) >= count, timeout)

    def _stored(self, path: Path, envelope_from: str, rcpt_tos: list[str], subject: str) -> None:
        if self._on_message is not None:
            self._on_message(path, envelope_from, rcpt_tos, subject)
        with self._arrived:
            self._arrived.notify_all()

    @property
    def connections(self) -> int:
        return self.sink.connections

    def reject(self, address: str, reply: str) -> None:
        self.sink.reject(address, reply)

    def fail_next(self, n: int, reply: str = "451 4.3.0 try again later") -> None:
        self.sink.fail_next(n, reply)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released: connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port
