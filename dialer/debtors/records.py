"""Debtors and their numbers as the agency's collection system sends them.

A debtor is identified by its client (the creditor bank) and the account id
that client's system gives it, so re-sending an account updates it instead
of creating a twin. Names and phone numbers are personal data and are kept
only sealed:

- Each debtor row has its own random 256-bit data key (DEK), stored only
  wrapped by the installation's key ring (`recording.keys.KeyWrapper`, the
  same KEKs as recordings), so a KEK rotation re-wraps one small key per
  debtor and a lost database dump without the key file reveals nothing.
  Every upsert seals the row afresh under a new DEK; numbers are replaced
  wholesale anyway, so no old key has to be unwrapped to write.
- The name and each number are AES-256-GCM under that DEK with a random
  96-bit nonce: ``0x01 || nonce (12) || ciphertext || tag (16)``. The
  associated data names the field and the row (client, account id, and for
  a number its keyed hash), so a ciphertext moved to another row or field
  does not open.
- A number is found without decrypting anything by its keyed hash
  (`dialer.service.number_key`, the HMAC the dialer and the do-not-call
  lists already use), and shown as its masked form (`dialer.numbers.mask`).

Nothing here reads settings or logs a name or a full number; errors name
the field and show at most a masked number.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from dialer.numbers import MalformedNumber, mask, normalize, zone_for_number
from dialer.service import number_key
from recording.crypto import DEK_SIZE, TamperedData
from recording.db.engine import Base
from recording.keys import KeyWrapper, WrappedKey

MAX_NUMBERS = 20
MAX_WINDOWS = 14
NAME_MAX = 200
CLIENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
STAGE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
_CLIENT = re.compile(CLIENT_PATTERN)
_EXTERNAL_ID = re.compile(EXTERNAL_ID_PATTERN)
_STAGE = re.compile(STAGE_PATTERN)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: Bidirectional overrides make a name display as something else (Trojan Source).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_SEAL_VERSION = 1
_NONCE_SIZE = 12
_AAD_PREFIX = b"dialguard debtor v1\x00"


class Role(StrEnum):
    """Who answers a number: the dialer and QA treat anyone but the debtor as a third party."""

    DEBTOR = "debtor"
    RELATIVE = "relative"
    EMPLOYER = "employer"
    EMERGENCY = "emergency"


_ROLE_ALIASES = {
    "emergency_contact": Role.EMERGENCY,
    "emergency-contact": Role.EMERGENCY,
    "emergency contact": Role.EMERGENCY,
}


# --- tables ---------------------------------------------------------------------------------


class Debtor(Base):
    """One account of one client; the name is only ever stored sealed."""

    __tablename__ = "debtors"
    __table_args__ = (
        UniqueConstraint("client_id", "external_id", name="uq_debtors_client_external"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(100))
    stage: Mapped[str] = mapped_column(String(32))
    timezone: Mapped[str] = mapped_column(String(64))
    name_ct: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    callback_windows_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DebtorNumber(Base):
    """A number reached for a debtor, tagged by who answers it."""

    __tablename__ = "debtor_numbers"
    __table_args__ = (
        UniqueConstraint("debtor_id", "number_key", name="uq_debtor_numbers_debtor_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    number_masked: Mapped[str] = mapped_column(String(32))
    number_ct: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- validation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Hours the debtor agreed to be called back in, in the debtor's own time zone."""

    days: tuple[str, ...]
    start: time
    end: time

    def as_json(self) -> dict[str, Any]:
        return {
            "days": list(self.days),
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }


@dataclass(frozen=True)
class Number:
    role: Role
    e164: str


