"""Every operation of /openapi.json fuzzed by Schemathesis (bounded: a few dozen cases each),
as a coordinator, against a launched round on a real SQLite file: never a 500, and every answer
is one the document describes (its status, its content type, its schema).

Schemathesis's pytest plugin does not load under this pytest, so the test asks the schema for
each operation's Hypothesis strategy itself (its Python API) and runs each with ``given``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from schemathesis.core.result import Ok
from schemathesis.specs.openapi import checks as openapi_checks

from tests.test_api import make_api

EXAMPLES = 25  # per operation: enough to reach each input's checks, kept well under a minute
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


def test_no_operation_answers_500_or_off_the_document(tmp_path: Path) -> None:
    made = make_api(f"sqlite:///{tmp_path / 'ratify.db'}")
    api = next(made)
    try:
        assert api.launch().status_code == 201
        headers = api.as_("coord")
        schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
        found = list(schema.get_all_operations())
        assert all(isinstance(result, Ok) for result in found), found
        operations = [result.ok() for result in found if isinstance(result, Ok)]
        assert len(operations) >= 15
        failures: list[str] = []
        calls: list[int] = []
        for operation in operations:

            @hypothesis.given(case=operation.as_strategy())
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            def run(case: Any) -> None:
                response = case.call(headers=headers)
                calls.append(response.status_code)
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Exception as exc:  # every operation's failure, not only the first
                failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
        assert not failures, "\n\n".join(failures)
        assert len(calls) >= 5 * len(operations)  # it did call, many times each
        assert {200, 404, 422} <= set(calls)  # and reached past the checks as well as into them
    finally:
        made.close()
