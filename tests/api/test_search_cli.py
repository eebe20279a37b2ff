"""`dialguard transcripts search` prints what was said as plain text, JSON or not."""

from __future__ import annotations

import json

from sqlalchemy.engine import Engine

from recording.db.engine import session_factory
from tests.factories import add_recording, add_transcript
from tests.helpers import dialguard

SAID = 'Tom & Jerry\'s <b>offer</b>: pay 500 "today"'


def test_search_prints_plain_text_not_html(
    engine: Engine, database_url: str, dialguard_env: dict[str, str]
) -> None:
    with session_factory(engine)() as session:
        recording = add_recording(session)
        add_transcript(session, recording.id, [("debtor", 3.0, SAID)])
    env = dialguard_env | {"DIALGUARD_DATABASE_URL": database_url}

    as_json = dialguard(["transcripts", "search", "offer", "--json"], env)
    assert as_json.returncode == 0, as_json.stderr
    (hit,) = json.loads(as_json.stdout)["hits"]
    assert hit["snippet"] == SAID  # no &amp;, no &lt;b&gt;, no <mark>
    assert (hit["recording_id"], hit["speaker"], hit["start"]) == (recording.id, "debtor", 3.0)

    as_lines = dialguard(["transcripts", "search", "offer"], env)
    assert as_lines.returncode == 0, as_lines.stderr
    assert as_lines.stdout.rstrip().endswith(f"debtor agent7: {SAID}")
    assert "&amp;" not in as_lines.stdout and "<mark>" not in as_lines.stdout
