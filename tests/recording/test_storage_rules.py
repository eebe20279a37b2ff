"""Storage decisions without storage: lifecycle rules, retention tags, what a refusal means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from minio.commonconfig import ENABLED, Filter
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

from recording.retention import retain_until
from recording.storage_rules import (
    DELETE_MARKER_RULE,
    GRACE_DAYS,
    HOLD_TAG_VALUE,
    RETENTION_TAG,
    class_rule,
    clock_skew,
    describe_skew,
    diagnose,
    merged,
    parse_client_retention,
    retention_classes,
    retention_for,
    retention_tag,
    wanted_rules,
)

AT = datetime(2026, 11, 24, 10, 0, 0, 400_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("until", "hold", "tag"),
    [
        (retain_until(AT, 730), False, "730"),
        (retain_until(AT, 1095), False, "1095"),
        (AT + timedelta(days=800, hours=1), False, "801"),  # lengthened: rounded up
        (AT.replace(microsecond=0) + timedelta(days=900), False, "900"),
        (retain_until(AT, 730), True, HOLD_TAG_VALUE),
    ],
)
def test_an_object_is_tagged_with_its_own_retention(until: datetime, hold: bool, tag: str) -> None:
    assert retention_tag(AT, until, hold) == tag


@pytest.mark.parametrize(
    ("until", "classes"),
    [
        (retain_until(AT, 1095), (730, 1095)),  # a client's 1095 days in a 730-day site
        (retain_until(AT, 730), (730, 1095)),
        (AT + timedelta(days=900, minutes=1), (730, 901, 1095)),  # extended to a class
    ],
)
def test_no_rule_acts_on_an_object_before_its_retention_ends(
    until: datetime, classes: tuple[int, ...]
) -> None:
    """Storage counts from the upload, which is after recorded_at: the rule's days are enough."""
    tag = retention_tag(AT, until, legal_hold=False)
    matching = [
        rule
        for rule in wanted_rules(classes)
        if rule.rule_filter is not None
        and rule.rule_filter.tag is not None
        and rule.rule_filter.tag.value == tag
    ]
    assert len(matching) <= 1
    for rule in matching:
        assert rule.expiration is not None and rule.expiration.days is not None
        fires = AT + timedelta(days=rule.expiration.days)
        assert fires > until + timedelta(days=GRACE_DAYS - 1)


def test_a_held_recording_matches_no_rule() -> None:
    tag_values = {
        rule.rule_filter.tag.value
        for rule in wanted_rules((730, 1095, 1825))
        if rule.rule_filter is not None and rule.rule_filter.tag is not None
    }
    assert tag_values == {"730", "1095", "1825"}
    assert HOLD_TAG_VALUE not in tag_values


def test_each_class_gets_a_tag_filtered_rule_with_grace() -> None:
    rule = class_rule(1095)
    assert rule.rule_id == "dialguard-1095d"
    assert rule.rule_filter is not None and rule.rule_filter.tag is not None
    assert (rule.rule_filter.tag.key, rule.rule_filter.tag.value) == (RETENTION_TAG, "1095")
    assert rule.expiration is not None and rule.expiration.days == 1095 + GRACE_DAYS
    assert rule.noncurrent_version_expiration is not None
    assert rule.noncurrent_version_expiration.noncurrent_days == GRACE_DAYS


