"""The supervisor asks the children that write no heartbeat (the API, the SIP front)
whether they answer, and restarts one that stopped: never one that is still starting."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.cli.supervisor import HANG_AFTER_S, Child, Supervisor
from api.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _sleep(_settings: Settings) -> None:
    time.sleep(120)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Supervisor, Child, list[bool], Clock]]:
    answers: list[bool] = []
    child = Child("api", _sleep, probe=lambda _settings: answers.pop(0))
    clock = Clock()
    settings = Settings(data_dir=tmp_path / "data")
    supervisor = Supervisor(settings, [child], monotonic=clock)
    supervisor._start(child)
    yield supervisor, child, answers, clock
    assert child.process is not None
    child.process.kill()
    child.process.join(5)


def _look(supervisor: Supervisor, clock: Clock, answer: bool, answers: list[bool]) -> None:
    answers.append(answer)
    clock.now += 2.0
    supervisor._kill_unanswering()


def test_a_child_still_starting_is_never_killed_for_not_answering(
    world: tuple[Supervisor, Child, list[bool], Clock],
) -> None:
    supervisor, child, answers, clock = world
    for _ in range(30):  # a minute without a first answer: a slow import, not a hang
        _look(supervisor, clock, False, answers)
    assert child.process is not None and child.process.is_alive()


def test_a_child_that_answered_and_then_stops_is_killed_after_the_hang_limit(
    world: tuple[Supervisor, Child, list[bool], Clock], caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, child, answers, clock = world
    _look(supervisor, clock, True, answers)
    silent = 0.0
    with caplog.at_level(logging.ERROR, logger="api.cli.supervisor"):
        while child.process is not None and child.process.is_alive():
            _look(supervisor, clock, False, answers)
            silent += 2.0
            assert silent <= HANG_AFTER_S + 2.0, "a hung child outlived the limit"
    assert silent >= HANG_AFTER_S, "killed before the limit"
    assert [r.getMessage() for r in caplog.records if "stopped answering" in r.getMessage()]
    assert child.process is not None and child.process.exitcode is not None


def test_a_child_that_answers_again_in_time_is_left_alone(
    world: tuple[Supervisor, Child, list[bool], Clock],
) -> None:
    supervisor, child, answers, clock = world
    _look(supervisor, clock, True, answers)
    for _ in range(3):  # 6 s without an answer (a long garbage collection, say)
        _look(supervisor, clock, False, answers)
    _look(supervisor, clock, True, answers)
    for _ in range(3):
        _look(supervisor, clock, False, answers)
    assert child.process is not None and child.process.is_alive()
