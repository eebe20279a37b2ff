"""#17 Must 1: what an operator reads from the `dialguard` command, and the audit log as people
read it, in their language: the shell's locale first, then the site's; the stored codes stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from api import i18n
from api.accounts.users import create_user
from api.audit.actions import ACTIONS, action_description, action_label
from api.cli.doctor import CheckResult, Status, render
from api.i18n import EN, ZH
from api.web.services import Services
from tests.api.console_site import PASSWORD, Console
from tests.factories import T0
from tests.helpers import dialguard

CHINESE = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def _operator(dialguard_env: dict[str, str], **shell: str | None) -> dict[str, str]:
    env = dict(dialguard_env)
    for name, value in shell.items():
        env.pop(name, None)
        if value is not None:
            env[name] = value
    return env


def test_the_shell_then_the_site_decides() -> None:
    assert i18n.from_shell({"LANG": "zh_CN.UTF-8"}) == ZH
    assert i18n.from_shell({"LANG": "zh_CN.UTF-8", "LC_ALL": "en_US.UTF-8"}) == EN  # POSIX order
    assert i18n.from_shell({"LANG": "en_US", "LC_MESSAGES": "zh_TW.UTF-8"}) == ZH
    assert i18n.from_shell({"LANG": "C.UTF-8"}) is None  # names no language: the site's
    assert i18n.from_shell({"LC_ALL": "POSIX", "LANG": "zh_CN.UTF-8"}) is None
    assert i18n.from_shell({"LANG": "de_DE.UTF-8@euro"}) is None
    assert i18n.from_shell({}) is None
    assert i18n.for_operator({"LANG": "C.UTF-8"}, ZH) == ZH
    assert i18n.for_operator({"LANG": "en_GB.UTF-8"}, ZH) == EN
    assert i18n.for_operator({"LANG": "zh_CN.UTF-8"}, EN) == ZH


def test_a_chinese_operator_reads_chinese(dialguard_env: dict[str, str], tmp_path: Path) -> None:
    """The real command, a zh_CN shell and no DIALGUARD_LANGUAGE."""
    env = _operator(dialguard_env, LANG="zh_CN.UTF-8", DIALGUARD_LANGUAGE=None)
    upgraded = dialguard(["db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == "数据库结构已是最新"
    checked = dialguard(["dnc", "check", "+8613800138000"], env)
    assert checked.returncode == 1 and "不在任何免打扰名单上" in checked.stdout
    assert "+86" in checked.stdout  # the masked number stays as it is
    missing = tmp_path / "debtors.csv"
    refused = dialguard(["debtors", "import", str(missing)], env)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"dialguard: 无法读取 {missing}：")
    assert refused.stderr.rstrip().endswith(" - 请检查路径")  # the hint, in Chinese too
    broken = dialguard(["db", "upgrade"], {**env, "DIALGUARD_DATABASE_URL": "this is not a url"})
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "DIALGUARD_DATABASE_URL 不是数据库地址 - 例如使用 postgresql+psycopg://" in broken.stderr


def test_the_site_language_when_the_shell_names_none(dialguard_env: dict[str, str]) -> None:
    site = _operator(dialguard_env, LANG="C.UTF-8", DIALGUARD_LANGUAGE="zh_CN")
    assert dialguard(["db", "upgrade"], site).stdout.strip() == "数据库结构已是最新"
    preset = _operator(dialguard_env, LANG=None, DIALGUARD_LANGUAGE=None)  # cn-default: Chinese
    assert dialguard(["db", "upgrade"], preset).stdout.strip() == "数据库结构已是最新"


def test_the_shell_wins_over_the_site_and_tests_stay_english(
    dialguard_env: dict[str, str],
) -> None:
    english_shell = _operator(dialguard_env, LANG="en_US.UTF-8", DIALGUARD_LANGUAGE="zh_CN")
    assert dialguard(["db", "upgrade"], english_shell).stdout.strip() == (
        "database schema is up to date"
    )
    chinese_shell = _operator(dialguard_env, LANG="zh_CN.UTF-8", LC_ALL="en_US.UTF-8")
    assert "database schema is up to date" in dialguard(["db", "upgrade"], chinese_shell).stdout
    plain = dialguard(["db", "upgrade"], dialguard_env)  # what every other CLI test runs with
    assert plain.stdout.strip() == "database schema is up to date"


def test_doctor_table_in_chinese_lines_up() -> None:
    results = [
        CheckResult("database", Status.OK, "sqlite:///x: schema 0026"),
        CheckResult("SIP port", Status.FAIL, "busy", "free it"),
    ]
    english = render(results)
    assert english.splitlines()[0] == "check     status  detail"
    assert "SIP port  FAIL    busy - free it" in english
    with i18n.speaking(ZH):
        chinese = render(results).splitlines()
    assert i18n.current() == EN  # the command's language ends with the command
    assert chinese[0].startswith("检查项") and "状态" in chinese[0] and "详情" in chinese[0]
    assert chinese[2].startswith("数据库") and "正常" in chinese[2]
    assert chinese[3].startswith("SIP 端口") and "失败" in chinese[3]
    # Chinese characters take two columns: the details start in the same column on every row
    columns = [sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in row) for row in chinese]
    starts = [
        columns[i] - len(detail) for i, detail in ((2, results[0].line), (3, "busy - free it"))
    ]
    assert starts[0] == starts[1]


def test_every_action_has_words_in_both_languages() -> None:
    with i18n.speaking(ZH):
        assert action_label("play") == "播放录音"
        assert action_description("qa-flag-confirm") == "确认了通话中的一个质检标记。"
        assert action_label("some-new-action") == "some-new-action"  # unknown: as stored
        assert action_description("some-new-action") == ""
        for code in ACTIONS:
            assert any("\u4e00" <= c <= "\u9fff" for c in action_label(code)), code
    assert action_label("play") == "Recording played"


@pytest.fixture
def console(services: Services, engine: object) -> Console:
    site = Console(services, engine)  # type: ignore[arg-type]
    with site.services.sessions() as session:
        create_user(session, "admin1", "admin", PASSWORD, T0)
    return site


def test_audit_entries_in_chinese_on_the_console_and_the_api(console: Console) -> None:
    admin = console.supervisor("admin1")
    admin.headers.update(CHINESE)
    page = admin.get("/admin/audit")
    assert page.status_code == 200
    assert "<h1>审计日志</h1>" in page.text
    assert 'data-action="login"' in page.text  # the stored code stays for scripts
    assert "登录了控制台。" in page.text and '<code class="muted">login</code>' in page.text
    assert ">审计日志</strong>" in page.text  # the admin menu names it
    assert ("admin1", "audit-read") in console.actions()  # reading it is audited
    only = admin.get("/admin/audit", params={"action": "audit-read"}).text
    assert "查阅了审计日志。" in only and 'data-action="login"' not in only

    english = admin.get("/admin/audit", headers={"Accept-Language": "en"})
    assert "Logged in to the console." in english.text and "<h1>Audit log</h1>" in english.text

    api = admin.get("/api/v1/audit", params={"action": "login"}).json()["entries"]
    assert api and api[0]["action"] == "login"
    assert api[0]["action_label"] == "登录" and api[0]["description"] == "登录了控制台。"
    plain = admin.get(
        "/api/v1/audit", params={"action": "login"}, headers={"Accept-Language": "en"}
    )
    entry = plain.json()["entries"][0]
    assert entry["action_label"] == "Log in" and entry["description"] == "Logged in to the console."


def test_other_roles_cannot_open_the_audit_page(console: Console) -> None:
    assert console.logged_in("qa1").get("/admin/audit").status_code == 403
