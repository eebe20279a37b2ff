"""HTTP API v1: QA results per call, the review of their flags, score trends and weekly samples.

The machine flags every call; people decide what the flags are worth. A QA
reviewer confirms or dismisses each flag, the agent may appeal a confirmed
one, a supervisor decides. Every step and every sample draw goes to the audit
log, because a flag can cost an agent their job (the consequence text of its
level says how) and the trail is what makes the decision defensible.
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, cast
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from api.accounts.models import Role, User
from api.audit.chain import record
from api.console.labels import label
from api.exports import FILE_RESPONSES, Cell, ExportFormat, file_response, headings
from api.web.auth import require
from api.web.params import MAX_ROW_ID, Moment, no_control, text_problem
from api.web.services import Services, services_of
from dialer.debtors import Debtor, DebtorNumber
from dialer.models import CallAttempt
from qa_scoring.errors import PackError, QaError
from qa_scoring.learning import BENIGN
from qa_scoring.models import FlagState, QaFlag, QaFlagEvent, QaResult, QaSample
from qa_scoring.pack import load_pack
from qa_scoring.pack_store import add_reviewed_examples
from qa_scoring.review import (
    CommentRequired,
    NotAllowed,
    ReviewedFlag,
    ReviewError,
    next_state,
    reviewed_score,
)
from qa_scoring.sampling import (
    DEFAULT_MINIMUM,
    DEFAULT_RATE,
    SampleCall,
    draw_sample,
    stage_of,
)
from recording.db.engine import as_utc
from recording.models import Recording, RecordingStatus

router = APIRouter(prefix="/api/v1/qa", tags=["qa"])

READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR)
REVIEWERS = (Role.QA, Role.SUPERVISOR)
DECIDERS = (Role.SUPERVISOR, Role.ADMIN)
SAMPLERS = (Role.SUPERVISOR, Role.ADMIN)
SAMPLE_READERS = (Role.QA, Role.SUPERVISOR, Role.ADMIN)
_NAME = r"^[A-Za-z0-9._@-]{1,64}$"
_WEEK = r"^[0-9]{4}-W[0-9]{2}$"
RecordingId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="recording id")]
FlagId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="flag id")]
Comment = Annotated[
    str | None,
    Field(max_length=1000, description="in words; a blank comment counts as none"),
    AfterValidator(no_control),
]


class EventOut(BaseModel):
    actor: str
    action: str
    comment: str | None
    at: datetime


class FlagOut(BaseModel):
    id: int
    rule: str
    category: str
    severity: int
    consequence: str = Field(description="what this violation level means, from the pack")
    speaker: str
    start: float
    end: float
    text: str
    needs_listening: bool = Field(description="the flag rests on a word the ASR was unsure of")
    score: float | None = Field(
        description="how sure the machine is: a meaning-based flag's cosine to its nearest "
        "example (rule semantic-*), a phrase flag's ASR confidence of its words; "
        "empty for a flag stored before it was kept"
    )
    listen_first: bool = Field(
        description="listen before judging: uncertain words and nobody has confirmed it yet; "
        "it does not count in reviewed_score until a reviewer confirms it"
    )
    state: str
    updated_at: datetime
    history: list[EventOut]


class CallQaOut(BaseModel):
    recording_id: str
    agent: str
    transcript_id: int
    pack: str
    pack_version: str
    score: int | None = Field(description="the machine's score when the call was checked")
    reviewed_score: int | None = Field(description="the score after the flags' review so far")
    error: str | None
    missing: list[dict[str, Any]]
    flags: list[FlagOut]


class ReviewIn(BaseModel):
    action: Literal["confirm", "dismiss"]
    comment: Comment = None


class AppealIn(BaseModel):
    comment: Comment = None


class DecideIn(BaseModel):
    action: Literal["uphold", "overturn"]
    comment: Comment = None


class WeekScore(BaseModel):
    agent: str
    week: str
    calls: int
    average: float = Field(description="mean score after review")
    machine_average: float = Field(description="mean score as the machine gave it")


class ScoresOut(BaseModel):
    weeks: list[WeekScore]


class SampleIn(BaseModel):
    week: Annotated[str, Field(pattern=_WEEK, description="ISO week, e.g. 2026-W48")]
    seed: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")] = None


class SampledCall(BaseModel):
    recording_id: str
    agent: str
    stratum: str


class SampleOut(BaseModel):
    week: str
    seed: str
    drawn_by: str
    drawn_at: datetime
    calls: list[SampledCall]


def _consequence(pack: str, severity: int) -> str:
    try:
        return load_pack(pack).consequences.get(severity, "")
    except PackError:  # a pack since removed: the flag still shows, without the text
        return ""


def _flag_out(session: Session, flag: QaFlag, pack: str) -> FlagOut:
    events = session.scalars(
        select(QaFlagEvent).where(QaFlagEvent.flag_id == flag.id).order_by(QaFlagEvent.id)
    )
    return FlagOut(
        id=flag.id,
        rule=flag.rule,
        category=flag.category,
        severity=flag.severity,
        consequence=_consequence(pack, flag.severity),
        speaker=flag.speaker,
        start=flag.start_s,
        end=flag.end_s,
        text=flag.text,
        needs_listening=flag.needs_listening,
        score=flag.score,
        listen_first=flag.needs_listening and flag.state is FlagState.OPEN,
        state=flag.state.value,
        updated_at=as_utc(flag.updated_at),
        history=[
            EventOut(actor=e.actor, action=e.action, comment=e.comment, at=as_utc(e.at))
            for e in events
        ],
    )


def _missing(result: QaResult) -> list[dict[str, Any]]:
    missing = json.loads(result.result_json).get("missing", [])
    return missing if isinstance(missing, list) else []


def _reviewed(result: QaResult, flags: list[QaFlag]) -> int | None:
    if result.score is None:
        return None
    return reviewed_score(
        (ReviewedFlag(f.rule, f.severity, f.needs_listening, f.state.value) for f in flags),
        len(_missing(result)),
    )


def _hidden(user: User, recording: Recording | None) -> bool:
    return recording is None or (
        (user.role is Role.AGENT and recording.agent != user.username)
        or (user.role is Role.AUDITOR and recording.client_id != user.client_id)
    )


FlagSort = Literal["time", "score", "-score"]


def flag_order(sort: FlagSort) -> tuple[Any, ...]:
    """ORDER BY for a list of flags: by time, or by score (`-score`: surest first).

    Flags without a score (stored before it was kept) come last either way;
    equal scores keep the call's order.
    """
    if sort == "time":
        return (QaFlag.start_s, QaFlag.id)
    by = QaFlag.score.desc() if sort == "-score" else QaFlag.score.asc()
    return (QaFlag.score.is_(None), by, QaFlag.start_s, QaFlag.id)


#: A call's QA export: one row per flag, then one per statement the agent left out.
CALL_HEADERS = (
    "recording_id",
    "agent",
    "pack",
    "score",
    "reviewed_score",
    "kind",
    "start_s",
    "end_s",
    "speaker",
    "category",
    "rule",
    "severity",
    "state",
    "needs_listening",
    "flag_score",
    "text",
)


def _call_file(services: Services, user: User, fmt: ExportFormat, out: CallQaOut) -> Response:
    """The call's QA result as a file, audited as `qa-export` with the call it came from."""
    with services.sessions() as session:
        record(
            session,
            user.username,
            "qa-export",
            f"call:{out.recording_id}",
            services.clock(),
            detail={
                "format": fmt.value,
                "what": "call",
                "recording": out.recording_id,
                "results": len(out.flags) + len(out.missing),
            },
        )
    first: list[Cell] = [
        out.recording_id,
        out.agent,
        f"{out.pack} {out.pack_version}".strip(),
        out.score,
        out.reviewed_score,
    ]
    rows: list[list[Cell]] = [
        [
            *first,
            label("qa_row", "flag"),
            f.start,
            f.end,
            label("speaker", f.speaker),
            label("category", f.category),
            label("rule", f.rule),
            f.severity,
            label("state", f.state),
            f.needs_listening,
            f.score,
            f.text,
        ]
        for f in out.flags
    ]
    for item in out.missing:
        category = str(item.get("category", ""))
        rule = str(item.get("rule", ""))
        rows.append(
            [
                *first,
                label("qa_row", "missing"),
                None,
                None,
                None,
                label("category", category),
                label("rule", rule) if rule else None,
                item.get("severity") if isinstance(item.get("severity"), int) else None,
                None,
                None,
                None,
                None,
            ]
        )
    tz = services.working_day.tz
    name = f"qa-call-{out.recording_id}"
    return file_response(fmt, name, headings(CALL_HEADERS, tz), rows, tz)


