"""Two languages: every message translated, the reader's language chosen as documented, the
console and API errors in Chinese for a Chinese reader and unchanged for an English one."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from api import i18n
from api.accounts.models import User
from api.i18n import EN, ZH
from api.reasons import refusal_text
from api.settings import Settings
from api.web.services import Services
from dialer.policy import CN_DEFAULT
from tests.api.console_site import Console, add_accounts, csrf_of
from tests.api.test_console_agents import _refusals

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "translate": None}
METHODS = [
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]")
CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def _extracted() -> dict[str, str]:
    """Every message a person may read in api/ (Python and console templates) -> where."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT / "api"), METHODS, OPTIONS, keywords=KEYWORDS
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text:
                found.setdefault(text, f"api/{filename}:{lineno}")
    return found


def _catalogue(language: str) -> Catalog:
    path = ROOT / "api" / "locale" / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        return read_po(source, locale=language)


@pytest.mark.parametrize("language", [ZH, EN])
def test_no_message_ships_untranslated(language: str) -> None:
    """Must 5: a message added in code or a template without its translation fails here,
    naming the file and line, until `make messages` and a translator have done their part."""
    messages = _extracted()
    assert len(messages) > 300  # the extraction really read the console
    catalogue = _catalogue(language)
    missing, fuzzy, mismatched = [], [], []
    for text, where in sorted(messages.items()):
        entry = catalogue.get(text)
        if entry is None or not entry.string:
            missing.append(f"{where}: {text!r}")
        elif entry.fuzzy:
            fuzzy.append(f"{where}: {text!r}")
        elif sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(str(entry.string))):
            mismatched.append(f"{where}: {text!r} -> {entry.string!r}")
    assert not missing, f"{len(missing)} not in {language}:\n" + "\n".join(missing)
    assert not fuzzy, f"{len(fuzzy)} fuzzy in {language}:\n" + "\n".join(fuzzy)
    assert not mismatched, "placeholders differ:\n" + "\n".join(mismatched)


def test_chinese_catalogue_is_chinese() -> None:
    """A msgstr copied from English would pass the count above; each must hold Chinese."""
    english_left = [
        m.id
        for m in _catalogue(ZH)
        if m.id and not re.search(r"[\u4e00-\u9fff]", str(m.string)) and m.id != "English"
    ]
    assert not english_left, english_left


def test_the_language_is_the_profile_then_the_browser_then_the_site() -> None:
    assert i18n.choose("en", None, "zh-CN", ZH) == EN  # the person's choice wins
    assert i18n.choose(None, "zh_CN", "en-US", EN) == ZH  # then the switch's cookie
    assert i18n.choose(None, None, "fr-FR, zh-TW;q=0.8, en;q=0.5", EN) == ZH  # q-values
    assert i18n.choose(None, None, "en-GB,zh;q=0.1", ZH) == EN
    assert i18n.choose(None, None, "fr, de", ZH) == ZH  # nothing we speak: the site's
    assert i18n.choose(None, None, None, EN) == EN
    assert i18n.choose(None, None, "zh;q=0", EN) == EN  # q=0 means "not this"


def test_site_default_follows_the_setting_then_the_policy_preset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert i18n.site_default(None, "cn-default") == ZH
    assert i18n.site_default(None, "us-regf") == EN
    assert i18n.site_default("en", "cn-default") == EN
    monkeypatch.setenv("DIALGUARD_LANGUAGE", "zh_CN")
    assert Settings().language == ZH
    monkeypatch.setenv("DIALGUARD_LANGUAGE", "fr")
    with pytest.raises(ValueError, match="language"):
        Settings()


def test_dates_numbers_and_money_in_the_readers_locale() -> None:
    at = datetime(2026, 12, 6, 14, 5, tzinfo=UTC)
    i18n.use(ZH)
    try:
        assert i18n.when(at) == "2026年12月6日 14:05"
        assert i18n.when(at, ZoneInfo("Asia/Shanghai")) == "2026年12月6日 22:05"
        assert i18n.day(at) == "2026年12月6日"
        assert i18n.money(Decimal("12345")) == "¥12,345.00"
        assert i18n.number(1234567) == "1,234,567"
    finally:
        i18n.use(EN)
    assert i18n.when(at) == "2026-12-06 14:05"  # English as the console always wrote it
    assert i18n.money(Decimal("12345")) == "CN¥12,345.00"


def test_a_refusal_reads_in_chinese_with_the_next_allowed_time() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 12, 6, 20, 0, tzinfo=shanghai)
    tomorrow = datetime(2026, 12, 7, 8, 0, tzinfo=shanghai)
    english = "The debtor has already had 3 call attempts on 2026-12-06 ... Next allowed: ..."
    i18n.use(ZH)
    try:
        shown = refusal_text("daily_cap", english, tomorrow, now, CN_DEFAULT)
        later = refusal_text("daily_cap", english, tomorrow.replace(day=9), now, CN_DEFAULT)
    finally:
        i18n.use(EN)
    assert shown == "每日拨打次数已达上限（3 次），下次可拨打时间 明天 08:00"
    assert later.endswith("下次可拨打时间 2026年12月9日 08:00")
    assert refusal_text("daily_cap", english, tomorrow, now, CN_DEFAULT) == english


# --- the console -----------------------------------------------------------------------------


@pytest.fixture
def console(services: Services, engine: object) -> Console:
    return Console(services, engine)  # type: ignore[arg-type]


