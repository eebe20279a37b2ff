"""The words a page shows for codes the other packages store: roles, states, QA categories,
rule ids, speakers. The codes themselves stay in forms, URLs, data attributes and the API, so a
script or a test reads the same in both languages; only what a person reads is translated.
"""

from __future__ import annotations

from api.i18n import EN, N_, current, gettext

_LABELS: dict[str, dict[str, str]] = {
    "state": {  # QA flags
        "open": N_("open"),
        "confirmed": N_("confirmed"),
        "dismissed": N_("dismissed"),
        "appealed": N_("appealed"),
        "upheld": N_("upheld"),
        "overturned": N_("overturned"),
    },
    "recording": {
        "spooled": N_("spooled"),
        "stored": N_("stored"),
        "deleted": N_("deleted"),
    },
    "request": {  # click-to-call requests
        "queued": N_("queued"),
        "claimed": N_("claimed"),
        "done": N_("done"),
        "failed": N_("failed"),
    },
    "speaker": {
        "agent": N_("agent"),
        "debtor": N_("debtor"),
        "any": N_("either party"),
    },
    "number_role": {
        "debtor": N_("debtor"),
        "guarantor": N_("guarantor"),
        "spouse": N_("spouse"),
        "relative": N_("relative"),
        "contact": N_("contact"),
        "work": N_("work"),
        "home": N_("home"),
        "mobile": N_("mobile"),
        "emergency": N_("emergency contact"),
        "employer": N_("employer"),
        "colleague": N_("colleague"),
        "friend": N_("friend"),
        "other": N_("other"),
    },
    "column": {  # an export's column headers, codes in English (what scripts read)
        "id": N_("recording id"),
        "call_id": N_("call id"),
        "agent": N_("agent"),
        "client_id": N_("client"),
        "debtor_id": N_("case (account ref.)"),
        "recorded_at": N_("recorded at"),
        "duration_s": N_("length (s)"),
        "status": N_("recording state"),
        "legal_hold": N_("legal hold"),
        "week": N_("week"),
        "calls": N_("calls"),
        "average": N_("reviewed average"),
        "machine_average": N_("machine average"),
        "recording_id": N_("recording id"),
        "pack": N_("rule pack"),
        "score": N_("machine score"),
        "reviewed_score": N_("reviewed score"),
        "kind": N_("kind"),
        "start_s": N_("from (s)"),
        "end_s": N_("to (s)"),
        "speaker": N_("speaker"),
        "category": N_("category"),
        "rule": N_("rule"),
        "severity": N_("level"),
        "state": N_("review state"),
        "needs_listening": N_("uncertain words"),
        "flag_score": N_("flag score"),
        "text": N_("said"),
    },
    "qa_row": {  # what a row of a call's QA export is
        "flag": N_("flag"),
        "missing": N_("missing statement"),
    },
    "dnc_scope": {
        "global": N_("global"),
        "client": N_("client"),
        "debtor": N_("debtor's"),
    },
    "weekday": {
        "mon": N_("mon"),
        "tue": N_("tue"),
        "wed": N_("wed"),
        "thu": N_("thu"),
        "fri": N_("fri"),
        "sat": N_("sat"),
        "sun": N_("sun"),
    },
    "stage": {  # the common collection stages; a bank's own code shows as it is
        "early": N_("early"),
        "mid": N_("mid"),
        "late": N_("late"),
        "legal": N_("legal"),
        "pre-legal": N_("pre-legal"),
        "write-off": N_("write-off"),
    },
    "pack_language": {
        "zh": N_("Chinese"),
        "en": N_("English"),
    },
    "category": {
        "abuse": N_("abuse"),
        "defamation": N_("defamation"),
        "false-promise": N_("false promise"),
        "identity": N_("identity"),
        "impersonation": N_("impersonation"),
        "insult": N_("insult"),
        "intimidation": N_("intimidation"),
        "irrational-urging": N_("irrational urging"),
        "overdue-facts": N_("overdue facts"),
        "personal-collection": N_("personal collection"),
        "provocation": N_("provocation"),
        "repayment-method": N_("repayment method"),
        "third-party-disclosure": N_("third-party disclosure"),
        "third-party-harassment": N_("third-party harassment"),
        "threat": N_("threat"),
    },
    "rule": {  # QA rule ids of the shipped packs, and the dialer's refusal rules
        "insult-abuse": N_("insults and abuse"),
        "threat-violence": N_("threat of violence"),
        "intimidation-false-consequences": N_("intimidation with false consequences"),
        "defamation-label": N_("defamatory labels"),
        "provocation": N_("provocation"),
        "harass-third-parties": N_("harassing third parties"),
        "disclose-to-third-party": N_("debt disclosed to a third party"),
        "rpv-debt-before-verification": N_("debt named before the debtor was verified"),
        "impersonate-authority": N_("posing as an authority"),
        "impersonate-bank": N_("posing as the bank"),
        "false-promise": N_("false promise"),
        "urge-irrational": N_("urging irrational borrowing"),
        "urge-self-harm": N_("urging self-harm"),
        "personal-collection": N_("collecting into a personal account"),
        "identity-and-agency": N_("agent and agency named"),
        "overdue-facts": N_("overdue facts stated"),
        "repayment-method": N_("repayment method stated"),
        "threat-arrest": N_("threat of arrest"),
        "threat-lawsuit": N_("threat of a lawsuit"),
        "abusive-language": N_("abusive language"),
        "impersonation": N_("impersonation"),
        "allowed": N_("allowed"),
        "callback": N_("agreed call-back"),
        "window": N_("calling hours"),
        "holiday": N_("working days"),
        "quiet_hours": N_("quiet hours"),
        "daily_cap": N_("daily limit"),
        "streak_pause": N_("pause after consecutive days"),
        "number_cap": N_("number's daily limit"),
        "unanswered_cap": N_("unanswered limit"),
        "regf_7in7": N_("7 calls in 7 days"),
        "regf_after_conversation": N_("after a conversation"),
        "do_not_call": N_("do-not-call list"),
        "number_status": N_("number status"),
        "decision_unavailable": N_("decision unavailable"),
    },
    "component": {
        "database": N_("database"),
        "dialer": N_("dialer"),
        "uploader": N_("uploader"),
        "transcriber": N_("transcriber"),
        "qa": N_("QA scoring"),
        "webhooks": N_("webhooks"),
        "announcements": N_("carrier announcements"),
        "storage": N_("storage"),
        "storage-replica": N_("storage (replica)"),
    },
}


def label(kind: str, code: object) -> str:
    """The reader's word for `code`; the code itself when it has none (a rule of an uploaded
    pack, a new state), since a code is still better than nothing.

    The codes are English words already, and English readers and their scripts have long
    read them as they are; the msgids below give a translator the meaning, not the code.
    """
    text = "" if code is None else str(code)
    if current() == EN:
        return text  # English pages show the codes, as they always have
    found = _LABELS.get(kind, {}).get(text)
    return gettext(found) if found is not None else text
