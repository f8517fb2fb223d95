"""A local SMTP sink (aiosmtpd) in a process of its own, that keeps what it receives.

    python -m bench.sink FILE      # prints its port, then serves on 127.0.0.1 until SIGTERM

Each message is appended to FILE as it came (its envelope, then its bytes), and each connection
is counted there too (its EHLO), so that the harness can send the very same bytes again over the
same number of connections. :class:`Sink` runs it from the harness.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from bench.common import ROOT, child_env

__all__ = ["Captured", "Sink"]


@dataclass(frozen=True)
class Captured:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _Keeper:
    """aiosmtpd's handler: every message and every connection's EHLO, appended to a file."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.out.write(b"E\n")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or b""
        head = {"from": envelope.mail_from, "to": envelope.rcpt_tos, "size": len(content)}
        self.out.write(b"M " + json.dumps(head).encode() + b"\n" + content)
        self.out.flush()
        return "250 OK"


def serve(path: Path) -> None:
    from aiosmtpd.smtp import SMTP

    async def main() -> None:
        with path.open("ab") as out:
            keeper = _Keeper(out)
            loop = asyncio.get_running_loop()
            server = await loop.create_server(lambda: SMTP(keeper), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            print(port, flush=True)
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()
            server.close()
            out.flush()

    asyncio.run(main())


class Sink:
    """The sink's process: started on ``with``, its port known, stopped on leaving."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = 0
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Sink:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.sink", str(self.path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(),
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            assert self._process.stdout is not None
            self._process.stdout.close()

    def received(self) -> tuple[list[Captured], int]:
        """The messages kept so far, in order, and the number of connections made."""
        data = self.path.read_bytes() if self.path.exists() else b""
        messages, connections, at = [], 0, 0
        while at < len(data):
            end = data.index(b"\n", at)
            line = data[at:end]
            at = end + 1
            if line == b"E":
                connections += 1
                continue
            head = json.loads(line[2:])
            messages.append(Captured(head["from"], tuple(head["to"]), data[at : at + head["size"]]))
            at += head["size"]
        return messages, connections


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