def test_english_stays_as_it_was_without_accept_language(console: Console) -> None:
    page = console.browser().get("/login").text
    assert '<html lang="en">' in page and "<h1>Log in</h1>" in page and "登录" not in page
    answer = console.logged_in("qa1").get("/search")
    assert ">Search</button>" in answer.text and "Content-Language" not in answer.headers


def test_console_in_chinese_for_a_chinese_browser(console: Console) -> None:
    browser = console.browser()
    browser.headers.update(CHINESE)
    login = browser.get("/login").text
    assert '<html lang="zh-CN">' in login
    assert "<h1>登录</h1>" in login and "用户名" in login and "动态验证码" in login
    refused = browser.post("/login", data={"username": "qa1", "password": "wrong password!"})
    assert refused.status_code == 401 and "用户名、密码或动态验证码错误" in refused.text

    qa = console.logged_in("qa1")
    qa.headers.update(CHINESE)
    search = qa.get("/search", params={"q": "还款"}).text
    assert "通话中说过的话" in search and ">搜索</button>" in search
    assert "<th>说话人</th>" in search and "2026年" in search  # the hit's date, Chinese style
    call = qa.get(f"/calls/{console.recording.id}").text
    assert "为什么收听？（记入审计日志）" in call and ">播放</button>" in call
    assert "因读卡号暂停录音" in call  # the pause over the card details
    forbidden = qa.get("/admin/users")
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "质检员角色无权打开此页面"
    assert forbidden.json()["code"] == "forbidden" and forbidden.json()["title"] == "禁止访问"


def test_site_default_chinese_without_accept_language(services: Services, engine: object) -> None:
    console = Console(replace(services, language=ZH), engine)  # type: ignore[arg-type]
    assert "<h1>登录</h1>" in console.browser().get("/login").text
    english = console.browser()
    english.headers["Accept-Language"] = "en-US,en;q=0.9"
    assert "<h1>Log in</h1>" in english.get("/login").text


def test_the_switch_keeps_the_choice_in_the_profile(console: Console) -> None:
    agent = console.logged_in("agent7")
    agent.headers["Accept-Language"] = "en-US"
    page = agent.get("/agent").text
    assert ">中文</button>" in page and ">English</button>" in page
    switched = agent.post(
        "/language", data={"language": "zh_CN", "next": "/agent", "csrf": csrf_of(page)}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/agent"
    with console.services.sessions() as session:
        user = session.scalar(select(User).where(User.username == "agent7"))
        assert user is not None and user.language == ZH
    assert ("agent7", "language-changed") in console.actions()

    elsewhere = console.logged_in("agent7")  # another browser, English, no cookie
    elsewhere.headers["Accept-Language"] = "en-US"
    assert "<h1>我的通话</h1>" in elsewhere.get("/agent").text  # the profile wins
    foreign = console.browser().post(  # no session: only the cookie changes, nothing stored
        "/language", data={"language": "en", "next": "//evil.example/"}
    )
    assert foreign.headers["location"] == "/"  # never off-site


def test_agent_sees_refusals_in_chinese(console: Console) -> None:
    add_accounts(console)
    _refusals(console)
    console.clock.now = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    agent = console.logged_in("agent7")
    agent.headers.update(CHINESE)
    page = agent.get("/agent/call", params={"client": "bank-a", "account": "ACC-1"}).text
    assert "不在债务人当地时间 08:00-21:00 的拨打时段内，下次可拨打时间 明天 08:00" in page
    assert "可于 2026年11月25日 08:00 拨打（Asia/Shanghai）" in page
    assert "该号码在免打扰名单上，不予拨打。" in page
    assert "紧急联系人" in page and "债务人" in page
    assert 'data-rule="window"' in page  # the codes stay codes for scripts


def test_admin_pages_in_chinese(console: Console) -> None:
    with console.services.sessions() as session:
        from api.accounts.users import create_user
        from tests.api.console_site import PASSWORD
        from tests.factories import T0

        create_user(session, "admin1", "admin", PASSWORD, T0)
    admin = console.supervisor("admin1")
    admin.headers.update(CHINESE)
    users = admin.get("/admin/users").text
    assert "<h1>用户与角色</h1>" in users and ">创建账户</button>" in users
    assert '<option value="supervisor">主管</option>' in users  # codes posted, words shown
    policy = admin.get("/admin/policy").text
    assert "同一债务人每天最多拨打 3 次。" in policy
    created = admin.post(
        "/admin/users",
        data={
            "username": "qa2",
            "role": "qa",
            "password": "x",
            "password_again": "y",
            "csrf": csrf_of(users),
        },
    )
    assert created.status_code == 400 and "两次输入的密码不一致" in created.text


def test_api_errors_keep_codes_and_speak_the_readers_language(console: Console) -> None:
    client = console.logged_in("qa1")
    missing = "0" * 32
    english = client.get(f"/api/v1/qa/calls/{missing}")
    assert english.status_code == 404
    assert english.json()["title"] == "Not found" and english.json()["code"] == "not_found"
    chinese = client.get(f"/api/v1/qa/calls/{missing}", headers=CHINESE)
    body = chinese.json()
    assert body["code"] == "not_found" and body["status"] == 404
    assert body["title"] == "未找到" and body["detail"] == f"没有录音 {missing}"
    assert chinese.headers["Content-Language"] == "zh-CN"
    invalid = client.get(
        "/api/v1/transcripts/search", params={"q": "x", "limit": "many"}, headers=CHINESE
    )
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid_input"
    assert invalid.json()["detail"] == "limit: 必须是整数"
