"""Lists exported for Excel: the recordings list and QA scores as .xlsx and as CSV with a BOM,
each export audited, none to agents, and text that never runs as a formula."""

from __future__ import annotations

import csv
import io
import json
import re
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


def test_one_calls_qa_results_as_a_file_in_the_readers_language(
    services: Services, engine: Engine
) -> None:
    """#17 Must 3: the QA result of one call as .xlsx and as CSV with a BOM, audited, none to
    agents; a Chinese reader's file has Chinese headers and words, an English one the codes."""
    from tests.api.test_routes_qa import THREAT, Desk

    desk = Desk(services, engine)
    rid = desk.scored_call(THREAT)
    url = f"/api/v1/qa/calls/{rid}"
    chinese = {"Authorization": f"Bearer {desk.tokens['sup1']}", "Accept-Language": "zh-CN"}
    as_xlsx = desk.client.get(f"{url}?format=xlsx", headers=chinese)
    assert as_xlsx.status_code == 200, as_xlsx.text
    assert f'filename="qa-call-{rid}.xlsx"' in as_xlsx.headers["content-disposition"]
    rows = list(
        load_workbook(io.BytesIO(as_xlsx.content)).worksheets[0].iter_rows(values_only=True)
    )
    assert rows[0][:3] == ("录音编号", "坐席", "规则包") and rows[0][-1] == "原话"
    threat = next(r for r in rows[1:] if r[-1] and "坐牢" in str(r[-1]))
    assert (threat[0], threat[1], threat[5], threat[11]) == (rid, "agent7", "标记", 4)
    assert threat[12] == "待审核" and threat[9] == "恐吓"  # the review state and category
    english = desk.call("GET", f"{url}?format=csv", "qa1")
    assert english.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))
    assert lines[0][:3] == ["recording_id", "agent", "pack"]
    assert any(r[5] == "flag" and r[9] == "intimidation" and r[12] == "open" for r in lines[1:])
    assert desk.call("GET", f"{url}?format=csv", "agent7").status_code == 403
    assert desk.call("GET", url, "agent7").status_code == 200  # the result itself, as before
    exports = [e for e in desk.audit() if e.action == "qa-export"]
    assert [(e.actor, e.target) for e in exports] == [
        ("sup1", f"call:{rid}"),
        ("qa1", f"call:{rid}"),
    ]
    assert [json.loads(e.detail)["format"] for e in exports] == ["xlsx", "csv"]


def test_the_console_pages_export_what_they_list(services: Services, engine: Engine) -> None:
    """The recordings list and the call page offer their lists as files: the buttons fetch the
    API's audited exports with the console's session, in the page's language."""
    import html

    from qa_scoring.store import score_transcript
    from tests.api.console_site import Console
    from transcribe.models import TranscriptRow

    console = Console(services, engine)
    with console.services.sessions() as session:
        transcript = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == console.recording.id)
        )
        assert transcript is not None
        score_transcript(session, transcript, "cn-collections", T0)
    browser = console.supervisor()
    browser.headers.update({"Accept-Language": "zh-CN"})
    page = browser.get("/recordings", params={"agent": "agent7", "from": "2020-01-01"})
    assert page.status_code == 200 and 'id="exports"' in page.text
    links = [html.unescape(u) for u in re.findall(r'href="([^"]+)" class="export"', page.text)]
    assert [u.split("?")[0] for u in links] == ["/api/v1/recordings"] * 2 + [
        "/api/v1/qa/scores"
    ] * 2
    assert "agent=agent7" in links[0] and "from=2020-01-01T00%3A00%3A00" in links[0]
    listed = browser.get(links[0])  # the .xlsx, fetched as the browser does
    assert listed.status_code == 200, listed.text
    sheet = load_workbook(io.BytesIO(listed.content)).worksheets[0]
    header = next(sheet.iter_rows(values_only=True))
    assert header[:3] == ("录音编号", "通话编号", "坐席") and str(header[5]).startswith(
        "录音时间 ("
    )
    assert browser.get(links[3]).content.startswith(b"\xef\xbb\xbf")  # the scores, as CSV

    call = browser.get(f"/calls/{console.recording.id}")
    found = re.findall(r'href="([^"]+)" class="export"', call.text)
    assert [html.unescape(u).split("?")[0] for u in found] == [
        f"/api/v1/qa/calls/{console.recording.id}"
    ] * 2
    result = browser.get(html.unescape(found[1]))
    assert result.status_code == 200 and result.content.startswith(b"\xef\xbb\xbf")
    assert result.content.decode("utf-8-sig").startswith("录音编号,坐席,规则包")
    exported = [a for a in console.actions() if a[1].endswith("-export")]
    assert exported == [("sup1", "recording-export"), ("sup1", "qa-export"), ("sup1", "qa-export")]
