"""The English pack measured through speech recognition: the development corpus as audio.

tests/data/qa/en_audio holds the English scripts of tests/data/qa/en spoken by
espeak-ng (agent left, debtor right; `python -m tests.qa_corpus` rebuilds it).
`dialguard qa eval` transcribes each call with the configured Whisper model,
the same path as `qa check FILE.ogg`, and scores the transcript, so the figures
include what the recogniser mishears, which the transcript corpus cannot show.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from qa_scoring.check import check_transcript, split_turns
from qa_scoring.pack import load_pack
from qa_scoring.rules import TimedWord, Utterance
from tests.helpers import dialguard
from tests.qa_corpus import AUDIO, LABELS, SCRIPTS, script_digest

FLOOR = 0.9
MIN_SUPPORT = 3
MAX_BYTES = 2_000_000


def test_audio_corpus_is_the_scripts_spoken() -> None:
    """Every script has its audio, made from the script as it is now, and the same labels."""
    scripts = yaml.safe_load((SCRIPTS / LABELS).read_text(encoding="utf-8"))
    audio = yaml.safe_load((AUDIO / LABELS).read_text(encoding="utf-8"))
    assert sorted(audio) == sorted(f"{Path(name).stem}.ogg" for name in scripts)
    stale = []
    for name, label in scripts.items():
        spoken = audio[f"{Path(name).stem}.ogg"]
        assert {k: v for k, v in spoken.items() if k != "script"} == label, name
        if spoken["script"] != script_digest(SCRIPTS / name):
            stale.append(name)
    assert not stale, f"edited since the audio was made: {stale}; run python -m tests.qa_corpus"
    files = sorted(AUDIO.glob("*.ogg"))
    assert len(files) == len(scripts) >= 40
    assert sum(f.stat().st_size for f in files) < MAX_BYTES


# --- what the recogniser does to a call, and how the checks read it -------------------------


def _said(speaker: str, *words: tuple[float, str]) -> Utterance:
    """A Whisper segment: text joined from its words, timed from the first to the last."""
    timed = tuple(TimedWord(at, at + 0.3, word, 0.9) for at, word in words)
    text = " ".join(word for _, word in words)
    return Utterance(timed[0].start, timed[-1].end, speaker, text, 0.9, timed)


def _spoken(speaker: str, text: str, *starts: float) -> Utterance:
    """`_said`, with the words as one text and each word's start second."""
    return _said(speaker, *zip(starts, text.split(), strict=True))


# The debtor's answer and, 20 s later after the agent spoke, the next turn: one Whisper segment.
OLIVIA = _spoken(
    "debtor", "This is Olivia. Let's do a plan.", 3.6, 3.9, 4.1, 25.3, 25.6, 25.8, 26.0
)


@pytest.mark.parametrize(
    ("segment", "turns"),
    [
        (  # the debtor's answer and, after the agent spoke, the next turn: two turns
            OLIVIA,
            [(3.6, "This is Olivia."), (25.3, "Let's do a plan.")],
        ),
        (  # pauses inside one turn stay in it
            _spoken("agent", "Your balance is overdue.", 1.0, 1.3, 2.5, 2.8),
            [(1.0, "Your balance is overdue.")],
        ),
    ],
)
def test_a_segment_is_cut_into_turns_where_its_words_fall_silent(
    segment: Utterance, turns: list[tuple[float, str]]
) -> None:
    assert [(t.start, t.text) for t in split_turns(segment)] == turns


def test_a_segment_whose_words_are_not_its_text_is_kept_whole() -> None:
    segment = _said("debtor", (1.0, "Yes."), (9.0, "Fine."))
    edited = Utterance(segment.start, segment.end, "debtor", "Yes, [redacted]", 0.9, segment.words)
    assert split_turns(edited) == [edited]


def _call(*segments: Utterance) -> dict[str, Any]:
    return {
        "language": "en",
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "speaker": s.speaker,
                "text": s.text,
                "words": [
                    {"start": w.start, "end": w.end, "word": w.word, "probability": w.probability}
                    for w in s.words
                ],
            }
            for s in segments
        ],
    }


def test_a_confirmation_glued_to_a_later_turn_still_verifies_the_debtor() -> None:
    """Whisper returned "This is Olivia." and a sentence 20 s later as one segment."""
    call = _call(
        _spoken(
            "agent", "Hi, I'm trying to reach Olivia Turner.", 0.1, 0.4, 0.6, 0.9, 1.1, 1.4, 1.8
        ),
        OLIVIA,
        _spoken("agent", "Your account is overdue.", 6.0, 6.3, 6.7, 7.0),
    )
    assert check_transcript(call, "en-collections").flags == ()


@pytest.mark.parametrize(
    ("sentence", "overdue_stated"),
    [
        ("Your account is 90 days past 2, with 2300 dollars outstanding.", True),
        ("You have a past two balance on $3,100.", True),
        ("Your account is past due.", True),
        ("I have called you three times in the past two weeks.", False),
        ("Call me back at half past two.", False),
        ("The office opens at past 2:30.", False),
    ],
)
def test_past_due_heard_as_past_two(sentence: str, overdue_stated: bool) -> None:
    """Whisper's usual homophone for "past due", and the sentences it must not be read into."""
    words = [(1.0 + 0.3 * i, w) for i, w in enumerate(sentence.split())]
    result = check_transcript(_call(_said("agent", *words)), "en-collections")
    assert ("overdue-facts" not in {m.category for m in result.missing}) is overdue_stated


def _table(report: dict[str, Any]) -> str:
    lines = [f"{'category':<26} {'precision':>9} {'recall':>7} {'support':>7}"]
    for name, s in report["categories"].items():
        label = f"{name} (missing)" if s["required"] else name
        lines.append(f"{label:<26} {s['precision']:>9.2f} {s['recall']:>7.2f} {s['support']:>7}")
    return "\n".join(lines)


@pytest.mark.slow
def test_english_corpus_through_whisper(
    dialguard_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = dialguard(
        ["qa", "eval", str(AUDIO), "--pack", "en-collections", "--json"],
        dialguard_env,
        timeout=1800,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    table = _table(report)
    with capsys.disabled():
        model = dialguard_env.get("DIALGUARD_WHISPER_MODEL", "base")
        print(f"\nen-collections on {report['examples']} spoken calls (Whisper {model}):")
        print(table)
        print("\n".join(f"  {m}" for m in report["mistakes"]))
    pack = load_pack("en-collections")
    assert set(report["categories"]) == {r.category for r in pack.rules}
    low = {
        name: (s["precision"], s["recall"])
        for name, s in report["categories"].items()
        if s["precision"] < FLOOR or s["recall"] < FLOOR
    }
    assert not low, f"{low}\n{table}\n" + "\n".join(report["mistakes"])
    thin = {n: s["support"] for n, s in report["categories"].items() if s["support"] < MIN_SUPPORT}
    assert not thin