@router.get("/calls/{recording_id}", response_model=CallQaOut, responses=FILE_RESPONSES)
def call_qa(
    request: Request,
    recording_id: RecordingId,
    user: Annotated[User, Depends(require(*READERS, Role.AGENT))],
    sort: Annotated[
        FlagSort,
        Query(
            description="order of the flags: time (default), score (least sure first) "
            "or -score (surest first)"
        ),
    ] = "time",
    fmt: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="csv or xlsx: the call's flags and missing statements as a file, "
            "audited as qa-export",
        ),
    ] = ExportFormat.JSON,
) -> CallQaOut | Response:
    """A call's latest QA result: score, missing statements, flags with their review history.

    404 for a call the user may not see (an agent's colleague's, another
    client's), as for one that does not exist. `format=csv|xlsx` gives the
    same result as a file for Excel (one row per flag, then per missing
    statement), audited (`qa-export`); agents, whose pages allow no export, get 403.
    """
    if fmt is not ExportFormat.JSON and user.role is Role.AGENT:
        raise HTTPException(403, "agents may not export QA results")
    out = _call_qa(request, recording_id, user, sort)
    if fmt is ExportFormat.JSON:
        return out
    return _call_file(services_of(request), user, fmt, out)


def _call_qa(request: Request, recording_id: str, user: User, sort: FlagSort) -> CallQaOut:
    services = services_of(request)
    with services.sessions() as session:
        recording = session.get(Recording, recording_id)
        if recording is None or _hidden(user, recording):
            raise HTTPException(404, f"no recording {recording_id}")
        result = session.scalar(
            select(QaResult)
            .where(QaResult.recording_id == recording_id)
            .order_by(QaResult.created_at.desc(), QaResult.id.desc())
            .limit(1)
        )
        if result is None:
            raise HTTPException(404, f"call {recording_id} has not been scored yet")
        flags = list(
            session.scalars(
                select(QaFlag).where(QaFlag.result_id == result.id).order_by(*flag_order(sort))
            )
        )
        return CallQaOut(
            recording_id=recording_id,
            agent=recording.agent,
            transcript_id=result.transcript_id,
            pack=result.pack,
            pack_version=result.pack_version,
            score=result.score,
            reviewed_score=_reviewed(result, flags),
            error=result.error,
            missing=_missing(result),
            flags=[_flag_out(session, f, result.pack) for f in flags],
        )


