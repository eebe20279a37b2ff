"""`dialguard policy check`: the call policy's answer for one number at one moment.

The same decision the dialer makes before a call leaves, computed from a
history file instead of the database, so a supervisor can try a preset and
an auditor can replay a past decision.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.errors import ApiError
from api.i18n import gettext, translate
from api.import_messages import say
from api.reasons import refusal_text
from api.settings import Settings
from dialer.numbers import MalformedNumber, normalize, zone_for_number
from dialer.policy import PRESETS, Attempt, debtor_zone, decide, preset
from dialer.workdays import load_calendar


class HistoryError(ApiError):
    """The history file cannot be read as a list of attempts."""


def read_history(path: Path, debtor_id: str, number: str) -> list[Attempt]:
    """`[{"at": ISO 8601, "connected": bool}, ...]`: earlier attempts to this debtor.

    A connected attempt counts as a conversation for Reg F's 7-day rule: the
    dialer only marks a call connected when the debtor answered.
    """
    try:
        items = json.loads(path.read_text())
        if not isinstance(items, list):
            raise ValueError("the file holds no JSON list")
        attempts = []
        for i, item in enumerate(items):
            at = datetime.fromisoformat(item["at"])
            if at.tzinfo is None:
                raise ValueError(f"item {i}: 'at' needs a UTC offset, e.g. +08:00")
            connected = bool(item.get("connected", False))
            attempts.append(
                Attempt(
                    at=at,
                    debtor_id=debtor_id,
                    number=number,
                    connected=connected,
                    conversation=connected,
                )
            )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryError(
            translate("history file %(path)s is not usable (%(problem)s)", path=path, problem=exc),
            hint=gettext(
                'give a JSON list like [{"at": "2026-11-24T10:00:00+08:00", "connected": false}]'
            ),
        ) from None
    return attempts


#: The answer's reason in the operator's language, for the printed line; `--json` leaves it out
#: (scripts read `rule` and the English `reason`).
SHOWN = "shown"


def policy_check(
    settings: Settings,
    number: str,
    at: datetime,
    debtor_id: str | None,
    preset_name: str,
    history: Path | None,
) -> dict[str, Any]:
    try:
        e164 = normalize(number, settings.phone_region, allow_vanity=settings.allow_vanity_numbers)
    except MalformedNumber as exc:
        return {
            "allowed": False,
            "rule": "malformed_number",
            "reason": str(exc),
            "next_allowed_at": None,
            SHOWN: say(exc.said),
        }
    if preset_name not in PRESETS:
        raise ApiError(
            translate(
                "unknown call policy %(name)s; valid names: %(valid)s",
                name=repr(preset_name),
                valid=", ".join(sorted(PRESETS)),
            ),
            hint=gettext("pass --preset with one of the names above"),
        )
    policy = preset(preset_name)
    site = ZoneInfo(settings.timezone)
    if at.tzinfo is None:
        at = at.replace(tzinfo=site)
    debtor = debtor_id or e164
    attempts = read_history(history, debtor, e164) if history else []
    decision = decide(
        policy,
        at,
        debtor_zone(None, zone_for_number(e164), site),
        debtor_id=debtor,
        number=e164,
        attempts=attempts,
        calendar=load_calendar() if policy.working_days_only else None,
    )
    return {
        SHOWN: refusal_text(
            decision.rule.value, decision.reason, decision.next_allowed_at, at, policy
        ),
        "allowed": decision.allowed,
        "rule": decision.rule.value,
        "reason": decision.reason,
        "next_allowed_at": decision.next_allowed_at.isoformat()
        if decision.next_allowed_at
        else None,
    }
