"""Debtors over HTTP: who may write and read, masked numbers, imports whole or refused."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.routes import debtors as debtor_routes
from api.web.auth import issue_token
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0

URL = "/api/v1/debtors"
BODY: dict[str, Any] = {
    "name": "王小明",
    "stage": "early",
    "timezone": "Asia/Shanghai",
    "numbers": [
        {"role": "debtor", "number": "13800138000"},
        {"role": "relative", "number": "+86 139 0013 9000"},
    ],
    "callback_windows": "Mon-Fri 18:00-20:00",
}
CSV = (
    "client,external_id,name,stage,timezone,numbers,callback_windows\n"
    'bank-a,C1,Li Lei,early,Asia/Shanghai,"debtor:13800138001;employer:+861065529988",\n'
    "bank-b,C2,Han Meimei,late,,debtor:13800138002,Sat 10:00-12:00\n"
)


class Desk:
    """The API with one user per role that takes part and the number key set."""

    def __init__(self, services: Services, engine: Engine) -> None:
        services = replace(services, number_secret=os.urandom(32))
        self.services = services
        self.app = make_app(services, engine)
        self.client = TestClient(self.app)
        self.tokens: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("admin1", "admin", None),
                ("sup1", "supervisor", None),
                ("qa1", "qa", None),
                ("aud-a", "auditor", "bank-a"),
                ("aud-b", "auditor", "bank-b"),
                ("agent7", "agent", None),
            ):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                user.client_id = client
                session.commit()
                self.tokens[name] = issue_token(session, user, "test", T0)

    def call(self, method: str, url: str, who: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kwargs.pop("headers", {})}
        return self.client.request(method, url, headers=headers, **kwargs)

    def actions(self) -> list[str]:
        with self.services.sessions() as session:
            return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))


@pytest.fixture
def desk(services: Services, engine: Engine) -> Desk:
    return Desk(services, engine)


def test_upsert_then_read_with_masked_numbers(desk: Desk) -> None:
    made = desk.call("PUT", f"{URL}/bank-a/ACC-1", "sup1", json=BODY)
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "王小明"
    again = desk.call("PUT", f"{URL}/bank-a/ACC-1", "admin1", json={**BODY, "stage": "legal"})
    assert again.status_code == 200 and again.json()["stage"] == "legal"

    seen = desk.call("GET", f"{URL}/bank-a/ACC-1", "sup1").json()
    assert seen["name"] == "王小明" and seen["timezone"] == "Asia/Shanghai"
    assert seen["numbers"] == [
        {"role": "debtor", "number": "+86138****8000"},
        {"role": "relative", "number": "+86139****9000"},
    ]
    assert seen["callback_windows"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00", "end": "20:00"}
    ]
    for who in ("qa1", "aud-a"):
        other = desk.call("GET", f"{URL}/bank-a/ACC-1", who)
        assert other.status_code == 200 and other.json()["name"] is None
        assert "13800138000" not in other.text and "王小明" not in other.text
    assert desk.actions() == ["debtor-upsert", "debtor-upsert"] + ["debtor-view"] * 3


def test_roles_and_auditor_scope(desk: Desk) -> None:
    assert desk.call("PUT", f"{URL}/bank-a/ACC-2", "sup1", json=BODY).status_code == 201
    for who in ("qa1", "aud-a", "agent7"):
        assert desk.call("PUT", f"{URL}/bank-a/ACC-2", who, json=BODY).status_code == 403
    assert desk.call("GET", f"{URL}/bank-a/ACC-2", "agent7").status_code == 403
    hidden = desk.call("GET", f"{URL}/bank-a/ACC-2", "aud-b")
    assert hidden.status_code == 404  # another client's account: not even its existence
    assert desk.call("GET", f"{URL}/bank-a/NOPE", "sup1").status_code == 404
    assert desk.client.get(f"{URL}/bank-a/ACC-2").status_code == 401
    files = {"file": ("a.csv", CSV, "text/csv")}
    assert desk.call("POST", f"{URL}/import", "qa1", files=files).status_code == 403


def test_bad_input_is_422_naming_the_field(desk: Desk) -> None:
    bad = desk.call(
        "PUT",
        f"{URL}/bank-a/ACC-3",
        "sup1",
        json={**BODY, "timezone": "Mars/Base", "numbers": [{"role": "boss", "number": "1"}]},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"timezone", "numbers"}
    assert desk.call("PUT", f"{URL}/bank%20a/x", "sup1", json=BODY).status_code == 422
    assert desk.call("PUT", f"{URL}/bank-a/..%2F..", "sup1", json=BODY).status_code in (404, 422)
    assert desk.call("GET", f"{URL}/bank-a/ACC-3", "sup1").status_code == 404  # nothing stored


def test_import_by_upload_and_by_raw_body(desk: Desk) -> None:
    files = {"file": ("accounts.csv", CSV, "text/csv")}
    done = desk.call("POST", f"{URL}/import", "sup1", files=files)
    assert done.status_code == 200, done.text
    read = {"warnings": [], "encoding": "utf-8"}  # how the file was read
    assert done.json() == {"rows": 2, "created": 2, "updated": 0, **read}
    raw = desk.call(
        "POST", f"{URL}/import", "admin1", content=CSV, headers={"Content-Type": "text/csv"}
    )
    assert raw.json() == {"rows": 2, "created": 0, "updated": 2, **read}
    as_json = desk.call(
        "POST",
        f"{URL}/import",
        "admin1",
        json=[{**BODY, "client": "bank-a", "external_id": "J1"}],
    )
    assert as_json.json() == {"rows": 1, "created": 1, "updated": 0, **read}
    assert desk.call("GET", f"{URL}/bank-b/C2", "aud-b").json()["stage"] == "late"
    assert desk.actions() == ["debtor-import"] * 3 + ["debtor-view"]


def test_import_with_bad_rows_is_422_and_writes_nothing(desk: Desk) -> None:
    broken = CSV + "bank-a,C3,Zhang San,early,Asia/Shanghai,debtor:12,\n"
    refused = desk.call(
        "POST", f"{URL}/import", "sup1", content=broken, headers={"Content-Type": "text/csv"}
    )
    assert refused.status_code == 422
    body = refused.json()
    assert body["error_count"] == 1
    assert body["errors"] == [
        {
            "line": 4,
            "field": "numbers",
            "message": body["errors"][0]["message"],
            "code": "value.number_bad",
        }
    ]
    as_file = desk.call(
        "POST",
        f"{URL}/import",
        "sup1",
        content=broken,
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )
    assert as_file.status_code == 422 and as_file.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_file.text)))
    assert [(r["line"], r["field"]) for r in rows] == [("4", "numbers")]
    assert desk.call("GET", f"{URL}/bank-a/C1", "sup1").status_code == 404
    assert desk.actions() == ["debtor-import-refused"] * 2


def test_oversized_and_unknown_uploads(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debtor_routes, "MAX_UPLOAD_BYTES", 1024 * 1024)
    big = CSV + "x" * (1024 * 1024)
    too_big = desk.call(
        "POST", f"{URL}/import", "sup1", content=big, headers={"Content-Type": "text/csv"}
    )
    assert too_big.status_code == 413 and "larger than 1 MB" in too_big.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for _ in range(3):
            yield b"y" * (512 * 1024)

    streamed = desk.call(
        "POST", f"{URL}/import", "sup1", content=chunks(), headers={"Content-Type": "text/csv"}
    )
    assert streamed.status_code == 413
    odd = desk.call(
        "POST", f"{URL}/import", "sup1", content=b"x", headers={"Content-Type": "image/png"}
    )
    assert odd.status_code == 415
    nameless = desk.call(
        "POST", f"{URL}/import", "sup1", files={"file": ("a.txt", CSV, "text/plain")}
    )
    assert nameless.status_code == 415
    assert desk.actions() == []


def test_without_the_number_key_nothing_is_stored(desk: Desk) -> None:
    desk.app.state.services = replace(desk.services, number_secret=None)
    refused = desk.call("PUT", f"{URL}/bank-a/ACC-9", "sup1", json=BODY)
    assert refused.status_code == 503 and "number key" in refused.json()["detail"]