@dataclass(frozen=True)
class DebtorIn:
    """One valid account, numbers in E.164: what the upsert writes."""

    client_id: str
    external_id: str
    name: str
    stage: str
    timezone: str
    numbers: tuple[Number, ...]
    windows: tuple[Window, ...]

    def __repr__(self) -> str:  # never put the name or a number in a log or traceback
        return f"DebtorIn({self.client_id}/{self.external_id}, {len(self.numbers)} numbers)"


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field; messages show at most a masked number."""

    field: str
    message: str


class _Bad(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"must be text, not {type(value).__name__}")


def _client(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad("is required")
    if not _CLIENT.match(text):
        raise _Bad("must be 1-64 letters, digits, '.', '_' or '-'")
    return text


def _external_id(value: object) -> str:
    text = _text(value)
    if not text:
        raise _Bad("is required")
    if not _EXTERNAL_ID.match(text):
        raise _Bad(
            "must be 1-100 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
        )
    return text


def _name(value: object) -> str:
    text = unicodedata.normalize("NFC", _text(value))
    if not text:
        raise _Bad("is required")
    if len(text) > NAME_MAX:
        raise _Bad(f"is longer than {NAME_MAX} characters")
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in text):
        raise _Bad("holds control characters")
    return text


def _stage(value: object) -> str:
    text = _text(value).lower()
    if not text:
        raise _Bad("is required")
    if not _STAGE.match(text):
        raise _Bad("must be 1-32 lower-case letters, digits, '_' or '-' (e.g. early, late, legal)")
    return text


def _timezone(value: object) -> str:
    text = _text(value)
    if text and text not in _zones():
        raise _Bad("is not an IANA time zone name (e.g. Asia/Shanghai)")
    return text


def _role(value: object) -> Role:
    text = _text(value).lower()
    role = _ROLE_ALIASES.get(text)
    if role is not None:
        return role
    try:
        return Role(text)
    except ValueError:
        raise _Bad("has an unknown role; use debtor, relative, employer or emergency") from None


def _number_items(value: object) -> list[tuple[object, object]]:
    """(role, number) pairs from `role:number;role:number` or a list of objects."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        pairs: list[tuple[object, object]] = []
        for part in value.split(";"):
            if not part.strip():
                continue
            role, sep, number = part.partition(":")
            if not sep:
                raise _Bad("each entry must be role:number, separated by ';'")
            pairs.append((role, number))
        return pairs
    if isinstance(value, list):
        items: list[tuple[object, object]] = []
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad('each entry must be an object {"role": ..., "number": ...}')
            items.append((item.get("role"), item.get("number")))
        return items
    raise _Bad("must be 'role:number;role:number' or a list of {role, number}")


def _numbers(value: object, region: str) -> tuple[Number, ...]:
    items = _number_items(value)
    if not items:
        raise _Bad("at least one number is required")
    if len(items) > MAX_NUMBERS:
        raise _Bad(f"more than {MAX_NUMBERS} numbers")
    numbers: list[Number] = []
    seen: set[str] = set()
    for index, (role_raw, raw) in enumerate(items, start=1):
        role = _role(role_raw)
        text = _text(raw)
        if not text:
            raise _Bad(f"number {index} is empty")
        try:
            e164 = normalize(text, region)
        except MalformedNumber as exc:
            raise _Bad(f"number {index}: {exc}") from None
        if e164 in seen:
            raise _Bad(f"number {index} ({mask(e164)}) is listed twice")
        seen.add(e164)
        numbers.append(Number(role, e164))
    return tuple(numbers)


def _days(text: str) -> tuple[str, ...]:
    spec = text.strip().lower()
    if spec in ("daily", "every day", "all", "*"):
        return DAYS
    chosen: set[str] = set()
    for part in spec.split(","):
        first, sep, last = part.strip().partition("-")
        first = first.strip()[:3]
        last = last.strip()[:3]
        if first not in DAYS or (sep and last not in DAYS):
            raise _Bad("has unknown days; use Mon-Fri, Sat,Sun or daily")
        lo = DAYS.index(first)
        hi = DAYS.index(last) if sep else lo
        if hi < lo:
            raise _Bad("has a day range that runs backwards; use Mon-Fri, not Fri-Mon")
        chosen.update(DAYS[lo : hi + 1])
    return tuple(d for d in DAYS if d in chosen)


def _clock(text: object) -> time:
    found = _TIME.match(_text(text))
    if not found:
        raise _Bad("has a time that is not HH:MM (00:00-23:59)")
    return time(int(found.group(1)), int(found.group(2)))


def _window(days: object, start: object, end: object) -> Window:
    if isinstance(days, list):
        day_tuple = _days(",".join(_text(d) for d in days))
    else:
        day_tuple = _days(_text(days))
    window = Window(day_tuple, _clock(start), _clock(end))
    if window.end <= window.start:
        raise _Bad(
            f"window {window.start:%H:%M}-{window.end:%H:%M} ends before it starts; "
            "split a window that crosses midnight in two"
        )
    return window


_WINDOW_TEXT = re.compile(
    r"^(?P<days>.+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)


def _windows(value: object) -> tuple[Window, ...]:
    """`Mon-Fri 18:00-20:00; Sat 10:00-12:00`, or JSON [{"days", "start", "end"}]."""
    if value is None or value == "":
        return ()
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Bad("is not valid JSON") from None
    windows: list[Window] = []
    if isinstance(value, str):
        for part in value.split(";"):
            if not part.strip():
                continue
            found = _WINDOW_TEXT.match(part.strip())
            if not found:
                raise _Bad("has an entry not like 'Mon-Fri 18:00-20:00'")
            windows.append(_window(found["days"], found["start"], found["end"]))
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, Mapping):
                raise _Bad('each window must be {"days": ..., "start": "HH:MM", "end": "HH:MM"}')
            windows.append(_window(item.get("days"), item.get("start"), item.get("end")))
    else:
        raise _Bad("must be 'Mon-Fri 18:00-20:00; ...' or a list of windows")
    if len(windows) > MAX_WINDOWS:
        raise _Bad(f"more than {MAX_WINDOWS} windows")
    return tuple(windows)


