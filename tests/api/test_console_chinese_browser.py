"""Must 5 in a real browser: headless Chromium asking for zh-CN walks the QA, supervisor,
agent and admin pages and reads no English UI text.

What may stay in Latin letters is the documented allow-list (docs/i18n.md): the
product's name, the language switch's "English", IDs and codes (anything with a digit,
'-', '_', '.', '/' or '@': agent7, bank-a, ACC-1, cn-default, Asia/Shanghai), masked
and E.164 numbers, a few standard abbreviations (UTC, CSV, GBK, UTF, YAML, WORM, MiB,
JSON, ISO), command lines shown in <code>/<pre>, and what the page marks translate="no"
(components' diagnostic details and SIP reason phrases, as the processes report them).
The same walk in English takes the screenshots in docs/ when DIALGUARD_SCREENSHOTS names
a folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.totp import code_at
from api.accounts.users import create_user
from api.web.services import Services
from qa_scoring.store import score_transcript
from tests.api.console_site import PASSWORD, Console, add_accounts
from tests.api.test_console_agents import _refusals
from tests.factories import T0
from tests.helpers import free_port
from transcribe.models import TranscriptRow

pytestmark = [
    pytest.mark.skipif(
        shutil.which("chromium") is None or shutil.which("chromedriver") is None,
        reason="Debian's chromium and chromium-driver are needed (make test installs them)",
    ),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

ALLOWED = {"Dialguard", "English", "UTC", "CSV", "GBK", "UTF", "YAML", "WORM", "MiB", "JSON"}
ALLOWED |= {"ISO", "GPU", "TOTP", "API", "SIP"}
_TOKEN = re.compile(r"[A-Za-z0-9._@/+*:'-]*[A-Za-z][A-Za-z0-9._@/+*:'-]*")

# Every text node and placeholder a person reads, but not what is marked as not for
# translation, nor command lines and scripts.
_VISIBLE_TEXT = """
const skip = "script, style, code, pre, [translate=no]";
const out = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (!node.parentElement.closest(skip)) out.push(node.textContent);
}
document.querySelectorAll("[placeholder]").forEach(e => out.push(e.getAttribute("placeholder")));
document.querySelectorAll("[aria-label]").forEach(e => out.push(e.getAttribute("aria-label")));
out.push(document.title);
return out.join("\\n");
"""


def english_words(text: str) -> list[str]:
    """Latin-letter words in `text` that are not on the allow-list."""
    found = []
    for token in _TOKEN.findall(text):
        word = token.strip(":'")
        if not word.strip(".") or word.strip(".") in ALLOWED:
            continue
        if re.search(r"[0-9_/@*+]", word) or re.search(r"\w[-.]\w|^\.\w", word):
            continue  # an id, a code, a masked number, a zone, a file name
        found.append(word)
    return found


@pytest.fixture
def site(services: Services, engine: Engine) -> Iterator[tuple[Console, str]]:
    """The console test site with every role, served by uvicorn for the browser."""
    console = Console(services, engine)
    with console.services.sessions() as session:
        create_user(session, "admin1", "admin", PASSWORD, T0)
        transcript = session.scalar(
            select(TranscriptRow.id).where(TranscriptRow.recording_id == console.recording.id)
        )
        assert transcript is not None
        score_transcript(session, transcript, "cn-collections", T0)  # the call page's QA export
    add_accounts(console)
    _refusals(console)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(console.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield console, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _browser(language: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_argument(f"--lang={language}")
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    return driver


def _log_in(driver: Any, base: str, console: Console, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    if username in ("sup1", "admin1"):
        secret = console.enroll(username)
        driver.find_element(By.NAME, "code").send_keys(code_at(secret, time.time()))
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    deadline = time.monotonic() + 20
    while "/login" in driver.current_url and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/login" not in driver.current_url, driver.page_source


def _walk(console: Console, base: str) -> list[tuple[str, str]]:
    """(role, path) of every console page, each as its role opens it."""
    call = f"/calls/{console.recording.id}"
    return [
        ("", "/login"),
        ("qa1", "/search?q=还款"),
        ("qa1", call),
        ("qa1", "/recordings?agent=agent7"),
        ("agent7", "/agent"),
        ("agent7", "/agent/call?client=bank-a&account=ACC-1"),
        ("sup1", "/status"),
        ("sup1", "/retrieval"),
        ("sup1", call),
        ("sup1", "/recordings?agent=agent7"),
        ("sup1", "/search?q=还款"),
        ("admin1", "/admin/users"),
        ("admin1", "/admin/dnc"),
        ("admin1", "/admin/policy"),
        ("admin1", "/admin/packs"),
        ("admin1", "/admin/keys"),
        ("admin1", "/admin/clients"),
        ("admin1", "/admin/audit"),
    ]


def _shots(language: str) -> Path | None:
    folder = os.environ.get("DIALGUARD_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder) / language
    path.mkdir(parents=True, exist_ok=True)
    return path


def _name(role: str, path: str) -> str:
    page = re.sub(r"[^a-z]+", "-", path.split("?", maxsplit=1)[0].lower()).strip("-") or "home"
    page = "call" if page.startswith("calls") else page
    return f"{role or 'anyone'}-{page}.png"


def test_every_page_in_chinese_has_no_english(site: tuple[Console, str]) -> None:
    console, base = site
    driver = _browser("zh-CN")
    shots = _shots("zh-CN")
    found: dict[str, list[str]] = {}
    try:
        who = None
        for role, path in _walk(console, base):
            if role and role != who:
                _log_in(driver, base, console, role)
                who = role
            driver.get(base + path)
            assert driver.find_element("tag name", "html").get_attribute("lang") == "zh-CN"
            words = english_words(driver.execute_script(_VISIBLE_TEXT))
            if words:
                found[f"{role or 'anyone'} {path}"] = sorted(set(words))
            if shots is not None:
                driver.save_screenshot(str(shots / _name(role, path)))
        # a do-not-call list with bad rows: each named by its line, in Chinese
        rows = _upload_dnc(driver, base, "号码,原因\n13800138000,本人要求\n12345,有误\n,空\n")
        text = driver.execute_script(_VISIBLE_TEXT)
        assert rows == ["3", "4"] and "该行没有号码" in text, text
        if english_words(text):
            found["admin1 /admin/dnc (bad rows)"] = sorted(set(english_words(text)))
        if shots is not None:
            driver.save_screenshot(str(shots / "admin1-admin-dnc-rows-to-fix.png"))
    finally:
        driver.quit()
    assert not found, found


def _upload_dnc(driver: Any, base: str, content: str) -> list[str]:
    """Upload `content` as a GBK CSV on the do-not-call page; the lines the page refuses."""
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/admin/dnc")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "名单.csv"
        path.write_bytes(content.encode("gbk"))
        driver.find_element(By.CSS_SELECTOR, "#dnc-import input[type=file]").send_keys(str(path))
        driver.find_element(By.CSS_SELECTOR, "#dnc-import button").click()
        deadline = time.monotonic() + 20
        while not driver.find_elements(By.ID, "row-errors") and time.monotonic() < deadline:
            time.sleep(0.1)
    return [
        r.find_element(By.TAG_NAME, "td").text
        for r in driver.find_elements(By.CSS_SELECTOR, ".row-error")
    ]


def test_the_same_walk_in_english_reads_english(site: tuple[Console, str]) -> None:
    """The English site is whole too (and its screenshots sit beside the Chinese ones)."""
    console, base = site
    driver = _browser("en-US")
    shots = _shots("en")
    try:
        who = None
        for role, path in _walk(console, base):
            if role and role != who:
                _log_in(driver, base, console, role)
                who = role
            driver.get(base + path)
            text = driver.execute_script(_VISIBLE_TEXT)
            assert not re.search(r"[\u4e00-\u9fff]{4,}", _without_data(text)), (path, text)
            if shots is not None:
                driver.save_screenshot(str(shots / _name(role, path)))
    finally:
        driver.quit()


def _without_data(text: str) -> str:
    """The English pages show Chinese only in data: transcripts, searches, the switch."""
    for data in ("您好，我是信用卡中心的客服。", "我下周还款。", "还款", "中文", "号码"):
        text = text.replace(data, "")
    return text
