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
from qa_scoring.learning import Addition, already_there, destination, next_version, with_examples
from qa_scoring.models import QaFlag, QaResult
from qa_scoring.pack import Pack, load_pack, parse_pack, resolve_pack, shipped_packs
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


def ref_text(session: Session, ref: str) -> str:
    """The YAML `ref` names, as stored or shipped."""
    origin, _, rest = ref.partition(":")
    if origin == UPLOADED and rest.isdigit():
        row = session.get(UploadedPack, int(rest))
        if row is None:
            raise QaError(f"uploaded rule pack {rest} is gone", hint="choose another pack")
        return row.text
    path = resolve_pack(rest if origin == SHIPPED and rest else ref)
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class LearnedVersion:
    """A pack version made from reviewed flags: stored, not active."""

    row: UploadedPack
    base: str  # the ref it was made from
    additions: tuple[Addition, ...]

    @property
    def ref(self) -> str:
        return f"{UPLOADED}:{self.row.id}"


def add_reviewed_examples(
    session: Session,
    flag_ids: list[int],
    to: str,
    actor: str,
    now: datetime,
    setting: str,
    base: str | None = None,
) -> LearnedVersion:
    """A new version of a pack with reviewed flags' sentences as examples (or benign ones).

    Made from `base`, by default the active pack; the flags must have been
    raised by a pack of the same name. The active pack is never edited: the
    new version is stored like an upload and scores nothing until an admin
    activates it. The caller commits with the audit entry.
    """
    base_ref = base or active_ref(session, setting)
    base_pack = load_ref(session, base_ref)
    if base_pack.semantic is None:
        raise QaError(
            f"pack {base_pack.name} v{base_pack.version} has no semantic examples",
            hint="add a semantic: section to the pack first (docs/qa.md)",
        )
    additions = []
    for flag_id in dict.fromkeys(flag_ids):
        flag = session.get(QaFlag, flag_id)
        if flag is None:
            raise QaError(f"no flag {flag_id}")
        result = session.get(QaResult, flag.result_id)
        if result is None or result.pack != base_pack.name:
            raised = result.pack if result else "?"
            raise QaError(
                f"flag {flag_id} was raised by pack {raised}, not {base_pack.name} ({base_ref})",
                hint=f"pass the {raised} version to add to as the base",
            )
        where = destination(flag.state.value, flag.category, to, flag_id)
        additions.append(Addition(flag_id, flag.text.strip(), where))
    if not additions:
        raise QaError("no flag given")
    there = already_there(base_pack, additions)
    if there:
        shown = ", ".join(str(a.flag_id) for a in there)
        raise QaError(f"the sentence of flag {shown} is already in {base_pack.name} ({base_ref})")
    taken = set(
        session.scalars(select(UploadedPack.version).where(UploadedPack.name == base_pack.name))
    )
    if base_pack.name in shipped_packs():
        taken.add(load_pack(base_pack.name).version)
    version = next_version(base_pack.version, taken)
    text = with_examples(ref_text(session, base_ref), additions, version)
    filename = f"{base_pack.name}-v{version}.yaml"
    row = upload(session, text.encode("utf-8"), filename, actor, now)
    return LearnedVersion(row, base_ref, tuple(additions))


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
