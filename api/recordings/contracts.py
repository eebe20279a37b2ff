"""A client's contract, and what its end does to the client's data.

REQUIREMENTS §5: the agency deletes a client's data when its commission ends.
Recordings are WORM and cannot be cut short, so ending a contract schedules
the deletion: every recording of the client goes when its own retention
ends (the expiry job does it, as for any recording), and from then on no
retention of that client may be extended, unless the recording is under a
legal hold (a dispute or a court order). The contract's row says when the
last of them will be gone; once that date has passed, the retention job
(`api.recordings.erasure.end_contracts`) deletes the client's debtors and
what was derived from its calls, and notes when in `data_deleted_at`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from api.audit.chain import record
from api.errors import UserError
from api.i18n import day, gettext, translate
from recording.db.engine import Base, as_utc
from recording.models import Recording, RecordingStatus

CLIENT_PATTERN = r"^[A-Za-z0-9._@-]{1,64}$"


class ClientContract(Base):
    """A client whose contract has ended (clients with a running contract have no row)."""

    __tablename__ = "client_contracts"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    #: When the last of the client's recordings will have been deleted (its latest retention).
    delete_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: When the retention job deleted the client's debtors and its calls' transcripts and QA
    #: results (`api.recordings.erasure`); empty until `delete_after` has passed.
    data_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Ended:
    client_id: str
    ended_at: datetime
    recordings: int
    delete_after: datetime
    already: bool = False

    def message(self) -> str:
        if self.already:
            return translate(
                "the contract of %(client)s ended on %(day)s already",
                client=self.client_id,
                day=day(self.ended_at),
            )
        return translate(
            "the contract of %(client)s has ended; its %(n)s recording(s) are deleted as their "
            "retention ends, the last by %(day)s, and no retention of theirs can be extended "
            "without a legal hold",
            client=self.client_id,
            n=self.recordings,
            day=day(self.delete_after),
        )


def contract_end(session: Session, client_id: str | None) -> datetime | None:
    """When the client's contract ended, or None while it runs (or for no client)."""
    if client_id is None:
        return None
    row = session.get(ClientContract, client_id)
    return as_utc(row.ended_at) if row is not None else None


def end_contract(session: Session, client_id: str, actor: str, reason: str, now: datetime) -> Ended:
    """Record the end of `client_id`'s contract (once), audited; commits."""
    if not re.match(CLIENT_PATTERN, client_id):
        raise UserError(
            translate("client id %(client)s is not allowed", client=repr(client_id)),
            hint=gettext("letters, digits, '.', '_', '@' or '-', as the debtors' client ids"),
        )
    existing = session.get(ClientContract, client_id)
    kept = session.execute(
        select(func.count(), func.max(Recording.retain_until)).where(
            Recording.client_id == client_id, Recording.status != RecordingStatus.DELETED
        )
    ).one()
    count, last = int(kept[0] or 0), kept[1]
    if existing is not None:
        return Ended(
            client_id,
            as_utc(existing.ended_at),
            count,
            as_utc(existing.delete_after),
            already=True,
        )
    delete_after = max(as_utc(last), now) if last is not None else now
    session.add(
        ClientContract(
            client_id=client_id,
            ended_at=now,
            ended_by=actor,
            reason=reason,
            delete_after=delete_after,
        )
    )
    record(
        session,
        actor,
        "contract-ended",
        client_id,
        now,
        reason=reason,
        detail={"recordings": count, "delete_after": delete_after.isoformat()},
    )
    return Ended(client_id, now, count, delete_after)
