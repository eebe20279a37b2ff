"""The dialer pool's size: the host's cores and memory, or the setting, as a table."""

from __future__ import annotations

import pytest

from dialer.pool import (
    MAX_WORKERS,
    RESERVED_MIB,
    WORKER_BUDGET_MIB,
    cgroup_room,
    mem_available,
    size_pool,
)

GIB = 2**30


@pytest.mark.parametrize(
    ("cores", "available", "requested", "workers", "calls"),
    [
        (2, 22 * GIB, 0, 50, 100),  # this machine: the cores limit (25 a core)
        (1, 22 * GIB, 0, 25, 50),
        (8, 128 * GIB, 0, 200, 400),
        (64, 512 * GIB, 0, MAX_WORKERS, 2 * MAX_WORKERS),  # the ceiling
        (16, 4 * GIB, 0, 32, 64),  # memory: (4 GiB less the 2.5 GiB reserve) / 48 MiB
        # exactly five workers' budgets left
        (2, (RESERVED_MIB + 5 * WORKER_BUDGET_MIB) * 2**20, 0, 5, 10),
        (8, 1 * GIB, 0, 1, 2),  # below the reserve: still one worker, no call is no product
        (4, None, 0, 100, 200),  # memory unknown: the cores decide
        (2, 22 * GIB, 4, 4, 8),  # the setting wins
        (2, 1 * GIB, 100, 100, 200),  # even beyond the host (with a warning)
    ],
)
def test_size(cores: int, available: int | None, requested: int, workers: int, calls: int) -> None:
    pool = size_pool(cores, available, requested)
    assert (pool.workers, pool.calls) == (workers, calls)


def test_what_the_size_rests_on_is_said() -> None:
    sized = size_pool(2, 22 * GIB)
    assert sized.describe() == (
        "50 workers = 100 calls: 2 cores (25 workers a core), 22.0 GiB available (room for 256)"
    )
    assert not sized.above_host
    chosen = size_pool(2, 22 * GIB, 80)
    assert chosen.describe() == (
        "80 workers = 160 calls: set by DIALGUARD_DIALER_WORKERS (this host: 2 cores, "
        "22.0 GiB available; auto would start 50)"
    )
    assert chosen.above_host
    assert size_pool(1, None, 1).describe().startswith("1 worker = 2 calls: set by")
    assert "memory unknown" in size_pool(1, None).describe()


@pytest.mark.parametrize(("cores", "requested"), [(0, 0), (2, -1), (2, MAX_WORKERS + 1)])
def test_impossible_input_is_refused(cores: int, requested: int) -> None:
    with pytest.raises(ValueError, match=r"core|pool"):
        size_pool(cores, GIB, requested)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "MemTotal:       24558032 kB\nMemFree: 1 kB\nMemAvailable:   21586948 kB\n",
            21586948 * 1024,
        ),
        ("MemTotal: 1 kB\n", None),  # kernels before 3.14 have no MemAvailable
        ("MemAvailable: lots\n", None),
        ("", None),
    ],
)
def test_meminfo(text: str, expected: int | None) -> None:
    assert mem_available(text) == expected


@pytest.mark.parametrize(
    ("limit", "current", "room"),
    [("max\n", "123\n", None), ("4294967296\n", "1073741824\n", 3 * GIB), ("10", "20", 0)],
)
def test_cgroup(limit: str, current: str, room: int | None) -> None:
    assert cgroup_room(limit, current) == room
