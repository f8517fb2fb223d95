"""Two `ratify serve` and three `ratify worker` processes on one PostgreSQL database, coordinating
only through it, with a simulated clock they all read from one file (weeks pass in seconds):
50 rounds are driven through the API from launch to active while one worker is killed with
SIGKILL in the middle of its mail. Then: every message reached the SMTP server once (at most one
extra copy, with the same Message-ID, for the killed worker's message in flight), every webhook
delivery arrived (duplicates only by the same id), every round became active exactly once, and
every chain verifies."""

from __future__ import annotations

import base64
import collections
import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx2
import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from engine.clock import FixedClock
from engine.persistence.database import connect, init_schema, transaction
from engine.persistence.tables import LogRow, OutboxRow, WebhookDeliveryRow
from engine.runtime import verify
from engine.runtime.tokens import create_token
from engine.runtime.webhooks import add_webhook
from tests.conftest import empty_postgres, write_agreement
from tests.receiver import Receiver
from tests.smtp import SmtpServer, unused_port

ROUNDS = 50
PARTIES = ("alpha", "beta", "gamma")
HELSINKI = ZoneInfo("Europe/Helsinki")
SECRET = "many-processes-" + "0" * 40
WAIT = 120.0  # seconds of real time any one phase may take before the test gives up


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=HELSINKI)


class Cluster:
    """The processes, the shared clock, and the client that drives them."""

    def __init__(self, folder: Path, url: str, smtp: SmtpServer) -> None:
        self.folder = folder
        self.clock_file = folder / "clock.txt"
        self.ports = [unused_port(), unused_port()]
        self.env = {
            **os.environ,
            "RATIFY_DATABASE_URL": url,
            "RATIFY_SECRET_KEY": SECRET,
            "RATIFY_SMTP_HOST": smtp.host,
            "RATIFY_SMTP_PORT": str(smtp.port),
            "RATIFY_FAKE_CLOCK_FILE": str(self.clock_file),
            "RATIFY_BASE_URL": f"http://127.0.0.1:{self.ports[0]}",
            "PYTHONUNBUFFERED": "1",
        }
        self.logs: list[Any] = []
        self.web: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.client = httpx2.Client(timeout=30)
        self.calls = 0

    def set_clock(self, moment: datetime) -> None:
        partial = self.clock_file.with_suffix(".tmp")
        partial.write_text(moment.isoformat(), "ascii")
        partial.replace(self.clock_file)  # every process reads a whole time, never half of one

    def now(self) -> datetime:
        return datetime.fromisoformat(self.clock_file.read_text("ascii"))

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{args[0]}-{len(self.web) + len(self.workers)}.log").open("wb")
        self.logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "engine.interfaces.cli", *args],
            env=self.env,
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> None:
        for port in self.ports:
            self.web.append(self._start("serve", "--no-worker", "--port", str(port)))
        for _ in range(3):
            self.workers.append(self._start("worker", "--interval", "1"))
        for port in self.ports:
            until(functools.partial(self._up, port), "the web processes to answer")

    def _up(self, port: int) -> bool:
        try:
            return self.client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx2.HTTPError:
            return False

    def stop(self) -> None:
        for process in [*self.web, *self.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.web, *self.workers]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.client.close()
        for log in self.logs:
            log.close()

    def api(self, method: str, path: str, token: str, **kw: Any) -> Any:
        port = self.ports[self.calls % 2]  # the two web processes take turns
        self.calls += 1
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        url = f"http://127.0.0.1:{port}/api/v1{path}"
        answer = self.client.request(method, url, headers=headers, **kw)
        assert answer.status_code in (200, 201), answer.text
        return answer.json()


def until(condition: Callable[[], bool], what: str, tick: Callable[[], None] | None = None) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        if tick is not None:
            tick()
        time.sleep(0.2)


