"""The console pages for QA staff and auditors: search, the call page, flag review, legal hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select

from api.audit.chain import AuditEntry
from qa_scoring.store import score_transcript
from recording.models import Recording
from recording.store import CallInfo, spool_call, upload_pending
from tests.api.console_site import (
    Console,
    csrf_of,
)
from tests.audio import noise, write_wav
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import TranscriptRow


def test_search_page_shows_highlighted_hits_and_audits(console: Console) -> None:
    qa = console.logged_in("qa1")
    page = qa.get("/search", params={"q": "还款"})
    assert page.status_code == 200
    assert "<mark>还款</mark>" in page.text
    link = re.search(r'href="(/calls/[0-9a-f]{32}\?t=65.0)"', page.text)
    assert link is not None, page.text
    assert ("qa1", "search") in console.actions()
    injected = qa.get("/search", params={"q": "<script>alert(1)</script>"})
    assert "<script>alert(1)</script>" not in injected.text  # escaped, not executed


def test_call_page_asks_a_reason_then_plays_from_the_hit(console: Console) -> None:
    qa = console.logged_in("qa1")
    url = f"/calls/{console.recording.id}"
    ask = qa.get(url, params={"t": 65.0})
    assert 'name="reason"' in ask.text and "<audio" not in ask.text
    page = qa.get(url, params={"t": 65.0, "reason": "QA review week 48"})
    assert '<audio id="player"' in page.text and 'data-start="65.0"' in page.text
    assert f"/api/v1/recordings/{console.recording.id}/audio?reason=QA+review+week+48" in page.text
    assert "我下周还款。" in page.text and 'data-start="65.0" data-end=' in page.text
    assert "Recording paused for card details from 0:12 to 0:41." in page.text


def test_qa_flow_search_open_call_seek_to_flag_and_confirm(console: Console) -> None:
    """Search, open the call, find the flag's marker at its second, confirm it."""
    with console.services.sessions() as session:
        call = add_recording(session, agent="agent7", client_id="bank-a")
        add_transcript(
            session,
            call.id,
            [
                ("agent", 1.0, "您好，我是安信资产的催收员小王"),
                ("agent", 10.0, "再不还就让你坐牢"),
            ],
        )
        transcript = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == call.id)
        )
        assert transcript is not None
        score_transcript(session, transcript, "cn-collections", T0)
    qa = console.logged_in("qa1")
    hits = qa.get("/search", params={"q": "坐牢"}).text
    assert f'href="/calls/{call.id}?t=10.0"' in hits
    page = qa.get(f"/calls/{call.id}", params={"t": 10.0, "reason": "weekly QA"}).text
    marker = re.search(r'<a href="#" class="seek" data-start="10.0">0:10</a>', page)
    assert marker is not None, page  # the flag's marker seeks the player to 0:10
    form = re.search(r'action="(/calls/[0-9a-f]+/flags/(\d+))"', page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert form is not None and csrf is not None
    done = qa.post(
        form.group(1), data={"csrf": csrf.group(1), "action": "confirm", "reason": "weekly QA"}
    )
    assert done.status_code == 303 and done.headers["location"].startswith(
        f"/calls/{call.id}?t=10.0"
    )
    again = qa.get(done.headers["location"]).text
    assert '<td class="state">confirmed</td>' in again and "Confirm</button>" not in again
    assert ("qa1", "qa-flag-confirm") in console.actions()
    forged = qa.post(form.group(1), data={"csrf": "forged", "action": "dismiss"})
    assert forged.status_code == 403


@pytest.fixture
def stored(console: Console, tmp_path: Path) -> str:
    """A real recording in both locked buckets, for holds and downloads."""
    wav = write_wav(tmp_path / "call.wav", [noise(3, seed=1), noise(3, seed=2)])
    info = CallInfo("call-real", "agent7", T0, debtor_id="ACC-1", client_id="bank-a")
    services = console.services
    row = spool_call(services.sessions, services.spool, services.keys, wav, info, 730, T0)
    upload_pending(services.sessions, services.spool, services.copies, T0)
    return row.id


def test_call_page_download_and_legal_hold_need_a_reason_and_are_audited(
    console: Console, stored: str
) -> None:
    sup = console.supervisor()
    url = f"/calls/{stored}"
    page = sup.get(url, params={"reason": "bank complaint 4411"}).text
    assert f'action="/api/v1/recordings/{stored}/audio" id="download"' in page
    assert "Not on legal hold." in page and "Place legal hold</button>" in page
    audio = f"/api/v1/recordings/{stored}/audio"
    assert sup.get(audio, params={"download": "true"}).status_code == 422  # no reason, no file
    got = sup.get(audio, params={"download": "true", "reason": "bank complaint 4411"})
    assert (
        got.status_code == 200 and f'filename="{stored}.ogg"' in got.headers["content-disposition"]
    )
    assert got.content[:4] == b"OggS"

    form = {"csrf": csrf_of(page), "on": "true", "listening": "bank complaint 4411"}
    short = sup.post(f"{url}/legal-hold", data=form | {"reason": "x"})
    assert short.status_code == 422 and "Say why" in short.text
    assert (
        sup.post(
            f"{url}/legal-hold", data=form | {"csrf": "forged", "reason": "court order 12"}
        ).status_code
        == 403
    )
    held = sup.post(f"{url}/legal-hold", data=form | {"reason": "court order 12"})
    assert held.status_code == 303 and held.headers["location"] == (
        f"{url}?reason=bank+complaint+4411"
    )
    page = sup.get(held.headers["location"]).text
    assert "On legal hold" in page and "Lift legal hold</button>" in page
    with console.services.sessions() as session:
        row = session.get(Recording, stored)
        assert row is not None and row.legal_hold
        for copy in console.services.copies:  # S3 holds it, not only the database
            version = getattr(row, f"{copy.name}_version")
            assert copy.client.is_object_legal_hold_enabled(
                copy.target.bucket, row.object_key, version
            )
    lifted = sup.post(f"{url}/legal-hold", data=form | {"on": "false", "reason": "case closed"})
    assert lifted.status_code == 303 and "Not on legal hold." in sup.get(url).text
    with console.services.sessions() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    trail = [(e.actor, e.action, e.reason) for e in entries if e.target == stored]
    assert ("sup1", "download", "bank complaint 4411") in trail
    assert ("sup1", "legal-hold-on", "court order 12") in trail
    assert ("sup1", "legal-hold-off", "case closed") in trail

    qa = console.logged_in("qa1")
    qa_page = qa.get(url, params={"reason": "weekly QA"}).text
    assert 'id="download"' not in qa_page and 'id="legal-hold"' not in qa_page
    assert qa.post(f"{url}/legal-hold", data=form | {"reason": "court order"}).status_code == 403
    agent = console.logged_in("agent7")  # the agent's own call: play, never export
    own = agent.get(url, params={"reason": "my own call"}).text
    assert "<audio" in own and 'id="download"' not in own and "download=true" not in own
    assert agent.get(audio, params={"reason": "mine", "download": "true"}).status_code == 403
    assert agent.get(audio, params={"reason": "mine"}).status_code == 200
