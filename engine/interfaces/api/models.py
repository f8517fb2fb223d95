"""What the API's writes take (the results they return are the service layer's own types)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CancelBody", "ContactBody", "EventBody", "MinutesBody", "RoundRef"]

_STRICT = ConfigDict(extra="forbid", str_max_length=2000)


class MinutesBody(BaseModel):
    """The decision's minutes extract, a PDF of at most 10 MiB, in base64."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(
        max_length=255, examples=["kh-2026-12-14-198.pdf"], description="The file's name."
    )
    content_type: str = Field("application/pdf", max_length=100, description="Its media type.")
    content_base64: str = Field(max_length=14_000_000, description="Its bytes, in base64.")


class EventBody(BaseModel):
    """An event for a party, with the evidence its workflow asks for."""

    model_config = ConfigDict(
        extra="forbid",
        str_max_length=2000,
        json_schema_extra={
            "example": {"event": "approve", "ref": "Kunnanhallitus 14.12.2026 § 198"}
        },
    )

    event: str = Field(description="submit, approve, return, reject, sign, …", max_length=64)
    ref: str | None = Field(None, description="Decision reference: 'Body dd.mm.yyyy § n'.")
    diary: str | None = Field(None, description="The party's diary number (optional).")
    reason: str | None = Field(None, description="Why (return, reject, appeal).")
    signatory: str | None = Field(None, description="Who signs (sign).")
    title: str | None = Field(None, description="The signatory's title (sign).")
    minutes: MinutesBody | None = Field(
        None, description="The decision's minutes extract (a PDF), kept with the round."
    )


class CancelBody(BaseModel):
    model_config = _STRICT

    reason: str = Field(description="Why the round ends (kept in the log).")


class ContactBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_max_length=320,
        json_schema_extra={
            "example": {"name": "Maija Meikäläinen", "email": "maija@example.invalid"}
        },
    )

    name: str = Field(description="The contact person's name.")
    email: str = Field(description="Their email address.")
    language: str = Field("fi", description="fi, sv or en.")
    reason: str | None = Field(None, description="Why (kept in the log).", max_length=2000)


class RoundRef(BaseModel):
    round: str
    state: str
