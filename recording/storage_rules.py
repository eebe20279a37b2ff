"""Pure decisions about object storage: lifecycle rules, retention tags, and what a refusal means.

No I/O here; `recording.storage` and `recording.store` apply these to real S3.

Lifecycle expiry is a backstop under the end-of-retention job (which deletes,
crypto-erases and leaves an audit proof): if Dialguard stops running, storage
still lets go of recordings some time after their retention. The danger is
the opposite one, a rule that hides a recording early. In a versioned bucket
with object lock an Expiration does not delete the locked version, it puts a
delete marker on top, and a GET without a version id then answers 404. So:

- every object is tagged with its own retention in whole days, rounded up
  (`dialguard-retention-days=1095`), and each retention class gets a rule
  filtered by that tag; a 730-day rule never sees a 1095-day recording;
- every action waits at least the class plus a grace period, counted by
  storage from the upload, which comes after recorded_at; so nothing is
  hidden or removed before recorded_at + retention + grace;
- a recording under legal hold is tagged `hold`, which no rule matches, and
  a lengthened retention is re-tagged with its new length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from minio.commonconfig import ENABLED, Filter, Tag
from minio.lifecycleconfig import (
    Expiration,
    LifecycleConfig,
    NoncurrentVersionExpiration,
    Rule,
)

RETENTION_TAG = "dialguard-retention-days"
HOLD_TAG_VALUE = "hold"  # matches no rule: a held recording is never expired by storage
RULE_PREFIX = "dialguard-"
DELETE_MARKER_RULE = f"{RULE_PREFIX}expired-delete-markers"
#: Days storage waits past a class's retention before its backstop acts; the
#: end-of-retention job (hourly) normally deleted the recording long before.
GRACE_DAYS = 30
#: S3 refuses requests signed more than 15 minutes off its clock; a difference
#: this large is worth naming even when the store gives another reason.
SKEW_NOTICE = timedelta(minutes=5)

_DAY = timedelta(days=1)


def retention_days(recorded_at: datetime, retain_until: datetime) -> int:
    """Whole days from the recording's own recorded_at to its retention date, rounded up.

    `retention.retain_until` rounds recorded_at + days up to a whole second;
    that second is not a day more. (A rule for the result still waits a
    whole grace period past the date, so the second cannot matter.)
    """
    return max(0, math.ceil((retain_until - recorded_at - timedelta(seconds=1)) / _DAY))


def retention_tag(recorded_at: datetime, retain_until: datetime, legal_hold: bool) -> str:
    """The tag value an object carries, choosing which lifecycle rule (if any) applies to it.

    Rounded up, so the rule a tag selects never acts before retain_until.
    """
    if legal_hold:
        return HOLD_TAG_VALUE
    return str(retention_days(recorded_at, retain_until))


def retention_classes(default_days: int, per_client: Mapping[str, int]) -> tuple[int, ...]:
    """Every retention length in use: the default and each client's own."""
    return tuple(sorted({default_days, *per_client.values()}))


def retention_for(client_id: str | None, default_days: int, per_client: Mapping[str, int]) -> int:
    """Days a recording of this client is kept: the client's own length, never below the default."""
    return max(default_days, per_client.get(client_id, default_days)) if client_id else default_days


def rule_id(days: int) -> str:
    return f"{RULE_PREFIX}{days}d"


def class_rule(days: int, grace_days: int = GRACE_DAYS) -> Rule:
    """Expire objects tagged with `days` at upload + days + grace, then drop the old version."""
    return Rule(
        ENABLED,
        rule_filter=Filter(tag=Tag(RETENTION_TAG, str(days))),
        rule_id=rule_id(days),
        expiration=Expiration(days=days + grace_days),
        # A version turns noncurrent when the expiration above covers it with a
        # delete marker: past its retention already, so the grace is enough.
        noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=grace_days),
    )


def delete_marker_rule() -> Rule:
    """Remove a delete marker once no version is left under it (nothing to hide any more)."""
    return Rule(
        ENABLED,
        rule_filter=Filter(prefix=""),
        rule_id=DELETE_MARKER_RULE,
        expiration=Expiration(expired_object_delete_marker=True),
    )