_PENDING = (
    select(func.count()).select_from(OutboxRow).where(col(OutboxRow.state) == "pending"),
    select(func.count())
    .select_from(WebhookDeliveryRow)
    .where(col(WebhookDeliveryRow.state) == "pending"),
)
_SENDING = (
    select(func.count()).select_from(OutboxRow).where(col(OutboxRow.state) == "sending"),
    select(func.count())
    .select_from(WebhookDeliveryRow)
    .where(col(WebhookDeliveryRow.state) == "sending"),
)


def quiet(engine: Engine, *, settled: bool = False) -> bool:
    """Wait until the workers are idle: nothing waits to be sent, and what is claimed stays as it
    is (the killed worker's claims, until their lease ends). ``settled``: nothing claimed either."""

    def idle() -> bool:
        if sum(count(engine, q) for q in _PENDING):
            return False
        claimed = sum(count(engine, q) for q in _SENDING)
        time.sleep(0.5)
        still = sum(count(engine, q) for q in _SENDING)
        return claimed == still and (still == 0 or not settled)

    until(idle, "the workers to be idle")
    return True


def count(engine: Engine, query: Any) -> int:
    with transaction(engine) as session:
        return int(session.execute(query).scalar_one())


@pytest.fixture
def many(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Cluster, Engine, SmtpServer]]:
    url = empty_postgres(postgres_url)
    engine = connect(url)
    init_schema(engine)
    with SmtpServer(tmp_path / "mail") as smtp:
        cluster = Cluster(tmp_path, url, smtp)
        cluster.set_clock(at(2026, 12, 1, 9))
        try:
            yield cluster, engine, smtp
        finally:
            cluster.stop()
            engine.dispose()


