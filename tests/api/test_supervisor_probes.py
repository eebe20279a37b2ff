"""The supervisor asks the children that write no heartbeat (the API, the SIP front)
whether they answer, and restarts one that stopped: never one that is still starting.
The embedded SeaweedFS is asked with an S3 request; a restart that comes back wedged
is replaced soon, not after the long grace a slow first start would need."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from api.cli.supervisor import _S3_START_GRACE_S, HANG_AFTER_S, Child, S3Keeper, Supervisor
from api.settings import Settings
from recording.embedded_s3 import EmbeddedS3


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


def _tend_until(
    keeper: S3Keeper, clock: Clock, done: Callable[[], bool], limit_s: float, real: bool = False
) -> None:
    """Tend as the supervisor's loop does, the clock running as fast as the probes allow; or,
    `real`, at the wall clock's pace, for what depends on SeaweedFS's own start time (which a
    loaded machine stretches to seconds: 15 fast ticks would call it hung)."""
    start = clock.now
    while not done():
        assert clock.now - start < limit_s, f"not within {limit_s:.0f} s (on the keeper's clock)"
        began = time.monotonic()
        keeper.tend()
        time.sleep(0.25 if real else 0.05)
        clock.now += time.monotonic() - began if real else 2.0


def test_a_restarted_s3_that_never_answers_is_replaced_long_before_the_first_start_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A SeaweedFS that comes back wedged (frozen here) is not given a minute and a half:
    the first restart gets `_S3_START_GRACE_S`, and each one after it twice as long."""
    s3 = EmbeddedS3(tmp_path / "s3").start()
    clock = Clock()
    keeper = S3Keeper(s3, monotonic=clock)
    try:
        os.killpg(s3.pid or 0, signal.SIGKILL)
        died = s3.pid
        _tend_until(keeper, clock, lambda: s3.pid != died and s3.alive(), 10)
        wedged = psutil.Process(s3.pid or 0)
        wedged.suspend()  # it never answers after this start
        started = clock.now
        with caplog.at_level(logging.ERROR, logger="api.cli.supervisor"):
            _tend_until(keeper, clock, lambda: not psutil.pid_exists(wedged.pid), 60)
        took = clock.now - started
        assert _S3_START_GRACE_S <= took < _S3_START_GRACE_S + 10, took
        (killed,) = [r for r in caplog.records if "has not answered for" in r.getMessage()]
        # Why the last probe failed (refused while frozen before listening, or timed out).
        assert killed.__dict__["reason"] in {"NewConnectionError", "ReadTimeoutError"}
        assert killed.__dict__["restarts"] == 2
        # The next start in a row gets twice as long before it counts as hung.
        assert keeper._start_grace() == 2 * _S3_START_GRACE_S
        # A healthy start after it answers within its (doubled) grace, on a real clock.
        _tend_until(keeper, clock, lambda: s3.alive() and s3.answers(), 2 * _S3_START_GRACE_S, True)
    finally:
        s3.stop()