def step_flag(
    request: Request, flag_id: int, action: str, comment: str | None, user: User
) -> FlagOut:
    """Move one flag, write its history and the audit entry in one commit."""
    services = services_of(request)
    now = services.clock().astimezone(UTC)
    comment = comment.strip() if comment and comment.strip() else None
    why = text_problem(comment, 3, multiline=True) if comment is not None else None
    if why is not None:
        raise HTTPException(422, f"comment: {why}")
    with services.sessions() as session:
        flag = session.get(QaFlag, flag_id)
        if flag is None:
            raise HTTPException(404, f"no flag {flag_id}")
        before = flag.state
        try:
            after = FlagState(
                next_state(
                    before.value, action, user.role.value, user.username, flag.agent, comment
                )
            )
        except NotAllowed as exc:
            raise HTTPException(403, str(exc)) from exc
        except CommentRequired as exc:
            raise HTTPException(422, str(exc)) from exc
        except ReviewError as exc:
            raise HTTPException(409, str(exc)) from exc
        # Only if nobody moved it meanwhile: two reviewers must not both decide.
        moved = cast(
            "CursorResult[Any]",
            session.execute(
                update(QaFlag)
                .where(QaFlag.id == flag_id, QaFlag.state == before)
                .values(state=after, updated_at=now)
            ),
        )
        if moved.rowcount != 1:
            session.rollback()
            raise HTTPException(409, f"flag {flag_id} was reviewed by someone else meanwhile")
        session.add(
            QaFlagEvent(
                flag_id=flag_id, actor=user.username, action=action, comment=comment, at=now
            )
        )
        record(
            session,
            user.username,
            f"qa-flag-{action}",
            f"flag:{flag_id}",
            now,
            reason=comment[:500] if comment else None,
            detail={
                "flag": flag_id,
                "recording": flag.recording_id,
                "agent": flag.agent,
                "rule": flag.rule,
                "severity": flag.severity,
                "from": before.value,
                "to": after.value,
            },
        )
        session.refresh(flag)
        result = session.get(QaResult, flag.result_id)
        return _flag_out(session, flag, result.pack if result else "")


