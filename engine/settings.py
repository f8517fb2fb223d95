"""Settings from the environment (``RATIFY_`` prefix), built by a factory, never at import."""

from __future__ import annotations

import getpass
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "default_actor", "load_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RATIFY_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///ratify.db",
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


def load_settings(**overrides: str | None) -> Settings:
    """The settings from the environment, with the command line's overrides (None: not given)."""
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)


def default_actor(settings: Settings) -> str:
    if settings.actor and settings.actor.strip():
        return " ".join(settings.actor.split())
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
