"""Every documented API operation fed generated input from its own OpenAPI description.

Schemathesis reads the app's OpenAPI document and throws valid and invalid
requests at each operation with each role's token; whatever arrives, the
server must answer without a 500 and with a response its own document
describes (status, content type, body schema). This is how an integrator's
buggy client meets the API, long before a person does.

One check is left out: "schema-valid request rejected". The document cannot
say everything the server checks (that a phone number exists in its
region, that a week like 0000-W00 is real, that a referenced recording
exists), so such requests are refused with a 4xx problem that says why,
which is the behaviour wanted. /healthz is not fuzzed: it takes no input and
answers 503 by design while a component (here, the dialer) is down.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from api.web.services import Services
from tests.apps import make_app, role_tokens
from tests.e2e.test_role_matrix import MATRIX

pytestmark = pytest.mark.slow

Operation = APIOperation[Any, Any, Any, Any]


def _fuzz(operation: Operation, token: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token}"},
            excluded_checks=[positive_data_acceptance],
        )

    run()


def test_every_operation_holds_to_its_schema(services: Services, engine: Engine) -> None:
    app = make_app(replace(services, number_secret=b"k" * 32), engine)
    tokens = role_tokens(services, "fuzz")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    fuzzed = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"unreadable operation: {result.err()}")
            continue
        operation = result.ok()
        if not operation.path.startswith("/api/"):
            continue
        # as a role the endpoint admits, so the input reaches the handler
        admitted = MATRIX[(operation.method.upper(), operation.path)]
        role = "admin" if "admin" in admitted else sorted(admitted)[0]
        fuzzed += 1
        try:
            _fuzz(operation, tokens[role])
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not the first
            failures.append(f"{operation.label} as {role}: {type(exc).__name__}: {exc}"[:3000])
    assert fuzzed == len(MATRIX)
    assert not failures, "\n\n".join(failures)
