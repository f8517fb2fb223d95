"""Settings from the environment (``RATIFY_`` prefix), built by a factory, never at import.
(``engine.environment`` reads the database URL without them, for the fast reads; a field added
here needs its check there, which tests/test_quick.py asks for.)"""

from __future__ import annotations

import getpass
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.core.text import ACTOR_MAX, length_problem, line_problem
from engine.environment import DEFAULT_DATABASE_URL
from engine.errors import InvalidInput

__all__ = ["Settings", "default_actor", "load_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RATIFY_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLite file (default: ratify.db here) or postgresql+psycopg://user@host/db",
    )
    actor: str | None = Field(default=None, description="who is recording; default the OS user")
    smtp_host: str = Field(
        default="127.0.0.1", description="SMTP server (default: `ratify smtp-sink`)"
    )
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "tls", "none"] = "none"
    smtp_timeout: float = Field(default=30.0, gt=0, description="seconds per SMTP operation")
    mail_from: str = Field(default="ratify <ratify@example.invalid>", description="From: address")
    witness_email: str | None = Field(
        default=None,
        pattern=r"^([^@\s]+@[^@\s]+)?$",
        description="who receives the rounds' heads (daily when changed, at each activation)",
    )

    base_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where `ratify serve` is reached: the start of every party link in emails",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs party links, sessions and forms; every process must share it "
        "(default: read from, or made in, RATIFY_SECRET_FILE)",
    )
    secret_file: str = Field(
        default="ratify.secret", description="where the secret is kept when none is given"
    )
    fake_clock_file: str | None = Field(
        default=None,
        description="tests and demonstrations only: read the time from this file (ISO 8601 with "
        "its offset), shared by every process",
    )
    link_days: int = Field(
        default=30, ge=1, le=3650, description="party links expire this long after the deadline"
    )

    @field_validator("database_url", "smtp_host", "smtp_username", "mail_from", "witness_email")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # A line break here would end up in a header of every email, or in a connection string.
        problem = None if value is None else line_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("actor")
    @classmethod
    def _actor(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # blank: the OS user
        problem = line_problem(value) or length_problem(value.strip(), ACTOR_MAX)
        if problem:
            raise ValueError(problem)
        return " ".join(value.split())


def load_settings(**overrides: str | None) -> Settings:
    """The settings from the environment, with the command line's overrides (None: not given)."""
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)


def default_actor(settings: Settings) -> str:
    """Who records when the command does not say: RATIFY_ACTOR, else the OS user."""
    if settings.actor:
        return settings.actor
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
    problem = line_problem(user) or length_problem(user.strip(), ACTOR_MAX)
    if problem:
        raise InvalidInput(
            f"the OS user name {user!r} {problem.partition(';')[0]}; set RATIFY_ACTOR, or give "
            "{opt.by}, to say who records",
            field="by",
        )
    return user
