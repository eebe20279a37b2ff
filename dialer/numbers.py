"""Phone numbers: normalisation to E.164, masking for logs, time zone from the number, and the
keyed hash that finds a number without storing it.

Numbers are personal data. Everything that logs one logs `mask(number)`;
only the normalised form is ever compared, so "138 0013 8000",
"+86 138-0013-8000" and "008613800138000" are one number to every rule.
Where a number must be found again (call attempts, do-not-call lists, debtor
records) it is stored as `number_key(secret, e164)`, an HMAC under the site's
number secret (`load_or_create_secret`).

A number is digits. Letters (``13800ABC000``) are a data error, not a vanity
number to be read off a phone keypad, unless the site turns vanity numbers on
(``DIALGUARD_ALLOW_VANITY_NUMBERS``, passed down as ``allow_vanity``). An
extension (``;ext=12``, ``x12``, ``#12``, ``,,12``, ``转12``) is refused: the
trunk would ring the main line and the extension would be lost silently.

Full-width digits and signs (``１３８ ００１３ ８０００``, ``＋８６``), which
Chinese input methods and bank exports produce, are folded (NFKC) before
anything else, so they are the same number as their ASCII twins.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from pathlib import Path
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, timezone

from dialer.errors import DialerError
from dialer.said import Said, said
from recording.keys import read_or_create_secret


class MalformedNumber(DialerError):
    """Not a dialable phone number; `said` is why, for `api` to say in the reader's language."""

    def __init__(self, what: Said, hint: str = "") -> None:
        super().__init__(what.text, hint)
        self.said = what


_REASONS = {
    phonenumbers.ValidationResult.TOO_SHORT: "why.too_short",
    phonenumbers.ValidationResult.TOO_LONG: "why.too_long",
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "why.country_code",
    phonenumbers.ValidationResult.INVALID_LENGTH: "why.wrong_length",
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "why.country_code",
    NumberParseException.NOT_A_NUMBER: "why.no_digits",
    NumberParseException.TOO_SHORT_AFTER_IDD: "why.too_short",
    NumberParseException.TOO_SHORT_NSN: "why.too_short",
    NumberParseException.TOO_LONG: "why.too_long",
}


def _masked(raw: str) -> str | Said:
    return mask(raw) or said("number.this_entry")


_URI_SCHEME = re.compile(r"^(tel|sips?):", re.IGNORECASE)
_EXTENSION_WORDS = ("转", "分机")  # "extension" as written in Chinese records


def normalize(raw: str, region: str, *, allow_vanity: bool = False) -> str:
    """E.164 form of `raw`, read as a number of `region` when it has no country code.

    Refused (`MalformedNumber`): anything that is not a valid number of its
    region, a number with an extension, and letters unless `allow_vanity`.
    """
    cleaned = unicodedata.normalize("NFKC", raw).strip()
    if cleaned.startswith("00"):  # international prefix as dialed from China and Europe
        cleaned = "+" + cleaned[2:]
    if any(word in cleaned for word in _EXTENSION_WORDS):
        raise _extension(raw)
    try:
        parsed = phonenumbers.parse(cleaned, region)
    except NumberParseException as exc:
        why = said(_PARSE_REASONS.get(exc.error_type, "why.unreadable"))
        raise MalformedNumber(
            said("number.unreadable", masked=_masked(raw), why=why),
            hint="enter digits with an optional +country code",
        ) from None
    if parsed.extension:
        raise _extension(raw)
    if not allow_vanity and any(c.isalpha() for c in _URI_SCHEME.sub("", cleaned)):
        raise MalformedNumber(
            said("number.letters", masked=_masked(raw)),
            hint="correct the number in the debtor records; vanity numbers (1-800-FLOWERS) "
            "are dialed only where DIALGUARD_ALLOW_VANITY_NUMBERS is on",
        )
    if not phonenumbers.is_valid_number(parsed):
        why = said(
            _REASONS.get(phonenumbers.is_possible_number_with_reason(parsed), "why.not_assigned")
        )
        raise MalformedNumber(
            said("number.invalid", masked=mask(raw), why=why),
            hint="check the digits and the country code",
        )
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def _extension(raw: str) -> MalformedNumber:
    return MalformedNumber(
        said("number.extension", masked=_masked(raw)),
        hint="dial the main number and ask for the extension; keep the extension in the notes",
    )


def mask(number: str) -> str:
    """Enough to tell numbers apart in a log, not enough to dial: +86138****8000."""
    number = unicodedata.normalize("NFKC", number)
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 8:  # not a real number; show almost nothing of it
        return "*" * max(0, len(digits) - 2) + "".join(digits[-2:])
    keep_head = min(5, max(0, len(digits) - 8))
    head = "".join(digits[:keep_head])
    tail = "".join(digits[-4:])
    prefix = "+" if number.strip().startswith("+") else ""
    return f"{prefix}{head}{'*' * (len(digits) - keep_head - 4)}{tail}"


def zone_for_number(e164: str) -> ZoneInfo | None:
    """The number's time zone when the numbering plan pins it to exactly one."""
    zones = timezone.time_zones_for_number(phonenumbers.parse(e164))
    known = [z for z in zones if z != timezone.UNKNOWN_TIMEZONE]
    return ZoneInfo(known[0]) if len(known) == 1 else None


def number_key(secret: bytes, e164: str) -> str:
    """A keyed hash of a number: counts attempts per number without storing it."""
    return hmac.new(secret, e164.encode(), hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    """32 random bytes kept in a 0600 file; every dialer of a site must share it."""
    return read_or_create_secret(path)
