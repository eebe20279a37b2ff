"""What a call knows of the debtor it is for: who it is, their client, zone, agreed call-back
windows, and whose do-not-call lists apply.

`debtor_facts` is the one place these are read, for everyone who decides a
call: the dialer worker before a call leaves and when it books it, the
click-to-call route when it queues a request for a debtor (which copies the
facts into the request, `DebtorFacts.request_columns`, so the worker decides
on the record as it was when the call was asked for), and the agent's page
that says whether a number may be called now. So the page, the route and
the worker cannot disagree about a debtor.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from dialer.debtors.models import Debtor, DebtorNumber
from dialer.models import CallRequest

log = logging.getLogger(__name__)

#: An account id a call can carry: it fits the call tables (CallRequest, CallAttempt).
REQUEST_DEBTOR = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


@dataclass(frozen=True)
class DebtorFacts:
    """Who a call is for: the debtor a click-to-call names, or who holds a dialed number.

    `holders` lists every (client, account id) whose record holds the number
    of a call dialed from a keypad; each one's do-not-call lists apply. The
    other fields are set when exactly one debtor is meant.
    """

    debtor_id: str | None = None
    client_id: str | None = None
    zone: ZoneInfo | None = None
    callback_windows: tuple[dict[str, object], ...] = ()
    holders: tuple[tuple[str, str], ...] = ()

    def request_columns(self) -> dict[str, str | None]:
        """The `CallRequest` columns a click-to-call for this debtor copies, read back by
        `debtor_facts(request_id=...)` in the worker that places it."""
        one = self.debtor_id is not None
        return {
            "debtor_id": self.debtor_id,
            "client_id": self.client_id if one else None,
            "debtor_tz": self.zone.key if one and self.zone is not None else None,
            "callback_windows_json": (
                json.dumps(list(self.callback_windows), separators=(",", ":")) if one else None
            ),
        }


def debtor_facts(
    debtor: Debtor | None = None,
    *,
    session: Session | None = None,
    request_id: int | None = None,
    number_key: str | None = None,
) -> DebtorFacts:
    """The facts of whoever a call is for, from the first of these that is given:

    - `debtor`: the record an agent picked (the agent's page, the click-to-call
      route). An account id too long for a request goes without: the call is
      then decided on the number alone, as for a softphone's own call.
    - `request_id` (with `session`): a click-to-call being placed, for the
      debtor it names: the facts its route copied into the request.
    - `number_key` (with `session`): a call for no named debtor (a softphone's
      keypad, a click-to-call without a debtor): whoever holds the number in
      the debtor records. One holder: the call is that debtor's (zone,
      call-back windows, caps). Several (a family phone): no one debtor is
      meant, but every holder's do-not-call lists still apply.
    """
    if debtor is not None:
        if not re.match(REQUEST_DEBTOR, debtor.external_id):
            return DebtorFacts()
        return _facts(
            debtor.external_id,
            debtor.client_id,
            debtor.timezone,
            debtor.callback_windows_json,
            f"debtor {debtor.client_id}/{debtor.external_id}",
        )
    if session is None:
        if request_id is not None or number_key is not None:
            raise ValueError("a request's or a number's debtor is read with a session")
        return DebtorFacts()
    request = session.get(CallRequest, request_id) if request_id is not None else None
    if request is not None and request.debtor_id is not None:
        return _facts(
            request.debtor_id,
            request.client_id,
            request.debtor_tz,
            request.callback_windows_json,
            f"request {request_id}",
        )
    if number_key is None:
        return DebtorFacts()
    rows = session.execute(
        select(Debtor.client_id, Debtor.external_id, Debtor.timezone, Debtor.callback_windows_json)
        .join(DebtorNumber, DebtorNumber.debtor_id == Debtor.id)
        .where(DebtorNumber.number_key == number_key)
        .order_by(Debtor.client_id, Debtor.external_id)
    ).all()
    holders = tuple((row.client_id, row.external_id) for row in rows)
    if len(rows) != 1:
        return DebtorFacts(holders=holders)
    [row] = rows
    where = f"debtor {row.client_id}/{row.external_id}"
    facts = _facts(row.external_id, row.client_id, row.timezone, row.callback_windows_json, where)
    return replace(facts, holders=holders)


def _facts(
    debtor_id: str, client_id: str | None, zone: str | None, windows: str | None, where: str
) -> DebtorFacts:
    return DebtorFacts(debtor_id, client_id, _zone(zone, where), tuple(json.loads(windows or "[]")))


def _zone(name: str | None, where: str) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown debtor time zone on %s; using the number's", where)
        return None
