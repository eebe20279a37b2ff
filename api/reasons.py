"""The dialer's refusals in the reader's language.

`dialer.decision` answers with a stable rule code, the time the refusal
ends and an English sentence; the dialer stays free of any language
machinery. An English reader gets that sentence as it is (it carries the
counts behind the refusal); any other reader gets the rule's sentence from
the catalogue, filled from the policy in force and the next allowed time in
the debtor's local time ("明天 08:00").
"""

from __future__ import annotations

from datetime import datetime

from api.i18n import EN, N_, current, gettext, translate, when
from dialer.policy import Policy

_BY_RULE = {
    "allowed": N_("Allowed: every calling-hour and frequency rule passes."),
    "callback": N_("Allowed outside normal calling hours: the debtor agreed to be called now."),
    "window": N_("Outside the calling hours %(start)s-%(end)s in the debtor's local time."),
    "holiday": N_("Not a working day; this policy calls on working days only."),
    "quiet_hours": N_(
        "Within %(quiet_begin)s-%(quiet_end)s, when no collection call is placed, even at "
        "the debtor's request."
    ),
    "daily_cap": N_("Daily call limit reached (%(daily_cap)s calls)."),
    "streak_pause": N_(
        "Called on %(streak_days)s days in a row: %(pause_days)s days without calls."
    ),
    "number_cap": N_("This number's daily limit reached (%(number_daily_cap)s attempts)."),
    "unanswered_cap": N_(
        "Unanswered attempts to this contact reached today's limit (%(unanswered_daily_cap)s)."
    ),
    "regf_7in7": N_("%(rolling_cap)s call attempts in %(rolling_days)s days reached."),
    "regf_after_conversation": N_(
        "No call within %(after_conversation_days)s days after a conversation with the debtor."
    ),
    "do_not_call": N_("This number is on a do-not-call list; it is not called."),
    "number_status": N_("What the last calls taught about this number holds it back for now."),
    "decision_unavailable": N_(
        "The database did not answer, so the call policy could not count this number's calls; "
        "the call is not placed. Try again in a minute."
    ),
}
_NEXT = N_("%(reason)s Next allowed: %(when)s.")
_TODAY = N_("today %(time)s")
_TOMORROW = N_("tomorrow %(time)s")


def next_time(at: datetime, now: datetime) -> str:
    """When a refusal ends, as an agent reads it: today or tomorrow by the clock, else the date."""
    local_now = now.astimezone(at.tzinfo)
    clock = f"{at:%H:%M}"
    days = (at.date() - local_now.date()).days
    if days == 0:
        return translate(_TODAY, time=clock)
    if days == 1:
        return translate(_TOMORROW, time=clock)
    return when(at)


def refusal_text(
    rule: str, reason: str, next_at: datetime | None, now: datetime, policy: Policy
) -> str:
    """The dialer's answer for one number, in the reader's language."""
    message = _BY_RULE.get(rule)
    if current() == EN or message is None:
        return reason
    params: dict[str, object] = {
        "start": f"{policy.window_start:%H:%M}",
        "end": f"{policy.window_end:%H:%M}",
        "daily_cap": policy.daily_cap,
        "streak_days": policy.streak_days,
        "pause_days": policy.pause_days,
        "number_daily_cap": policy.number_daily_cap,
        "unanswered_daily_cap": policy.unanswered_daily_cap,
        "rolling_cap": policy.rolling_cap,
        "rolling_days": policy.rolling_days,
        "after_conversation_days": policy.after_conversation_days,
    }
    if policy.quiet_hours is not None:
        params["quiet_begin"], params["quiet_end"] = (f"{t:%H:%M}" for t in policy.quiet_hours)
    text = gettext(message) % params
    if next_at is None:
        return text
    return translate(_NEXT, reason=text, when=next_time(next_at, now))
