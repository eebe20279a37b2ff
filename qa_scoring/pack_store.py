"""Rule packs an admin uploads and the pack the site scores calls with.

An uploaded pack is validated exactly like a shipped one (qa_scoring.pack)
before it is stored, so a stored pack always loads; its YAML is kept as
uploaded, with its name and version, and is never edited in place: a
changed pack is a new version. The active pack is a site setting
("shipped:NAME" or "uploaded:ID"); without one, DIALGUARD_QA_PACK applies.
The QA worker cannot import this package, so `active_pack_source` hands it a
callable that reads the choice before each batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from qa_scoring.errors import QaError
from qa_scoring.pack import Pack, load_pack, parse_pack, shipped_packs
from recording.db.engine import Base
from recording.db.site_settings import QA_PACK, read_setting, write_setting

log = logging.getLogger(__name__)

MAX_PACK_BYTES = 512 * 1024
SHIPPED, UPLOADED = "shipped", "uploaded"


class UploadedPack(Base):
    """A pack's YAML as an admin uploaded it; one row per name and version."""

    __tablename__ = "qa_packs"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_qa_packs_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8))
    rules: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PackUploadRefused(QaError):
    """The upload is a valid pack but cannot be stored (too big, version already there)."""


@dataclass(frozen=True)
class PackChoice:
    """One pack an admin can make active."""

    ref: str  # "shipped:NAME" or "uploaded:ID"
    origin: str  # shipped | uploaded
    name: str
    version: str
    language: str
    rules: int
    uploaded_by: str | None = None
    uploaded_at: datetime | None = None


def _source(row: UploadedPack) -> str:
    return f"{row.name} v{row.version} (uploaded {row.filename})"


def _shipped_ref(name: str) -> str:
    return f"{SHIPPED}:{name}"


def default_ref(setting: str) -> str:
    """The reference DIALGUARD_QA_PACK stands for (a shipped name, or a YAML path)."""
    return _shipped_ref(setting) if setting in shipped_packs() else setting


def choices(session: Session) -> list[PackChoice]:
    """Shipped packs, then uploads newest first."""
    found = []
    for name in shipped_packs():
        pack = load_pack(name)
        found.append(
            PackChoice(
                _shipped_ref(name), SHIPPED, pack.name, pack.version, pack.language, len(pack.rules)
            )
        )
    for row in session.scalars(select(UploadedPack).order_by(UploadedPack.id.desc())):
        found.append(
            PackChoice(
                f"{UPLOADED}:{row.id}",
                UPLOADED,
                row.name,
                row.version,
                row.language,
                row.rules,
                row.uploaded_by,
                row.uploaded_at,
            )
        )
    return found


def upload(session: Session, data: bytes, filename: str, actor: str, now: datetime) -> UploadedPack:
    """Validate and store a pack; PackError (file, line, field) or PackUploadRefused otherwise.

    Nothing is stored unless the whole pack loads. The caller commits with
    the audit entry.
    """
    if len(data) > MAX_PACK_BYTES:
        raise PackUploadRefused(
            f"{filename} is {len(data)} bytes; a pack may have {MAX_PACK_BYTES}",
            hint="split the pack or drop unused rules",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PackUploadRefused(
            f"{filename} is not UTF-8 text (byte {exc.start})", hint="save the pack as UTF-8"
        ) from None
    pack = parse_pack(text, source=filename)
    taken = session.scalar(
        select(UploadedPack.id).where(
            UploadedPack.name == pack.name, UploadedPack.version == pack.version
        )
    )
    if taken is not None or (
        pack.name in shipped_packs() and load_pack(pack.name).version == pack.version
    ):
        raise PackUploadRefused(
            f"pack {pack.name} version {pack.version} already exists",
            hint="raise `version:` in the pack; a stored version is never replaced",
        )
    row = UploadedPack(
        name=pack.name[:64],
        version=pack.version[:32],
        language=pack.language,
        rules=len(pack.rules),
        filename=filename[:200],
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        uploaded_by=actor,
        uploaded_at=now,
    )
    session.add(row)
    session.flush()
    return row


def choose(session: Session, ref: str, actor: str, now: datetime) -> PackChoice:
    """Make `ref` the site's pack (the caller commits with the audit entry)."""
    chosen = next((c for c in choices(session) if c.ref == ref), None)
    if chosen is None:
        raise QaError(f"no rule pack {ref!r}", hint="pick one of the packs listed")
    write_setting(session, QA_PACK, ref, actor, now)
    return chosen


def active_ref(session: Session, setting: str) -> str:
    """The stored choice, else what DIALGUARD_QA_PACK names."""
    return read_setting(session, QA_PACK) or default_ref(setting)


def load_ref(session: Session, ref: str) -> Pack:
    """The pack `ref` names; a stored upload is parsed again (it was valid when stored)."""
    origin, _, rest = ref.partition(":")
    if origin == UPLOADED and rest.isdigit():
        row = session.get(UploadedPack, int(rest))
        if row is None:
            raise QaError(f"uploaded rule pack {rest} is gone", hint="choose another pack")
        return parse_pack(row.text, source=_source(row))
    if origin == SHIPPED and rest:
        return load_pack(rest)
    return load_pack(ref)  # DIALGUARD_QA_PACK as a path to a YAML file


def active_pack_source(sessions: sessionmaker[Session], setting: str) -> Callable[[], Pack]:
    """What the QA worker calls before each batch: the active pack, parsed once per choice.

    A stored choice that no longer loads (a newer Dialguard validating more
    strictly) is logged once and the setting's pack is used meanwhile, so
    calls keep being scored.
    """
    cache: dict[str, Pack] = {}
    failed: set[str] = set()

    def current() -> Pack:
        with sessions() as session:
            ref = active_ref(session, setting)
            if ref in cache:
                return cache[ref]
            if ref in failed:
                return load_pack(setting)
            try:
                pack = load_ref(session, ref)
            except QaError as exc:
                log.error("active rule pack %s does not load (%s); using %s", ref, exc, setting)
                failed.add(ref)
                return load_pack(setting)
        cache[ref] = pack
        return pack

    return current
