"""The mailer and the sink, against a real SMTP server on a free loopback port (no patching)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from engine.settings import Settings
from notifications.mailer import Delivery, Mailer, backoff
from notifications.message import message_id_for
from notifications.sink import MailSink
from tests.smtp import HOST, SmtpServer, unused_port

SENDER = "ratify <ratify@example.invalid>"
GOOD = "kirjaamo@hattula.example.invalid"
BAD = "nobody@hattula.example.invalid"
OTHER = "kirjaamo@janakkala.example.invalid"


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with SmtpServer(tmp_path / "mail") as server:
        yield server


def message(n: int, to: Sequence[str] = (GOOD,)) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(to)
    msg["Subject"] = f"Muistutus {n}: sopimuksen hyväksyntä odottaa käsittelyä"
    msg["Date"] = format_datetime(datetime(2026, 12, 1, 9, n, tzinfo=UTC))
    msg["Message-ID"] = message_id_for(f"reminder:test:{n}")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(f"Hyvä vastaanottaja, muistutus numero {n}.\n")
    return msg


def mailer(smtp: SmtpServer, **kwargs: object) -> Mailer:
    return Mailer(HOST, smtp.port, timeout=5.0, **kwargs)  # type: ignore[arg-type]


def outcomes(deliveries: list[Delivery]) -> list[tuple[object, str]]:
    return [(d.ref, d.outcome) for d in deliveries]


# --- one connection, messages intact ------------------------------------------------------------


def test_a_batch_of_three_goes_over_one_connection_with_headers_intact(smtp: SmtpServer) -> None:
    sent = [message(n) for n in (1, 2, 3)]
    deliveries = asyncio.run(mailer(smtp).deliver([(n, m) for n, m in enumerate(sent, 1)]))

    assert deliveries == [Delivery(1, "sent"), Delivery(2, "sent"), Delivery(3, "sent")]
    assert smtp.connections == 1
    got = smtp.messages()
    assert len(got) == 3
    for original, arrived in zip(sent, got, strict=True):
        for header in ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted"):
            assert arrived[header] == original[header], header
        assert arrived.get_content() == original.get_content()
    assert [r.rcpt_tos for r in smtp.received] == [(GOOD,)] * 3


def test_an_empty_batch_opens_no_connection(smtp: SmtpServer) -> None:
    assert mailer(smtp).deliver_sync([]) == []
    assert smtp.connections == 0


def test_from_settings_and_deliver_sync(smtp: SmtpServer) -> None:
    settings = Settings(smtp_host=HOST, smtp_port=smtp.port, smtp_tls="none", smtp_timeout=5.0)
    m = Mailer.from_settings(settings)
    assert (m.host, m.port, m.tls, m.timeout, m.username) == (HOST, smtp.port, "none", 5.0, None)
    assert m.deliver_sync([("row-7", message(7))]) == [Delivery("row-7", "sent")]
    assert smtp.messages()[0]["Message-ID"] == message_id_for("reminder:test:7")


# --- refused recipients -------------------------------------------------------------------------


def test_a_recipient_refused_among_two_is_recorded_and_the_other_receives(
    smtp: SmtpServer,
) -> None:
    smtp.reject(BAD, "550 5.1.1 no such user")
    [delivery] = mailer(smtp).deliver_sync([("r", message(1, to=(GOOD, BAD)))])

    assert delivery == Delivery("r", "sent", refused={BAD: "550 5.1.1 no such user"})
    [received] = smtp.received
    assert received.rcpt_tos == (GOOD,)


@pytest.mark.parametrize(
    ("replies", "outcome"),
    [
        (["550 5.1.1 no such user", "550 5.1.1 no such user"], "permanent"),
        (["450 4.2.1 mailbox busy", "553 5.1.3 bad address"], "permanent"),
        (["450 4.2.1 mailbox busy", "451 4.3.0 try later"], "temporary"),
    ],
)
def test_all_recipients_refused(smtp: SmtpServer, replies: list[str], outcome: str) -> None:
    for address, reply in zip((GOOD, OTHER), replies, strict=True):
        smtp.reject(address, reply)
    [delivery] = mailer(smtp).deliver_sync([("r", message(1, to=(GOOD, OTHER)))])

    assert delivery.outcome == outcome
    assert delivery.refused == dict(zip((GOOD, OTHER), replies, strict=True))
    assert delivery.error is not None
    assert replies[0] in delivery.error
    assert smtp.messages() == []


# --- failures of DATA and of the connection -----------------------------------------------------


def test_a_4xx_is_temporary_and_the_batch_goes_on_over_the_same_connection(
    smtp: SmtpServer,
) -> None:
    smtp.fail_next(1, "451 4.3.0 try again later")
    deliveries = mailer(smtp).deliver_sync([(1, message(1)), (2, message(2))])

    assert outcomes(deliveries) == [(1, "temporary"), (2, "sent")]
    assert deliveries[0].error == "451 4.3.0 try again later"
    assert smtp.connections == 1
    assert [m["Message-ID"] for m in smtp.messages()] == [message_id_for("reminder:test:2")]


def test_a_5xx_is_permanent(smtp: SmtpServer) -> None:
    smtp.fail_next(1, "554 5.6.0 message content rejected")
    deliveries = mailer(smtp).deliver_sync([(1, message(1)), (2, message(2))])

    assert outcomes(deliveries) == [(1, "permanent"), (2, "sent")]
    assert deliveries[0].error == "554 5.6.0 message content rejected"


def test_a_dropped_connection_is_reopened_once_and_the_batch_goes_on(smtp: SmtpServer) -> None:
    smtp.fail_next(1, "421 4.3.2 shutting down")  # the sink closes the connection after a 421
    deliveries = mailer(smtp).deliver_sync([(1, message(1)), (2, message(2)), (3, message(3))])

    assert outcomes(deliveries) == [(1, "temporary"), (2, "sent"), (3, "sent")]
    assert smtp.connections == 2
    assert len(smtp.messages()) == 2


def test_a_second_drop_leaves_the_rest_temporary_without_a_third_connection(
    smtp: SmtpServer,
) -> None:
    smtp.fail_next(2, "421 4.3.2 shutting down")
    deliveries = mailer(smtp).deliver_sync([(1, message(1)), (2, message(2)), (3, message(3))])

    assert outcomes(deliveries) == [(1, "temporary"), (2, "temporary"), (3, "temporary")]
    assert deliveries[2].error == "connection lost: 421 4.3.2 shutting down"
    assert smtp.connections == 2
    assert smtp.messages() == []


def test_nothing_listening_makes_every_message_temporary() -> None:
    deliveries = Mailer(HOST, unused_port(), timeout=5.0).deliver_sync(
        [(1, message(1)), (2, message(2))]
    )

    assert outcomes(deliveries) == [(1, "temporary"), (2, "temporary")]
    for d in deliveries:
        assert d.error is not None
        assert "SMTPConnectError" in d.error


def test_starttls_is_required_not_skipped_when_the_server_does_not_offer_it(
    smtp: SmtpServer,
) -> None:
    [delivery] = mailer(smtp, tls="starttls").deliver_sync([(1, message(1))])

    assert delivery.outcome == "temporary"
    assert delivery.error is not None
    assert "STARTTLS" in delivery.error
    assert smtp.messages() == []


def test_an_unknown_tls_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="tls must be one of"):
        Mailer(HOST, 25, tls="ssl")  # type: ignore[arg-type]


# --- each outcome as soon as it is known --------------------------------------------------------


def test_on_delivery_hears_each_message_before_the_next_is_sent(smtp: SmtpServer) -> None:
    heard: list[tuple[Delivery, int]] = []  # each outcome, and how many the server had then
    deliveries = mailer(smtp).deliver_sync(
        [(n, message(n)) for n in (1, 2, 3)],
        on_delivery=lambda d: heard.append((d, len(smtp.received))),
    )

    assert deliveries == [Delivery(1, "sent"), Delivery(2, "sent"), Delivery(3, "sent")]
    assert heard == [(d, n) for n, d in enumerate(deliveries, 1)]


def test_on_delivery_hears_a_dropped_connection_and_the_reconnection(smtp: SmtpServer) -> None:
    smtp.fail_next(1, "421 4.3.2 shutting down")
    heard: list[tuple[Delivery, int]] = []
    deliveries = mailer(smtp).deliver_sync(
        [(n, message(n)) for n in (1, 2, 3)],
        on_delivery=lambda d: heard.append((d, len(smtp.received))),
    )

    assert outcomes(deliveries) == [(1, "temporary"), (2, "sent"), (3, "sent")]
    assert heard == [(deliveries[0], 0), (deliveries[1], 1), (deliveries[2], 2)]


def test_on_delivery_hears_the_messages_left_after_a_second_drop(smtp: SmtpServer) -> None:
    smtp.fail_next(2, "421 4.3.2 shutting down")
    heard: list[Delivery] = []
    deliveries = mailer(smtp).deliver_sync(
        [(n, message(n)) for n in (1, 2, 3)], on_delivery=heard.append
    )

    assert heard == deliveries
    assert outcomes(heard) == [(1, "temporary"), (2, "temporary"), (3, "temporary")]
    assert heard[2].error == "connection lost: 421 4.3.2 shutting down"


def test_on_delivery_hears_every_message_when_nothing_listens() -> None:
    heard: list[Delivery] = []
    deliveries = Mailer(HOST, unused_port(), timeout=5.0).deliver_sync(
        [(1, message(1)), (2, message(2))], on_delivery=heard.append
    )

    assert heard == deliveries
    assert outcomes(heard) == [(1, "temporary"), (2, "temporary")]


def test_an_on_delivery_that_raises_stops_the_batch(smtp: SmtpServer) -> None:
    heard: list[Delivery] = []

    def cannot_record(delivery: Delivery) -> None:
        heard.append(delivery)
        raise RuntimeError("the database is gone")

    with pytest.raises(RuntimeError, match="the database is gone"):
        mailer(smtp).deliver_sync([(n, message(n)) for n in (1, 2, 3)], on_delivery=cannot_record)

    assert heard == [Delivery(1, "sent")]
    assert [m["Message-ID"] for m in smtp.messages()] == [message_id_for("reminder:test:1")]
    assert smtp.connections == 1


# --- login --------------------------------------------------------------------------------------


def test_a_username_logs_in(tmp_path: Path) -> None:
    with SmtpServer(tmp_path, credentials=("ratify", "s3cret-Pa55")) as smtp:
        [delivery] = mailer(smtp, username="ratify", password="s3cret-Pa55").deliver_sync(
            [(1, message(1))]
        )
        assert delivery == Delivery(1, "sent")
        assert [r.login for r in smtp.received] == ["ratify"]


def test_a_wrong_password_is_temporary_and_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="notifications.mailer")
    password = "wr0ng-Pa55word"
    with SmtpServer(tmp_path, credentials=("ratify", "s3cret-Pa55")) as smtp:
        m = Mailer.from_settings(
            Settings(
                smtp_host=HOST,
                smtp_port=smtp.port,
                smtp_username="ratify",
                smtp_password=SecretStr(password),
            )
        )
        deliveries = m.deliver_sync([(1, message(1)), (2, message(2))])
        assert smtp.messages() == []

    assert outcomes(deliveries) == [(1, "temporary"), (2, "temporary")]
    assert deliveries[0].error is not None
    assert "535" in deliveries[0].error
    assert "535" in caplog.text  # the failure was logged…
    for shown in (repr(m), str(deliveries), caplog.text):
        assert password not in shown  # …without the password


# --- backoff ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 60.0), (2, 120.0), (3, 240.0), (6, 1920.0), (7, 3600.0), (50, 3600.0), (10**6, 3600.0)],
)
def test_backoff_doubles_up_to_the_cap(attempts: int, seconds: float) -> None:
    assert backoff(attempts) == seconds


def test_backoff_takes_base_and_cap() -> None:
    assert [backoff(n, base=10.0, cap=50.0) for n in (1, 2, 3, 4)] == [10.0, 20.0, 40.0, 50.0]
    with pytest.raises(ValueError, match="starts at 1"):
        backoff(0)


# --- the sink itself ----------------------------------------------------------------------------


def test_the_sink_stores_eml_files_that_parse_back(tmp_path: Path) -> None:
    seen: list[tuple[Path, str, list[str], str]] = []
    sink = MailSink(tmp_path, on_message=lambda *args: seen.append(args))
    host, port = sink.start(HOST, 0)
    try:
        assert port != 0
        deliveries = Mailer(host, port, timeout=5.0).deliver_sync(
            [(1, message(1)), (2, message(2, to=(GOOD, OTHER)))]
        )
    finally:
        sink.stop()

    assert outcomes(deliveries) == [(1, "sent"), (2, "sent")]
    paths = sorted(tmp_path.glob("*.eml"))
    slug = message_id_for("reminder:test:1").strip("<>").split("@")[0]
    assert paths[0].name == f"000001-{slug}.eml"
    assert paths[1].name.startswith("000002-")
    parsed = SmtpServer(tmp_path).messages()
    assert [m["Message-ID"] for m in parsed] == [
        message_id_for("reminder:test:1"),
        message_id_for("reminder:test:2"),
    ]
    assert seen == [
        (paths[0], "ratify@example.invalid", [GOOD], str(message(1)["Subject"])),
        (paths[1], "ratify@example.invalid", [GOOD, OTHER], str(message(2)["Subject"])),
    ]


def test_a_restarted_sink_goes_on_numbering(tmp_path: Path) -> None:
    for n in (1, 2):
        with SmtpServer(tmp_path) as smtp:
            assert mailer(smtp).deliver_sync([(n, message(n))]) == [Delivery(n, "sent")]
    names = sorted(p.name[:7] for p in tmp_path.glob("*.eml"))
    assert names == ["000001-", "000002-"]


def test_the_sink_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            MailSink(tmp_path).start(HOST, taken.getsockname()[1])


@pytest.mark.parametrize("reply", ["250 OK", "55 short", "hello", "550"[:2]])
def test_the_sink_only_takes_error_replies(tmp_path: Path, reply: str) -> None:
    sink = MailSink(tmp_path)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        sink.fail_next(1, reply)
    with pytest.raises(ValueError, match="4xx or 5xx"):
        sink.reject(GOOD, reply)
