"""An INVITE flood at the Kamailio edge while 20 legitimate agents call: the share of their
calls set up (issue 13: at least 99%).

Conditions: the edge as `dialguard up` configures it (dialer/edge/config.py,
default bans) on 127.0.0.1 over a migrated SQLite database, in front of
`--workers` SIPp user agent servers standing in for dialer workers (the
flood must never reach a worker, so what is measured is the edge). The
harness is tests/dialer/edge/flood.py:

- **normal call rate**: `--agents` agents (20), each from its own address
  (127.0.0.10 up), each placing one call every `--call-every` seconds
  (2 s): 10 calls a second, far above a real floor of 20 people (one call
  each every 30 s or more is already busy). A call is the whole digest
  exchange with a `--hold` second talk and a BYE; agents retransmit an
  unanswered request as softphones do over UDP (0.5 s, doubling, up to 8 s).
- **the flood**: `--multiple` (10) times the normal rate of unauthenticated
  INVITEs with SDP (or `--method REGISTER`), from 1 source (127.0.0.100)
  and, in a second run with a fresh edge, from 50 sources
  (127.0.0.100-149) in turn; each request a fresh Call-ID, no challenge
  ever answered.
- `--one-address`: every agent from 127.0.0.10, as a floor behind one NAT
  address looks to the edge (one source for the flood ban).

Printed per run: calls attempted and set up, the share, why any failed,
retransmissions the agents needed, setup time p50/p99, the flood's requests
sent and what the edge answered, flood requests that reached a worker, the
bans in force, the edge's CPU (its process group, /proc) and the harness's
own CPU apart (this process: agents and flooders), and the load average.

Run: `python bench/edge_flood.py [--seconds 30] [--multiple 10] [--sources 1 50]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the tests' edge, agents and flood harness
sys.path.insert(0, str(BENCH))  # edge_harness, as a script sees it

from edge_harness import bench_parser, percentile, running_edge

from dialer.edge.config import EdgeBans
from tests.dialer.edge.flood import FloodPlan, FloodResult, run_flood


def report(result: FloodResult) -> None:
    plan = result.plan
    print(
        f"\nflood from {plan.sources} source(s): {plan.flood_rate:.0f} unauthenticated "
        f"{plan.method}s a second ({plan.multiple:g}x the normal rate), "
        f"{plan.flood_rate / plan.sources:.1f} a second from each source"
    )
    print(
        f"  legitimate calls: {result.set_up} of {result.attempted} set up "
        f"= {100 * result.share:.2f}% (needed: 99%)"
    )
    if result.failures:
        print("  failed: " + "; ".join(f"{why} ({n})" for why, n in result.failures.items()))
    print(
        f"  setup (first INVITE to 200, with the 407 round): p50 "
        f"{1000 * percentile(result.setup_s, 0.5):.1f} ms, p99 "
        f"{1000 * percentile(result.setup_s, 0.99):.1f} ms; "
        f"{result.retransmissions} legitimate requests retransmitted"
    )
    answered = sum(result.flood_answers.values())
    statuses = ", ".join(f"{n} x {s}" for s, n in sorted(result.flood_answers.items()))
    print(
        f"  flood: {result.flood_sent} sent, {answered} answered by the edge ({statuses or '-'}), "
        f"{result.flood_sent - answered} dropped; {result.flood_at_workers} reached a worker "
        f"(workers saw {result.worker_invites} INVITEs in all; an agent's INVITE that a "
        "worker leaves unanswered 2 s is passed to the next, so a slow moment counts twice)"
    )
    bans = ", ".join(
        f"{b.kind} {b.source}" + (f" account {b.account}" if b.account else "") for b in result.bans
    )
    print(f"  bans in force at the end: {bans or 'none'}; ban log lines: {len(result.ban_lines)}")
    print(
        f"  edge CPU {result.edge_cpu_s:.2f} s over {result.wall_s:.1f} s = "
        f"{100 * result.edge_cpu_s / result.wall_s:.1f}% of one core; harness (agents and "
        f"flooders, not counted) {100 * result.harness_cpu_s / result.wall_s:.0f}%; "
        f"load average {result.load[0]:.2f} before, {result.load[1]:.2f} after"
    )


def _plan(args: argparse.Namespace, sources: int) -> FloodPlan:
    """One run's plan: each FloodPlan field the command line names (its options share the
    plan's names), with this run's number of flood sources."""
    named = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(FloodPlan)
        if field.name != "sources" and hasattr(args, field.name)
    }
    return FloodPlan(sources=sources, **named)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument(
        "--call-every", dest="call_every_s", metavar="CALL_EVERY", type=float, default=2.0
    )
    parser.add_argument("--hold", dest="hold_s", metavar="HOLD", type=float, default=0.5)
    parser.add_argument("--multiple", type=float, default=10.0)
    parser.add_argument("--sources", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--method", choices=["INVITE", "REGISTER"], default="INVITE")
    parser.add_argument(
        "--one-address", action="store_true", help="all agents from 127.0.0.10 (behind NAT)"
    )
    args = parser.parse_args()
    bans = EdgeBans()
    print(
        f"conditions: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"load average {os.getloadavg()[0]:.2f} at start; Kamailio edge on 127.0.0.1 (UDP, "
        f"SQLite, default bans: flood = over {bans.flood_requests} requests in 2 s from one "
        f"source, banned {bans.flood_s} s) before {args.workers} SIPp stand-in workers"
    )
    print(
        f"normal call rate: {args.agents} agents x one call every {args.call_every_s:g} s = "
        f"{args.agents / args.call_every_s:g} calls a second ({args.hold_s:g} s talk each), "
        f"for {args.seconds:g} s per run; agents "
        + (
            "all from 127.0.0.10 (one floor behind NAT)"
            if args.one_address
            else "each from its own address"
        )
    )
    for sources in args.sources:
        plan = _plan(args, sources)
        with running_edge(args.workers, bans, prefix="edge-flood-") as edge:
            report(run_flood(edge, plan))


if __name__ == "__main__":
    main()
