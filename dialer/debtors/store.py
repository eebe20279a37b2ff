"""Writing and reading debtor rows: the bulk upsert by account, and lookups.

Nothing here reads settings or logs a name or a full number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from dialer.debtors.models import Debtor, DebtorNumber
from dialer.debtors.sealing import Sealer
from dialer.debtors.validation import DebtorIn


@dataclass(frozen=True)
class UpsertCounts:
    created: int
    updated: int


def _existing_ids(session: Session, wanted: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Ids of the accounts among `wanted` already stored, looked up 500 at a time."""
    existing: dict[tuple[str, str], int] = {}
    by_client: dict[str, list[str]] = {}
    for client_id, external_id in wanted:
        by_client.setdefault(client_id, []).append(external_id)
    for client_id, external_ids in by_client.items():
        for start in range(0, len(external_ids), 500):
            found = session.execute(
                select(Debtor.id, Debtor.external_id).where(
                    Debtor.client_id == client_id,
                    Debtor.external_id.in_(external_ids[start : start + 500]),
                )
            )
            existing.update({(client_id, ext): id_ for id_, ext in found})
    return existing


def upsert(
    session: Session, debtors: Sequence[DebtorIn], sealer: Sealer, now: datetime
) -> UpsertCounts:
    """Create or update `debtors` (unique by client and account id); the caller commits.

    Statements go out in bulk (one lookup, one insert, one update and one
    delete per call) so that a large import is bounded by the database, not
    by round trips; numbers of an updated debtor are replaced, not merged,
    because the collection system is the source of truth for them.
    """
    if not debtors:
        return UpsertCounts(0, 0)
    wanted = [(d.client_id, d.external_id) for d in debtors]
    if len(set(wanted)) != len(wanted):
        raise ValueError("the same account appears twice in one upsert")
    existing = _existing_ids(session, wanted)
    sealed = [sealer.seal(d) for d in debtors]
    new_rows: list[dict[str, Any]] = []
    new_numbers: list[list[dict[str, Any]]] = []
    changed_rows: list[dict[str, Any]] = []
    number_rows: list[dict[str, Any]] = []
    for debtor, (row, numbers) in zip(debtors, sealed, strict=True):
        debtor_id = existing.get((debtor.client_id, debtor.external_id))
        if debtor_id is None:
            new_rows.append({**row, "created_at": now, "updated_at": now})
            new_numbers.append(numbers)
        else:
            changed_rows.append({**row, "id": debtor_id, "updated_at": now})
            number_rows.extend({**n, "debtor_id": debtor_id, "created_at": now} for n in numbers)
    if changed_rows:
        ids = [row["id"] for row in changed_rows]
        for start in range(0, len(ids), 500):
            session.execute(
                delete(DebtorNumber).where(DebtorNumber.debtor_id.in_(ids[start : start + 500]))
            )
        session.execute(update(Debtor), changed_rows)
    if new_rows:
        new_ids = session.scalars(
            insert(Debtor).returning(Debtor.id, sort_by_parameter_order=True), new_rows
        ).all()
        for debtor_id, numbers in zip(new_ids, new_numbers, strict=True):
            number_rows.extend({**n, "debtor_id": debtor_id, "created_at": now} for n in numbers)
    if number_rows:
        session.execute(insert(DebtorNumber), number_rows)
    return UpsertCounts(created=len(new_rows), updated=len(changed_rows))


def find(session: Session, client_id: str, external_id: str) -> Debtor | None:
    return session.scalar(
        select(Debtor).where(Debtor.client_id == client_id, Debtor.external_id == external_id)
    )


def numbers_of(session: Session, debtor: Debtor) -> list[DebtorNumber]:
    return list(
        session.scalars(
            select(DebtorNumber)
            .where(DebtorNumber.debtor_id == debtor.id)
            .order_by(DebtorNumber.id)
        )
    )


def windows_of(debtor: Debtor) -> list[dict[str, Any]]:
    windows: list[dict[str, Any]] = json.loads(debtor.callback_windows_json)
    return windows