def wanted_rules(classes: Iterable[int], grace_days: int = GRACE_DAYS) -> list[Rule]:
    return [class_rule(days, grace_days) for days in sorted(set(classes))] + [delete_marker_rule()]


def merged(existing: LifecycleConfig | None, wanted: list[Rule]) -> LifecycleConfig | None:
    """The configuration to write so that every wanted rule is in place; None if it already is.

    Rules of others (an operator's own) are kept. Our rules for classes no
    longer configured are kept too: objects tagged with them may still exist.
    """
    rules = list(existing.rules) if existing is not None else []
    by_id = {rule.rule_id: i for i, rule in enumerate(rules)}
    changed = False
    for rule in wanted:
        at = by_id.get(rule.rule_id)
        if at is None:
            rules.append(rule)
            changed = True
        elif rules[at] != rule:
            rules[at] = rule
            changed = True
    return LifecycleConfig(rules) if changed else None


def parse_client_retention(text: str, minimum: int) -> dict[str, int]:
    """`bank-a=1095,bank-b=1825` as {client: days}; a length below `minimum` is refused."""
    result: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        client, sep, days = part.partition("=")
        client = client.strip()
        if not sep or not client or not days.strip().isdigit():
            raise ValueError(f"{part!r} is not client=days, e.g. bank-b=1095")
        value = int(days)
        if value < minimum:
            raise ValueError(f"{client}: {value} days is below the {minimum}-day minimum")
        result[client] = value
    return result


# --- what a refusal means -------------------------------------------------------------------

#: Codes with which stores say they are out of space or over a quota.
FULL_CODES = frozenset(
    {
        "XMinioStorageFull",
        "XMinioAdminBucketQuotaExceeded",
        "QuotaExceeded",
        "InsufficientStorage",
        "StorageFull",
    }
)
#: Codes a signed request gets when the credentials, or the clock, are wrong.
AUTH_CODES = frozenset(
    {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed"}
)


def clock_skew(server_date: str | None, local_now: datetime) -> timedelta | None:
    """Storage's clock minus ours, from the HTTP Date header of its answer."""
    if not server_date:
        return None
    try:
        server = parsedate_to_datetime(server_date)
    except (TypeError, ValueError):
        return None
    if server.tzinfo is None:
        return None
    return server - local_now


def describe_skew(skew: timedelta | None) -> str:
    """`host clock differs from storage by ~20 min (host behind)`."""
    if skew is None:
        return "host clock differs from storage by more than 15 min"
    minutes = abs(skew) / timedelta(minutes=1)
    amount = f"~{minutes:.0f} min" if minutes >= 1 else f"~{abs(skew).total_seconds():.0f} s"
    side = "behind" if skew > timedelta() else "ahead"
    return f"host clock differs from storage by {amount} (host {side})"


def diagnose(
    code: str | None,
    skew: timedelta | None,
    *,
    writing: bool,
    where: str,
) -> str:
    """A plain sentence for an operator: why storage at `where` refused, and what to do.

    `code` is the S3 error code (None for a connection failure), `skew` what
    the answer's Date header says of our clock, `writing` whether the refused
    request was an upload.
    """
    if code is None:
        return f"storage unreachable at {where}: start it or check the network"
    if code == "RequestTimeTooSkewed" or (
        code in AUTH_CODES and skew is not None and abs(skew) >= SKEW_NOTICE
    ):
        return (
            f"{describe_skew(skew)}: {where} refuses our signed requests ({code}); "
            "set the clocks right (NTP on this host and on storage); recordings wait in the spool"
        )
    if code in FULL_CODES:
        return f"storage is full at {where} ({code}): free or add space, or raise the quota"
    if code == "AccessDenied" and writing:
        return (
            f"storage refuses writes at {where} (AccessDenied): the bucket is read-only "
            "or our key may not write; give the key write access"
        )
    if code in AUTH_CODES:
        return (
            f"storage at {where} refused our credentials ({code}): check "
            "DIALGUARD_S3_ACCESS_KEY and DIALGUARD_S3_SECRET_KEY"
        )
    if writing and code in {"InternalError", "ServiceUnavailable", "SlowDown", "NotImplemented"}:
        return (
            f"storage refuses writes at {where} ({code}): it may be full, over its "
            "quota or read-only; recordings wait in the spool"
        )
    return f"storage at {where} answered {code}"