@router.post("/flags/{flag_id}/review", response_model=FlagOut)
def review_flag(
    request: Request,
    flag_id: FlagId,
    body: ReviewIn,
    user: Annotated[User, Depends(require(*REVIEWERS))],
) -> FlagOut:
    """Confirm or dismiss an open flag; a dismissal needs a comment."""
    return step_flag(request, flag_id, body.action, body.comment, user)


@router.post("/flags/{flag_id}/appeal", response_model=FlagOut)
def appeal_flag(
    request: Request,
    flag_id: FlagId,
    body: AppealIn,
    user: Annotated[User, Depends(require(Role.AGENT))],
) -> FlagOut:
    """The agent disputes a confirmed flag on their own call, saying why."""
    return step_flag(request, flag_id, "appeal", body.comment, user)


@router.post("/flags/{flag_id}/decide", response_model=FlagOut)
def decide_flag(
    request: Request,
    flag_id: FlagId,
    body: DecideIn,
    user: Annotated[User, Depends(require(*DECIDERS))],
) -> FlagOut:
    """Uphold or overturn an appealed flag, with the reason the agent will read; final."""
    return step_flag(request, flag_id, body.action, body.comment, user)


class ExamplesIn(BaseModel):
    flags: list[Annotated[int, Field(ge=1, le=MAX_ROW_ID)]] = Field(
        min_length=1, max_length=100, description="ids of reviewed flags of one pack"
    )
    to: str = Field(
        alias="as",
        pattern=r"^[a-z0-9-]{1,64}$",
        description=f"the flags' category (confirmed or upheld flags) or {BENIGN} "
        "(dismissed or overturned ones)",
    )
    base: str | None = Field(
        default=None,
        pattern=r"^(shipped:[A-Za-z0-9_-]{1,64}|uploaded:[0-9]{1,12})$",
        description="the version to add to (a ref of GET the pack list); default the active pack",
    )


class AddedExample(BaseModel):
    flag: int
    to: str
    text: str


class LearnedOut(BaseModel):
    ref: str = Field(description="the new version, to evaluate and then activate")
    name: str
    version: str
    base: str
    added: list[AddedExample]


