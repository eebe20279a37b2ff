"""It learns from reviewers (#16, Must 2 and 3): flags sort by score, a reviewed flag's sentence
becomes an example of a NEW pack version, audited, compared before activation, and a later
call is judged by it (the real model, loaded once for the module)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.web.services import Services
from qa_scoring import pack_store
from qa_scoring.embedding import E5Embedder
from qa_scoring.eval import compare_table, evaluate
from qa_scoring.models import QaFlag
from qa_scoring.pack import load_pack
from qa_scoring.store import score_transcript
from tests.api.console_site import Console
from tests.api.test_routes_qa import QA, THREAT, Desk
from tests.factories import T0, add_recording, add_transcript
from transcribe.models import TranscriptRow

CONFIRMED = "再不还就让你坐牢"  # a phrase rule's intimidation, confirmed by a reviewer
# The same act in words no rule and no example has; the shipped pack reads it as a
# threat (of what, it cannot tell), the reviewer's example as the jail it means.
PARAPHRASE = "再不还就让你去里面坐坐"


@pytest.fixture(scope="module")
def embedder() -> Iterator[E5Embedder]:
    yield E5Embedder()  # loaded once for the module, on its first sentence


@pytest.fixture
def desk(services: Services, engine: Engine) -> Desk:
    return Desk(services, engine)


def _later_call(desk: Desk, text: str, embedder: E5Embedder) -> list[QaFlag]:
    """A new call scored as the QA worker does: the active pack, read before the batch."""
    with desk.services.sessions() as session:
        recording = add_recording(session, agent="agent8", recorded_at=T0, client_id="bank-a")
        add_transcript(session, recording.id, [("agent", 3.0, text)])
        tid = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == recording.id)
        )
        assert tid is not None
    pack = pack_store.active_pack_source(desk.services.sessions, desk.services.qa_pack)()
    with desk.services.sessions() as session:
        result = score_transcript(session, tid, pack, desk.now, embedder=embedder)
        return list(session.scalars(select(QaFlag).where(QaFlag.result_id == result.id)))


def _spread(services: Services, recording_id: str) -> None:
    """Words heard less surely later in the call: the scores differ (the factory's are equal)."""
    with services.sessions() as session:
        for flag in session.scalars(select(QaFlag).where(QaFlag.recording_id == recording_id)):
            flag.score = round(0.95 - flag.start_s / 100, 4)
        session.commit()


def test_flags_carry_a_score_and_sort_by_it(desk: Desk) -> None:
    lines = [*THREAT, ("agent", 20.0, "你这个废物，欠钱不还还有脸接电话")]
    rid = desk.scored_call(lines)
    stored = desk.call("GET", f"{QA}/calls/{rid}", "qa1").json()["flags"]
    assert {f["score"] for f in stored} == {0.9}  # the factory's words are heard at 0.9
    _spread(desk.services, rid)
    by_time = desk.call("GET", f"{QA}/calls/{rid}", "qa1").json()["flags"]
    assert len(by_time) >= 2
    assert [f["start"] for f in by_time] == sorted(f["start"] for f in by_time)
    assert all(isinstance(f["score"], float) and 0 < f["score"] <= 1 for f in by_time)
    surest = desk.call("GET", f"{QA}/calls/{rid}?sort=-score", "qa1").json()["flags"]
    least = desk.call("GET", f"{QA}/calls/{rid}?sort=score", "qa1").json()["flags"]
    assert [f["score"] for f in surest] == sorted((f["score"] for f in by_time), reverse=True)
    assert [f["score"] for f in least] == sorted(f["score"] for f in by_time)
    assert desk.call("GET", f"{QA}/calls/{rid}?sort=rule", "qa1").status_code == 422


def test_flags_without_a_score_sort_last(desk: Desk) -> None:
    rid = desk.scored_call([*THREAT, ("agent", 20.0, "你这个废物，欠钱不还还有脸接电话")])
    with desk.services.sessions() as session:
        first = session.scalar(select(QaFlag).where(QaFlag.recording_id == rid).limit(1))
        assert first is not None
        first.score = None  # as stored before migration 0026 where the JSON did not match
        session.commit()
        unscored = first.id
    for sort in ("score", "-score"):
        flags = desk.call("GET", f"{QA}/calls/{rid}?sort={sort}", "qa1").json()["flags"]
        assert flags[-1]["id"] == unscored and flags[-1]["score"] is None


def test_only_admins_add_examples_and_only_from_reviewed_flags(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    url = f"{QA}/packs/examples"
    body = {"flags": [flag["id"]], "as": "intimidation"}
    for who in ("qa1", "sup1", "agent7", "aud-a"):
        assert desk.call("POST", url, who, body).status_code == 403
    open_ = desk.call("POST", url, "admin1", body)
    assert open_.status_code == 409 and "only a confirmed or upheld flag" in open_.json()["detail"]
    desk.call("POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "confirm"})
    wrong = desk.call("POST", url, "admin1", {"flags": [flag["id"]], "as": "insult"})
    assert wrong.status_code == 409 and "confirmed as intimidation" in wrong.json()["detail"]
    benign = desk.call("POST", url, "admin1", {"flags": [flag["id"]], "as": "benign"})
    assert benign.status_code == 409
    missing = desk.call("POST", url, "admin1", {"flags": [999999], "as": "intimidation"})
    assert missing.status_code == 409 and "no flag 999999" in missing.json()["detail"]
    assert [e.action for e in desk.audit()] == ["qa-flag-confirm"]  # refusals store nothing
    with desk.services.sessions() as session:
        assert pack_store.choices(session)[-1].origin == "shipped"


def test_a_dismissed_flag_becomes_a_benign_sentence_of_a_new_version(desk: Desk) -> None:
    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    desk.call(
        "POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "dismiss", "comment": "quote"}
    )
    made = desk.call(
        "POST", f"{QA}/packs/examples", "admin1", {"flags": [flag["id"]], "as": "benign"}
    )
    assert made.status_code == 201, made.text
    out = made.json()
    shipped = load_pack("cn-collections")
    assert out["name"] == "cn-collections" and out["version"] != shipped.version
    assert out["base"] == "shipped:cn-collections"
    with desk.services.sessions() as session:
        new = pack_store.load_ref(session, out["ref"])
        assert pack_store.active_ref(session, desk.services.qa_pack) == "shipped:cn-collections"
    assert new.semantic is not None and shipped.semantic is not None
    assert new.semantic.benign == (*shipped.semantic.benign, CONFIRMED)
    assert new.semantic.categories == shipped.semantic.categories
    again = desk.call(
        "POST",
        f"{QA}/packs/examples",
        "admin1",
        {"flags": [flag["id"]], "as": "benign", "base": out["ref"]},
    )
    assert again.status_code == 409 and "already in" in again.json()["detail"]


def test_a_confirmed_example_changes_a_later_result(desk: Desk, embedder: E5Embedder) -> None:
    """Issue 16, done when: 'a reviewer's example changing a later result'."""
    before = _later_call(desk, PARAPHRASE, embedder)
    assert not [f for f in before if f.category == "intimidation"]

    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    assert flag["text"] == CONFIRMED
    desk.call("POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "confirm"})
    desk.now += timedelta(minutes=5)
    made = desk.call(
        "POST", f"{QA}/packs/examples", "admin1", {"flags": [flag["id"]], "as": "intimidation"}
    )
    assert made.status_code == 201, made.text
    ref = made.json()["ref"]
    entry = desk.audit()[-1]
    assert (entry.actor, entry.action) == ("admin1", "qa-pack-examples-added")
    detail = json.loads(entry.detail)
    assert detail["ref"] == ref and detail["base"] == "shipped:cn-collections"
    assert detail["added"] == [{"flag": flag["id"], "to": "intimidation"}]

    # Not active yet: the same paraphrase in another call is still not flagged.
    assert not [f for f in _later_call(desk, PARAPHRASE, embedder) if f.category == "intimidation"]

    with desk.services.sessions() as session:
        candidate = pack_store.load_ref(session, ref)
    assert candidate.semantic is not None
    assert CONFIRMED in candidate.semantic.categories["intimidation"].examples

    with desk.services.sessions() as session:
        pack_store.choose(session, ref, "admin1", desk.now)
        session.commit()
    after = _later_call(desk, PARAPHRASE, embedder)
    (found,) = [f for f in after if f.category == "intimidation"]
    assert found.rule == "semantic-intimidation" and found.needs_listening
    threshold = candidate.semantic.categories["intimidation"].threshold
    assert found.score is not None and found.score >= threshold  # a probability since #16's CV


def test_eval_compares_the_active_pack_and_the_candidate(
    desk: Desk, embedder: E5Embedder, tmp_path: Path
) -> None:
    """What `dialguard qa eval FILE --semantic --pack active --candidate REF` prints."""
    rid = desk.scored_call(THREAT)
    flag = desk.threat_flag(rid)
    desk.call("POST", f"{QA}/flags/{flag['id']}/review", "qa1", {"action": "confirm"})
    ref = desk.call(
        "POST", f"{QA}/packs/examples", "admin1", {"flags": [flag["id"]], "as": "intimidation"}
    ).json()["ref"]
    corpus = tmp_path / "sentences.yaml"
    corpus.write_text(
        f"- text: {PARAPHRASE}\n  flags: [intimidation]\n"
        "- text: 按照合同约定，逾期会产生罚息\n  flags: []\n",
        encoding="utf-8",
    )
    with desk.services.sessions() as session:
        active = pack_store.load_ref(session, "shipped:cn-collections")
        candidate = pack_store.load_ref(session, ref)
    before = evaluate(corpus, active, embedder=embedder)
    after = evaluate(corpus, candidate, embedder=embedder)
    assert before.categories["intimidation"].recall == 0.0
    assert after.categories["intimidation"].recall == 1.0
    table = compare_table(before, after, "active", ref)
    line = next(x for x in table.splitlines() if x.startswith("intimidation"))
    assert "+1.00" in line
    fixed = table.split(f"right with {ref}, wrong with active:")[1].split("wrong with")[0]
    assert f"{PARAPHRASE}: flag intimidation not reported" in fixed
    assert table.rstrip().endswith(f"wrong with {ref}, right with active: 0")


def test_console_call_page_sorts_flags_by_score(console: Console) -> None:
    with console.services.sessions() as session:
        call = add_recording(session, agent="agent7", client_id="bank-a")
        add_transcript(
            session,
            call.id,
            [("agent", 10.0, CONFIRMED), ("agent", 20.0, "你这个废物，欠钱不还还有脸接电话")],
        )
        tid = session.scalar(select(TranscriptRow.id).where(TranscriptRow.recording_id == call.id))
        assert tid is not None
        score_transcript(session, tid, "cn-collections", T0)
    _spread(console.services, call.id)
    with console.services.sessions() as session:
        scores = {f.start_s: f.score or 0.0 for f in session.scalars(select(QaFlag))}
    assert len(set(scores.values())) >= 2
    qa = console.logged_in("qa1")
    for sort, reverse in (("-score", True), ("score", False)):
        page = qa.get(f"/calls/{call.id}", params={"sort": sort, "reason": "weekly QA"}).text
        shown = [float(s) for s in re.findall(r'<td class="score">([0-9.]+)</td>', page)]
        assert shown == sorted(scores.values(), reverse=reverse)
    page = qa.get(f"/calls/{call.id}", params={"reason": "weekly QA"}).text
    assert "sort=-score" in page and "reason=weekly+QA" in page
