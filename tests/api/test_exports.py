"""Lists exported for Excel: the recordings list and QA scores as .xlsx and as CSV with a BOM,
each export audited, none to agents, and text that never runs as a formula."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.web.auth import issue_token
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0, add_recording

SHANGHAI_T0 = T0.astimezone(ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def site(services: Services, engine: Engine) -> Iterator[tuple[TestClient, dict[str, str]]]:
    tokens: dict[str, str] = {}
    with services.sessions() as session:
        for name, role in (("sup1", "supervisor"), ("agent7", "agent"), ("qa1", "qa")):
            user = create_user(session, name, role, "a long passphrase", T0)
            tokens[name] = issue_token(session, user, "test", T0)
        add_recording(session, agent="agent7", debtor_id="欠款-1")
        add_recording(session, agent='=HYPERLINK("http://x")', debtor_id="D-2")
        session.commit()
    yield TestClient(make_app(services, engine)), tokens


def _get(site: tuple[TestClient, dict[str, str]], url: str, who: str) -> Any:
    client, tokens = site
    return client.get(url, headers={"Authorization": f"Bearer {tokens[who]}"})


def _exports(services: Services) -> list[AuditEntry]:
    with services.sessions() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        return [e for e in rows if e.action.endswith("-export")]


def test_the_recordings_list_as_xlsx(
    site: tuple[TestClient, dict[str, str]], services: Services
) -> None:
    answer = _get(site, "/api/v1/recordings?format=xlsx&client=bank-a", "sup1")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="recordings.xlsx"' in answer.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == (
        "id",
        "call_id",
        "agent",
        "client_id",
        "debtor_id",
        "recorded_at (Asia/Shanghai)",
    )
    assert sorted(str(r[4]) for r in rows[1:]) == ["D-2", "欠款-1"]  # Chinese as written
    assert {r[5] for r in rows[1:]} == {SHANGHAI_T0.strftime("%Y-%m-%d %H:%M:%S")}
    formula = next(r for r in rows[1:] if r[4] == "D-2")
    assert formula[2] == '=HYPERLINK("http://x")'  # kept as text: a formula cell reads None here
    hyperlink = next(c for c in sheet["C"] if c.value == '=HYPERLINK("http://x")')
    assert hyperlink.data_type == "s"
    [entry] = _exports(services)
    assert (entry.actor, entry.action, entry.target) == (
        "sup1",
        "recording-export",
        "client=bank-a",
    )
    assert json.loads(entry.detail) | {"format": "xlsx", "results": 2} == json.loads(entry.detail)


def test_the_recordings_list_as_csv_with_a_bom(
    site: tuple[TestClient, dict[str, str]], services: Services
) -> None:
    answer = _get(site, "/api/v1/recordings?format=csv", "qa1")
    assert answer.status_code == 200
    assert answer.content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 only with it
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][2] == "agent" and len(rows) == 3
    assert "欠款-1" in [r[4] for r in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in [r[2] for r in rows[1:]]  # CSV injection defused
    [entry] = _exports(services)
    assert (entry.actor, json.loads(entry.detail)["format"]) == ("qa1", "csv")


def test_qa_scores_export_and_agents_export_nothing(
    site: tuple[TestClient, dict[str, str]], services: Services
) -> None:
    answer = _get(site, "/api/v1/qa/scores?format=xlsx", "sup1")
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    assert next(sheet.iter_rows(values_only=True)) == (
        "agent",
        "week",
        "calls",
        "average",
        "machine_average",
    )
    csv_answer = _get(site, "/api/v1/qa/scores?format=csv&agent=agent7", "sup1")
    assert csv_answer.content.startswith(b"\xef\xbb\xbf")
    for url in ("/api/v1/recordings?format=csv", "/api/v1/qa/scores?format=xlsx"):
        assert _get(site, url, "agent7").status_code == 403
    assert [(e.action, e.target) for e in _exports(services)] == [
        ("qa-export", "all"),
        ("qa-export", "agent=agent7"),
    ]
    plain = _get(site, "/api/v1/recordings", "sup1")
    assert plain.headers["content-type"] == "application/json"  # no format: the list as before
    assert len(_exports(services)) == 2