@router.post("/packs/examples", response_model=LearnedOut, status_code=201)
def add_examples(
    request: Request, body: ExamplesIn, user: Annotated[User, Depends(require(Role.ADMIN))]
) -> LearnedOut:
    """Reviewed flags' sentences as examples of a NEW pack version (admins): it learns from review.

    A confirmed (or upheld) flag's sentence joins its category's examples, a
    dismissed (or overturned) one the pack's benign sentences. The version is
    made from `base` (default the active pack), stored beside the others and
    audited (`qa-pack-examples-added`); it scores nothing until activated,
    after `dialguard qa eval FILE --semantic --pack active --candidate REF`
    has shown how it changes precision and recall.
    """
    services = services_of(request)
    now = services.clock().astimezone(UTC)
    with services.sessions() as session:
        try:
            learned = add_reviewed_examples(
                session, body.flags, body.to, user.username, now, services.qa_pack, body.base
            )
        except QaError as exc:
            session.rollback()
            raise HTTPException(409, f"{exc} - {exc.hint}" if exc.hint else str(exc)) from exc
        row = learned.row
        record(
            session,
            user.username,
            "qa-pack-examples-added",
            f"{row.name} v{row.version}",
            now,
            detail={
                "ref": learned.ref,
                "base": learned.base,
                "sha256": row.sha256,
                "added": [{"flag": a.flag_id, "to": a.to} for a in learned.additions],
            },
        )
        return LearnedOut(
            ref=learned.ref,
            name=row.name,
            version=row.version,
            base=learned.base,
            added=[AddedExample(flag=a.flag_id, to=a.to, text=a.text) for a in learned.additions],
        )


