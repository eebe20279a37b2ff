"""Decisions behind the admin pages, without I/O: which account changes are refused, and
what a call policy preset means in words an admin can check against the law.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from api.accounts.models import Role
from dialer.policy import Policy


class Change(enum.StrEnum):
    ROLE = "role"
    DISABLE = "disable"
    ENABLE = "enable"
    UNLOCK = "unlock"
    RESET_TOTP = "reset-totp"


@dataclass(frozen=True)
class Target:
    """The account to change, as it is now."""

    username: str
    role: Role
    disabled: bool


def refused(
    actor: str,
    target: Target,
    change: Change,
    active_admins: int,
    new_role: Role | None = None,
    client: str | None = None,
) -> str | None:
    """Why `actor` may not make `change` to `target`, or None when they may.

    Nobody may lock the site out of its own administration: the last active
    admin keeps the role and stays enabled, and an admin never disables
    themselves (a slip of the mouse would need database surgery to undo).
    """
    if change is Change.DISABLE and actor == target.username:
        return "you cannot disable your own account; ask another admin"
    removes_admin = change is Change.DISABLE or (
        change is Change.ROLE and new_role is not Role.ADMIN
    )
    if removes_admin and target.role is Role.ADMIN and not target.disabled and active_admins <= 1:
        return f"{target.username} is the last admin; make another account admin first"
    if change is Change.ROLE:
        if new_role is None:
            return "choose a role"
        if new_role is Role.AUDITOR and not client:
            return "an auditor sees one client bank's calls: give the client id"
    return None


def _hhmm(policy_time: object) -> str:
    return f"{policy_time:%H:%M}"


def describe_policy(policy: Policy) -> list[str]:
    """The preset's rules, one sentence each, from the preset itself (never a copy of it)."""
    days = (
        "on working days only (public holidays and weekends excluded, make-up working days "
        "included)"
        if policy.working_days_only
        else "any day"
    )
    lines = [
        f"Calls only between {_hhmm(policy.window_start)} and {_hhmm(policy.window_end)} in the "
        f"debtor's local time, {days}.",
    ]
    if policy.quiet_hours is not None:
        begin, end = (_hhmm(t) for t in policy.quiet_hours)
        lines.append(
            f"Never between {begin} and {end}, even when the debtor asked for a call then."
        )
    else:
        lines.append("A call-back time the debtor agreed to may fall outside those hours.")
    if policy.daily_cap is not None:
        lines.append(f"At most {policy.daily_cap} calls a day to one debtor.")
    if policy.streak_days is not None:
        lines.append(
            f"After calls on {policy.streak_days} days in a row, {policy.pause_days} days "
            "without calls."
        )
    if policy.number_daily_cap is not None:
        lines.append(f"At most {policy.number_daily_cap} attempts a day to one number.")
    if policy.unanswered_daily_cap is not None:
        lines.append(
            f"At most {policy.unanswered_daily_cap} unanswered attempts a day to one contact "
            "(number)."
        )
    if policy.rolling_cap is not None:
        lines.append(
            f"At most {policy.rolling_cap} call attempts in {policy.rolling_days} days to one "
            "debtor."
        )
    if policy.after_conversation_days is not None:
        lines.append(
            f"No call within {policy.after_conversation_days} days after a telephone "
            "conversation with the debtor (the day of the conversation is day one)."
        )
    return lines
