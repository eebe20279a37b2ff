"""Reading call outcomes from the database: one query for the API and for the webhooks.

An attempt is joined with its recording, the click-to-call request it
answered, the latest QA score of its recording, and the debtor whose number
it dialed. The dialer books attempts by number only, so who was called is
found by the number's keyed hash in the debtors' numbers: when exactly one
debtor has that number, the outcome names that debtor and the number's role;
when several debtors of one client share it, only the client. An id the
recording or the click-to-call request carries wins over the match.

The auditor's limit to their own client filters on the same expression the
outcome shows, so what an auditor can list is exactly what names their client.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, case, func, select
from sqlalchemy.orm import Session, aliased

from api.outcomes.payload import Outcome, QaScore
from dialer.debtors import Debtor, DebtorNumber
from dialer.models import CallAttempt, CallRequest
from qa_scoring.models import QaResult
from recording.db.engine import as_utc
from recording.models import Recording

_dn = aliased(DebtorNumber)
_d = aliased(Debtor)


def _matched(value: Any, distinct: Any) -> ScalarSelect[Any]:
    """`value` of the debtors with the attempt's number, when they agree on `distinct`."""
    return (
        select(case((func.count(distinct.distinct()) == 1, func.min(value)), else_=None))
        .select_from(_dn)
        .join(_d, _d.id == _dn.debtor_id)
        .where(_dn.number_key == CallAttempt.number_key)
        .correlate(CallAttempt)
        .scalar_subquery()
    )


_MATCH_CLIENT = _matched(_d.client_id, _d.client_id)
_MATCH_DEBTOR = _matched(_d.external_id, _dn.debtor_id)
_MATCH_ROLE = _matched(_dn.role, _dn.debtor_id)

#: The client an outcome belongs to: the recording's or the click-to-call request's, else
#: the matched debtors'.
outcome_client: ColumnElement[Any] = func.coalesce(
    Recording.client_id, CallRequest.client_id, _MATCH_CLIENT
)
outcome_debtor: ColumnElement[Any] = func.coalesce(
    CallAttempt.debtor_id, Recording.debtor_id, CallRequest.debtor_id, _MATCH_DEBTOR
)

_LATEST_SCORE = (
    select(QaResult.id)
    .where(QaResult.recording_id == CallAttempt.recording_id, QaResult.score.is_not(None))
    .order_by(QaResult.created_at.desc(), QaResult.id.desc())
    .limit(1)
    .correlate(CallAttempt)
    .scalar_subquery()
)


def outcome_query() -> Select[Any]:
    """Every attempt with what is known about it; add filters, order and limits."""
    return (
        select(
            CallAttempt,
            outcome_client.label("client"),
            outcome_debtor.label("debtor"),
            _MATCH_ROLE.label("number_role"),
            QaResult,
        )
        .outerjoin(Recording, Recording.id == CallAttempt.recording_id)
        .outerjoin(CallRequest, CallRequest.call_id == CallAttempt.call_id)
        .outerjoin(QaResult, QaResult.id == _LATEST_SCORE)
    )


def _outcome(row: Any) -> Outcome:
    attempt: CallAttempt = row[0]
    result: QaResult | None = row[4]
    qa = None
    if result is not None and result.score is not None:
        qa = QaScore(
            result_id=result.id,
            score=result.score,
            pack=result.pack,
            pack_version=result.pack_version,
            scored_at=as_utc(result.created_at),
        )
    return Outcome(
        attempt_id=attempt.id,
        call_id=attempt.call_id,
        agent=attempt.agent,
        number_masked=attempt.number_masked,
        number_role=row.number_role,
        debtor_id=row.debtor,
        client=row.client,
        started_at=as_utc(attempt.started_at),
        placed=attempt.placed,
        rule=attempt.rule,
        caller_id=attempt.caller_id,
        sip_status=attempt.sip_status,
        sip_reason=attempt.sip_reason,
        answered=attempt.answered,
        ring_s=attempt.ring_s,
        talk_s=attempt.duration_s,
        ended_by=attempt.ended_by,
        recording_id=attempt.recording_id,
        qa=qa,
    )


def outcomes_by_id(session: Session, attempt_ids: Sequence[int]) -> dict[int, Outcome]:
    if not attempt_ids:
        return {}
    rows = session.execute(outcome_query().where(CallAttempt.id.in_(list(attempt_ids))))
    found = [_outcome(row) for row in rows]
    return {outcome.attempt_id: outcome for outcome in found}


def find_outcomes(
    session: Session,
    *,
    since: datetime | None = None,
    agent: str | None = None,
    debtor: str | None = None,
    client: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> list[Outcome]:
    """Outcomes oldest first (by attempt id), filtered; one more than `limit` tells a
    caller there is a next page."""
    query = outcome_query().order_by(CallAttempt.id)
    if since is not None:
        query = query.where(CallAttempt.started_at >= since)
    if agent is not None:
        query = query.where(CallAttempt.agent == agent)
    if debtor is not None:
        query = query.where(outcome_debtor == debtor)
    if client is not None:
        query = query.where(outcome_client == client)
    rows = session.execute(query.offset(offset).limit(limit))
    return [_outcome(row) for row in rows]
