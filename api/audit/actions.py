"""What each audit action means, in the reader's language.

The log stores stable action codes (`login`, `play`, `qa-flag-confirm`, ...): they are hashed
into the chain and filtered on, so they never change. A person reading the log (the API's
`GET /api/v1/audit`, the console's audit page) also gets each code's short name and a sentence
saying what happened, translated as they are shown. A code this table does not know (one a
later version writes) is shown as it is.
"""

from __future__ import annotations

from api.i18n import N_, gettext

#: action code -> (short name, what happened)
ACTIONS: dict[str, tuple[str, str]] = {
    "login": (N_("Log in"), N_("Logged in to the console.")),
    "login-failed": (N_("Failed login"), N_("A login was refused.")),
    "logout": (N_("Log out"), N_("Logged out of the console.")),
    "language-changed": (N_("Language changed"), N_("Changed the language of their pages.")),
    "search": (N_("Transcript search"), N_("Searched what was said in calls.")),
    "play": (N_("Recording played"), N_("Listened to a call recording.")),
    "download": (N_("Recording downloaded"), N_("Downloaded a call recording.")),
    "recording-search": (N_("Recordings listed"), N_("Searched the list of recordings.")),
    "recording-export": (N_("Recordings exported"), N_("Exported a list of recordings as a file.")),
    "recording-pause": (N_("Recording paused"), N_("Paused the recording of a live call.")),
    "recording-resume": (N_("Recording resumed"), N_("Resumed the recording of a live call.")),
    "recording-deleted": (
        N_("Recording deleted"),
        N_("Deleted a recording whose retention had ended, with everything derived from it."),
    ),
    "derived-data-deleted": (
        N_("Derived data deleted"),
        N_("Deleted the transcripts and QA results of a recording."),
    ),
    "client-data-deleted": (
        N_("Client data deleted"),
        N_("Deleted the remaining data of a client whose contract ended."),
    ),
    "contract-ended": (N_("Contract ended"), N_("Ended a client's contract.")),
    "legal-hold-on": (N_("Legal hold placed"), N_("Placed a legal hold on a recording.")),
    "legal-hold-off": (N_("Legal hold lifted"), N_("Lifted the legal hold of a recording.")),
    "retention-extended": (
        N_("Retention extended"),
        N_("Extended how long a recording is kept."),
    ),
    "debtor-upsert": (N_("Debtor saved"), N_("Created or updated a debtor's account.")),
    "debtor-view": (N_("Debtor viewed"), N_("Opened a debtor's account.")),
    "debtor-import": (N_("Debtors imported"), N_("Imported a list of debtors.")),
    "debtor-import-refused": (
        N_("Debtor import refused"),
        N_("A debtor list was refused for its bad rows."),
    ),
    "dnc-import": (N_("Do-not-call import"), N_("Imported numbers to a do-not-call list.")),
    "dnc-import-refused": (
        N_("Do-not-call import refused"),
        N_("A do-not-call file was refused for its bad rows."),
    ),
    "dnc-remove": (N_("Do-not-call removal"), N_("Removed a number from a do-not-call list.")),
    "click-to-call": (N_("Call placed"), N_("Placed a call from the console or the API.")),
    "outcome-view": (N_("Call outcome viewed"), N_("Opened the outcome of a call.")),
    "outcomes-read": (N_("Call outcomes listed"), N_("Listed the outcomes of calls.")),
    "qa-flag-confirm": (N_("QA flag confirmed"), N_("Confirmed a QA flag on a call.")),
    "qa-flag-dismiss": (N_("QA flag dismissed"), N_("Dismissed a QA flag on a call.")),
    "qa-flag-appeal": (N_("QA flag appealed"), N_("Appealed a confirmed QA flag.")),
    "qa-flag-uphold": (N_("Appeal upheld"), N_("Upheld an appealed QA flag.")),
    "qa-flag-overturn": (N_("Appeal granted"), N_("Overturned an appealed QA flag.")),
    "qa-export": (N_("QA results exported"), N_("Exported QA results as a file.")),
    "qa-sample": (N_("QA sample drawn"), N_("Drew the week's sample of calls to review.")),
    "qa-pack-uploaded": (N_("Rule pack uploaded"), N_("Uploaded a QA rule pack.")),
    "qa-pack-refused": (N_("Rule pack refused"), N_("An uploaded QA rule pack was refused.")),
    "qa-pack-activated": (N_("Rule pack activated"), N_("Made a QA rule pack the active one.")),
    "qa-pack-examples-added": (
        N_("Examples added to a rule pack"),
        N_("Added reviewed sentences to a QA rule pack's examples, as a new version."),
    ),
    "policy-preset-changed": (N_("Call policy changed"), N_("Changed the site's call policy.")),
    "retrieval-request": (
        N_("Retrieval request filed"),
        N_("Filed a request to retrieve recordings."),
    ),
    "retrieval-fulfil": (N_("Retrieval request answered"), N_("Answered a retrieval request.")),
    "user-created": (N_("Account created"), N_("Created an account.")),
    "user-role-changed": (N_("Role changed"), N_("Changed an account's role.")),
    "user-disabled": (N_("Account disabled"), N_("Disabled an account.")),
    "user-enabled": (N_("Account enabled"), N_("Enabled an account.")),
    "user-unlocked": (N_("Account unlocked"), N_("Unlocked an account after failed logins.")),
    "totp-reset": (N_("One-time codes reset"), N_("Gave an account a new one-time-code secret.")),
    "totp-enrolled": (N_("One-time codes set up"), N_("Set up one-time codes for an account.")),
    "token-issued": (N_("API token issued"), N_("Issued an API token.")),
    "sip-password-set": (N_("SIP login set"), N_("Set an agent's SIP login.")),
    "kek-rotated": (N_("Key rotated"), N_("Rotated the key-encryption key.")),
    "audit-read": (N_("Audit log read"), N_("Read the audit log.")),
}


def action_label(action: str) -> str:
    """The action's short name in the current language; an unknown code as it is."""
    known = ACTIONS.get(action)
    return gettext(known[0]) if known is not None else action


def action_description(action: str) -> str:
    """What the action did, one sentence in the current language; "" for an unknown code."""
    known = ACTIONS.get(action)
    return gettext(known[1]) if known is not None else ""
