"""The debtor tables: one row per account of a client, one per number reached for it.

A debtor is identified by its client (the creditor bank) and the account id
that client's system gives it, so re-sending an account updates it instead
of creating a twin. The name and each number are stored only sealed
(dialer/debtors/sealing.py); a number is found by its keyed hash
(`dialer.numbers.number_key`) and shown as its masked form.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from recording.db.engine import Base


class Role(StrEnum):
    """Who answers a number: the dialer and QA treat anyone but the debtor as a third party."""

    DEBTOR = "debtor"
    RELATIVE = "relative"
    EMPLOYER = "employer"
    EMERGENCY = "emergency"


class Debtor(Base):
    """One account of one client; the name is only ever stored sealed."""

    __tablename__ = "debtors"
    __table_args__ = (
        UniqueConstraint("client_id", "external_id", name="uq_debtors_client_external"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    name_ct: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    callback_windows_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DebtorNumber(Base):
    """A number reached for a debtor, tagged by who answers it."""

    __tablename__ = "debtor_numbers"
    __table_args__ = (
        UniqueConstraint("debtor_id", "number_key", name="uq_debtor_numbers_debtor_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    number_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
