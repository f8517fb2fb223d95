"""The proposed decisions on the pages and in the API: the worker's tick finds the decision in a
feed served on 127.0.0.1; the party confirms it in one click on its own page (the CSRF token
needed, as on every form), the coordinator on the round's page; the API lists, confirms and
dismisses them, refusing what is settled or not a coordinator's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.clock import FakeClock
from engine.runtime import (
    Engine,
    Evidence,
    connect,
    launch,
    load_agreement,
    log_entries,
    paste_proposal,
    proposals,
    record,
    status,
)
from engine.runtime.access import add_user
from engine.runtime.tokens import create_token
from tests.conftest import write_agreement
from tests.feeds import FeedServer
from tests.smtp import SmtpServer
from tests.webkit import BASE, KEYS, Site, post_form

TITLE = "Kanta-Hämeen strateginen yhteistyösopimus"
KAISA = "kaisa.lehtonen@hattula.example.invalid"
PASSWORD = "correct horse battery staple"
PAGE = "/rounds/test-agreement/1"
LOPPI_PASTED = (
    "https://loppi.example.invalid/ktweb/pk_asil_tmp.htm?bid=5123\nKunnanhallitus 14.12.2026 § 9\n"
)


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def _site(db: Engine, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp: Path) -> Site:
    from engine.interfaces.web.app import create_app
    from engine.interfaces.web.common import WebConfig

    parties: list[dict[str, Any]] = [
        {
            "id": "hattula",
            "name": "Hattulan kunta",
            "contacts": [{"name": "Kaisa Lehtonen", "email": KAISA}],
            "source": {
                "kind": "dynasty",
                "url": feeds.serve("/hattula/rss", "dynasty-hattula-kh.xml"),
            },
        },
        {"id": "loppi", "name": "Lopen kunta", "source": {"kind": "manual"}},
    ]
    path = write_agreement(tmp, parties, agreement={"title": TITLE})
    made = launch(db, load_agreement(path, launch_at=clock), clock, "Cora").round
    site = Site(db, clock, smtp, create_app(WebConfig(db, clock, KEYS)), made)
    site.tick()  # the invitations, with the links
    clock.set(datetime(2026, 12, 2, 9, 0))  # noqa: DTZ001
    record(db, made, "hattula", "submit", Evidence(), clock, "Kaisa Lehtonen")
    record(db, made, "loppi", "submit", Evidence(), clock, "Kim Test")
    clock.set(datetime(2026, 12, 16, 10, 0))  # noqa: DTZ001
    site.tick()  # reads Hattula's feed: one proposal
    return site


def _state(db: Engine, party: str) -> str:
    (found,) = [p for p in status(db, "test-agreement/1")[0].parties if p.id == party]
    return found.state


def test_the_party_confirms_the_found_decision_in_one_click(
    sqlite_url: str, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp_path: Path
) -> None:
    db = connect(sqlite_url)
    site = _site(db, clock, smtp, feeds, tmp_path)
    (found,) = proposals(db, site.round_id)
    client = site.party_client(KAISA)
    page = client.get("/party")
    assert "Hyväksyttiinkö sopimus päätöksellä Kunnanhallitus 14.12.2026 § 5?" in page.text
    assert f'action="/party/proposals/{found.id}/confirm"' in page.text
    assert found.sha256 in page.text
    # Without the CSRF token the form is refused and nothing is recorded.
    forged = post_form(client, f"/party/proposals/{found.id}/confirm", {}, csrf=False)
    assert forged.status_code == 403
    assert _state(db, "hattula") == "board_review"
    done = post_form(client, f"/party/proposals/{found.id}/confirm", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/party?done=recorded#history"
    assert _state(db, "hattula") == "legal_force_wait"
    entry = log_entries(db, site.round_id)[-1]
    assert entry["actor"] == "Kaisa Lehtonen"
    assert entry["evidence"]["via"] == "link"
    assert entry["evidence"]["fetched_sha256"] == found.sha256
    after = client.get("/party")
    assert "Hyväksyttiinkö sopimus" not in after.text  # settled: no longer proposed
    assert found.sha256 in after.text  # in the history, beside the decision
    again = post_form(client, f"/party/proposals/{found.id}/confirm", {})
    assert again.status_code == 409
    assert "already confirmed by Kaisa Lehtonen" in again.text
    # Another party's proposal is not reached from this party's session.
    other = paste_proposal(db, site.round_id, "loppi", LOPPI_PASTED, clock, "Kim Test")
    assert post_form(client, f"/party/proposals/{other.id}/confirm", {}).status_code == 400
    assert _state(db, "loppi") == "board_review"


def _coordinator(site: Site) -> TestClient:
    add_user(site.db, "Cora Coordinator", "coordinator", PASSWORD, site.clock)
    client = TestClient(site.app, base_url=BASE)
    client.cookies.set("ratify_lang", "en")
    answer = post_form(client, "/signin", {"name": "Cora Coordinator", "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def test_the_coordinator_confirms_and_dismisses_on_the_round_page(
    sqlite_url: str, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp_path: Path
) -> None:
    db = connect(sqlite_url)
    site = _site(db, clock, smtp, feeds, tmp_path)
    pasted = paste_proposal(db, site.round_id, "loppi", LOPPI_PASTED, clock, "Kim Test")
    hattula = proposals(db, site.round_id, "hattula")[0]
    client = _coordinator(site)
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Was the agreement approved by decision Kunnanhallitus 14.12.2026 § 5?" in page.text
    assert "Was the agreement approved by decision Kunnanhallitus 14.12.2026 § 9?" in page.text
    assert f'action="{PAGE}/proposals/{pasted.id}/confirm"' in page.text
    length = len(log_entries(db, site.round_id))
    done = post_form(client, f"{PAGE}/proposals/{pasted.id}/confirm", {"once": "x"})
    assert done.status_code == 303
    twice = post_form(client, f"{PAGE}/proposals/{pasted.id}/confirm", {"once": "x"})
    assert (twice.status_code, twice.headers["location"]) == (303, done.headers["location"])
    assert len(log_entries(db, site.round_id)) == length + 1  # a double click records once
    assert done.headers["location"] == f"{PAGE}?done=proposal_confirmed#proposals"
    assert _state(db, "loppi") == "legal_force_wait"
    entry = log_entries(db, site.round_id)[-1]
    assert (entry["party"], entry["actor"], entry["evidence"]["via"]) == (
        "loppi",
        "Cora Coordinator",
        "web",
    )
    assert "The decision was recorded." in client.get(done.headers["location"]).text
    gone = post_form(client, f"{PAGE}/proposals/{hattula.id}/dismiss", {"once": "y"})
    assert gone.status_code == 303
    assert _state(db, "hattula") == "board_review"  # nothing recorded
    refused = post_form(client, f"{PAGE}/proposals/{hattula.id}/confirm", {"once": "z"})
    assert refused.status_code == 409
    assert "already dismissed by Cora Coordinator" in refused.text


def test_the_api_lists_confirms_and_dismisses(
    database_url: str, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp_path: Path
) -> None:
    from engine.interfaces.web.app import create_app
    from engine.interfaces.web.common import WebConfig

    db = connect(database_url)
    try:
        site = _site(db, clock, smtp, feeds, tmp_path)
        pasted = paste_proposal(db, site.round_id, "loppi", LOPPI_PASTED, clock, "Kim Test")
        coord = create_token(db, "case-system", "coordinator", clock, "test").token
        auditor = create_token(db, "audit-office", "auditor", clock, "test").token
        with TestClient(create_app(WebConfig(db, clock, KEYS)), raise_server_exceptions=False) as c:
            as_coord = {"Authorization": f"Bearer {coord}"}
            url = "/api/v1/rounds/test-agreement/1/proposals"
            listed = c.get(url, headers=as_coord)
            assert listed.status_code == 200, listed.text
            assert [(p["party"], p["decision"], p["state"]) for p in listed.json()] == [
                ("hattula", "Kunnanhallitus 14.12.2026 § 5", "pending"),
                ("loppi", "Kunnanhallitus 14.12.2026 § 9", "pending"),
            ]
            first = listed.json()[0]["id"]
            read_only = c.post(
                f"{url}/{first}/confirm", headers={"Authorization": f"Bearer {auditor}"}
            )
            assert read_only.status_code == 403
            keyed = as_coord | {"Idempotency-Key": "confirm-hattula-1"}
            done = c.post(f"{url}/{first}/confirm", headers=keyed)
            assert done.status_code == 200, done.text
            body = done.json()
            retried = c.post(f"{url}/{first}/confirm", headers=keyed)  # the client tries again
            assert retried.status_code == 200
            assert retried.json()["recorded"] == body["recorded"]
            assert body["recorded"]["to_state"] == "legal_force_wait"
            assert body["proposal"]["state"] == "confirmed"
            assert body["proposal"]["seq"] == body["recorded"]["seq"]
            again = c.post(f"{url}/{first}/confirm", headers=as_coord)
            assert again.status_code == 409
            assert again.headers["content-type"].startswith("application/problem+json")
            assert "already confirmed" in again.json()["detail"]
            gone = c.post(f"{url}/{pasted.id}/dismiss", headers=as_coord)
            assert gone.status_code == 200
            assert gone.json()["state"] == "dismissed"
            pending = c.get(url, params={"pending": "true"}, headers=as_coord)
            assert pending.json() == []
            missing = c.post(f"{url}/99999/confirm", headers=as_coord)
            assert missing.status_code == 404
            schemas = c.get("/openapi.json").json()["components"]["schemas"]
            for name in ("Proposal", "ProposalConfirmed", "SourceInfo"):
                props = schemas[name]["properties"].values()
                assert all("description" in p for p in props), name
            listed_sources = c.get("/api/v1/rounds/test-agreement/1/sources", headers=as_coord)
            assert [(s["party"], s["kind"], s["warning"]) for s in listed_sources.json()] == [
                ("hattula", "dynasty", None),
                ("loppi", "manual", None),
            ]
            assert listed_sources.json()[0]["polled_at"] is not None
        entry = log_entries(db, site.round_id)[-1]
        assert (entry["actor"], entry["evidence"]["via"]) == ("case-system", "api")
    finally:
        db.dispose()


def test_a_party_without_a_feed_pastes_its_decision_and_confirms_it(
    sqlite_url: str, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp_path: Path
) -> None:
    db = connect(sqlite_url)
    site = _site(db, clock, smtp, feeds, tmp_path)
    client = site.party_client("kim@example.invalid")  # Loppi's contact: a manual source
    page = client.get("/party")
    assert 'action="/party/proposals/paste"' in page.text
    bad = post_form(
        client,
        "/party/proposals/paste",
        {"url": "javascript:alert(1)", "ref": "Kunnanhallitus 14.12.2026 § 9"},
    )
    assert bad.status_code == 400
    assert "paste the minutes&#39; address" in bad.text
    other_body = {
        "url": "https://loppi.example.invalid/pk",
        "ref": "Kunnanvaltuusto 14.12.2026 § 3",
    }
    refused = post_form(client, "/party/proposals/paste", other_body)
    assert refused.status_code == 400
    assert "is not the decision party" in refused.text
    assert proposals(db, site.round_id, "loppi") == []
    url = "https://loppi.example.invalid/ktweb/pk_asil_tmp.htm?bid=5123"
    pasted = {"url": url, "ref": "Kunnanhallitus 14.12.2026 § 9", "diary": "LOP/233/00.04.01/2026"}
    made = post_form(client, "/party/proposals/paste", pasted)
    assert made.status_code == 303
    (found,) = proposals(db, site.round_id, "loppi")
    assert (found.kind, found.item_url, found.diary) == ("manual", url, "LOP/233/00.04.01/2026")
    assert _state(db, "loppi") == "board_review"  # proposed, not recorded
    page = client.get("/party")
    assert "Hyväksyttiinkö sopimus päätöksellä Kunnanhallitus 14.12.2026 § 9?" in page.text
    assert post_form(client, f"/party/proposals/{found.id}/confirm", {}).status_code == 303
    assert _state(db, "loppi") == "legal_force_wait"
    assert log_entries(db, site.round_id)[-1]["evidence"]["source_kind"] == "manual"


def test_the_one_click_confirm_in_a_browser_passes_axe(
    sqlite_url: str, clock: FakeClock, smtp: SmtpServer, feeds: FeedServer, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser_support import LiveServer, check_axe, launch_chromium, open_page

    db = connect(sqlite_url)
    site = _site(db, clock, smtp, feeds, tmp_path)
    link = site.link_of(KAISA).removeprefix(BASE)
    with (
        launch_chromium() as browser,
        LiveServer(site.app) as server,
        open_page(browser, server) as (page, blocked),
    ):
        page.goto(link + "?lang=fi")
        with page.expect_navigation():
            page.get_by_role("button", name="Avaa osapuolen sivu").click()
        assert page.url.endswith("/party")
        question = "Hyväksyttiinkö sopimus päätöksellä Kunnanhallitus 14.12.2026 § 5?"
        expect(page.get_by_role("heading", name=question)).to_be_visible()
        check_axe(page, context="the party's page with a proposal and the paste form")
        with page.expect_navigation():
            page.get_by_role("button", name="Vahvista päätös").click()
        assert page.url.endswith("/party?done=recorded#history")
        expect(page.get_by_role("heading", name=question)).to_have_count(0)
        check_axe(page, context="the party's page after confirming")
        assert blocked == []
        # The coordinator, on the round's page, confirms Loppi's pasted decision.
        paste_proposal(db, site.round_id, "loppi", LOPPI_PASTED, clock, "Kim Test")
        add_user(db, "Cora Coordinator", "coordinator", PASSWORD, clock)
        with open_page(browser, server) as (coord, coord_blocked):
            coord.goto("/signin?lang=en")
            coord.get_by_label("User name").fill("Cora Coordinator")
            coord.get_by_label("Password").fill(PASSWORD)
            with coord.expect_navigation():
                coord.get_by_role("button", name="Sign in").click()
            coord.goto(PAGE)
            asked = "Was the agreement approved by decision Kunnanhallitus 14.12.2026 § 9?"
            expect(coord.get_by_role("heading", name=asked)).to_be_visible()
            check_axe(coord, context="the round's page with a proposal")
            with coord.expect_navigation():
                coord.get_by_role("button", name="Confirm the decision").click()
            expect(coord.get_by_text("The decision was recorded.")).to_be_visible()
            check_axe(coord, context="the round's page after confirming")
            assert coord_blocked == []
    assert _state(db, "hattula") == "legal_force_wait"
    assert _state(db, "loppi") == "legal_force_wait"
