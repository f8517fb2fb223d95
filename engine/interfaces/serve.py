"""Running the web application: uvicorn, the worker beside it, and the development setup that
`make run` uses (`ratify serve --dev`)."""

from __future__ import annotations

import logging
import os
import secrets
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from engine.interfaces.common import out

if TYPE_CHECKING:
    from engine.clock import Clock
    from engine.interfaces.web.common import WebConfig
    from engine.runtime import Engine
    from engine.runtime.access import Keys
    from engine.settings import Settings

__all__ = ["DEV_FOLDER", "run_server", "set_up_dev"]

log = logging.getLogger(__name__)
DEV_FOLDER = Path(".ratify")  # the development sink's mail, beside the database
EXAMPLE = Path(str(resources.files("ratify_examples") / "kanta-hame" / "agreement.toml"))


def set_up_dev(engine: Engine) -> list[tuple[str, str, str]]:
    """An empty database gets the schema and the Kanta-Häme round; a coordinator and an auditor
    get new passwords. Returns (name, role, password) of each."""
    from engine.clock import SystemClock
    from engine.runtime import init_schema, launch, load_agreement, status
    from engine.runtime.access import add_user

    clock = SystemClock()
    init_schema(engine)
    if not status(engine, None):
        launch(engine, load_agreement(EXAMPLE, launch_at=clock), clock, "ratify serve --dev")
    accounts = []
    for name, role in (("coordinator", "coordinator"), ("auditor", "auditor")):
        password = secrets.token_urlsafe(12)
        add_user(engine, name, role, password, clock)
        accounts.append((name, role, password))
    return accounts


def run_server(
    engine: Engine,
    settings: Settings,
    *,
    host: str,
    port: int,
    worker: bool,
    interval: float,
    dev: bool,
    keys: Callable[[str | None], Keys],
    clock: Clock | None = None,
) -> None:
    from engine.runtime.worker_lock import WorkerLock

    web_lock = WorkerLock(engine, "web")
    web_lock.acquire()  # on SQLite, refused while another `ratify serve` serves this database
    try:
        _serve(engine, settings, host, port, worker, interval, dev, keys, clock)
    finally:
        web_lock.release()


def _serve(
    engine: Engine,
    settings: Settings,
    host: str,
    port: int,
    worker: bool,
    interval: float,
    dev: bool,
    keys: Callable[[str | None], Keys],
    clock: Clock | None,
) -> None:
    import uvicorn

    from engine.clock import SystemClock
    from engine.interfaces.web.app import create_app
    from engine.interfaces.web.common import WebConfig
    from engine.runtime import TickReport
    from engine.runtime.worker import start_worker
    from notifications.mailer import Mailer

    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    # Unless RATIFY_BASE_URL says where the server is reached, links point here.
    base = None if "RATIFY_BASE_URL" in os.environ else f"http://{shown_host}:{port}"
    made_keys = keys(base)
    clock = clock or SystemClock()
    mailer = Mailer.from_settings(settings)
    sink = None
    sink_folder = None
    accounts: list[tuple[str, str, str]] = []
    if dev:
        from notifications.sink import MailSink

        accounts = set_up_dev(engine)
        sink_folder = (DEV_FOLDER / "mail").resolve()
        sink = MailSink(sink_folder)
        try:
            _, sink_port = sink.start("127.0.0.1", settings.smtp_port)
        except OSError:  # the usual port is taken: any free one
            _, sink_port = sink.start("127.0.0.1", 0)
        mailer = Mailer("127.0.0.1", sink_port, timeout=settings.smtp_timeout)
        interval = min(interval, 5.0)  # invitations appear in the sink while one watches
    cfg = WebConfig(
        engine,
        clock,
        made_keys,
        secure_cookies=made_keys.base_url.startswith("https://"),
        sink_folder=sink_folder,
        mail_from=settings.mail_from,
    )
    app = create_app(cfg)
    # What the dashboard keeps (every round's summary, the scheduler's next messages) is made
    # while the server starts, so that the first coordinator after a restart does not wait.
    threading.Thread(target=_warm, args=(cfg,), daemon=True, name="warm-dashboard").start()
    stop_worker = None
    if worker:

        def report(tick: TickReport) -> None:
            if tick.moved or tick.queued or tick.sent:
                out.print(f"worker: {tick.summary()}", markup=False)

        stop_worker = start_worker(
            engine, clock, mailer, settings.mail_from, interval, report, made_keys
        )
    out.print(f"ratify: serving on {made_keys.base_url}/", markup=False)
    if dev:
        out.print(f"  the emails sent: {made_keys.base_url}/sink", markup=False)
        for name, role, password in accounts:
            out.print(f"  {role}: sign in as {name!r} with the password {password}", markup=False)
    if not worker:
        out.print("  no worker in this process: run `ratify worker` beside it", markup=False)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if stop_worker is not None:
            stop_worker()
        if sink is not None:
            sink.stop()


def _warm(cfg: WebConfig) -> None:
    from engine.interfaces.web.pages_dashboard import warm_dashboard

    try:
        warm_dashboard(cfg)
    except Exception:  # the first visitor then makes it, and sees what went wrong
        log.exception("warming the dashboard failed")
