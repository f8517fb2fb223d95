"""The JSON API through the real application (Starlette's test client over ASGI) on a real SQLite
file and PostgreSQL: a round from upload to active driven by a client that reads only what the
API answers; tokens of each role and scope, and none; idempotent writes; problem details."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from engine.clock import FakeClock
from engine.interfaces.web.app import create_app
from engine.interfaces.web.common import WebConfig
from engine.persistence.database import connect, init_schema
from engine.runtime import log_entries, tick, verify_file
from engine.runtime.access import Keys
from engine.runtime.tokens import create_token, revoke_token

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kanta-hame"
ROUND = "kanta-hame-strategic-2026/1"
BASE = "/api/v1/rounds/kanta-hame-strategic-2026/1"
HELSINKI = ZoneInfo("Europe/Helsinki")
PROBLEM = "application/problem+json"


@dataclass
class Api:
    engine: Engine
    clock: FakeClock
    client: TestClient
    tokens: dict[str, str]  # name: token

    def as_(self, name: str | None) -> dict[str, str]:
        return {} if name is None else {"Authorization": f"Bearer {self.tokens[name]}"}

    def get(self, path: str, who: str | None = "coord", **kw: Any) -> Any:
        return self.client.get(path, headers=self.as_(who), **kw)

    def post(self, path: str, who: str | None = "coord", **kw: Any) -> Any:
        headers = self.as_(who) | kw.pop("headers", {})
        return self.client.post(path, headers=headers, **kw)

    def launch(self, who: str = "coord", **kw: Any) -> Any:
        files = {
            "agreement": ("agreement.toml", (EXAMPLE / "agreement.toml").read_bytes()),
            "document": ("agreement.md", (EXAMPLE / "agreement.md").read_bytes()),
        }
        return self.post("/api/v1/rounds", who, files=files, **kw)


def make_api(url: str) -> Generator[Api, None, None]:
    engine = connect(url)
    init_schema(engine)
    clock = FakeClock(datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI))
    cfg = WebConfig(engine, clock, Keys(b"k" * 32, "http://testserver"))
    tokens = {
        "coord": create_token(engine, "case-system", "coordinator", clock, "test").token,
        "auditor": create_token(engine, "audit-office", "auditor", clock, "test").token,
    }
    with TestClient(create_app(cfg), raise_server_exceptions=False) as client:
        yield Api(engine, clock, client, tokens)
    engine.dispose()


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    yield from make_api(database_url)


@pytest.fixture
def launched(api: Api) -> Api:
    assert api.launch().status_code == 201
    return api


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


# ---- a round from upload to active, by a client that knows only the API -----------------------


def _next_step(api: Api, party: dict[str, Any], day: datetime, n: int) -> dict[str, Any] | None:
    """What a case-management system would send for a party, read from its status alone."""
    allowed, role = party["allowed"], party["role"]
    if role == "preparing" and "submit" in allowed:
        return {"event": "submit", "diary": f"{party['id'].upper()}/00.01/2026"}
    if role == "review":
        return {"event": "approve", "ref": f"{party['body']} {day:%d.%m.%Y} § {n}"}
    if role == "signing":
        unsigned = [s for s in party["may_sign"] if s["name"] not in party["signatories"]]
        who = unsigned[0] if unsigned else {"name": "Aino Esimerkki", "title": "johtaja"}
        return {"event": "sign", "signatory": who["name"], "title": who["title"]}
    return None


def _drive(api: Api) -> int:
    """Every step any party can take now, until none can; how many were recorded."""
    done = 0
    while True:
        status = api.get(BASE).json()
        day = api.clock.now(HELSINKI)
        steps = [
            (p, step)
            for p in status["parties"]
            if (step := _next_step(api, p, day, done + 1)) is not None
        ]
        if not steps:
            return done
        for party, step in steps:
            answer = api.post(f"{BASE}/parties/{party['id']}/events", json=step)
            assert answer.status_code == 200, answer.text
            assert answer.json()["event"] == step["event"]
            done += 1


def test_a_round_goes_from_upload_to_active_through_the_api(api: Api) -> None:
    made = api.launch()
    assert made.status_code == 201
    assert made.headers["location"] == BASE
    assert made.json()["round"] == ROUND
    assert made.json()["parties"] == 13

    api.clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=HELSINKI))
    first = _drive(api)  # submissions, the boards' and the councils' approvals
    status = api.get(BASE).json()
    assert {p["role"] for p in status["parties"]} == {"legal_force"}
    # The decisions become final (appeal periods, then the notice) as the worker's tick sees.
    api.clock.set(datetime(2027, 2, 1, 9, 0, tzinfo=HELSINKI))
    assert len(tick(api.engine, api.clock)) == 13
    second = _drive(api)  # every signature, two of three for the cities that need two
    status = api.get(BASE).json()
    assert status["state"] == "active"
    assert status["signed"] == 13
    assert status["effective_date"] == "2027-02-01"
    assert first + second + 13 + 1 == status["log_entries"] - 1  # and the launch and activation

    listed = api.get("/api/v1/rounds").json()
    assert [(r["round"], r["state"], r["signed"]) for r in listed] == [(ROUND, "active", 13)]
    checked = api.get(f"{BASE}/verify", who="auditor").json()
    assert checked["chains"][0]["entries"] == status["log_entries"]
    assert checked["chains"][0]["problem"] is None
    head = api.get(f"{BASE}/head", who="auditor").json()
    assert head == {
        "round": ROUND,
        "entries": status["log_entries"],
        "head": checked["chains"][0]["head"],
    }


def test_the_log_pages_follow_the_round_and_the_export_verifies(
    launched: Api, tmp_path: Path
) -> None:
    api = launched
    api.clock.set(datetime(2026, 12, 2, 10, 0, tzinfo=HELSINKI))
    for party in ("forssa", "hattula", "loppi"):
        api.post(f"{BASE}/parties/{party}/events", json={"event": "submit"})
    seen: list[dict[str, Any]] = []
    since = 0
    while True:
        page = api.get(f"{BASE}/log", who="auditor", params={"since": since, "limit": 2}).json()
        seen += page["entries"]
        assert page["next_since"] == (page["entries"][-1]["seq"] if page["entries"] else since)
        since = page["next_since"]
        if not page["more"]:
            break
    assert seen == log_entries(api.engine, ROUND)  # every entry once, in order, as stored
    assert [e["seq"] for e in seen] == list(range(1, len(seen) + 1))
    again = api.get(f"{BASE}/log", who="auditor", params={"since": since}).json()
    assert again["entries"] == []
    assert again["more"] is False
    assert again["next_since"] == since

    export = api.get(f"{BASE}/export", who="auditor")
    assert export.headers["content-type"].startswith("application/x-ndjson")
    path = tmp_path / "log.jsonl"
    path.write_bytes(export.content)
    report = verify_file(path, expect_head=page["head"])
    assert report.chains[0].entries == len(seen)
    csv = api.get(f"{BASE}/export", who="auditor", params={"format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.count("\n") > len(seen)


# ---- tokens --------------------------------------------------------------------------------


def test_no_token_or_a_bad_one_is_401_and_says_how(launched: Api) -> None:
    api = launched
    headers: Any
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer ratify_" + "A" * 43},  # well formed, unknown
        {"Authorization": "Bearer " + api.tokens["coord"] + "x"},
        {"Authorization": ("Bearer " + api.tokens["coord"].replace("_", "\u2010", 1)).encode()},
    ):
        answer = api.client.get(BASE, headers=headers)
        body = problem(answer, 401)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert body["reason"] == "token"
    revoke_token(api.engine, "case-system", api.clock)
    problem(api.get(BASE), 401)


def test_an_auditor_reads_and_never_writes(launched: Api) -> None:
    api = launched
    assert api.get(BASE, who="auditor").status_code == 200
    before = api.get(BASE).json()["log_entries"]
    writes = [
        api.post(f"{BASE}/parties/forssa/events", "auditor", json={"event": "submit"}),
        api.post(f"{BASE}/cancel", "auditor", json={"reason": "no"}),
        api.launch("auditor"),
        api.post(
            f"{BASE}/parties/forssa/contacts",
            "auditor",
            json={"name": "Eve", "email": "eve@example.invalid"},
        ),
        api.post("/api/v1/outbox/1/retry", "auditor"),
    ]
    for answer in writes:
        assert problem(answer, 403)["reason"] == "role"
    assert api.get(BASE).json()["log_entries"] == before


def test_a_token_for_one_round_sees_nothing_else(api: Api, tmp_path: Path) -> None:
    assert api.launch().status_code == 201
    other = tmp_path / "other"
    other.mkdir()
    source = (EXAMPLE / "agreement.toml").read_text("utf-8")
    source = source.replace('id = "kanta-hame-strategic-2026"', 'id = "toinen-sopimus"', 1)
    files = {
        "agreement": ("agreement.toml", source.encode()),
        "document": ("agreement.md", (EXAMPLE / "agreement.md").read_bytes()),
    }
    assert api.post("/api/v1/rounds", files=files).status_code == 201
    scoped = create_token(api.engine, "one-round", "coordinator", api.clock, "t", round_ref=ROUND)
    api.tokens["scoped"] = scoped.token
    assert [r["round"] for r in api.get("/api/v1/rounds").json()] == [ROUND, "toinen-sopimus/1"]
    assert [r["round"] for r in api.get("/api/v1/rounds", "scoped").json()] == [ROUND]
    assert api.get(BASE, "scoped").status_code == 200
    for path in ("/api/v1/rounds/toinen-sopimus/1", "/api/v1/rounds/nowhere/9/log"):
        assert problem(api.get(path, "scoped"), 403)["reason"] == "scope"
    assert problem(api.get("/api/v1/outbox", "scoped", params={"round": "toinen-sopimus/1"}), 403)
    mine = api.get("/api/v1/outbox", "scoped").json()
    assert mine
    assert {m["round"] for m in mine} == {ROUND}
    theirs = api.get("/api/v1/outbox", params={"round": "toinen-sopimus/1"}).json()
    assert problem(api.post(f"/api/v1/outbox/{theirs[0]['id']}/retry", "scoped"), 403)
    assert problem(api.launch("scoped"), 403)["reason"] == "scope"


# ---- idempotent writes ---------------------------------------------------------------------


def test_the_same_write_twice_with_one_key_is_one_event(launched: Api) -> None:
    api = launched
    path = f"{BASE}/parties/forssa/events"
    key = {"Idempotency-Key": "dynasty-7f3a-0001"}
    first = api.post(path, json={"event": "submit", "diary": "FOR/1"}, headers=key)
    again = api.post(path, json={"event": "submit", "diary": "FOR/1"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    entries = [e for e in log_entries(api.engine, ROUND) if e["party"] == "forssa"]
    assert [e["event"] for e in entries] == ["submit"]
    other = api.post(path, json={"event": "submit", "diary": "FOR/2"}, headers=key)
    assert problem(other, 422)["field"] == "once"
    # Without a key the second is a second request, which the rules refuse.
    assert problem(api.post(path, json={"event": "submit"}), 409)["state"] == "board_review"
    # Another client's same key is its own.
    api.tokens["second"] = create_token(api.engine, "second", "coordinator", api.clock, "t").token
    hattula = api.post(
        f"{BASE}/parties/hattula/events", "second", json={"event": "submit"}, headers=key
    )
    assert hattula.status_code == 200
    assert hattula.json()["party"] == "hattula"
    launch_again = api.launch(headers={"Idempotency-Key": "launch-1"})
    assert problem(launch_again, 409)  # the round exists: refused, and not a key matter
    for bad in ("", "x" * 129, "tab\there", "ä"):
        headers = {"Idempotency-Key": bad.encode()}
        assert problem(api.post(path, json={"event": "submit"}, headers=headers), 422)


def test_a_launch_sent_twice_with_one_key_launches_once(api: Api) -> None:
    key = {"Idempotency-Key": "upload-2026-12-01"}
    first, again = api.launch(headers=key), api.launch(headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(api.get("/api/v1/rounds").json()) == 1


def test_a_bilingual_agreement_is_launched_with_each_languages_text(api: Api) -> None:
    import hashlib

    from engine.core.chain import combined_sha256

    folder = EXAMPLE.parent / "vastra-nyland"
    sv, fi = (folder / "agreement.md").read_bytes(), (folder / "sopimus.md").read_bytes()
    files: list[tuple[str, tuple[str, bytes]]] = [
        ("agreement", ("agreement.toml", (folder / "agreement.toml").read_bytes())),
        ("document", ("agreement.md", sv)),
    ]
    missing = problem(api.post("/api/v1/rounds", files=files), 422)
    assert "'sopimus.md' is missing" in missing["detail"]
    assert api.get("/api/v1/rounds").json() == []
    made = api.post("/api/v1/rounds", files=[*files, ("document", ("sopimus.md", fi))])
    assert made.status_code == 201, made.text
    hashes = {"sv": hashlib.sha256(sv).hexdigest(), "fi": hashlib.sha256(fi).hexdigest()}
    assert made.json()["document_sha256"] == combined_sha256(hashes)
    # Amended: every language's new text, the round's (Swedish) as `document`.
    base = "/api/v1/rounds/" + made.json()["round"]
    sv2, fi2 = sv + b"\nTillagd punkt.\n", fi + "\nLisätty kohta.\n".encode()
    alone = api.post(base + "/amend", files={"document": ("avtal-v2.md", sv2)})
    assert "fi" in problem(alone, 422)["detail"]
    files2 = {"document": ("avtal-v2.md", sv2), "text_fi": ("sopimus-v2.md", fi2)}
    amended = api.post(base + "/amend", files=files2, data={"reason": "En punkt till"})
    assert amended.status_code == 200, amended.text
    new = {"sv": hashlib.sha256(sv2).hexdigest(), "fi": hashlib.sha256(fi2).hexdigest()}
    assert api.get(base).json()["document_sha256"] == combined_sha256(new)
    assert api.get(base).json()["document_version"] == 2


# ---- problem details -------------------------------------------------------------------------


def test_a_refused_transition_is_409_with_the_state_and_what_is_allowed(launched: Api) -> None:
    api = launched
    answer = api.post(
        f"{BASE}/parties/hattula/events", json={"event": "sign", "signatory": "A", "title": "B"}
    )
    body = problem(answer, 409)
    assert body["party"] == "hattula"
    assert body["state"] == "draft"
    assert body["event"] == "sign"
    assert body["allowed"] == ["submit"]
    assert "draft" in body["detail"]
    assert body["type"].endswith("/transition-refused")


def test_unknown_rounds_and_parties_are_404(launched: Api) -> None:
    api = launched
    assert problem(api.get("/api/v1/rounds/nowhere/1"), 404)
    body = problem(api.get(f"{BASE}/parties/atlantis"), 404)
    assert "hattula" in body["detail"]  # the parties it has
    problem(api.post(f"{BASE}/parties/atlantis/events", json={"event": "submit"}), 404)
    problem(api.get("/api/v1/nothing-here"), 404)
    problem(api.post("/api/v1/outbox/999999/retry"), 404)


def test_invalid_input_is_422_naming_the_field(launched: Api) -> None:
    api = launched
    events = f"{BASE}/parties/hattula/events"
    api.post(events, json={"event": "submit"})
    bad_ref = problem(api.post(events, json={"event": "approve", "ref": "yesterday"}), 422)
    assert bad_ref["field"] == "ref"
    assert "Body dd.mm.yyyy" in bad_ref["detail"]
    assert problem(api.post(events, json={"event": "approve", "rogue": 1}), 422)["errors"]
    assert problem(
        api.post(events, content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    deep = b"[" * 100_000 + b"]" * 100_000
    assert problem(
        api.post(events, content=deep, headers={"content-type": "application/json"}), 422
    )
    assert problem(api.get(f"{BASE}/log", params={"since": -1}), 422)
    assert problem(api.get(f"{BASE}/log", params={"limit": 10_000}), 422)
    assert (
        problem(api.get(f"{BASE}/preview", params={"at": "2026-12-20T09:00"}), 422)["field"] == "at"
    )
    line = problem(
        api.post(events, json={"event": "approve", "ref": "Kunnanhallitus 02.12.2026 § 1\u2028x"}),
        422,
    )
    assert line["field"] == "ref"


def test_a_bad_agreement_file_names_each_key_and_never_the_servers_folder(api: Api) -> None:
    source = (EXAMPLE / "agreement.toml").read_text("utf-8")
    source = source.replace('timezone = "Europe/Helsinki"', 'timezone = "Mars/Olympus"')
    source = source.replace("first_after_days = 10", "first_after_days = -1")
    files = {
        "agreement": ("agreement.toml", source.encode()),
        "document": ("agreement.md", (EXAMPLE / "agreement.md").read_bytes()),
    }
    body = problem(api.post("/api/v1/rounds", files=files), 422)
    assert "agreement.timezone" in body["keys"]
    assert "reminders.first_after_days" in body["keys"]
    assert len(body["problems"]) == len(body["keys"]) >= 2
    assert "ratify-api-" not in json.dumps(body)
    assert "/tmp" not in json.dumps(body)
    assert api.get("/api/v1/rounds").json() == []
    missing = {"agreement": files["agreement"]}
    assert problem(api.post("/api/v1/rounds", files=missing), 422)["field"] == "document"
    escape = source.replace('document = "agreement.md"', 'document = "../../etc/passwd"')
    files["agreement"] = ("agreement.toml", escape.encode())
    assert "agreement.document" in problem(api.post("/api/v1/rounds", files=files), 422)["keys"]


def test_the_round_can_be_cancelled_and_then_refuses_events(launched: Api) -> None:
    api = launched
    done = api.post(f"{BASE}/cancel", json={"reason": "Sopimus valmistellaan uudelleen"})
    assert done.status_code == 200
    assert done.json() == {"round": ROUND, "state": "cancelled"}
    assert api.get(BASE).json()["state"] == "cancelled"
    assert problem(api.post(f"{BASE}/parties/forssa/events", json={"event": "submit"}), 409)


def test_contacts_are_changed_through_the_api_and_logged(launched: Api) -> None:
    api = launched
    contacts = f"{BASE}/parties/forssa/contacts"
    before = api.get(contacts).json()
    added = api.post(contacts, json={"name": "Outi Uusi", "email": "outi@example.invalid"})
    assert added.status_code == 201
    assert [c["email"] for c in added.json()] == [c["email"] for c in before] + [
        "outi@example.invalid"
    ]
    changed = api.client.put(
        f"{contacts}/outi@example.invalid",
        headers=api.as_("coord"),
        json={"name": "Outi Uusi", "email": "outi.uusi@example.invalid", "language": "sv"},
    )
    assert changed.status_code == 200
    assert changed.json()[-1]["language"] == "sv"
    gone = api.client.delete(f"{contacts}/outi.uusi@example.invalid", headers=api.as_("coord"))
    assert gone.status_code == 200
    assert gone.json() == before
    events = [e["event"] for e in log_entries(api.engine, ROUND)][-3:]
    assert len(events) == 3
    assert all("contact" in e for e in events)
    assert problem(api.post(contacts, json={"name": "X", "email": "not an address"}), 422)


def test_the_reminder_preview_and_the_outbox(launched: Api) -> None:
    api = launched
    outbox = api.get("/api/v1/outbox", who="auditor").json()
    assert outbox
    assert {m["kind"] for m in outbox} == {"invitation"}
    assert problem(api.get("/api/v1/outbox", params={"state": "lost"}), 422)
    at = (datetime(2026, 12, 1, 9, 0, tzinfo=HELSINKI) + timedelta(days=30)).isoformat()
    due = api.get(f"{BASE}/preview", params={"at": at}).json()
    assert "reminder" in {d["kind"] for d in due if not d["queued"]}
    assert all(d["round"] == ROUND for d in due)


# ---- the document --------------------------------------------------------------------------


def test_the_forecast_and_the_calendars_through_the_api(launched: Api) -> None:
    from engine.runtime import forecast

    answer = launched.get(BASE + "/forecast")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = forecast(launched.engine, ROUND, launched.clock)
    assert expected.in_force is not None
    assert body["in_force"] == expected.in_force.isoformat()
    assert body["critical"] == expected.critical
    assert body["signing_days"] == 5
    assert len(body["parties"]) == 13
    assert {s["what"] for s in body["parties"][0]["steps"]} >= {"decision", "signed"}
    sooner = launched.get(BASE + "/forecast", params={"signing_days": 0}).json()
    assert sooner["in_force"] < body["in_force"]
    problem(launched.get(BASE + "/forecast", params={"signing_days": -1}), 422)
    assert launched.get(BASE + "/forecast", "auditor").status_code == 200  # a read
    assert launched.get(BASE + "/calendar").json() == []  # the example gives no calendars
    problem(launched.get(BASE + "/calendar", params={"party": "nobody"}), 404)
    problem(launched.get("/api/v1/rounds/nothing/1/forecast"), 404)


def test_the_openapi_document_describes_every_operation_and_its_errors(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "bearer" in json.dumps(doc["components"]["securitySchemes"]).lower()
    operations = [(p, m, op) for p, item in doc["paths"].items() for m, op in item.items()]
    assert len(operations) >= 15
    assert all(p.startswith("/api/v1/") for p, _, _ in operations)
    for path, method, op in operations:
        codes = set(op["responses"])
        assert {"401", "403", "404", "409", "422"} <= codes, (method, path)
        assert op.get("summary"), (method, path)
        assert op.get("security"), (method, path)
        ok = op["responses"].get("200") or op["responses"].get("201")
        assert ok, (method, path)
        assert ok.get("content"), (method, path)
        assert PROBLEM in op["responses"]["409"]["content"], (method, path)
    schemas = doc["components"]["schemas"]
    for name in ("RoundStatus", "PartyStatus", "RecordResult", "LogPage", "Problem", "EventBody"):
        assert name in schemas
    assert "allowed" in schemas["Problem"]["properties"]
    assert "/openapi.json" not in doc["paths"]
    assert "/signin" not in json.dumps(doc["paths"])


# ---- webhooks --------------------------------------------------------------------------------


def test_webhooks_through_the_api(launched: Api) -> None:
    api = launched
    url = "https://asianhallinta.example.invalid/ratify"
    made = api.post("/api/v1/webhooks", json={"url": url, "events": ["submit", "approve"]})
    assert made.status_code == 201, made.text
    hook = made.json()["webhook"]
    assert made.json()["secret"].startswith("whsec_")
    assert made.headers["location"] == f"/api/v1/webhooks/{hook['id']}"
    assert "secret" not in json.dumps(api.get("/api/v1/webhooks", "auditor").json())
    api.post(f"{BASE}/parties/forssa/events", json={"event": "submit"})
    waiting = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries", "auditor").json()
    assert [(d["event"], d["state"], d["seq"]) for d in waiting] == [("submit", "pending", 2)]
    assert problem(api.post("/api/v1/webhooks", json={"url": "ftp://x", "events": ["*"]}), 422)
    assert problem(api.post("/api/v1/webhooks", "auditor", json={"url": url, "events": ["*"]}), 403)
    rotated = api.post(f"/api/v1/webhooks/{hook['id']}/rotate")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != made.json()["secret"]
    assert rotated.json()["webhook"]["generation"] == 2
    # With an Idempotency-Key, a write sent twice happens once and answers the same.
    key = {"Idempotency-Key": "hook-1"}
    body = {"url": url + "/2", "events": ["sign"]}
    first = api.post("/api/v1/webhooks", json=body, headers=key)
    again = api.post("/api/v1/webhooks", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same webhook, and the same secret
    other = api.post("/api/v1/webhooks", json={**body, "events": ["*"]}, headers=key)
    assert "another request" in problem(other, 422)["detail"]
    twice = [api.post(f"/api/v1/webhooks/{hook['id']}/rotate", headers={"Idempotency-Key": "r"})]
    twice.append(
        api.post(f"/api/v1/webhooks/{hook['id']}/rotate", headers={"Idempotency-Key": "r"})
    )
    assert twice[0].json() == twice[1].json()
    assert twice[1].json()["webhook"]["generation"] == 3  # rotated once more, not twice
    hooks = api.get("/api/v1/webhooks").json()
    assert sum(h["url"] == url + "/2" for h in hooks) == 1

    scoped = create_token(
        api.engine, "scoped-hooks", "coordinator", api.clock, "t", round_ref=ROUND
    )
    api.tokens["scoped"] = scoped.token
    assert api.get("/api/v1/webhooks", "scoped").json() == []  # the unscoped one is not its own
    assert problem(api.get(f"/api/v1/webhooks/{hook['id']}/deliveries", "scoped"), 403)
    own = api.post("/api/v1/webhooks", "scoped", json={"url": url, "events": ["*"]})
    assert own.status_code == 201
    assert own.json()["webhook"]["round"] == ROUND
    other = {"url": url, "events": ["*"], "round": "toinen/1"}
    assert problem(api.post("/api/v1/webhooks", "scoped", json=other), 403)
    gone = api.client.delete(f"/api/v1/webhooks/{hook['id']}", headers=api.as_("coord"))
    assert gone.status_code == 200
    assert gone.json()["removed_at"] is not None
    assert gone.json()["failed"] == 1  # the waiting delivery was given up with it
    assert problem(api.client.delete("/api/v1/webhooks/999", headers=api.as_("coord")), 404)


def test_every_field_of_every_answer_is_described(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    bare = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert bare == []
    made_up = [n for n, s in schemas.items() if s.get("description", "").startswith(n + "(")]
    assert made_up == []  # no dataclass's generated signature passed off as a description
    since = schemas["PartyStatus"]["properties"]["since"]["description"]
    assert since == "In the round's zone"  # the comment beside the field, read from the code
