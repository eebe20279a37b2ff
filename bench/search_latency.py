"""Transcript search latency with many segments, on SQLite and PostgreSQL.

Usage: python bench/search_latency.py [--segments 1000000] [--backend sqlite|postgresql|both]

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
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

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


def populate(url: str, segments: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    engine = make_engine(url)
    upgrade(engine)
    per_call = 40
    calls = segments // per_call
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    started = time.monotonic()
    with engine.begin() as conn:
        for batch_start in range(0, calls, 1000):
            recs, transcripts, segs = [], [], []
            for c in range(batch_start, min(calls, batch_start + 1000)):
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
                for s in range(per_call):
                    text = sentence(rng)
                    if rng.random() < 0.00005:
                        text += f" {RARE}"
                    segs.append(
                        dict(
                            transcript_id=c + 1,
                            recording_id=rid,
                            speaker="agent" if s % 2 else "debtor",
                            start_s=s * 4.0,
                            end_s=s * 4.0 + 3.5,
                            text=text,
                            grams=grams(text),
                            confidence=0.9,
                            words_json="[]",
                        )
                    )
            conn.execute(insert(Recording), recs)
            conn.execute(insert(TranscriptRow), transcripts)
            conn.execute(insert(SegmentRow), segs)
            done = min(calls, batch_start + 1000) * per_call
            print(f"  {done:,} segments ({time.monotonic() - started:.0f} s)", flush=True)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


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
    args = parser.parse_args()
    print(
        f"conditions: {os.cpu_count()} cores, {platform.python_version()}, "
        f"{args.segments:,} segments (70% Chinese), limit 20, {args.runs} runs per kind"
    )
    for backend in backends(args.backend):
        with tempfile.TemporaryDirectory() as tmp, scratch_database(backend, Path(tmp)) as url:
            print(f"{backend}: building", flush=True)
            populate(url, args.segments)
            print(f"{backend}: search latency, ms")
            for kind, (p50, p95) in measure(url, args.runs).items():
                print(f"  {kind:<28} p50 {p50:7.1f}   p95 {p95:7.1f}")


if __name__ == "__main__":
    main()
