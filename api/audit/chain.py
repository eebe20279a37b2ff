"""The audit log: append-only, hash-chained, and sealed with a keyed MAC.

Each entry carries the SHA-256 of its content and of the entry before it
(`prev_hash`, `hash`), so editing or removing any entry breaks the chain at
that point. Anyone holding the database alone could recompute those hashes,
so each entry also carries `mac`: HMAC-SHA256, under the audit key (a file
outside the database, like the recording keys), over the MAC of the entry
before it and its own hash. Recomputing the chain then needs the key too.
Whoever holds both the database and the key is caught by the anchors
(`api.audit.anchors`): the chain's head written to WORM storage every minute.

Entries written before the MAC existed (migration 0022) have none: they are
the legacy segment at the start of the log, covered by their hashes and
sealed by the first anchor, which records where the segment ends. After it,
an entry without a MAC is a problem.

Entries are numbered by `seq` with a unique constraint, so two writers
racing for the same place cannot fork the chain: the loser retries on top
of the winner. A session knows the audit key when its factory was given it
(`with_audit_key`); every Dialguard process that writes the log is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from api.i18n import EN, N_, current, gettext, translate, when
from recording.db.engine import Base, as_utc

GENESIS = "0" * 64
#: Where a session carries the audit key (`Session.info`).
AUDIT_KEY = "dialguard.audit_key"
_MAC_LABEL = b"dialguard audit mac v1\n"


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    #: HMAC-SHA256 under the audit key over the previous entry's MAC and this hash;
    #: None only in the legacy segment written before migration 0022.
    mac: Mapped[str | None] = mapped_column(String(64))


def entry_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    reason: str | None,
    detail: str,
) -> str:
    canonical = json.dumps(
        [prev_hash, seq, as_utc(at).isoformat(), actor, action, target, reason, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def entry_mac(key: bytes, prev_link: str, entry_hash_: str) -> str:
    """The MAC of an entry: it chains on `prev_link` (the previous MAC, or hash in legacy)."""
    message = _MAC_LABEL + prev_link.encode() + b"\n" + entry_hash_.encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def link_of(entry: AuditEntry | None) -> str:
    """What the next entry's MAC chains on."""
    if entry is None:
        return GENESIS
    return entry.mac or entry.hash


def with_audit_key(sessions: sessionmaker[Session], key: bytes) -> sessionmaker[Session]:
    """The same session factory, whose sessions MAC the audit entries they write."""
    kw = dict(sessions.kw)
    kw["info"] = {**kw.get("info", {}), AUDIT_KEY: key}
    return sessionmaker(class_=sessions.class_, **kw)


def audit_key_of(session: Session) -> bytes | None:
    key = session.info.get(AUDIT_KEY)
    return key if isinstance(key, bytes) else None


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    now: datetime,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    attempts: int = 5,
) -> AuditEntry:
    """Append one entry and commit it; the caller's pending changes are committed with it."""
    body = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    key = audit_key_of(session)
    for _ in range(attempts):
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        seq = (last.seq + 1) if last else 1
        prev = last.hash if last else GENESIS
        digest = entry_hash(prev, seq, now, actor, action, target, reason, body)
        entry = AuditEntry(
            seq=seq,
            at=now,
            actor=actor,
            action=action,
            target=target,
            reason=reason,
            detail=body,
            prev_hash=prev,
            hash=digest,
            mac=entry_mac(key, link_of(last), digest) if key is not None else None,
        )
        session.add(entry)
        try:
            session.commit()
            return entry
        except IntegrityError:  # another writer took this seq: chain on top of theirs
            session.rollback()
    raise RuntimeError("audit log is too contended to append to")


@dataclass(frozen=True)
class ChainProblem:
    """One entry that does not hold: `problem` in English (the API's and scripts'), `shown` in
    the reader's language (`template` from the catalogue, a time by Babel)."""

    seq: int
    problem: str
    template: str = ""
    params: tuple[tuple[str, str | int | datetime], ...] = ()

    @property
    def shown(self) -> str:
        if not self.template or current() == EN:
            return self.problem
        values = {k: _when(v) if isinstance(v, datetime) else v for k, v in self.params}
        return translate(self.template, **values)