def test_retention_classes_come_from_the_default_and_each_client() -> None:
    per_client = parse_client_retention("bank-a=1095, bank-b=1825,bank-c=1095", 730)
    assert per_client == {"bank-a": 1095, "bank-b": 1825, "bank-c": 1095}
    assert retention_classes(730, per_client) == (730, 1095, 1825)
    assert [r.rule_id for r in wanted_rules(retention_classes(730, per_client))] == [
        "dialguard-730d",
        "dialguard-1095d",
        "dialguard-1825d",
        DELETE_MARKER_RULE,
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("bank-a=365", "below the 730-day minimum"),
        ("bank-a", "not client=days"),
        ("=1095", "not client=days"),
        ("bank-a=three", "not client=days"),
    ],
)
def test_client_retention_is_refused_when_short_or_malformed(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_client_retention(text, 730)


def test_merging_adds_missing_rules_and_keeps_an_operators_own() -> None:
    theirs = Rule(
        ENABLED,
        rule_filter=Filter(prefix="tmp/"),
        rule_id="ops-tmp",
        expiration=Expiration(days=7),
    )
    wanted = wanted_rules((730,))
    first = merged(LifecycleConfig([theirs]), wanted)
    assert first is not None
    assert [r.rule_id for r in first.rules] == ["ops-tmp", "dialguard-730d", DELETE_MARKER_RULE]
    assert merged(first, wanted) is None  # nothing to write the second time
    # A later, longer class is added; the 730-day rule stays for objects tagged with it.
    second = merged(first, wanted_rules((1095,)))
    assert second is not None
    assert [r.rule_id for r in second.rules] == [
        "ops-tmp",
        "dialguard-730d",
        DELETE_MARKER_RULE,
        "dialguard-1095d",
    ]


def test_merging_corrects_a_rule_of_ours_that_was_changed() -> None:
    shortened = Rule(
        ENABLED,
        rule_filter=class_rule(730).rule_filter,
        rule_id="dialguard-730d",
        expiration=Expiration(days=10),
    )
    fixed = merged(LifecycleConfig([shortened]), wanted_rules((730,)))
    assert fixed is not None
    assert fixed.rules[0] == class_rule(730)


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Tue, 24 Nov 2026 12:20:00 GMT", timedelta(minutes=20)),
        ("Tue, 24 Nov 2026 11:40:30 GMT", -timedelta(minutes=19, seconds=30)),
        (None, None),
        ("not a date", None),
    ],
)
def test_clock_skew_from_the_date_header(date: str | None, expected: timedelta | None) -> None:
    assert clock_skew(date, NOW) == expected


@pytest.mark.parametrize(
    ("skew", "text"),
    [
        (timedelta(minutes=20), "host clock differs from storage by ~20 min (host behind)"),
        (-timedelta(minutes=19, seconds=40), "by ~20 min (host ahead)"),
        (timedelta(seconds=40), "by ~40 s (host behind)"),
        (None, "by more than 15 min"),
    ],
)
def test_skew_is_said_in_minutes(skew: timedelta | None, text: str) -> None:
    assert text in describe_skew(skew)


WHERE = "http://s3:9000/recordings"


@pytest.mark.parametrize(
    ("code", "skew", "writing", "says"),
    [
        (None, None, True, "storage unreachable at http://s3:9000/recordings"),
        ("RequestTimeTooSkewed", timedelta(minutes=20), True, "~20 min (host behind)"),
        ("RequestTimeTooSkewed", None, True, "more than 15 min"),
        # A HEAD under skew gets a bare AccessDenied: the Date header tells the truth.
        ("AccessDenied", -timedelta(minutes=20), False, "~20 min (host ahead)"),
        ("SignatureDoesNotMatch", timedelta(minutes=30), True, "host clock differs"),
        ("AccessDenied", timedelta(seconds=2), True, "refuses writes"),
        ("AccessDenied", timedelta(seconds=2), False, "refused our credentials"),
        ("InvalidAccessKeyId", None, True, "DIALGUARD_S3_ACCESS_KEY"),
        ("XMinioStorageFull", None, True, "storage is full"),
        ("QuotaExceeded", None, True, "raise the quota"),
        ("InternalError", None, True, "may be full, over its quota or read-only"),
        ("InternalError", None, False, "answered InternalError"),
    ],
)
def test_a_refusal_is_said_plainly(
    code: str | None, skew: timedelta | None, writing: bool, says: str
) -> None:
    assert says in diagnose(code, skew, writing=writing, where=WHERE)


@pytest.mark.parametrize(
    ("client", "days", "why"),
    [
        (None, 730, "no client: the site's default"),
        ("bank-a", 730, "a client without its own length"),
        ("bank-b", 1095, "a client that requires three years"),
        ("bank-c", 730, "a client's shorter wish never shortens the default"),
    ],
)
def test_a_recording_is_kept_as_long_as_its_client_requires(
    client: str | None, days: int, why: str
) -> None:
    assert retention_for(client, 730, {"bank-b": 1095, "bank-c": 365}) == days, why
