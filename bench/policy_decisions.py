"""Call-policy decisions per second with 50,000 debtors' call history in the database.

Usage: python bench/policy_decisions.py [--debtors 50000] [--attempts 6]
                                        [--decisions 5000] [--backend sqlite|postgresql|both]
                                        [--reserve N] [--threads 1,8] [--contention 1,8,20]
                                        [--contended 2000]

Fills a fresh database (SQLite file, or a PostgreSQL database created and
dropped for the run at $DIALGUARD_TEST_PG) with `--attempts` placed calls per
debtor number spread over the last 14 days, plus a do-not-call list of 5% of
the numbers, then asks the dialer's real decision (`dialer.decision.policy_decider`:
do-not-call lookup, learned number status, the number's history, the pure
policy) for random numbers, one after another, as the agent's page does (no
booking). Prints decisions per second and per-decision latency (p50/p99),
with the conditions.

Then the worker's decision *with reservation*, as it runs before each INVITE
(`reserve_number`: the decision's lock, the history with the calls in flight,
the policy, and the reservation of an allowed call, one transaction):

- distinct debtors: `--reserve` different numbers (default: every debtor, a
  pacer planning the whole list), one decision each, on each thread count of
  `--threads`;
- one number under contention: `--contended` decisions for one fresh number
  from each thread count of `--contention` at once (all but the first 3 are
  refused by cn-default's 3 a day; every one takes the same lock), checking
  that exactly the cap got through.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.migrate import upgrade
from bench.scratch import BACKENDS, backends, scratch_database
from dialer.decision import policy_decider
from dialer.models import AttemptReservation, CallAttempt, DncEntry
from dialer.numbers import number_key
from dialer.policy import preset
from dialer.site import CallSite
from dialer.workdays import load_calendar
from recording.db.engine import make_engine, session_factory
from recording.keys import FileKeyRing

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, a Tuesday


def number(i: int) -> str:
    return f"+86138{i:08d}"


def fill(sessions: object, secret: bytes, debtors: int, attempts: int) -> float:
    started = time.perf_counter()
    rng = random.Random(7)
    batch: list[dict[str, object]] = []
    dnc: list[dict[str, object]] = []
    with sessions() as session:  # type: ignore[operator]
        for i in range(debtors):
            key = number_key(secret, number(i))
            for j in range(attempts):
                answered = rng.random() < 0.3
                batch.append(
                    {
                        "call_id": f"c{i:07d}{j:02d}",
                        "sip_call_id": secrets.token_hex(8),
                        "agent": f"agent{i % 200}",
                        "number_key": key,
                        "number_masked": "+86138****" + f"{i:08d}"[-4:],
                        "debtor_id": None,
                        "started_at": NOW - timedelta(hours=rng.uniform(20, 14 * 24)),
                        "placed": True,
                        "answered": answered,
                        "duration_s": rng.uniform(30, 300) if answered else 0.0,
                        "sip_status": 200 if answered else 480,
                        "sip_reason": "OK" if answered else "Temporarily Unavailable",
                        "rule": None,
                        "ended_by": "agent",
                        "caller_id": "+862150000000",
                        "recording_id": None,
                    }
                )
            if i % 20 == 0:
                dnc.append(
                    {
                        "number_key": key,
                        "number_masked": "+86138****",
                        "scope": "global",
                        "scope_id": "",
                        "reason": "asked not to be called",
                        "source": "bench",
                        "added_by": "bench",
                        "added_at": NOW - timedelta(days=3),
                    }
                )
            if len(batch) >= 20_000:
                session.execute(insert(CallAttempt), batch)
                batch.clear()
        if batch:
            session.execute(insert(CallAttempt), batch)
        session.execute(insert(DncEntry), dnc)
        session.commit()
    return time.perf_counter() - started


def run(url: str, tmp: Path, args: argparse.Namespace) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    secret = os.urandom(32)
    took = fill(sessions, secret, args.debtors, args.attempts)
    print(f"  filled {args.debtors * args.attempts:,} attempts in {took:.1f} s", flush=True)
    policy = preset(args.preset)
    site = CallSite(
        sessions=sessions,
        policy=policy,
        site_tz=ZoneInfo("Asia/Shanghai"),
        calendar=load_calendar() if policy.working_days_only else None,
        number_secret=secret,
        spool=tmp,
        keys=FileKeyRing(tmp / "kek.json"),
        retention_days=730,
        clock=lambda: NOW,
    )
    decide = policy_decider(site)
    rng = random.Random(11)
    picks = [number(rng.randrange(args.debtors)) for _ in range(args.decisions)]
    for e164 in picks[:200]:  # warm the connection pool and the caches
        decide(e164, None)
    outcomes: dict[str, int] = {}
    latencies = []
    started = time.perf_counter()
    for e164 in picks:
        t0 = time.perf_counter()
        _, rule, _ = decide(e164, None)
        latencies.append(time.perf_counter() - t0)
        outcomes[rule] = outcomes.get(rule, 0) + 1
    took = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"  {len(picks) / took:8,.0f} decisions/s on one thread; per decision "
        f"p50 {statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms",
        flush=True,
    )
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    reserving = policy_decider(site, "bench/0")
    start = 0
    everyone = list(range(args.debtors))
    rng.shuffle(everyone)
    for threads in args.threads:
        chosen = [number(i) for i in everyone[start : start + args.reserve]]
        start += args.reserve
        if len(chosen) < args.reserve:
            print(f"  (not enough fresh debtors for {threads} threads; skipped)")
            continue
        print(
            f"  with reservation, {len(chosen):,} distinct debtors, {threads} thread(s): "
            + measure(reserving, [[e] for e in chosen], threads),
            flush=True,
        )
    for threads in args.contention:
        fresh = f"+86139{threads:08d}"  # a number nobody has called yet
        per = max(1, args.contended // threads)
        outcome = measure(reserving, [[fresh] * per for _ in range(threads)], threads, split=True)
        key = number_key(secret, fresh)
        with sessions() as session:
            booked = session.query(AttemptReservation).filter_by(number_key=key).count()
        print(
            f"  with reservation, one number, {threads} thread(s) at once, "
            f"{per * threads:,} decisions: {outcome}; allowed {booked} (cap 3)",
            flush=True,
        )
        assert booked == 3, f"{booked} calls got through a cap of 3"
    engine.dispose()


def measure(
    decide: Callable[..., tuple[bool, str, str]],
    work: list[list[str]],
    threads: int,
    split: bool = False,
) -> str:
    """Run the decisions over `threads` threads released at once; rate, latency, outcomes.

    `work` holds one list of numbers per task; with `split`, one task per thread.
    """
    tasks = work if split else [list(chain.from_iterable(work[i::threads])) for i in range(threads)]
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    gate = threading.Barrier(threads + 1)

    def run(numbers: list[str]) -> None:
        mine: list[float] = []
        rules: dict[str, int] = {}
        gate.wait()
        for e164 in numbers:
            t0 = time.perf_counter()
            _, rule, _ = decide(e164, None, secrets.token_hex(8), "bench")
            mine.append(time.perf_counter() - t0)
            rules[rule] = rules.get(rule, 0) + 1
        with lock:
            latencies.extend(mine)
            for rule, n in rules.items():
                outcomes[rule] = outcomes.get(rule, 0) + n

    pool = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in pool:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    took = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    return (
        f"{len(latencies) / took:,.0f} decisions/s, p50 "
        f"{statistics.median(latencies) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms ("
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        + ")"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--debtors", type=int, default=50_000)
    parser.add_argument("--attempts", type=int, default=6)
    parser.add_argument("--decisions", type=int, default=5_000)
    parser.add_argument("--preset", default="cn-default")
    parser.add_argument("--backend", choices=BACKENDS, default="both")
    parser.add_argument(
        "--reserve", type=int, default=0, help="distinct debtors per run (default: all)"
    )
    parser.add_argument("--threads", default="1,8", help="thread counts, distinct debtors")
    parser.add_argument("--contention", default="1,8,20", help="thread counts, one number")
    parser.add_argument("--contended", type=int, default=2_000)
    args = parser.parse_args()
    args.threads = [int(n) for n in args.threads.split(",")]
    args.contention = [int(n) for n in args.contention.split(",")]
    args.reserve = args.reserve or args.debtors // len(args.threads)
    print(
        f"conditions: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.debtors:,} debtors with {args.attempts} placed calls each over 14 days "
        f"({args.debtors * args.attempts:,} attempts), 5% of numbers on the do-not-call list, "
        f"preset {args.preset}, decisions for random numbers, one thread; with "
        f"reservation: {args.reserve:,} distinct debtors per thread count {args.threads}, "
        f"{args.contended:,} decisions for one number from {args.contention} threads"
    )
    for backend in backends(args.backend):
        with tempfile.TemporaryDirectory() as tmp, scratch_database(backend, Path(tmp)) as url:
            print(f"{backend}:", flush=True)
            run(url, Path(tmp), args)


if __name__ == "__main__":
    main()
