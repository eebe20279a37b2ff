"""What an attacker or a broken client sends: oversized bodies, path tricks, injection.

Each is refused (or escaped) with a problem a person can read, logged
without the value itself, and leaves the data as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.web.auth import issue_token
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import SegmentRow


@pytest.fixture
def client(services: Services, engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with services.sessions() as session:
        user = create_user(session, "sup1", "supervisor", "a long passphrase", T0)
        headers = {"Authorization": f"Bearer {issue_token(session, user, 'test', T0)}"}
        call = add_recording(session)
        add_transcript(session, call.id, [("agent", 1.0, "Please repay by Friday.")])
    with TestClient(make_app(services, engine), raise_server_exceptions=False) as test_client:
        yield test_client, headers


def test_an_oversized_body_is_refused_before_it_is_read(
    client: tuple[TestClient, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    http, headers = client
    huge = {"subject": "case-1", "reason": "x" * (2 * 1024 * 1024)}
    with caplog.at_level(logging.WARNING, logger="api.web.limits"):
        answer = http.post("/api/v1/retrieval-requests", json=huge, headers=headers)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert "larger than 1 MB" in answer.json()["detail"]
    assert any(r.getMessage().startswith("request body refused") for r in caplog.records)
    assert http.get("/api/v1/retrieval-requests", headers=headers).json()["requests"] == []


def test_a_body_without_declared_length_is_counted_as_it_arrives(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    http, headers = client

    def chunks() -> Iterator[bytes]:
        yield b'{"subject": "case-1", "reason": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    answer = http.post(
        "/api/v1/retrieval-requests",
        content=chunks(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413


def test_a_small_body_still_passes(client: tuple[TestClient, dict[str, str]]) -> None:
    http, headers = client
    answer = http.post(
        "/api/v1/retrieval-requests", json={"subject": "case-1", "reason": "court"}, headers=headers
    )
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/recordings/..%2F..%2F..%2Fetc%2Fpasswd/audio",
        "/api/v1/recordings/%2e%2e%2f%2e%2e%2fspool/audio",
        "/api/v1/recordings/../../etc/passwd/audio",
        "/api/v1/debtors/bank-a/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/qa/calls/..%5C..%5Cwindows",
    ],
)
def test_path_tricks_in_ids_find_nothing(
    client: tuple[TestClient, dict[str, str]], path: str
) -> None:
    http, headers = client
    answer = http.get(path, headers=headers, params={"reason": "audit"})
    assert answer.status_code in (404, 422), (path, answer.status_code, answer.text)
    assert "root:" not in answer.text


@pytest.mark.parametrize(
    "query",
    ["'; DROP TABLE transcript_segments; --", '" OR 1=1 --', "repay) OR (1=1", "%' OR '%'='"],
)
def test_sql_in_a_search_is_only_text(
    client: tuple[TestClient, dict[str, str]], services: Services, query: str
) -> None:
    http, headers = client
    answer = http.get("/api/v1/transcripts/search", params={"q": query}, headers=headers)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert answer.json()["hits"] == []  # nothing matches: it was searched for, not run
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SegmentRow)) == 1
    still = http.get("/api/v1/transcripts/search", params={"q": "repay"}, headers=headers)
    assert len(still.json()["hits"]) == 1


def test_refused_input_is_logged_without_its_value(
    client: tuple[TestClient, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    http, headers = client
    secret_number = "+8613800138000"
    with caplog.at_level(logging.WARNING, logger="api.web.problems"):
        answer = http.get(
            "/api/v1/transcripts/search",
            params={"q": "repay", "agent": secret_number + "<script>"},
            headers=headers,
        )
    assert answer.status_code == 422
    refused = [r for r in caplog.records if r.getMessage() == "request refused: invalid input"]
    assert refused and refused[0].__dict__["path"] == "/api/v1/transcripts/search"
    assert all(secret_number not in r.getMessage() + str(r.__dict__) for r in caplog.records)
