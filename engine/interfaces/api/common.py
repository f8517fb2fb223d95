"""What the API's routes share: the errors every route may answer, and reading an upload."""

from __future__ import annotations

from typing import Any

from fastapi import UploadFile

from engine.errors import InvalidInput
from engine.interfaces.api.problems import MEDIA_TYPE, Problem
from engine.interfaces.web.coord_common import size_text

__all__ = ["ERRORS", "read_file"]


def _problem(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {MEDIA_TYPE: {}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    401: _problem("No bearer token, or one that is unknown or revoked."),
    403: _problem("The token's role or round does not reach this."),
    404: _problem("No such round, party or message."),
    409: _problem("The rules refused it (a transition not allowed now, a closed round)."),
    422: _problem("Invalid input: the fields concerned are named."),
}


def read_file(upload: UploadFile | None, limit: int, field: str) -> bytes:
    """The bytes of an uploaded file, refused when missing, empty or over ``limit``."""
    data = upload.file.read(limit + 1) if upload is not None else b""
    if not data:
        raise InvalidInput(f"send the {field} file (it is missing or empty)", field=field)
    if len(data) > limit:
        raise InvalidInput(f"the {field} file is larger than {size_text(limit)}", field=field)
    return data
