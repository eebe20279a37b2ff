"""Decisions behind the admin pages, without I/O: which account changes are refused, and
what a call policy preset means in words an admin can check against the law.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from api.accounts.models import Role
from api.i18n import gettext, translate
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
        return gettext("you cannot disable your own account; ask another admin")
    removes_admin = change is Change.DISABLE or (
        change is Change.ROLE and new_role is not Role.ADMIN
    )
    if removes_admin and target.role is Role.ADMIN and not target.disabled and active_admins <= 1:
        return translate(
            "%(name)s is the last admin; make another account admin first", name=target.username
        )
    if change is Change.ROLE:
        if new_role is None:
            return gettext("choose a role")
        if new_role is Role.AUDITOR and not client:
            return gettext("an auditor sees one client bank's calls: give the client id")
    return None


def _hhmm(policy_time: object) -> str:
    return f"{policy_time:%H:%M}"


def describe_policy(policy: Policy) -> list[str]:
    """The preset's rules, one sentence each, from the preset itself (never a copy of it)."""
    days = (
        gettext(
            "on working days only (public holidays and weekends excluded, make-up working days "
            "included)"
        )
        if policy.working_days_only
        else gettext("any day")
    )
    lines = [
        translate(
            "Calls only between %(start)s and %(end)s in the debtor's local time, %(days)s.",
            start=_hhmm(policy.window_start),
            end=_hhmm(policy.window_end),
            days=days,
        ),
    ]
    if policy.quiet_hours is not None:
        begin, end = (_hhmm(t) for t in policy.quiet_hours)
        lines.append(
            translate(
                "Never between %(begin)s and %(end)s, even when the debtor asked for a call then.",
                begin=begin,
                end=end,
            )
        )
    else:
        lines.append(gettext("A call-back time the debtor agreed to may fall outside those hours."))
    if policy.daily_cap is not None:
        lines.append(translate("At most %(n)s calls a day to one debtor.", n=policy.daily_cap))
    if policy.streak_days is not None:
        lines.append(
            translate(
                "After calls on %(days)s days in a row, %(pause)s days without calls.",
                days=policy.streak_days,
                pause=policy.pause_days,
            )
        )
    if policy.number_daily_cap is not None:
        lines.append(
            translate("At most %(n)s attempts a day to one number.", n=policy.number_daily_cap)
        )
    if policy.unanswered_daily_cap is not None:
        lines.append(
            translate(
                "At most %(n)s unanswered attempts a day to one contact (number).",
                n=policy.unanswered_daily_cap,
            )
        )
    if policy.rolling_cap is not None:
        lines.append(
            translate(
                "At most %(n)s call attempts in %(days)s days to one debtor.",
                n=policy.rolling_cap,
                days=policy.rolling_days,
            )
        )
    if policy.after_conversation_days is not None:
        lines.append(
            translate(
                "No call within %(days)s days after a telephone conversation with the debtor "
                "(the day of the conversation is day one).",
                days=policy.after_conversation_days,
            )
        )
    return lines
