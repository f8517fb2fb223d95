"""Webhooks against a real HTTP receiver on a loopback port, on SQLite and PostgreSQL: every
wanted entry becomes a delivery in its own transaction, is posted signed (checked here the way
the README shows a receiver doing it), is tried again while the receiver is down, arrives once
it is back, is given up after three days and shown, and survives a worker dying mid-batch."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from engine.clock import FakeClock
from engine.core.evidence import Evidence
from engine.errors import InvalidInput, TransitionRefused
from engine.persistence.database import transaction
from engine.persistence.tables import WebhookDeliveryRow
from engine.runtime import export, launch, load_agreement, record
from engine.runtime.webhook_sending import GIVE_UP, _claim, send_webhooks
from engine.runtime.webhooks import (
    add_webhook,
    deliveries,
    remove_webhook,
    retry_delivery,
    rotate_webhook,
    webhooks,
)
from tests.conftest import CLI
from tests.receiver import Receiver

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame" / "agreement.toml"
ROUND = "kanta-hame-strategic-2026/1"
HELSINKI = ZoneInfo("Europe/Helsinki")
SERVER_SECRET = b"s" * 32


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as kept:
        yield kept


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (the README's ten lines): any of the signatures matches."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.removeprefix("v1,") for s in headers["webhook-signature"].split()]
    return any(hmac.compare_digest(expected, g) for g in given)


def at(day: int, hour: int = 10, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=HELSINKI)


def stored(db: Engine) -> int:
    with transaction(db) as session:
        return int(
            session.execute(select(func.count()).select_from(WebhookDeliveryRow)).scalar_one()
        )


def test_each_wanted_entry_is_posted_once_signed_as_exported(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    hook = add_webhook(db, SERVER_SECRET, receiver.url, ["*"], clock, "Liisa Koskinen")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    clock.set(at(2))
    record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
    assert stored(db) == 2  # the launch and the submission, written with them
    with pytest.raises(TransitionRefused):
        record(db, ROUND, "hattula", "sign", Evidence(signatory="A", title="B"), clock, "Timo")
    assert stored(db) == 2  # a refused event wrote no entry and so no delivery

    results = send_webhooks(db, clock, SERVER_SECRET)
    assert [r.outcome for r in results] == ["delivered", "delivered"]
    lines = [json.loads(line) for line in export(db, ROUND, "jsonl").splitlines()]
    assert receiver.bodies() == lines  # each entry exactly as the export has it, in order
    for headers, body in receiver.got:
        assert verified(hook.secret, headers, body)
        assert headers["content-type"] == "application/json"
        assert headers["ratify-round"] == ROUND
        assert int(headers["webhook-timestamp"]) == int(clock.now(HELSINKI).timestamp())
    assert len({h["webhook-id"] for h, _ in receiver.got}) == 2
    assert send_webhooks(db, clock, SERVER_SECRET) == []  # nothing twice
    assert [d.state for d in deliveries(db)] == ["delivered", "delivered"]
    forged = dict(receiver.got[0][0])
    assert not verified(hook.secret, forged, receiver.got[0][1] + b" ")
    assert not verified("whsec_" + base64.b64encode(b"x" * 32).decode(), forged, receiver.got[0][1])


def test_events_and_a_round_choose_what_is_posted(
    db: Engine, clock: FakeClock, receiver: Receiver, tmp_path: Path
) -> None:
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    add_webhook(db, SERVER_SECRET, receiver.url, ["approve", "activate"], clock, "L")
    add_webhook(db, SERVER_SECRET, receiver.url + "?one", ["submit"], clock, "L", round_ref=ROUND)
    clock.set(at(2))
    record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
    record(
        db, ROUND, "hattula", "approve", Evidence(ref="Kunnanhallitus 02.12.2026 § 3"), clock, "T"
    )
    send_webhooks(db, clock, SERVER_SECRET)
    assert [b["event"] for b in receiver.bodies()] == ["submit", "approve"]
    other = EXAMPLE.read_text("utf-8").replace("kanta-hame-strategic-2026", "toinen", 1)
    (tmp_path / "agreement.toml").write_text(other, "utf-8")
    (tmp_path / "agreement.md").write_bytes((EXAMPLE.parent / "agreement.md").read_bytes())
    launch(db, load_agreement(tmp_path / "agreement.toml"), clock, "L")
    record(db, "toinen/1", "hattula", "submit", Evidence(), clock, "Timo")
    send_webhooks(db, clock, SERVER_SECRET)
    assert len(receiver.got) == 2  # the scoped one is Kanta-Häme's; the other wants no submit
    for bad in (["nonsense"], [], ["approve", "sign;drop"]):
        with pytest.raises(InvalidInput) as refused:
            add_webhook(db, SERVER_SECRET, receiver.url, bad, clock, "L")
        assert refused.value.field == "events"
    for url in ("ftp://x/", "http://", "https://user:pw@host/", "https://häme.fi/", "javascript:x"):
        with pytest.raises(InvalidInput) as refused:
            add_webhook(db, SERVER_SECRET, url, ["*"], clock, "L")
        assert refused.value.field == "url"
    assert len(webhooks(db)) == 2  # nothing was half-made


def test_a_receiver_down_gets_everything_once_it_is_back(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    hook = add_webhook(db, SERVER_SECRET, receiver.url, ["submit"], clock, "L")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    clock.set(at(2))
    for party in ("hattula", "forssa", "loppi"):
        record(db, ROUND, party, "submit", Evidence(), clock, "Timo")
    receiver.status = 503
    assert {r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)} == {"retry"}
    assert send_webhooks(db, clock, SERVER_SECRET) == []  # not before the wait is over
    waits = [d.next_attempt_at - clock.now(HELSINKI) for d in deliveries(db)]
    assert waits == [timedelta(minutes=1)] * 3
    for minutes in (1, 5, 30):  # the waits grow
        clock.advance(minutes=minutes)
        assert {r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)} == {"retry"}
    assert {d.attempts for d in deliveries(db)} == {4}
    assert webhooks(db)[0].pending == 3
    receiver.status = 200
    clock.advance(hours=2)
    assert [r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)] == ["delivered"] * 3
    assert [b["party"] for b in receiver.bodies()] == ["hattula", "forssa", "loppi"]
    assert all(verified(hook.secret, h, b) for h, b in receiver.got)
    assert webhooks(db)[0].pending == 0


def test_a_delivery_is_given_up_after_three_days_shown_and_can_be_retried(
    db: Engine, clock: FakeClock, receiver: Receiver, cli: CLI
) -> None:
    add_webhook(db, SERVER_SECRET, receiver.url, ["submit"], clock, "L")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    clock.set(at(2))
    record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
    receiver.status = 500
    outcomes = []
    start = clock.now(HELSINKI)
    while clock.now(HELSINKI) - start <= GIVE_UP + timedelta(hours=12):
        outcomes += [r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)]
        clock.advance(hours=1)
    assert outcomes[-1] == "failed"
    assert outcomes.count("failed") == 1
    assert 5 <= outcomes.count("retry") <= 12  # a few tries, not one an hour
    failed = deliveries(db, state="failed")
    assert len(failed) == 1
    assert failed[0].last_status == 500
    assert "500" in (failed[0].last_error or "")
    assert webhooks(db)[0].failed == 1
    listed = cli("webhook", "list")
    assert "given up 1" in listed.stdout
    receiver.status = 200
    assert retry_delivery(db, failed[0].id, clock).state == "pending"
    assert [r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)] == ["delivered"]
    assert len(receiver.got) == 1


def test_a_worker_dying_mid_batch_means_one_more_copy_with_the_same_id(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    add_webhook(db, SERVER_SECRET, receiver.url, ["submit"], clock, "L")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    clock.set(at(2))
    record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
    record(db, ROUND, "forssa", "submit", Evidence(), clock, "Timo")
    with transaction(db) as session:  # a worker claims the batch, posts one and dies
        claimed = _claim(session, clock.now(HELSINKI))
    assert len(claimed) == 2
    assert send_webhooks(db, clock, SERVER_SECRET) == []  # another worker leaves them alone
    clock.advance(minutes=10)  # until the dead worker's lease is over
    assert [r.outcome for r in send_webhooks(db, clock, SERVER_SECRET)] == ["delivered"] * 2
    ids = [h["webhook-id"] for h, _ in receiver.got]
    assert ids == [f"ratify-{claimed[0].id}", f"ratify-{claimed[1].id}"]


def test_a_rotation_signs_with_both_secrets_for_a_week_and_removal_stops_it(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    old = add_webhook(db, SERVER_SECRET, receiver.url, ["submit"], clock, "L")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    clock.set(at(2))
    new = rotate_webhook(db, SERVER_SECRET, old.info.id, clock)
    assert new.secret != old.secret
    record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
    send_webhooks(db, clock, SERVER_SECRET)
    headers, body = receiver.got[-1]
    assert len(headers["webhook-signature"].split()) == 2
    assert verified(old.secret, headers, body)
    assert verified(new.secret, headers, body)
    clock.advance(days=8)
    record(db, ROUND, "forssa", "submit", Evidence(), clock, "Timo")
    send_webhooks(db, clock, SERVER_SECRET)
    headers, body = receiver.got[-1]
    assert len(headers["webhook-signature"].split()) == 1
    assert verified(new.secret, headers, body)
    assert not verified(old.secret, headers, body)
    receiver.status = 503
    record(db, ROUND, "loppi", "submit", Evidence(), clock, "Timo")
    send_webhooks(db, clock, SERVER_SECRET)  # waits to be tried again
    remove_webhook(db, old.info.id, clock)
    record(db, ROUND, "tammela", "submit", Evidence(), clock, "Timo")
    assert {d.state for d in deliveries(db, state="failed")} == {"failed"}
    assert [d.event for d in deliveries(db) if d.state == "pending"] == []
    clock.advance(hours=1)
    receiver.status = 200
    assert send_webhooks(db, clock, SERVER_SECRET) == []
    assert len(receiver.got) == 2


def test_the_command_line_prints_the_secret_once(cli: CLI, receiver: Receiver) -> None:
    made = cli("webhook", "add", receiver.url, "--events", "approve,sign,activate")
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert secret not in cli("webhook", "list").stdout
    listed = cli("webhook", "list", "--json").json()
    assert [(w["url"], w["events"]) for w in listed] == [
        (receiver.url, ["activate", "approve", "sign"])
    ]
    assert "secret" not in json.dumps(listed)
    bad = cli("webhook", "add", "gopher://x", "--events", "approve")
    assert bad.exit_code == 2
    assert "http:// or https://" in bad.stderr
    wrong = cli("webhook", "add", receiver.url, "--events", "aprove")
    assert wrong.exit_code == 2
    assert "unknown event 'aprove'" in wrong.stderr
    rotated = cli("webhook", "rotate", str(listed[0]["id"]))
    assert rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret
    assert cli("webhook", "remove", str(listed[0]["id"])).exit_code == 0
    assert cli("webhook", "remove", "99").exit_code == 2


def test_the_readme_receiver_verifies_a_real_delivery_and_nothing_else(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    from tests.test_readme import _block

    code = _block("python", "### Webhooks")
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 12  # the ten lines, the import and the def
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)
    readme_verify = scope["verify"]
    hook = add_webhook(db, SERVER_SECRET, receiver.url, ["launch"], clock, "L")
    clock.set(datetime.now(HELSINKI))  # the README's check compares with the receiver's clock
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    send_webhooks(db, clock, SERVER_SECRET)
    headers, body = receiver.got[0]
    assert readme_verify(hook.secret, headers, body)
    assert not readme_verify(hook.secret, headers, body.replace(b"launch", b"lunch"))
    assert not readme_verify(hook.secret, {**headers, "webhook-id": "ratify-999"}, body)
    old = {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 3600)}
    assert not readme_verify(hook.secret, old, body)


def test_the_dashboard_shows_the_deliveries_given_up(
    db: Engine, clock: FakeClock, receiver: Receiver
) -> None:
    from fastapi.testclient import TestClient

    from engine.interfaces.web.app import create_app
    from engine.interfaces.web.common import SESSION_COOKIE, WebConfig
    from engine.runtime.access import Keys, add_user, sign_in

    add_webhook(db, SERVER_SECRET, receiver.url, ["submit"], clock, "L")
    launch(db, load_agreement(EXAMPLE), clock, "Liisa Koskinen")
    add_user(db, "Liisa Koskinen", "coordinator", "correct horse battery", clock)
    session, _ = sign_in(db, "Liisa Koskinen", "correct horse battery", clock)
    app = create_app(WebConfig(db, clock, Keys(SERVER_SECRET, "http://testserver")))
    with TestClient(app, cookies={SESSION_COOKIE: session}) as browser:
        assert "failed-hooks" not in browser.get("/").text
        clock.set(at(2))
        record(db, ROUND, "hattula", "submit", Evidence(), clock, "Timo")
        receiver.status = 502
        while not deliveries(db, state="failed"):
            send_webhooks(db, clock, SERVER_SECRET)
            clock.advance(hours=6)
        session, _ = sign_in(db, "Liisa Koskinen", "correct horse battery", clock)  # days later
        browser.cookies.set(SESSION_COOKIE, session)
        page = browser.get("/", headers={"Accept-Language": "en"}).text
    assert 'id="failed-hooks"' in page
    assert "Webhook deliveries given up (1)" in page
    assert "#2 submit" in page
    assert receiver.url in page
    assert "the receiver answered 502" in page