def _when(at: datetime) -> str:
    return translate("%(time)s UTC", time=when(as_utc(at), UTC))


def _problem(seq: int, template: str, **params: str | int | datetime) -> ChainProblem:
    english = {
        k: as_utc(v).isoformat() if isinstance(v, datetime) else v for k, v in params.items()
    }
    return ChainProblem(seq, template % english, template, tuple(params.items()))


@dataclass(frozen=True)
class Anchor:
    """The chain's head as written to WORM storage at `written_at` (see `api.audit.anchors`)."""

    seq: int
    hash: str
    written_at: datetime
    #: The last entry of the legacy segment (entries without a MAC); 0 if there is none.
    legacy_until: int
    #: Where it is stored, for people to look it up.
    name: str = ""
    #: The hash of every entry since the anchor before, when its body was read: names the
    #: first entry that no longer matches when the anchor does not hold.
    hashes: tuple[tuple[int, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class ChainReport:
    """What `verify` found: problems by entry, which anchors hold, where it first goes wrong."""

    problems: list[ChainProblem]
    entries: int
    macs_checked: bool
    anchors: int = 0
    last_holding: Anchor | None = None
    broken_anchors: list[Anchor] = field(default_factory=list)
    first_bad: int | None = None

    @property
    def intact(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as `dialguard audit verify` prints it, in the operator's language."""
        out = [
            translate("entry %(seq)s: %(problem)s", seq=p.seq, problem=p.shown)
            for p in self.problems
        ]
        if self.first_bad is not None:
            out.append(translate("first entry that does not match: %(seq)s", seq=self.first_bad))
        if self.last_holding is not None:
            holding = self.last_holding
            out.append(
                translate(
                    "last anchor that holds: entry %(seq)s, written %(when)s",
                    seq=holding.seq,
                    when=_when(holding.written_at)
                    if _speaking_other()
                    else as_utc(holding.written_at).isoformat(),
                )
            )
        elif self.anchors:
            out.append(gettext("no anchor holds"))
        else:
            out.append(gettext("no anchor written yet"))
        if not self.macs_checked:
            out.append(gettext("MACs not checked: the audit key is not available here"))
        out.append(
            translate("audit log intact (%(n)s entries)", n=self.entries)
            if self.intact
            else translate("%(n)s problem(s) in the audit log", n=len(self.problems))
        )
        return out


def _speaking_other() -> bool:
    """Whether the reader is not English: English keeps the ISO times scripts already parse."""
    return current() != EN


def _expected_legacy_end(entries: Sequence[AuditEntry], anchors: Sequence[Anchor]) -> int:
    """The last seq that may lack a MAC: the anchors say it; without one, the unMAC'd prefix."""
    if anchors:
        return min(anchor.legacy_until for anchor in anchors)
    end = 0
    for entry in entries:
        if entry.mac is not None:
            break
        end = entry.seq
    return end


def _chain_problems(
    entries: Sequence[AuditEntry], key: bytes | None, legacy_end: int
) -> list[ChainProblem]:
    problems = []
    expected_seq, prev, link = 1, GENESIS, GENESIS
    for entry in entries:
        if entry.seq != expected_seq:
            problems.append(
                _problem(
                    expected_seq,
                    N_("entries %(first)s..%(last)s are missing"),
                    first=expected_seq,
                    last=entry.seq - 1,
                )
            )
        if entry.prev_hash != prev:
            problems.append(_problem(entry.seq, N_("does not follow the entry before it")))
        actual = entry_hash(
            entry.prev_hash,
            entry.seq,
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            entry.reason,
            entry.detail,
        )
        if actual != entry.hash:
            problems.append(_problem(entry.seq, N_("was edited after it was written")))
        if entry.mac is None:
            if entry.seq > legacy_end:
                problems.append(
                    _problem(entry.seq, N_("has no MAC: written without the audit key"))
                )
        elif key is not None and not hmac.compare_digest(
            entry.mac, entry_mac(key, link, entry.hash)
        ):
            problems.append(
                _problem(entry.seq, N_("MAC does not match: rewritten without the audit key"))
            )
        expected_seq, prev, link = entry.seq + 1, entry.hash, entry.mac or entry.hash
    return problems


def _anchor_problems(
    entries: Sequence[AuditEntry], anchors: Sequence[Anchor], first_problem: int | None
) -> tuple[list[ChainProblem], list[Anchor], Anchor | None, int | None]:
    """Problems the anchors reveal, the broken ones, the last that holds, the first bad seq."""
    by_seq = {entry.seq: entry for entry in entries}
    last_seq = entries[-1].seq if entries else 0
    problems: list[ChainProblem] = []
    broken: list[Anchor] = []
    holding: Anchor | None = None
    first_bad = first_problem
    for anchor in sorted(anchors, key=lambda a: (a.seq, a.written_at)):
        entry = by_seq.get(anchor.seq)
        written = anchor.written_at
        if entry is None:
            broken.append(anchor)
            problems.append(
                _problem(
                    anchor.seq,
                    N_(
                        "is missing, but was anchored %(when)s: the log was cut after "
                        "entry %(last)s"
                    ),
                    when=written,
                    last=last_seq,
                )
                if anchor.seq > last_seq
                else _problem(
                    anchor.seq,
                    N_("is missing, but was anchored %(when)s: it was removed"),
                    when=written,
                )
            )
            bad = min(last_seq + 1, anchor.seq)
        elif entry.hash != anchor.hash:
            broken.append(anchor)
            problems.append(
                _problem(
                    anchor.seq,
                    N_("differs from its anchor of %(when)s: the log was rewritten up to here"),
                    when=written,
                )
            )
            bad = _first_mismatch(by_seq, anchor)
        else:
            continue
        first_bad = bad if first_bad is None else min(first_bad, bad)
    # An anchor holds when its entry still has the anchored hash and nothing before it broke:
    # one written after a rewrite matches the rewritten head, but vouches for nothing.
    for anchor in anchors:
        entry = by_seq.get(anchor.seq)
        if entry is None or entry.hash != anchor.hash:
            continue
        if (first_bad is None or anchor.seq < first_bad) and (
            holding is None or anchor.seq >= holding.seq
        ):
            holding = anchor
    return problems, broken, holding, first_bad


def _first_mismatch(by_seq: dict[int, AuditEntry], anchor: Anchor) -> int:
    """The first entry whose hash differs from what the anchor recorded (or the anchor itself)."""
    for seq, digest in anchor.hashes:
        entry = by_seq.get(seq)
        if entry is None or entry.hash != digest:
            return seq
    return anchor.seq


def verify_chain(
    entries: Iterable[AuditEntry], key: bytes | None = None, anchors: Sequence[Anchor] = ()
) -> ChainReport:
    """Every edited, removed, inserted or unsealed entry, and what the anchors say.

    Without `key` the MACs are not checked (an outside auditor may not hold
    it): the hashes and the anchors still prove everything up to the last
    anchor. An anchor holds when its entry is still there with the same hash
    and nothing before it is broken.
    """
    rows = list(entries)
    problems = _chain_problems(rows, key, _expected_legacy_end(rows, anchors))
    first_problem = min((p.seq for p in problems), default=None)
    found, broken, holding, first_bad = _anchor_problems(rows, anchors, first_problem)
    problems = sorted([*problems, *found], key=lambda p: p.seq)
    return ChainReport(
        problems=problems,
        entries=len(rows),
        macs_checked=key is not None,
        anchors=len(anchors),
        last_holding=holding,
        broken_anchors=broken,
        first_bad=first_bad,
    )


def entries_of(session: Session) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def check(
    session: Session, key: bytes | None = None, anchors: Sequence[Anchor] = ()
) -> ChainReport:
    """The whole log verified; the key defaults to the one the session carries."""
    return verify_chain(entries_of(session), key or audit_key_of(session), anchors)


def verify(session: Session) -> list[ChainProblem]:
    """The chain's problems (hashes, and MACs when the session carries the key)."""
    return check(session).problems


#: What packages below `api` are given when they must leave an audit trail.
AuditFn = Callable[[str, str, str, str | None, dict[str, Any]], None]


def audit_to(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> AuditFn:
    """An `AuditFn` writing to this database: what the API hands to lower packages."""

    def write(
        actor: str, action: str, target: str, reason: str | None, detail: dict[str, Any]
    ) -> None:
        with sessions() as session:
            record(session, actor, action, target, clock(), reason=reason, detail=detail)

    return write