def iso_week(moment: datetime, tz: ZoneInfo) -> str:
    """The ISO week (2026-W48) a moment falls in at the site: a Monday 01:00 call is Monday's."""
    year, week, _ = as_utc(moment).astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(week: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00 at the site, in UTC."""
    year, number = int(week[:4]), int(week[6:])
    try:
        monday = date.fromisocalendar(year, number, 1)
    except ValueError as exc:
        raise HTTPException(422, f"week: {year} has no week {number}") from exc
    start = datetime.combine(monday, time(), tz)
    end = datetime.combine(monday + timedelta(days=7), time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


SCORE_HEADERS = ("agent", "week", "calls", "average", "machine_average")


def _own_scores(user: User, agent: str | None, fmt: ExportFormat) -> str | None:
    """The agent whose scores are asked: an agent sees only their own, and exports none."""
    if user.role is not Role.AGENT:
        return agent
    if fmt is not ExportFormat.JSON:
        raise HTTPException(403, "agents may not export QA results")
    if agent not in (None, user.username):
        raise HTTPException(403, "an agent sees only their own scores")
    return user.username


def _scores_file(
    services: Services,
    user: User,
    fmt: ExportFormat,
    weeks: list[WeekScore],
    agent: str | None,
    date_from: datetime | None,
    date_to: datetime | None,
) -> ScoresOut | Response:
    """The weeks as JSON, or as a file audited with the filters that chose them."""
    if fmt is ExportFormat.JSON:
        return ScoresOut(weeks=weeks)
    tz = services.working_day.tz
    filters = {
        k: v
        for k, v in (
            ("agent", agent),
            ("client", user.client_id if user.role is Role.AUDITOR else None),
            ("from", date_from.isoformat() if date_from else None),
            ("to", date_to.isoformat() if date_to else None),
        )
        if v
    }
    with services.sessions() as session:
        record(
            session,
            user.username,
            "qa-export",
            (" ".join(f"{k}={v}" for k, v in filters.items()) or "all")[:255],
            services.clock(),
            detail={**filters, "format": fmt.value, "results": len(weeks), "what": "scores"},
        )
    rows = [[getattr(week, name) for name in SCORE_HEADERS] for week in weeks]
    return file_response(fmt, "qa-scores", headings(SCORE_HEADERS, tz), rows, tz)


@router.get("/scores", response_model=ScoresOut, responses=FILE_RESPONSES)
def scores(
    request: Request,
    user: Annotated[User, Depends(require(*READERS, Role.AGENT))],
    agent: Annotated[str | None, Query(pattern=_NAME)] = None,
    date_from: Annotated[Moment | None, Query(alias="from")] = None,
    date_to: Annotated[Moment | None, Query(alias="to")] = None,
    fmt: Annotated[
        ExportFormat,
        Query(alias="format", description="csv or xlsx: the weeks as a file, audited as qa-export"),
    ] = ExportFormat.JSON,
) -> ScoresOut | Response:
    """Each agent's mean score per ISO week of the calls' dates: the trend a supervisor coaches on.

    One result per call (the latest); calls that could not be checked are
    left out. An agent sees only their own trend, an auditor their client's calls.
    `format=csv|xlsx` gives the same weeks as a file for Excel, and the export
    is audited (`qa-export`); agents, whose pages allow no export, get 403.
    """
    services = services_of(request)
    agent = _own_scores(user, agent, fmt)
    query = (
        select(QaResult, Recording)
        .join(Recording, Recording.id == QaResult.recording_id)
        .where(QaResult.score.is_not(None))
        .order_by(QaResult.id)
    )
    if agent:
        query = query.where(Recording.agent == agent)
    if user.role is Role.AUDITOR:
        if user.client_id is None:
            raise HTTPException(403, "this auditor account is not assigned to a client")
        query = query.where(Recording.client_id == user.client_id)
    if date_from:
        query = query.where(Recording.recorded_at >= date_from.astimezone(UTC))
    if date_to:
        query = query.where(Recording.recorded_at < date_to.astimezone(UTC))
    tz = services.working_day.tz
    with services.sessions() as session:
        latest: dict[str, tuple[QaResult, Recording]] = {}
        for result, recording in session.execute(query).all():
            latest[recording.id] = (result, recording)  # ordered by id: the last one wins
        flags: dict[int, list[QaFlag]] = defaultdict(list)
        ids = [result.id for result, _ in latest.values()]
        for start in range(0, len(ids), 500):
            for flag in session.scalars(
                select(QaFlag).where(QaFlag.result_id.in_(ids[start : start + 500]))
            ):
                flags[flag.result_id].append(flag)
        buckets: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for result, recording in latest.values():
            reviewed = _reviewed(result, flags[result.id])
            if result.score is None or reviewed is None:
                continue
            key = (recording.agent, iso_week(recording.recorded_at, tz))
            buckets[key].append((reviewed, result.score))
    weeks = [
        WeekScore(
            agent=agent_,
            week=week,
            calls=len(values),
            average=round(sum(v for v, _ in values) / len(values), 1),
            machine_average=round(sum(m for _, m in values) / len(values), 1),
        )
        for (agent_, week), values in sorted(buckets.items())
    ]
    return _scores_file(services, user, fmt, weeks, agent, date_from, date_to)


def _sample_out(rows: list[QaSample]) -> SampleOut:
    first = rows[0]
    return SampleOut(
        week=first.week,
        seed=first.seed,
        drawn_by=first.drawn_by,
        drawn_at=as_utc(first.drawn_at),
        calls=[
            SampledCall(recording_id=r.recording_id, agent=r.agent, stratum=r.stratum)
            for r in sorted(rows, key=lambda r: (r.agent, r.recording_id))
        ],
    )


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def debtor_stages(session: Session, recordings: Sequence[Recording]) -> dict[str, str]:
    """Each recording's collection stage, from its debtor; "unknown" when none is known.

    A recording imported or placed for an account names it (`debtor_id`, the
    collection system's id, within the recording's client). A softphone call
    knows only the number dialled: its call attempt's number key leads to the
    debtors holding that number (in the recording's client, when it has one).
    """
    clients = {r.id: r.client_id for r in recordings}
    found: dict[str, list[str]] = defaultdict(list)
    accounts: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for chunk in _chunks(sorted({r.debtor_id for r in recordings if r.debtor_id})):
        query = select(Debtor.external_id, Debtor.client_id, Debtor.stage).where(
            Debtor.external_id.in_(chunk)
        )
        for external_id, client_id, stage in session.execute(query):
            accounts[external_id].append((client_id, stage))
    for r in recordings:
        for client_id, stage in accounts.get(r.debtor_id or "", []):
            if r.client_id in (None, client_id):
                found[r.id].append(stage)
    dialled: dict[str, str] = {}
    for chunk in _chunks(sorted(r.id for r in recordings if not found[r.id])):
        attempts = select(CallAttempt.recording_id, CallAttempt.number_key).where(
            CallAttempt.recording_id.in_(chunk)
        )
        dialled.update({rid: key for rid, key in session.execute(attempts) if rid})
    holders: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for chunk in _chunks(sorted(set(dialled.values()))):
        held = (
            select(DebtorNumber.number_key, Debtor.client_id, Debtor.stage)
            .join(Debtor, Debtor.id == DebtorNumber.debtor_id)
            .where(DebtorNumber.number_key.in_(chunk))
        )
        for key, client_id, stage in session.execute(held):
            holders[key].append((client_id, stage))
    for rid, key in dialled.items():
        for client_id, stage in holders.get(key, []):
            if clients[rid] in (None, client_id):
                found[rid].append(stage)
    return {r.id: stage_of(found[r.id]) for r in recordings}


@router.post("/samples", response_model=SampleOut, status_code=201)
def draw_week_sample(
    request: Request, body: SampleIn, user: Annotated[User, Depends(require(*SAMPLERS))]
) -> SampleOut:
    """Draw the week's review sample per agent, stratified by the debtors' collection stage.

    A week is drawn once (a second draw is 409): otherwise a sample could be
    redrawn until it suited someone. The seed, given or generated, is stored
    and audited, so the draw can be repeated by anyone from the same calls.
    """
    services = services_of(request)
    now = services.clock().astimezone(UTC)
    seed = body.seed or secrets.token_hex(8)
    start, end = week_bounds(body.week, services.working_day.tz)
    with services.sessions() as session:
        drawn = session.scalar(select(QaSample).where(QaSample.week == body.week).limit(1))
        if drawn is not None:
            raise HTTPException(
                409,
                f"the sample for {body.week} was drawn by {drawn.drawn_by} "
                f"with seed {drawn.seed}; it is not drawn twice",
            )
        recordings = session.scalars(
            select(Recording).where(
                Recording.recorded_at >= start,
                Recording.recorded_at < end,
                Recording.status != RecordingStatus.DELETED,
            )
        ).all()
        stages = debtor_stages(session, recordings)
        calls = [SampleCall(r.id, r.agent, stages[r.id]) for r in recordings]
        sample = draw_sample(calls, seed, DEFAULT_RATE, DEFAULT_MINIMUM)
        rows = [
            QaSample(
                week=body.week,
                agent=call.agent,
                seed=seed,
                recording_id=call.id,
                stratum=call.stage,
                drawn_by=user.username,
                drawn_at=now,
            )
            for call in sample
        ]
        session.add_all(rows)
        record(
            session,
            user.username,
            "qa-sample",
            body.week,
            now,
            detail={
                "seed": seed,
                "rate": DEFAULT_RATE,
                "minimum": DEFAULT_MINIMUM,
                "calls": len(calls),
                "agents": len({c.agent for c in calls}),
                "drawn": [c.id for c in sample],
            },
        )
    if not rows:
        return SampleOut(week=body.week, seed=seed, drawn_by=user.username, drawn_at=now, calls=[])
    return _sample_out(rows)


@router.get("/samples", response_model=SampleOut)
def week_sample(
    request: Request,
    user: Annotated[User, Depends(require(*SAMPLE_READERS))],
    week: Annotated[str, Query(pattern=_WEEK, description="ISO week, e.g. 2026-W48")],
) -> SampleOut:
    """The week's drawn sample: what the reviewers listen to."""
    services = services_of(request)
    with services.sessions() as session:
        rows = list(session.scalars(select(QaSample).where(QaSample.week == week)))
    if not rows:
        raise HTTPException(404, f"no sample has been drawn for {week}")
    return _sample_out(rows)
