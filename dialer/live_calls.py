"""Running calls as the rest of Dialguard sees them: `live_calls`, the API's commands to a
call (pause, resume), and the pause events the audit log follows.

A worker reads the commands queued for the calls it carries (`command_reader`),
writes what happens to them (`event_writer`), and forgets the calls of a
crashed predecessor at its start (`forget_live_calls`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from dialer.calls import CallEvent, Command
from dialer.models import CallCommand, LiveCall, PauseEvent


def command_reader(sessions: sessionmaker[Session]) -> Callable[[Sequence[str]], list[Command]]:
    """The queued commands (pause, resume) for the calls this worker carries, oldest first."""

    def read(call_ids: Sequence[str]) -> list[Command]:
        with sessions() as session:
            rows = session.scalars(
                select(CallCommand)
                .where(CallCommand.status == "queued", CallCommand.call_id.in_(list(call_ids)))
                .order_by(CallCommand.id)
            )
            return [Command(r.id, r.call_id, r.action, r.requested_by) for r in rows]

    return read


def event_writer(sessions: sessionmaker[Session], worker: int) -> Callable[[CallEvent], None]:
    """Keeps `live_calls` current and writes each pause and resume for the audit log.

    A pause event and its command's outcome land in one commit, so an API
    caller never sees a command done whose pause is not on record.
    """

    def write(event: CallEvent) -> None:
        at = datetime.fromtimestamp(event.at, UTC)
        with sessions() as session:
            if event.kind == "started":
                session.merge(
                    LiveCall(
                        call_id=event.call_id,
                        agent=event.agent,
                        worker=worker,
                        started_at=at,
                        paused=False,
                    )
                )
            elif event.kind in ("pause", "resume"):
                live = session.get(LiveCall, event.call_id)
                if live is not None:
                    live.paused = event.kind == "pause"
                session.add(
                    PauseEvent(
                        call_id=event.call_id,
                        action=event.kind,
                        actor=event.actor[:64],
                        source=event.source,
                        at=at,
                        offset_s=event.offset_s,
                        command_id=event.command_id,
                    )
                )
                _mark_command(session, event.command_id, "done", None, at)
            elif event.kind == "refused":
                _mark_command(session, event.command_id, "failed", event.detail, at)
            session.commit()

    return write


def _mark_command(
    session: Session, command_id: int | None, status: str, detail: str | None, now: datetime
) -> None:
    if command_id is None:
        return
    session.execute(
        update(CallCommand)
        .where(CallCommand.id == command_id, CallCommand.status == "queued")
        .values(status=status, detail=(detail or None) and detail[:200], done_at=now)
    )


def call_ended(session: Session, call_id: str, now: datetime) -> None:
    """The call is no longer live; a command it never got to is failed, not left queued."""
    live = session.get(LiveCall, call_id)
    if live is not None:
        session.delete(live)
    session.execute(
        update(CallCommand)
        .where(CallCommand.call_id == call_id, CallCommand.status == "queued")
        .values(status="failed", detail="the call ended first", done_at=now)
    )


def forget_live_calls(sessions: sessionmaker[Session], worker: int, now: datetime) -> None:
    """At a worker's start: the calls its crashed predecessor carried are not live any more."""
    with sessions() as session:
        for live in session.scalars(select(LiveCall).where(LiveCall.worker == worker)):
            call_ended(session, live.call_id, now)
        session.commit()
