"""What was derived from a call, deleted when the call's data must go.

Two moments, both run by the uploader of `dialguard up` once an hour:

- **The end of a recording's retention.** `recording.lifecycle.expire`
  crypto-erases the audio; the words would otherwise stay, searchable, in
  the transcript. `forget_derived` is the `Forget` it is handed: it deletes
  the transcripts, their segments (and so their rows in the search indexes,
  which follow the segments), the QA results, flags and their review
  history, in the transaction that marks the recording deleted.
  `sweep_deleted` catches what that transaction could not: recordings
  deleted before this existed, and a transcript a worker stored after the
  audio it had fetched was erased.
- **The end of a client's contract.** Once the contract's `delete_after`
  has passed (`api.recordings.contract_rules`), `end_contracts` deletes the
  client's debtors with their numbers, and what was derived from every call
  of the client except those under a legal hold (a hold keeps the evidence
  of a dispute, and its transcript and QA review are part of it; they go
  when the held recording itself expires). The recordings themselves are
  not touched here: they are WORM and end with their own retention.

Everything is audited (actor `retention-job`) with counts only; the log
lines carry counts and the client id, never a name, a number or words of a
call. QA's weekly samples are kept: they name recording ids and strata, not
what was said, and a week's draw must stay as it was drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker

from api.audit.chain import record
from api.recordings.contract_rules import Step, audited, contract_step
from api.recordings.contracts import ClientContract
from dialer.debtors.models import Debtor, DebtorNumber
from qa_scoring.models import QaFlag, QaFlagEvent, QaResult
from recording.db.engine import as_utc
from recording.models import Recording, RecordingStatus
from transcribe.models import SegmentRow, TranscriptRow

log = logging.getLogger(__name__)

ACTOR = "retention-job"

#: The kinds `forget_derived` counts, in the order they are deleted (children first).
DERIVED = ("qa_flag_events", "qa_flags", "qa_results", "transcript_segments", "transcripts")

#: Ids per statement: far below SQLite's and PostgreSQL's limits on bound parameters.
_CHUNK = 500


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _deleted(session: Session, statement: Any) -> int:
    result = cast(
        CursorResult[Any],
        session.execute(statement.execution_options(synchronize_session=False)),
    )
    return max(result.rowcount, 0)


def forget_derived(session: Session, recording_ids: Sequence[str]) -> dict[str, int]:
    """Delete what was derived from these recordings, without committing; counts per kind.

    Rows are found both by their recording and through their parent (a
    flag through its result, a segment through its transcript), so that no
    child is left pointing at a deleted parent whatever wrote it.
    """
    counts = dict.fromkeys(DERIVED, 0)
    for chunk in _chunks(list(recording_ids)):
        transcripts = select(TranscriptRow.id).where(TranscriptRow.recording_id.in_(chunk))
        results = select(QaResult.id).where(
            or_(QaResult.recording_id.in_(chunk), QaResult.transcript_id.in_(transcripts))
        )
        flags = select(QaFlag.id).where(
            or_(QaFlag.recording_id.in_(chunk), QaFlag.result_id.in_(results))
        )
        counts["qa_flag_events"] += _deleted(
            session, delete(QaFlagEvent).where(QaFlagEvent.flag_id.in_(flags))
        )
        counts["qa_flags"] += _deleted(
            session,
            delete(QaFlag).where(
                or_(QaFlag.recording_id.in_(chunk), QaFlag.result_id.in_(results))
            ),
        )
        counts["qa_results"] += _deleted(
            session,
            delete(QaResult).where(
                or_(QaResult.recording_id.in_(chunk), QaResult.transcript_id.in_(transcripts))
            ),
        )
        # Deleting a segment removes its search rows too: SQLite's FTS tables are kept by
        # triggers on this table, PostgreSQL's indexes are on it.
        counts["transcript_segments"] += _deleted(
            session,
            delete(SegmentRow).where(
                or_(SegmentRow.recording_id.in_(chunk), SegmentRow.transcript_id.in_(transcripts))
            ),
        )
        counts["transcripts"] += _deleted(
            session, delete(TranscriptRow).where(TranscriptRow.recording_id.in_(chunk))
        )
    return counts


def _has_derived() -> ColumnElement[bool]:
    """Whether a recording (of the enclosing query) still has anything derived from it."""
    return or_(
        exists().where(TranscriptRow.recording_id == Recording.id),
        exists().where(QaResult.recording_id == Recording.id),
        exists().where(QaFlag.recording_id == Recording.id),
    )


def sweep_deleted(sessions: sessionmaker[Session], now: datetime, limit: int = 100) -> int:
    """Forget what is still derived from deleted recordings; returns how many were swept.

    Each recording is one transaction with its audit entry (`record` commits
    both), so a crash leaves it either swept and audited or neither.
    """
    with sessions() as session:
        ids = list(
            session.scalars(
                select(Recording.id)
                .where(Recording.status == RecordingStatus.DELETED, _has_derived())
                .order_by(Recording.id)
                .limit(limit)
            )
        )
        for recording_id in ids:
            counts = forget_derived(session, [recording_id])
            record(
                session,
                ACTOR,
                "derived-data-deleted",
                recording_id,
                now,
                reason="its recording was deleted",
                detail=counts,
            )
    if ids:
        log.info("derived data of deleted recordings removed", extra={"recordings": len(ids)})
    return len(ids)


@dataclass(frozen=True)
class ClientDeletion:
    """One pass over one ended contract: what went, and what a legal hold kept."""

    client_id: str
    step: Step
    counts: dict[str, int] = field(default_factory=dict)  # rows deleted, per kind
    held: int = 0  # the client's calls whose derived data a legal hold keeps


def delete_client_data(session: Session, client_id: str) -> tuple[dict[str, int], int]:
    """Delete the client's debtors and its calls' derived data, without committing.

    Returns the rows deleted per kind, and how many of the client's calls
    kept theirs under a legal hold (apart: what stays is not news each hour).
    """
    debtors = select(Debtor.id).where(Debtor.client_id == client_id)
    numbers = _deleted(session, delete(DebtorNumber).where(DebtorNumber.debtor_id.in_(debtors)))
    gone = _deleted(session, delete(Debtor).where(Debtor.client_id == client_id))
    calls = list(
        session.scalars(
            select(Recording.id).where(
                Recording.client_id == client_id,
                Recording.legal_hold.is_(False),
                _has_derived(),
            )
        )
    )
    held = session.scalar(
        select(func.count()).where(
            Recording.client_id == client_id,
            Recording.legal_hold.is_(True),
            _has_derived(),
        )
    )
    counts = {"debtors": gone, "debtor_numbers": numbers, "recordings": len(calls)}
    return {**counts, **forget_derived(session, calls)}, int(held or 0)


def end_contracts(sessions: sessionmaker[Session], now: datetime) -> list[ClientDeletion]:
    """Delete the data of every client whose contract's `delete_after` has passed.

    Idempotent: the first pass is recorded on the contract and audited with
    its counts; later passes delete only what arrived since and are audited
    only when they found something.
    """
    with sessions() as session:
        due = list(
            session.scalars(
                select(ClientContract.client_id)
                .where(ClientContract.delete_after <= now)
                .order_by(ClientContract.client_id)
            )
        )
    done = []
    for client_id in due:
        with sessions() as session:
            contract = session.get(ClientContract, client_id)
            if contract is None:
                continue
            deleted_at = contract.data_deleted_at
            step = contract_step(
                now,
                as_utc(contract.delete_after),
                as_utc(deleted_at) if deleted_at is not None else None,
            )
            if step is Step.WAIT:
                continue
            counts, held = delete_client_data(session, client_id)
            if step is Step.DELETE:
                contract.data_deleted_at = now
            if audited(step, counts):
                record(  # commits the deletion with its entry: one transaction
                    session,
                    ACTOR,
                    "client-data-deleted",
                    client_id,
                    now,
                    reason="the client's contract ended and its delete-after date has passed",
                    detail={
                        **counts,
                        "kept_under_legal_hold": held,
                        "delete_after": as_utc(contract.delete_after).isoformat(),
                        "pass": step.value,
                    },
                )
            else:
                session.commit()
        if audited(step, counts):
            log.info(
                "client data deleted after the end of its contract",
                extra={"client": client_id, "pass": step.value, "counts": counts, "held": held},
            )
        done.append(ClientDeletion(client_id, step, counts, held))
    return done


def retention_jobs(sessions: sessionmaker[Session]) -> tuple[Callable[[datetime], object], ...]:
    """The jobs `dialguard up`'s uploader runs after the hourly expiry (`run_uploader`'s hourly)."""

    def sweep_deleted_recordings(now: datetime) -> int:
        return sweep_deleted(sessions, now)

    def end_ended_contracts(now: datetime) -> list[ClientDeletion]:
        return end_contracts(sessions, now)

    return (sweep_deleted_recordings, end_ended_contracts)
