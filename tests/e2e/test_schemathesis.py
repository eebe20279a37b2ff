"""Every documented API operation fed generated input from its own OpenAPI description.

Schemathesis reads the app's OpenAPI document and throws requests at each
operation with every role's token: schema-valid ones (each role; the roles
the operation admits get the most, the others must all be refused), and
schema-invalid ones as a role it admits. Whatever arrives, the server must
answer without a 500 and with a response its own document describes
(status, content type, body schema), and must refuse what the document
rules out. This is how an integrator's buggy client meets the API, long
before a person does. The numbers of examples keep a run to about a minute
a database.

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
from schemathesis import GenerationMode
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine

from api.web.services import Services
from tests.apps import ROLES, make_app, role_tokens
from tests.e2e.test_role_matrix import MATRIX

pytestmark = pytest.mark.slow

Operation = APIOperation[Any, Any, Any, Any]

#: Schema-valid examples per operation for a role it admits, and for one it refuses (403 each).
ADMITTED, REFUSED = 12, 3
#: Schema-invalid examples per operation, as the first role it admits.
INVALID = 8


def _fuzz(
    operation: Operation,
    token: str,
    examples: int,
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> None:
    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
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
        admitted = MATRIX[(operation.method.upper(), operation.path)]
        fuzzed += 1
        runs = [
            (role, ADMITTED if role in admitted else REFUSED, GenerationMode.POSITIVE)
            for role in ROLES
        ]
        first = "admin" if "admin" in admitted else sorted(admitted)[0]
        runs.append((first, INVALID, GenerationMode.NEGATIVE))
        for role, examples, mode in runs:
            try:
                _fuzz(operation, tokens[role], examples, mode)
            except (Exception, BaseExceptionGroup) as exc:  # every failure, not the first
                failures.append(
                    f"{operation.label} as {role} ({mode.value}): {type(exc).__name__}: {exc}"[
                        :3000
                    ]
                )
    assert fuzzed == len(MATRIX)
    assert not failures, "\n\n".join(failures)