def validate_row(raw: Mapping[str, object], region: str) -> DebtorIn | list[FieldError]:
    """One account checked whole: every bad field is named, so one pass fixes a file.

    `raw` holds client, external_id, name, stage, timezone, numbers and
    callback_windows as they came from a CSV line, a JSON object or the API.
    A missing time zone is taken from the first debtor-role number when its
    numbering plan has exactly one.
    """
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for field, check in (
        ("client", _client),
        ("external_id", _external_id),
        ("name", _name),
        ("stage", _stage),
        ("timezone", _timezone),
        ("callback_windows", _windows),
    ):
        try:
            values[field] = check(raw.get(field))
        except _Bad as exc:
            errors.append(FieldError(field, f"{field} {exc.message}"))
    try:
        values["numbers"] = _numbers(raw.get("numbers"), region)
    except _Bad as exc:
        errors.append(FieldError("numbers", f"numbers: {exc.message}"))
    if not errors and not values["timezone"]:
        own = [n for n in values["numbers"] if n.role is Role.DEBTOR]
        zone = zone_for_number(own[0].e164) if own else None
        if zone is None:
            errors.append(
                FieldError("timezone", "timezone is required (the numbers do not pin one)")
            )
        else:
            values["timezone"] = zone.key
    if errors:
        return errors
    return DebtorIn(
        client_id=values["client"],
        external_id=values["external_id"],
        name=values["name"],
        stage=values["stage"],
        timezone=values["timezone"],
        numbers=values["numbers"],
        windows=values["callback_windows"],
    )


# --- sealing --------------------------------------------------------------------------------


def _aad(debtor: Debtor | DebtorIn, field: str) -> bytes:
    return b"\x00".join(
        [_AAD_PREFIX, field.encode(), debtor.client_id.encode(), debtor.external_id.encode()]
    )


def _seal(cipher: AESGCM, plaintext: str, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE_SIZE)
    return bytes([_SEAL_VERSION]) + nonce + cipher.encrypt(nonce, plaintext.encode(), aad)


def _open(cipher: AESGCM, sealed: bytes, aad: bytes) -> str:
    if len(sealed) < 1 + _NONCE_SIZE + 16 or sealed[0] != _SEAL_VERSION:
        raise TamperedData("a sealed debtor field is malformed")
    try:
        return cipher.decrypt(sealed[1 : 1 + _NONCE_SIZE], sealed[1 + _NONCE_SIZE :], aad).decode()
    except InvalidTag:
        raise TamperedData(
            "a sealed debtor field does not authenticate (altered, or moved from another row)"
        ) from None


@dataclass(frozen=True)
class Sealer:
    """Seals and opens debtors' personal data; built from the key ring and the number secret."""

    keys: KeyWrapper
    number_secret: bytes

    def __post_init__(self) -> None:
        if len(self.number_secret) < 16:
            raise ValueError("the number secret must be at least 16 random bytes")

    def __repr__(self) -> str:
        return "Sealer(...)"

    def key_of(self, e164: str) -> str:
        return number_key(self.number_secret, e164)

    def _cipher(self, debtor: Debtor) -> AESGCM:
        return AESGCM(self.keys.unwrap(WrappedKey(debtor.kek_id, debtor.wrapped_key)))

    def name(self, debtor: Debtor) -> str:
        return _open(self._cipher(debtor), debtor.name_ct, _aad(debtor, "name"))

    def numbers(self, debtor: Debtor, rows: Iterable[DebtorNumber]) -> list[str]:
        """The E.164 numbers, for the dialer only: never for display or logs."""
        cipher = self._cipher(debtor)
        return [
            _open(cipher, row.number_ct, _aad(debtor, "number:" + row.number_key)) for row in rows
        ]

    def seal(self, debtor: DebtorIn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Column values of the debtor row and of its number rows (without debtor_id)."""
        dek = os.urandom(DEK_SIZE)
        wrapped = self.keys.wrap(dek)
        cipher = AESGCM(dek)
        row = {
            "client_id": debtor.client_id,
            "external_id": debtor.external_id,
            "stage": debtor.stage,
            "timezone": debtor.timezone,
            "name_ct": _seal(cipher, debtor.name, _aad(debtor, "name")),
            "kek_id": wrapped.kek_id,
            "wrapped_key": wrapped.blob,
            "callback_windows_json": json.dumps(
                [w.as_json() for w in debtor.windows], separators=(",", ":")
            ),
        }
        numbers = []
        for number in debtor.numbers:
            key = self.key_of(number.e164)
            numbers.append(
                {
                    "role": number.role.value,
                    "number_key": key,
                    "number_masked": mask(number.e164),
                    "number_ct": _seal(cipher, number.e164, _aad(debtor, "number:" + key)),
                }
            )
        return row, numbers


# --- writing --------------------------------------------------------------------------------


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
