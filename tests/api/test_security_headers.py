"""Security headers on every answer, and the API docs from Dialguard's own assets."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.web.services import Services
from tests.api.console_site import Console
from tests.apps import make_app


def _secured(answer: object, where: str) -> str:
    headers = answer.headers  # type: ignore[attr-defined]
    policy: str = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in policy, where
    assert "default-src 'self'" in policy and "object-src 'none'" in policy, where
    assert "'unsafe-inline'" not in policy, where
    assert headers.get("x-content-type-options") == "nosniff", where
    assert headers.get("referrer-policy") == "no-referrer", where
    return policy


def test_every_kind_of_answer_carries_the_headers(console: Console) -> None:
    browser = console.browser()
    for url in ("/login", "/search", "/healthz", "/openapi.json", "/api/v1/audit", "/nowhere"):
        _secured(browser.get(url), url)
    _secured(browser.get("/api/v1/transcripts/search?q=%00"), "a refused query")
    _secured(browser.post("/login", data={"username": "x", "password": "y"}), "a refused login")
    qa = console.logged_in("qa1")
    for url in ("/search?q=hello", f"/calls/{console.recording.id}?reason=complaint+42"):
        _secured(qa.get(url), url)


def test_inline_script_and_style_carry_the_answers_nonce(console: Console) -> None:
    page = console.logged_in("qa1").get(f"/calls/{console.recording.id}?reason=complaint+42")
    nonce = re.search(r"'nonce-([^']+)'", _secured(page, "call page"))
    assert nonce is not None
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", page.text):
        assert f'nonce="{nonce.group(1)}"' in tag, tag
    assert " style=" not in page.text  # no inline style attribute the policy would block
    other = console.logged_in("qa1").get(f"/calls/{console.recording.id}?reason=complaint+42")
    assert f'nonce="{nonce.group(1)}"' not in other.text  # a new nonce every answer


def test_the_api_docs_load_nothing_from_elsewhere(services: Services, engine: Engine) -> None:
    client = TestClient(make_app(services, engine))
    docs = client.get("/docs")
    assert docs.status_code == 200
    _secured(docs, "/docs")
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/docs-assets/") for s in sources), sources
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    for asset in sources:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset
        _secured(served, asset)
    assert client.get("/openapi.json").status_code == 200


def test_the_api_docs_can_be_turned_off(services: Services, engine: Engine) -> None:
    client = TestClient(make_app(services, engine, docs=False))
    assert client.get("/docs").status_code == 404
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 404
    assert client.get("/openapi.json").status_code == 200  # integrators still generate clients


@pytest.mark.parametrize("setting", ["true", "false"])
def test_the_docs_setting(setting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import Settings

    monkeypatch.setenv("DIALGUARD_API_DOCS", setting)
    assert Settings().api_docs is (setting == "true")
