"""After the call: recordings spooled for as long as the call's client requires, and a
killed worker's leftovers stored, or kept when they cannot be.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from dialer.booking import store_leftover, store_recording
from dialer.debtors import DebtorFacts
from dialer.sip.salvage import salvage
from recording.db.engine import as_utc
from tests.audio import tone, write_wav
from tests.dialer.running import Parts, recordings


def test_salvage_keeps_what_it_cannot_store(parts: Parts, engine: Engine) -> None:
    parts.calls.mkdir(parents=True)
    write_wav(parts.calls / "c1-agent.wav", [tone(1.0, 440)])
    (parts.calls / "c1.json").write_text('{"call_id": "c1", "agent": "a7", "started_at": 1.0}')

    def broken(_: Any) -> None:
        raise OSError("disk full")

    assert salvage(parts.calls, broken) == 0
    assert sorted(p.name for p in parts.calls.iterdir()) == ["c1.json", "c1.wav"]
    site = parts.site()
    assert salvage(parts.calls, store_leftover(site)) == 1
    [rec] = recordings(engine)
    assert (rec.call_id, rec.agent, rec.recorded_at.year) == ("c1", "a7", 1970)
    assert list(parts.calls.iterdir()) == []


def test_a_clients_call_is_kept_as_long_as_that_client_requires(
    parts: Parts, engine: Engine, tmp_path: Path
) -> None:
    """DIALGUARD_CLIENT_RETENTION: bank-b's calls are locked for three years, others for two."""
    site = dataclasses.replace(parts.site(), client_retention={"bank-b": 1095})
    started = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    for call_id, client in (("c-b", "bank-b"), ("c-a", "bank-a"), ("c-none", None)):
        wav = write_wav(tmp_path / f"{call_id}.wav", [tone(2, 440), tone(2, 660)])
        debtor = DebtorFacts("D-1", client) if client else None
        store_recording(site, wav, call_id, "agent1", started, debtor=debtor)
    kept = {r.call_id: (as_utc(r.retain_until) - started).days for r in recordings(engine)}
    assert kept == {"c-b": 1095, "c-a": 730, "c-none": 730}
