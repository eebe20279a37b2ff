"""The shipped packs against the labelled development corpus: precision and recall per category.

The corpus (tests/data/qa/cn, tests/data/qa/en) holds violations and the
near-misses a keyword matcher gets wrong: negations, the debtor's own words,
quoted and reported speech, ASR homophones, lawful statements of the legal
process. A pack change that flags one more violation by flagging lawful
sentences too shows up here as lost precision.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from qa_scoring.errors import QaError
from qa_scoring.eval import EvalReport, evaluate
from qa_scoring.pack import RuleKind, load_pack
from tests.helpers import dialguard

CORPUS = Path(__file__).parents[1] / "data" / "qa"
FLOOR = 0.9
MIN_SUPPORT = 3


@pytest.fixture(scope="module", params=[("cn", "cn-collections"), ("en", "en-collections")])
def report(request: pytest.FixtureRequest) -> EvalReport:
    folder, pack = request.param
    return evaluate(CORPUS / folder, pack)


def test_every_category_is_precise_and_complete(report: EvalReport) -> None:
    low = {
        name: (round(score.precision, 2), round(score.recall, 2))
        for name, score in report.categories.items()
        if score.precision < FLOOR or score.recall < FLOOR
    }
    assert not low, f"{low}\n{report.table()}\n" + "\n".join(report.mistakes)


def test_every_category_is_measured(report: EvalReport) -> None:
    """A 1.0 over one example proves nothing: each category has real positives."""
    pack = load_pack(report.pack)
    assert set(report.categories) == {r.category for r in pack.rules}
    thin = {c: s.support for c, s in report.categories.items() if s.support < MIN_SUPPORT}
    assert not thin


def test_corpus_size_and_near_misses() -> None:
    for folder, least in (("cn", 40), ("en", 30)):
        labels = yaml.safe_load((CORPUS / folder / "labels.yaml").read_text(encoding="utf-8"))
        near_misses = [name for name, label in labels.items() if not label["flags"]]
        assert len(labels) >= least
        assert len(near_misses) >= least // 2


def test_corpus_files_are_transcribe_json() -> None:
    for path in sorted(CORPUS.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert set(data) == {"language", "duration", "model", "segments"}, path
        for segment in data["segments"]:
            assert {"start", "end", "speaker", "text", "confidence"} <= set(segment), path


def test_required_items_are_measured_as_missing(report: EvalReport) -> None:
    pack = load_pack(report.pack)
    required = {r.category for r in pack.rules if r.kind is RuleKind.REQUIRED}
    assert {c for c, s in report.categories.items() if s.required} == required
    assert "(missing)" in report.table()


def copy_corpus(tmp_path: Path) -> Path:
    target = tmp_path / "cn"
    shutil.copytree(CORPUS / "cn", target)
    return target


def test_unlabelled_example_is_refused(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path)
    shutil.copy(corpus / "c001-compliant-call.json", corpus / "z999-new.json")
    with pytest.raises(QaError, match=r"no labels for z999-new\.json"):
        evaluate(corpus, "cn-collections")


def test_label_with_unknown_category_is_refused(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path)
    labels = corpus / "labels.yaml"
    text = labels.read_text(encoding="utf-8")
    labels.write_text(text.replace("flags: [threat]", "flags: [threats]", 1), encoding="utf-8")
    with pytest.raises(QaError, match="not in pack 'cn-collections': threats"):
        evaluate(corpus, "cn-collections")


def test_a_wrong_label_shows_as_a_mistake(tmp_path: Path) -> None:
    corpus = copy_corpus(tmp_path)
    labels = corpus / "labels.yaml"
    text = labels.read_text(encoding="utf-8")
    old = "c090-waive-interest.json:\n  flags: [false-promise]"
    assert old in text
    labels.write_text(text.replace(old, "c090-waive-interest.json:\n  flags: []"), encoding="utf-8")
    report = evaluate(corpus, "cn-collections")
    assert report.categories["false-promise"].fp == 1
    assert "c090-waive-interest.json: unexpected flag false-promise" in report.mistakes


def test_recordings_are_not_scored_without_a_recogniser(tmp_path: Path) -> None:
    corpus = tmp_path / "audio"
    corpus.mkdir()
    shutil.copy(CORPUS / "en_audio" / "e010-arrest.ogg", corpus)
    (corpus / "labels.yaml").write_text("e010-arrest.ogg:\n  flags: [threat]\n", encoding="utf-8")
    with pytest.raises(QaError, match="holds recordings and no speech recogniser"):
        evaluate(corpus, "en-collections")
    shutil.copy(CORPUS / "en_audio" / "e012-jail.ogg", corpus)
    with pytest.raises(QaError, match=r"no labels for e012-jail\.ogg"):
        evaluate(corpus, "en-collections")


def test_cli_json_on_transcripts_loads_no_model(dialguard_env: dict[str, str]) -> None:
    """A transcript corpus is scored as it is: no Whisper model is needed, or loaded."""
    env = {**dialguard_env, "DIALGUARD_WHISPER_MODEL": "/nonexistent/model"}
    args = ["qa", "eval", str(CORPUS / "cn"), "--pack", "cn-collections", "--json"]
    result = dialguard(args, env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pack"] == "cn-collections" and report["examples"] >= 40
    threat = report["categories"]["threat"]
    assert threat["precision"] >= FLOOR and threat["recall"] >= FLOOR and threat["support"] >= 3
