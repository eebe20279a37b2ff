"""Debtors and their numbers as the agency's collection system sends them.

The tables (`models`), each row checked field by field (`validation`), names
and numbers sealed at rest (`sealing`), the bulk upsert and lookups
(`store`), what a call knows of its debtor (`facts`), and whole-file imports
(`bulk_import`, imported on its own).
"""

from dialer.debtors.facts import REQUEST_DEBTOR, DebtorFacts, debtor_facts
from dialer.debtors.models import Debtor, DebtorNumber, Role
from dialer.debtors.sealing import Sealer
from dialer.debtors.store import UpsertCounts, find, numbers_of, upsert, windows_of
from dialer.debtors.validation import (
    CLIENT_PATTERN,
    DAYS,
    EXTERNAL_ID_PATTERN,
    MAX_NUMBERS,
    MAX_WINDOWS,
    NAME_MAX,
    STAGE_PATTERN,
    DebtorIn,
    FieldError,
    Number,
    Window,
    validate_row,
)

__all__ = [
    "CLIENT_PATTERN",
    "DAYS",
    "EXTERNAL_ID_PATTERN",
    "MAX_NUMBERS",
    "MAX_WINDOWS",
    "NAME_MAX",
    "REQUEST_DEBTOR",
    "STAGE_PATTERN",
    "Debtor",
    "DebtorFacts",
    "DebtorIn",
    "DebtorNumber",
    "FieldError",
    "Number",
    "Role",
    "Sealer",
    "UpsertCounts",
    "Window",
    "debtor_facts",
    "find",
    "numbers_of",
    "upsert",
    "validate_row",
    "windows_of",
]
