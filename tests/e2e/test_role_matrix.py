"""Every API endpoint against every role: the matrix below is the contract, the server enforces it.

A new endpoint fails `test_every_endpoint_is_in_the_matrix` until someone
decides who may call it. Requests carry no body and dummy ids: a role that
is admitted gets past the role check (any answer but 401/403, never a 500);
a role that is not gets 403 before anything else is looked at.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.web.app import create_app
from api.web.health import HealthChecker
from api.web.services import Services
from tests.apps import ROLES, make_app, role_tokens

READERS = {"qa", "supervisor", "admin", "auditor"}

MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/transcripts/search"): READERS,
    ("GET", "/api/v1/recordings"): READERS | {"agent"},
    ("GET", "/api/v1/recordings/{recording_id}/audio"): READERS | {"agent"},
    ("POST", "/api/v1/recordings/{recording_id}/legal-hold"): {"supervisor", "admin"},
    ("POST", "/api/v1/recordings/{recording_id}/retention"): {"admin"},
    ("POST", "/api/v1/retrieval-requests"): READERS,
    ("GET", "/api/v1/retrieval-requests"): READERS,
    ("POST", "/api/v1/retrieval-requests/{request_id}/fulfil"): {"supervisor", "admin"},
    ("POST", "/api/v1/calls"): {"agent", "supervisor", "admin"},
    ("GET", "/api/v1/calls/{request_id}"): {"agent", "supervisor", "admin"},
    ("POST", "/api/v1/calls/{call_id}/pause"): {"agent", "supervisor", "admin"},
    ("POST", "/api/v1/calls/{call_id}/resume"): {"agent", "supervisor", "admin"},
    ("GET", "/api/v1/qa/calls/{recording_id}"): READERS | {"agent"},
    ("POST", "/api/v1/qa/flags/{flag_id}/review"): {"qa", "supervisor"},
    ("POST", "/api/v1/qa/flags/{flag_id}/appeal"): {"agent"},
    ("POST", "/api/v1/qa/flags/{flag_id}/decide"): {"supervisor", "admin"},
    ("GET", "/api/v1/qa/scores"): READERS | {"agent"},
    ("POST", "/api/v1/qa/samples"): {"supervisor", "admin"},
    ("GET", "/api/v1/qa/samples"): {"qa", "supervisor", "admin"},
    ("POST", "/api/v1/qa/packs/examples"): {"admin"},
    ("PUT", "/api/v1/debtors/{client}/{external_id}"): {"supervisor", "admin"},
    ("GET", "/api/v1/debtors/{client}/{external_id}"): READERS,
    ("POST", "/api/v1/debtors/import"): {"supervisor", "admin"},
    ("GET", "/api/v1/audit"): {"admin", "auditor"},
    ("GET", "/api/v1/outcomes"): {"supervisor", "admin", "auditor"},
    ("GET", "/api/v1/outcomes/{attempt_id}"): {"supervisor", "admin", "auditor"},
}

_DUMMY = {"recording_id": "0" * 32, "client": "bank-a", "external_id": "A-1"}


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _DUMMY.get(m.group(1), "1"), path)


@pytest.fixture
def app_and_tokens(services: Services, engine: Engine) -> tuple[TestClient, dict[str, str]]:
    app = make_app(replace(services, number_secret=b"k" * 32), engine)
    return TestClient(app, raise_server_exceptions=False), role_tokens(services, "matrix")


def _api_routes() -> set[tuple[str, str]]:
    """Every endpoint the OpenAPI document lists under /api/v1 (the documented API)."""
    app = create_app(HealthChecker.__new__(HealthChecker), Services.__new__(Services))
    paths = app.openapi()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/v1")
        for method in operations
    }


def test_every_endpoint_is_in_the_matrix() -> None:
    routes = _api_routes()
    assert routes - set(MATRIX) == set(), "decide who may call these endpoints"
    assert set(MATRIX) - routes == set(), "the matrix names endpoints that are gone"


@pytest.mark.parametrize("endpoint", sorted(MATRIX), ids=lambda e: f"{e[0]} {e[1]}")
def test_roles_are_enforced(
    app_and_tokens: tuple[TestClient, dict[str, str]], endpoint: tuple[str, str]
) -> None:
    client, tokens = app_and_tokens
    method, path = endpoint
    url = _concrete(path)
    anonymous = client.request(method, url)
    assert anonymous.status_code == 401, (url, anonymous.text)
    for role in ROLES:
        answer = client.request(method, url, headers={"Authorization": f"Bearer {tokens[role]}"})
        assert answer.status_code != 500, (role, url, answer.text)
        if role in MATRIX[endpoint]:
            assert answer.status_code not in (401, 403), (role, url, answer.text)
        else:
            assert answer.status_code == 403, (role, url, answer.status_code, answer.text)
