"""Number status from SIP outcomes and carrier announcements, and the re-check gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dialer.number_status import (
    CALLER_BLOCKED,
    DEFAULT_PHRASES,
    Q850_CAUSES,
    SIP_CODES,
    NumberStatus,
    PhraseBook,
    Recheck,
    may_dial,
    phrase_book,
    q850_cause,
    status_from_announcement,
    status_from_sip,
)

S = NumberStatus

# Written out independently of the module's table, so a changed meaning fails here.
EXPECTED_CODES: dict[int, NumberStatus | None] = {
    400: None,
    401: None,
    403: S.BARRED,
    404: S.NONEXISTENT,
    407: None,
    408: S.NO_ANSWER,
    410: S.NONEXISTENT,
    480: S.NO_ANSWER,
    484: S.NONEXISTENT,
    486: S.BUSY,
    487: S.NO_ANSWER,
    488: None,
    500: None,
    502: None,
    503: None,
    504: None,
    600: S.BUSY,
    603: S.BARRED,
    604: S.NONEXISTENT,
    607: S.BARRED,
    608: S.BARRED,
}


def test_expected_table_covers_the_map() -> None:
    assert set(EXPECTED_CODES) == set(SIP_CODES)


@pytest.mark.parametrize(("code", "expected"), sorted(EXPECTED_CODES.items()))
def test_sip_code_map(code: int, expected: NumberStatus | None) -> None:
    assert status_from_sip(code) == expected
    assert SIP_CODES[code].status == expected
    assert SIP_CODES[code].why


@pytest.mark.parametrize(
    "code", [100, 180, 183, 199, 405, 415, 420, 481, 491, 499, 501, 599, 605, 699, 0, 999]
)
def test_unknown_and_provisional_codes_teach_nothing(code: int) -> None:
    assert status_from_sip(code) is None


@pytest.mark.parametrize(
    ("code", "answered", "talk_s", "expected"),
    [
        (200, True, 0.0, S.HUNG_UP),
        (200, True, 4.9, S.HUNG_UP),
        (200, True, 5.0, S.REACHABLE),
        (200, True, 180.0, S.REACHABLE),
        (200, False, 60.0, S.REACHABLE),  # a 2xx is an answer even if the flag was not set
        (202, False, 1.0, S.HUNG_UP),
        # answered beats whatever code the call ended with (e.g. a BYE-time error)
        (487, True, 30.0, S.REACHABLE),
        (503, True, 2.0, S.HUNG_UP),
    ],
)
def test_answered_calls(code: int, answered: bool, talk_s: float, expected: NumberStatus) -> None:
    assert status_from_sip(code, answered=answered, talk_s=talk_s) == expected


def test_hang_up_threshold_is_configurable() -> None:
    assert status_from_sip(200, answered=True, talk_s=8.0, hung_up_within_s=10.0) == S.HUNG_UP
    assert status_from_sip(200, answered=True, talk_s=8.0) == S.REACHABLE


def test_negative_talk_time_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        status_from_sip(200, answered=True, talk_s=-1.0)


def test_agent_cancel_before_ring_timeout_teaches_nothing() -> None:
    assert status_from_sip(487) == S.NO_ANSWER
    assert status_from_sip(487, agent_cancelled=True) is None


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (480, 'Q.850;cause=20;text="SUBSCRIBER_ABSENT"', S.OUT_OF_AREA),
        (480, "Q.850;cause=19", S.NO_ANSWER),
        (404, "Q.850;cause=34", None),  # congestion dressed up as 404
        (404, "Q.850;cause=1", S.NONEXISTENT),
        (503, "q.850 ; cause = 17", S.BUSY),
        (403, "Q.850;cause=21", S.BARRED),
        (502, 'Q.850;cause=27;text="DESTINATION_OUT_OF_ORDER"', S.OUT_OF_AREA),
        (480, "Q.850;cause=16", S.NO_ANSWER),  # a cause not listed falls back to the code
        (480, "SIP;cause=480", S.NO_ANSWER),  # no Q.850 part at all
        (480, "", S.NO_ANSWER),
        (603, 'SIP;cause=603, Q.850;cause=22;text="NUMBER_CHANGED"', S.NONEXISTENT),
    ],
)
def test_q850_cause_refines_the_code(code: int, reason: str, expected: NumberStatus | None) -> None:
    assert status_from_sip(code, reason) == expected


@pytest.mark.parametrize(("cause", "meaning"), sorted(Q850_CAUSES.items()))
def test_every_q850_cause_is_used(cause: int, meaning: object) -> None:
    assert status_from_sip(480, f"Q.850;cause={cause}") == Q850_CAUSES[cause].status
    assert Q850_CAUSES[cause].why


def test_q850_cause_parsing() -> None:
    assert q850_cause('Q.850;cause=17;text="USER_BUSY"') == 17
    assert q850_cause("SIP;cause=486") is None
    assert q850_cause("") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Chinese carrier announcements, verbatim
        ("对不起，您拨打的号码是空号，请查证后再拨。", S.NONEXISTENT),
        ("您拨打的号码不存在", S.NONEXISTENT),
        ("您所拨打的号码有误，请核对后再拨", S.NONEXISTENT),
        ("您拨打的电话已停机", S.SUSPENDED),
        ("您拨打的号码已暂停服务", S.SUSPENDED),
        ("您好，您拨打的电话已关机", S.OUT_OF_AREA),
        ("您拨打的用户不在服务区", S.OUT_OF_AREA),
        ("您拨打的用户暂时无法接通，请稍后再拨", S.OUT_OF_AREA),
        ("您拨打的电话正在通话中，请稍后再拨", S.BUSY),
        ("您拨打的用户忙，请稍后再拨", S.BUSY),
        ("您拨打的电话暂时无人接听，请稍后再拨", S.NO_ANSWER),
        ("您拨打的用户已设置呼入限制", S.BARRED),
        # English, from US intercepts and Chinese carriers' English versions
        ("The number you have dialed is not in service.", S.NONEXISTENT),
        (
            "Sorry, the number you dialed does not exist, please check it and dial later.",
            S.NONEXISTENT,
        ),
        ("The number you have reached has been disconnected.", S.NONEXISTENT),
        ("The number you have reached has been temporarily disconnected.", S.SUSPENDED),
        ("The number you dialed has been suspended.", S.SUSPENDED),
        ("Sorry, the subscriber you dialed is power off.", S.OUT_OF_AREA),
        ("The subscriber you dialed cannot be connected for the moment.", S.OUT_OF_AREA),
        ("The subscriber you dialed is busy, please redial later.", S.BUSY),
        ("The subscriber you dialed is not answering.", S.NO_ANSWER),
        ("The party you are calling does not accept incoming calls.", S.BARRED),
        # both languages in one announcement, as Chinese carriers play them
        (
            "您拨打的号码是空号，请查证后再拨。Sorry, the number you dialed does not exist.",
            S.NONEXISTENT,
        ),
    ],
)
def test_announcements(text: str, expected: NumberStatus) -> None:
    assert status_from_announcement(text, DEFAULT_PHRASES) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("您拨打的号码是空耗", S.NONEXISTENT),  # 耗 for 号: a homophone
        ("你拨打的号码是空号", S.NONEXISTENT),  # 你 for 您
        ("您拨打的号码是空号请查证后再拨", S.NONEXISTENT),  # no punctuation
        ("您 拨打 的 电话  已停机 。", S.SUSPENDED),  # extra spaces
        ("您拨打的电话正在通化中", S.BUSY),  # 化 for 话
        ("您拨打的用户暂时无法接同", S.OUT_OF_AREA),  # 同 for 通
        ("您拨打得电话暂时无人接听", S.NO_ANSWER),  # 得 for 的
        ("您拨打的用户已关级", S.OUT_OF_AREA),  # 级 for 机
        ("THE NUMBER YOU HAVE DIALLED IS NOT IN SERVICE", S.NONEXISTENT),
        ("the number you have dial is not in service", S.NONEXISTENT),
        ("the  subscriber you dialled   is busy", S.BUSY),
        ("Ｔｈｅ ｎｕｍｂｅｒ ｙｏｕ ｄｉａｌｅｄ ｄｏｅｓ ｎｏｔ ｅｘｉｓｔ", S.NONEXISTENT),
    ],
)
def test_announcements_survive_asr_noise(text: str, expected: NumberStatus) -> None:
    assert status_from_announcement(text, DEFAULT_PHRASES) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "。。。，，",
        "这个号码是您的吗",
        "喂，您好，请问是张先生吗",
        "您拨打的号码",  # cut off before it says anything
        "请稍后再拨",  # said after every kind of announcement
        "我已经开机了",
        "您拨打的电话已庭机",  # 庭 is as close to 停 (suspended) as 关 is (powered off)
        "hello, is this your number",
        "the number you have dialed",
        "please hold while we connect your call",
    ],
)
def test_near_misses_do_not_match(text: str) -> None:
    assert status_from_announcement(text, DEFAULT_PHRASES) is None


def test_custom_phrases() -> None:
    phrases = {S.BARRED: ["对方已将您加入黑名单"]}
    assert status_from_announcement("对方已将您加入黑名单", phrases) == S.BARRED
    assert status_from_announcement("您拨打的号码是空号", phrases) is None


def test_empty_phrase_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no letters"):
        status_from_announcement("您拨打的号码是空号", {S.BUSY: ["，。"]})


def test_longer_phrase_wins_a_tie() -> None:
    phrases = {S.BUSY: ["忙"], S.NO_ANSWER: ["用户忙"]}
    assert status_from_announcement("用户忙", phrases) == S.NO_ANSWER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The call has been blocked.", CALLER_BLOCKED),
        (
            "Sorry, your call has been blocked. Please do not call this number again.",
            CALLER_BLOCKED,
        ),
        ("Caller ID restricted.", CALLER_BLOCKED),
        ("对不起，您的呼叫已被拦截。", CALLER_BLOCKED),
        ("该号码已被标记为骚扰电话", CALLER_BLOCKED),
        ("对方已开启来电拦截", CALLER_BLOCKED),
        # the number's own trouble stays a number status, even beside "blocked"-like words
        ("The party you are calling does not accept incoming calls.", S.BARRED),
        ("您拨打的用户已设置呼入限制", S.BARRED),
        ("The number you can dial does not exist. Please check the number.", S.NONEXISTENT),
        ("您拨打的电话已停机", S.SUSPENDED),
        ("please hold while we connect your call", None),
        ("", None),
    ],
)
def test_phrase_book_verdicts(text: str, expected: str | None) -> None:
    assert PhraseBook().verdict(text) == expected


def test_phrase_book_from_a_mapping_replaces_only_what_it_names() -> None:
    book = phrase_book({"barred": ["对方已将您加入黑名单"], "caller_blocked": ["号码被封"]})
    assert book.verdict("对方已将您加入黑名单") == S.BARRED
    assert book.verdict("您拨打的用户已设置呼入限制") is None  # barred's defaults replaced
    assert book.verdict("号码被封") == CALLER_BLOCKED
    assert book.verdict("您的呼叫已被拦截") is None  # caller_blocked's defaults replaced
    assert book.verdict("您拨打的号码是空号") == S.NONEXISTENT  # not named: defaults kept


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["空号"], "must map a status"),
        ({"dead": ["空号"]}, "unknown status 'dead'"),
        ({"busy": "用户忙"}, "busy: expected a list"),
        ({"busy": [1, 2]}, "busy: expected a list"),
        ({"caller_blocked": ["。，"]}, "has no letters or digits"),
    ],
)
def test_phrase_book_mistakes_are_named(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        phrase_book(data)


T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
DEFAULTS = Recheck()
SECOND = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status", "interval"),
    [
        (S.NONEXISTENT, timedelta(days=30)),
        (S.SUSPENDED, timedelta(days=7)),
        (S.BARRED, timedelta(days=7)),
        (S.OUT_OF_AREA, timedelta(days=1)),
        (S.BUSY, timedelta(minutes=10)),
        (S.NO_ANSWER, timedelta(hours=2)),
        (S.HUNG_UP, timedelta(days=1)),
    ],
)
def test_bad_status_holds_until_the_recheck_interval(
    status: NumberStatus, interval: timedelta
) -> None:
    assert DEFAULTS.interval(status) == interval
    due = T0 + interval

    allowed, reason, next_at = may_dial(status, T0, due - SECOND, DEFAULTS)
    assert not allowed
    assert next_at == due
    assert str(status) in reason
    assert T0.isoformat() in reason
    assert due.isoformat() in reason

    for now in (due, due + SECOND):
        allowed, reason, next_at = may_dial(status, T0, now, DEFAULTS)
        assert allowed
        assert next_at is None
        assert str(status) in reason


@pytest.mark.parametrize("status", [S.REACHABLE, S.UNKNOWN])
def test_good_statuses_never_hold(status: NumberStatus) -> None:
    allowed, reason, next_at = may_dial(status, T0, T0, DEFAULTS)
    assert allowed
    assert next_at is None
    assert str(status) in reason


def test_no_status_is_allowed() -> None:
    assert may_dial(None, None, T0, DEFAULTS) == (
        True,
        "no status learned for this number yet",
        None,
    )


def test_reason_reads_plainly() -> None:
    allowed, reason, _ = may_dial(S.SUSPENDED, T0, T0 + timedelta(days=1), DEFAULTS)
    assert not allowed
    assert reason == (
        "status suspended learned at 2025-03-03T09:00:00+00:00; not dialed again before "
        "its 7 days re-check interval ends at 2025-03-10T09:00:00+00:00"
    )


def test_other_zones_compare_as_instants() -> None:
    shanghai = timezone(timedelta(hours=8))
    learned = datetime(2025, 3, 3, 17, 0, tzinfo=shanghai)  # == T0
    assert may_dial(S.BUSY, learned, T0 + timedelta(minutes=10), DEFAULTS)[0]
    assert not may_dial(S.BUSY, learned, T0 + timedelta(minutes=9), DEFAULTS)[0]


def test_custom_recheck() -> None:
    recheck = Recheck(busy=timedelta(minutes=30), reachable=timedelta(hours=1))
    assert not may_dial(S.BUSY, T0, T0 + timedelta(minutes=20), recheck)[0]
    assert not may_dial(S.REACHABLE, T0, T0 + timedelta(minutes=59), recheck)[0]
    assert may_dial(S.REACHABLE, T0, T0 + timedelta(hours=1), recheck)[0]


def test_negative_recheck_raises() -> None:
    with pytest.raises(ValueError, match="negative"):
        Recheck(busy=timedelta(minutes=-1))


@pytest.mark.parametrize(
    ("changed_at", "now"),
    [
        (T0, datetime(2025, 3, 3, 9, 0)),
        (datetime(2025, 3, 3, 9, 0), T0),
    ],
)
def test_naive_datetimes_raise(changed_at: datetime, now: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        may_dial(S.BUSY, changed_at, now, DEFAULTS)


def test_naive_now_raises_even_without_status() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        may_dial(None, None, datetime(2025, 3, 3, 9, 0), DEFAULTS)


def test_status_without_time_raises() -> None:
    with pytest.raises(ValueError, match="time it was learned"):
        may_dial(S.BUSY, None, T0, DEFAULTS)
