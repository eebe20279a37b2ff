"""What the edge benchmarks share: an edge started with its workers, and its CPU apart.

bench/edge_setup.py and bench/edge_flood.py start the edge as the edge tests
do (tests/dialer/edge/conftest.py: the edge `dialguard up` configures, SIPp
user agent servers standing in for the workers) and stop it all however the
run ends. They, and bench/edge_tls_cost.py, read the edge's CPU from its
process group apart from the harness's own; that part lives beside the flood
test's harness (tests/dialer/edge/flood.py), because the test asserts on the
same run the flood benchmark prints and tests do not import bench/. It is
named here again so that a benchmark has one place to import the edge from.

A script imports this as `edge_harness` (bench/ on `sys.path`, as
bench/edge_tls_cost.py imports `srtp_cost`) after putting the repository
root there too, for `tests.` and `dialer.`.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dialer.edge.config import EdgeBans
from tests.dialer.edge.conftest import Edge, start_edge_at
from tests.dialer.edge.flood import CpuSplit, group_pids, own_cpu_s

__all__ = [
    "CpuSplit",
    "bench_parser",
    "group_pids",
    "own_cpu_s",
    "percentile",
    "running_edge",
]


@contextmanager
def running_edge(workers: int, bans: EdgeBans, prefix: str | None = None) -> Iterator[Edge]:
    """An edge and `workers` SIPp workers in a fresh directory, all stopped on the way out.

    A run that fails (or is interrupted) would otherwise leave Kamailio and SIPp holding
    their ports, and the next run would measure beside them.
    """
    started: list[Edge] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            yield start_edge_at(Path(tmp), workers=workers, bans=bans, started=started)
        finally:
            for edge in started:
                edge.process.stop()
                for uas in edge.workers:
                    uas.stop()


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile by nearest rank; NaN for no values, so a report still prints."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line, described by the first line of its docstring."""
    return argparse.ArgumentParser(description=(doc or "").partition("\n")[0])
