"""Transcript search latency with many segments, on SQLite and PostgreSQL.

Usage: python bench/search_latency.py [--segments 1000000] [--backend sqlite|postgresql|both]
           [--runs 40] [--keep]
       python bench/search_latency.py --url postgresql+psycopg://.../dialguard_bench_x

PostgreSQL is loaded with COPY and its search indexes (the migrations' own,
read back from pg_indexes) are built once after the load: 10 million
segments took 930 s here (bench/README). `--keep` leaves the database in
place and `--url` measures it again without building (drop it afterwards).

Builds a database of synthetic call segments (a Chinese/English mix drawn from
collection-call vocabulary), then times bounded searches (limit 20) for a
selective term, a common term and two-character Chinese terms. Prints p50/p95
per query kind and the conditions. Target: p95 under 200 ms.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.migrate import upgrade
from bench.scratch import BACKENDS, backends, scratch_database
from recording.db.engine import make_engine, session_factory
from recording.models import Recording, RecordingStatus
from transcribe.models import SegmentRow, TranscriptRow
from transcribe.search import SearchQuery, search
from transcribe.store import grams

CN = [
    "您好",
    "我是",
    "资产管理公司",
    "客服",
    "请问",
    "是",
    "本人",
    "吗",
    "您的",
    "信用卡",
    "已经",
    "逾期",
    "三十天",
    "欠款",
    "金额",
    "请您",
    "今天",
    "按时",
    "还款",
    "否则",
    "会",
    "影响",
    "征信",
    "我们",
    "可以",
    "协商",
    "分期",
    "方案",
    "还款",
    "账户",
    "银行",
    "最低",
    "还款额",
    "利息",
    "违约金",
    "联系",
    "家人",
    "工作",
    "单位",
    "明天",
    "下午",
    "再",
    "打",
    "电话",
    "好的",
    "谢谢",
]
EN = [
    "hello",
    "this",
    "is",
    "calling",
    "from",
    "the",
    "collections",
    "agency",
    "about",
    "your",
    "credit",
    "card",
    "balance",
    "which",
    "is",
    "overdue",
    "please",
    "confirm",
    "your",
    "date",
    "of",
    "birth",
    "we",
    "can",
    "set",
    "up",
    "a",
    "payment",
    "plan",
    "today",
    "or",
    "tomorrow",
    "the",
    "minimum",
    "payment",
    "is",
    "due",
    "on",
    "friday",
    "thank",
    "you",
]
RARE = "zebracrossing"


def sentence(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return "".join(rng.choice(CN) for _ in range(rng.randint(4, 12))) + "。"
    return " ".join(rng.choice(EN) for _ in range(rng.randint(5, 14))).capitalize() + "."


SEGMENT_COLUMNS = (
    "id",
    "transcript_id",
    "recording_id",
    "speaker",
    "start_s",
    "end_s",
    "text",
    "grams",
    "confidence",
    "words_json",
)
PER_CALL = 40


_Batch = tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[Any, ...]]]


def _calls(calls: int, rng: random.Random, batch: int = 1000) -> Iterator[_Batch]:
    """Recordings, transcripts and segments (as tuples of SEGMENT_COLUMNS), a batch at a time.

    The same seed gives the same rows on both backends; `grams` is the
    product's own function, so the token index holds what the store writes.
    """
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    for batch_start in range(0, calls, batch):
        recs, transcripts, segs = [], [], []
        for c in range(batch_start, min(calls, batch_start + batch)):
            rid = f"{c:032x}"
            at = t0 + timedelta(minutes=c)
            recs.append(
                dict(
                    id=rid,
                    call_id=rid,
                    agent=f"agent{c % 200}",
                    debtor_id=f"D{c % 50000}",
                    client_id="bank-a",
                    recorded_at=at,
                    duration_s=180.0,
                    channels=2,
                    content_type="audio/ogg",
                    status=RecordingStatus.STORED,
                    object_key=rid,
                    plaintext_size=1,
                    ciphertext_size=1,
                    ciphertext_sha256="0" * 64,
                    retain_until=at + timedelta(days=730),
                    legal_hold=False,
                    upload_attempts=0,
                    created_at=at,
                )
            )
            transcripts.append(
                dict(
                    id=c + 1,
                    recording_id=rid,
                    model="base",
                    model_version="bench",
                    language="zh",
                    duration_s=180.0,
                    created_at=at,
                )
            )
            for s in range(PER_CALL):
                text = sentence(rng)
                if rng.random() < 0.00005:
                    text += f" {RARE}"
                segs.append(
                    (
                        c * PER_CALL + s + 1,
                        c + 1,
                        rid,
                        "agent" if s % 2 else "debtor",
                        s * 4.0,
                        s * 4.0 + 3.5,
                        text,
                        grams(text),
                        0.9,
                        "[]",
                    )
                )
        yield recs, transcripts, segs


def populate(url: str, segments: int, seed: int = 1) -> None:
    engine = make_engine(url)
    upgrade(engine)
    calls = segments // PER_CALL
    started = time.monotonic()
    rng = random.Random(seed)
    if engine.dialect.name == "postgresql":
        _populate_postgresql(engine, calls, rng)
        engine.dispose()
        return
    with engine.begin() as conn:
        done = 0
        for recs, transcripts, segs in _calls(calls, rng):
            conn.execute(insert(Recording), recs)
            conn.execute(insert(TranscriptRow), transcripts)
            rows = [dict(zip(SEGMENT_COLUMNS, s, strict=True)) for s in segs]
            conn.execute(insert(SegmentRow), rows)
            done += len(segs)
            print(f"  {done:,} segments ({time.monotonic() - started:.0f} s)", flush=True)
    engine.dispose()


def _populate_postgresql(engine: Engine, calls: int, rng: random.Random) -> None:
    """COPY the segments in, then build the product's own indexes over them.

    The indexes are those the migrations created (their definitions are read
    back from `pg_indexes`, dropped, and re-run after the load), so searches
    run on the same structures as in production; building them once is much
    faster than updating two GIN indexes row by row. Foreign-key triggers are
    off during the load (`session_replication_role`): the rows refer to each
    other by construction.
    """
    started = time.monotonic()
    raw = engine.raw_connection()
    try:
        pg = raw.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            cur.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = "
                "'transcript_segments' AND indexname <> 'pk_transcript_segments'"
            )
            indexes = cur.fetchall()
            for name, _ in indexes:
                cur.execute(f'DROP INDEX "{name}"')
            cur.execute("SET session_replication_role = replica")
            done = 0
            for recs, transcripts, segs in _calls(calls, rng, batch=5000):
                rows = [{**r, "status": str(r["status"].value)} for r in recs]
                cur.executemany(_insert_sql("recordings", rows[0]), rows)
                cur.executemany(_insert_sql("transcripts", transcripts[0]), transcripts)
                with cur.copy(
                    f"COPY transcript_segments ({', '.join(SEGMENT_COLUMNS)}) FROM STDIN"
                ) as copy:
                    for row in segs:
                        copy.write_row(row)
                done += len(segs)
                print(f"  {done:,} segments ({time.monotonic() - started:.0f} s)", flush=True)
            pg.commit()
            cur.execute("SET session_replication_role = DEFAULT")
            cur.execute("SET maintenance_work_mem = '1GB'")
            for name, definition in indexes:
                t = time.monotonic()
                cur.execute(definition)
                pg.commit()
                print(f"  index {name}: {time.monotonic() - t:.0f} s", flush=True)
            for sequence, value in (
                ("transcripts_id_seq", calls + 1),
                ("transcript_segments_id_seq", calls * PER_CALL + 1),
            ):
                cur.execute("SELECT setval(%s, %s, false)", (sequence, value))
            pg.commit()
        pg.autocommit = True
        with pg.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
    finally:
        raw.close()
    print(f"  built in {time.monotonic() - started:.0f} s", flush=True)


def _insert_sql(table_: str, row: dict[str, Any]) -> str:
    names = ", ".join(row)
    values = ", ".join(f"%({n})s" for n in row)
    return f"INSERT INTO {table_} ({names}) VALUES ({values})"


def measure(url: str, runs: int) -> dict[str, tuple[float, float]]:
    engine = make_engine(url)
    sessions = session_factory(engine)
    kinds = {
        "selective (rare word)": [RARE],
        "common term (还款)": ["还款"],
        "two-character Chinese": ["逾期", "征信", "分期", "利息"],
        "common 3+ chars (信用卡)": ["信用卡"],
        "English phrase": ["date of birth"],
        "filter only (agent)": [""],
    }
    results = {}
    with sessions() as session:
        for kind, terms in kinds.items():
            times = []
            for i in range(runs):
                term = terms[i % len(terms)]
                q = SearchQuery(text=term, agent="agent7" if not term else None, limit=20)
                start = time.perf_counter()
                search(session, q)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            results[kind] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])
    engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=BACKENDS, default="both")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--keep", action="store_true", help="keep the built database (its URL is printed)"
    )
    parser.add_argument("--url", help="measure this already built database; build nothing")
    args = parser.parse_args()
    built = "as built" if args.url else f"{args.segments:,}"
    print(
        f"conditions: {os.cpu_count()} cores, {_memory()}, Python {platform.python_version()}, "
        f"{built} segments (70% Chinese), limit 20, {args.runs} runs per kind, "
        f"load average {_load()}",
        flush=True,
    )
    if args.url:
        _report(args.url, args.runs)
        return
    for backend in backends(args.backend):
        with (
            tempfile.TemporaryDirectory() as tmp,
            scratch_database(backend, Path(tmp), keep=args.keep) as url,
        ):
            print(f"{backend}: building {url}", flush=True)
            started = time.monotonic()
            populate(url, args.segments)
            print(f"{backend}: built in {time.monotonic() - started:.0f} s", flush=True)
            _report(url, args.runs)


def _memory() -> str:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return f"{pages / 2**30:.0f} GiB RAM"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _report(url: str, runs: int) -> None:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.scalar(select(func.count()).select_from(SegmentRow))
        if engine.dialect.name == "postgresql":
            size = conn.scalar(text("SELECT pg_database_size(current_database())"))
            version = conn.scalar(text("SHOW server_version"))
        else:
            size = Path(engine.url.database or "").stat().st_size
            version = conn.scalar(text("SELECT sqlite_version()"))
    engine.dispose()
    print(
        f"{engine.dialect.name} {version}: {rows:,} segments, database {size / 2**30:.2f} GiB",
        flush=True,
    )
    print(f"{engine.dialect.name}: search latency, ms")
    for kind, (p50, p95) in measure(url, runs).items():
        print(f"  {kind:<28} p50 {p50:7.1f}   p95 {p95:7.1f}", flush=True)
    print(f"load average after: {_load()}", flush=True)


if __name__ == "__main__":
    main()