def test_two_web_and_three_worker_processes_share_one_database(
    many: tuple[Cluster, Engine, SmtpServer], tmp_path: Path
) -> None:
    cluster, engine, smtp = many
    clock = FixedClock(cluster.now())
    token = create_token(engine, "case-system", "coordinator", clock, "test").token
    with Receiver() as receiver:
        hook = add_webhook(
            engine,
            SECRET.encode(),
            receiver.url,
            ["launch", "sign", "activate", "remind"],
            clock,
            "t",
        )
        cluster.start()

        # Launch: 50 rounds of three municipalities, through both web processes.
        rounds = []
        for i in range(ROUNDS):
            folder = tmp_path / f"round-{i:02d}"
            folder.mkdir()
            parties = [
                {
                    "id": p,
                    "name": p.title(),
                    "contacts": [{"name": "Kim", "email": f"{p}.{i}@example.invalid"}],
                }
                for p in PARTIES
            ]
            path = write_agreement(
                folder, parties, agreement={"id": f"yhteinen-{i:02d}", "title": f"Sopimus {i}"}
            )
            files = {
                "agreement": ("agreement.toml", path.read_bytes()),
                "document": ("agreement.md", (folder / "agreement.md").read_bytes()),
            }
            made = cluster.api(
                "POST", "/rounds", token, files=files, headers={"Idempotency-Key": f"launch-{i}"}
            )
            rounds.append(made["round"])

        def events(round_id: str, party: str, body: dict[str, Any]) -> None:
            path = f"/rounds/{round_id}/parties/{party}/events"
            key = {"Idempotency-Key": f"{round_id}:{party}:{body['event']}"}
            cluster.api("POST", path, token, json=body, headers=key)

        # The clock moves only while the workers are idle: a jump of days in the middle of a
        # batch would end its lease (the clock is theirs too) and hand it to another worker, as a
        # worker stalled for days would. Only the killed worker's claims are left to the jump.
        quiet(engine)
        cluster.set_clock(at(2026, 12, 2))
        for round_id in rounds:  # alpha and beta go to their boards; gamma waits, and is reminded
            for party in ("alpha", "beta"):
                events(round_id, party, {"event": "submit"})
        quiet(engine)
        cluster.set_clock(at(2026, 12, 16))  # ten working days after the launch: reminders due
        reminders = (
            select(func.count()).select_from(OutboxRow).where(col(OutboxRow.kind) == "reminder")
        )
        until(lambda: count(engine, reminders) >= ROUNDS, "the reminders to be queued")
        sent = select(func.count()).select_from(OutboxRow).where(col(OutboxRow.state) == "sent")
        first = count(engine, sent)
        until(lambda: count(engine, sent) >= first + 20, "mail to flow")
        victim = cluster.workers[0]
        victim.send_signal(signal.SIGKILL)  # in the middle of its batch, by all odds
        victim.wait()
        quiet(engine)

        # Everyone decides; the boards' decisions become final while the clock runs on.
        cluster.set_clock(at(2026, 12, 17))  # the killed worker's leases are over: taken again
        for round_id in rounds:
            events(round_id, "gamma", {"event": "submit"})
            for n, party in enumerate(PARTIES, start=1):
                ref = f"Kunnanhallitus 17.12.2026 § {n}"
                events(round_id, party, {"event": "approve", "ref": ref})
        quiet(engine)
        cluster.set_clock(at(2027, 1, 25))
        final = select(func.count()).select_from(LogRow).where(col(LogRow.event) == "legal-force")
        until(lambda: count(engine, final) == ROUNDS * len(PARTIES), "legal force everywhere")
        quiet(engine)
        for round_id in rounds:
            for party in PARTIES:
                sign = {"event": "sign", "signatory": "Aino Esimerkki", "title": "kunnanjohtaja"}
                events(round_id, party, sign)
        until(lambda: quiet(engine, settled=True), "the last mail and webhooks")

    # Every round active, once.
    activations = collections.Counter(
        r
        for (r,) in _rows(
            engine, select(col(LogRow.round_id)).where(col(LogRow.event) == "activate")
        )
    )
    assert sorted(activations) == sorted(rounds)
    assert set(activations.values()) == {1}
    for round_id in rounds:
        assert cluster.api("GET", f"/rounds/{round_id}", token)["state"] == "active"
    # Every chain verifies.
    report = verify(engine)
    assert len(report.chains) == ROUNDS
    assert all(chain.ok for chain in report.chains)
    # Every message sent once, by its Message-ID; at most one extra copy, the killed worker's.
    # A reminder the killed worker had claimed is taken again only when its lease ends, by which
    # time its party may have moved on: then it is skipped, never sent late.
    outbox_rows = _rows(
        engine,
        select(
            col(OutboxRow.message_id),
            col(OutboxRow.state),
            col(OutboxRow.kind),
            col(OutboxRow.last_error),
        ),
    )
    sent_ids = {mid.strip() for mid, state, _, _ in outbox_rows if state == "sent"}
    skipped = [(kind, why) for _, state, kind, why in outbox_rows if state == "skipped"]
    assert {state for _, state, _, _ in outbox_rows} <= {"sent", "skipped"}
    assert all(kind == "reminder" and "moved on" in (why or "") for kind, why in skipped), skipped
    ids = [(m["Message-ID"] or "").strip() for m in smtp.messages()]
    copies = collections.Counter(ids)
    assert sent_ids <= set(copies)
    late = set(copies) - sent_ids  # delivered by the killed worker, then skipped: in flight
    all_ids = {mid.strip() for mid, _, _, _ in outbox_rows}
    assert late <= all_ids
    twice = [m for m, n in copies.items() if n > 1]
    assert len(late) + sum(n - 1 for n in copies.values()) <= 1, (late, twice)
    # Every webhook delivery arrived and is signed; duplicates only by the same id.
    delivered = {f"ratify-{d}" for (d,) in _rows(engine, select(col(WebhookDeliveryRow.id)))}
    posted = collections.Counter(h["webhook-id"] for h, _ in receiver.got)
    assert set(posted) == delivered
    assert sum(n - 1 for n in posted.values()) <= 1
    events_posted = collections.Counter(b["event"] for b in receiver.bodies())
    assert events_posted["activate"] >= ROUNDS
    assert events_posted["remind"] >= ROUNDS
    key = base64.b64decode(hook.secret.removeprefix("whsec_"))
    assert key  # the secret printed is the one the deliveries were signed with (test_webhooks)


def _rows(engine: Engine, query: Any) -> list[Any]:
    with transaction(engine) as session:
        return list(session.execute(query).all())
