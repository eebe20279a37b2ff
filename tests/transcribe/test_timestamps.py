"""Times a QA flag seeks to: every turn and word where it is spoken in the recording.

Calls are spoken by espeak-ng with silences of known length between turns
(0.5 s replies, gaps over 5 s, one of 12 s), so each turn's true onset is known
to the 10 ms frame (tests.audio.timed_call), and transcribed by real
faster-whisper `base`, each call once per decoding mode.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.audio import TIMED_CALLS, Phrase, Turn, timed_call
from transcribe.engine import BatchedModel, load_model
from transcribe.model_store import resolve_model
from transcribe.result import Segment, Transcript
from transcribe.timing import PAD, WINDOW, speech_map
from transcribe.transcriber import transcribe_recording

#: How far a start may be from where the speech starts (issue 15): a flag seeks there.
TOLERANCE = 0.3

CASES = [(name, mode) for name in TIMED_CALLS for mode in ("batched", "sequential")]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_model(resolve_model("base", tmp_path_factory.mktemp("models")), "cpu")


@pytest.fixture(scope="module")
def transcribed(
    model: Any, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], tuple[list[Turn], Transcript]]:
    """Each call built and transcribed once, shared by every check on it."""
    results = {}
    for name, mode in CASES:
        folder = tmp_path_factory.mktemp(name)
        audio, truth = timed_call(folder / "call.wav", TIMED_CALLS[name])
        engine = BatchedModel(model, batch_size=4) if mode == "batched" else model
        results[name, mode] = (truth, transcribe_recording(engine, "base", audio, language="en"))
    return results


def _phrase_at(start: float, speaker: str, truth: list[Turn]) -> tuple[int, Phrase] | None:
    """The turn and phrase of this speaker that a time falls in, give or take the tolerance."""
    for i, turn in enumerate(truth):
        for phrase in turn.phrases:
            if turn.speaker == speaker and phrase.onset - TOLERANCE <= start <= phrase.end:
                return i, phrase
    return None


def _describe(segments: tuple[Segment, ...]) -> str:
    return "\n".join(f"{s.start:6.2f} {s.speaker.value:6} {s.text}" for s in segments)


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_every_word_starts_where_its_speaker_speaks(
    transcribed: dict[tuple[str, str], tuple[list[Turn], Transcript]], name: str, mode: str
) -> None:
    truth, result = transcribed[name, mode]
    words = [(w, s.speaker.value) for s in result.segments for w in s.words]
    assert words, "nothing was transcribed"
    for word, speaker in words:
        found = _phrase_at(word.start, speaker, truth)
        assert found is not None, (
            f"{speaker} word {word.word!r} at {word.start} s lies in silence or in the other "
            f"party's turn\n{_describe(result.segments)}"
        )
    for turn in truth:
        for phrase in turn.phrases:
            inside = [
                w.start
                for w, speaker in words
                if speaker == turn.speaker and phrase.onset - TOLERANCE <= w.start <= phrase.end
            ]
            assert inside, f"nothing heard of {phrase.text!r} at {phrase.onset} s"
            assert abs(min(inside) - phrase.onset) <= TOLERANCE, (
                f"{phrase.text!r} is spoken at {phrase.onset} s, its first word is placed "
                f"at {min(inside)} s\n{_describe(result.segments)}"
            )


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_each_turn_has_a_segment_starting_where_it_is_spoken(
    transcribed: dict[tuple[str, str], tuple[list[Turn], Transcript]], name: str, mode: str
) -> None:
    truth, result = transcribed[name, mode]
    for turn in truth:
        starts = [
            s.start
            for s in result.segments
            if s.speaker.value == turn.speaker and turn.onset - TOLERANCE <= s.start <= turn.end
        ]
        assert starts, f"no segment of {turn.text!r}\n{_describe(result.segments)}"
        assert abs(min(starts) - turn.onset) <= TOLERANCE, (
            f"{turn.text!r} is spoken at {turn.onset} s, its segment starts at {min(starts)} s"
            f"\n{_describe(result.segments)}"
        )


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_merged_transcript_reads_in_the_order_spoken(
    transcribed: dict[tuple[str, str], tuple[list[Turn], Transcript]], name: str, mode: str
) -> None:
    truth, result = transcribed[name, mode]
    order = []
    for segment in result.segments:
        found = _phrase_at(segment.start, segment.speaker.value, truth)
        assert found is not None, f"segment {segment.text!r} at {segment.start} s is misplaced"
        order.append(found[0])
    assert order == sorted(order), f"turns out of order: {order}\n{_describe(result.segments)}"
    assert set(order) == set(range(len(truth))), "a turn is missing from the transcript"
    for i, turn in enumerate(truth):  # the right words under the right speaker
        heard = " ".join(s.text for s, t in zip(result.segments, order, strict=True) if t == i)
        spoken = set(re.findall(r"[a-z]{4,}", turn.text.lower()))
        assert spoken & set(re.findall(r"[a-z]{4,}", heard.lower())), (
            f"{turn.speaker} said {turn.text!r}, the transcript has {heard!r}"
        )


def test_speech_is_decoded_in_whole_pieces_no_window_longer_than_whisper_reads() -> None:
    """The batched pipeline cuts what it is given every 30 s, through words, unless it is
    given windows; 70 s of talk with short pauses must come back as windows of whole
    pieces that cover all of it."""
    talk = [(0.5 + 2.2 * i, 2.2 * i + 2.3) for i in range(32)]  # 1.8 s phrases, 0.4 s pauses
    speech = speech_map(talk, 75.0)
    windows = speech.windows()
    assert all(w["end"] - w["start"] <= WINDOW for w in windows)
    assert sum(p.end - p.start for p in speech.pieces) == pytest.approx(talk[-1][1] + PAD - 0.1)
    assert all(any(p.start <= s and e <= p.end for p in speech.pieces) for s, e in talk)


def test_a_word_stretched_back_over_a_removed_silence_stays_with_its_speech() -> None:
    """Whisper starts the first word after a pause where the pause starts; in the cut
    audio that pause is the padding of the piece before, seconds earlier in the call."""
    speech = speech_map([(1.0, 3.0), (20.0, 22.0)], 25.0)
    first, second = speech.pieces
    assert (first.start, second.start) == (1.0 - PAD, 20.0 - PAD)
    # "I" said at 20.0 s, decoded as starting at the end of the first piece's speech.
    cut_start = first.cut_end - PAD
    start, end = speech.place(cut_start, second.at + PAD + 0.2)
    assert start == pytest.approx(20.0) and end == pytest.approx(20.2)
