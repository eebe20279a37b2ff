"""The console in headless Chromium against a running `dialguard up`: QA, supervisor, agent.

A call is imported through the real pipeline (encode, encrypt, two copies),
transcribed by Whisper and scored by the QA worker; then a QA reviewer
searches for what the agent said, opens the call, plays from the flag and
confirms it; a supervisor (password and one-time code) finds the call by its
case on the Recordings page, plays it, downloads it with a reason, places a
legal hold, and files and fulfils a retrieval request; an agent looks up the
debtor (imported with `dialguard debtors import`) and sees when each number
may be called. Every step is in the audit log, and the log verifies.
Screenshots of the pages go to a temporary folder, or to the folder named by
DIALGUARD_SCREENSHOTS (`docs/` holds the published ones).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.accounts.totp import code_at
from tests.audio import call_audio
from tests.e2e.test_up import GREEN_WITHIN, Running
from tests.helpers import dialguard

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("chromium") is None or shutil.which("chromedriver") is None,
        reason="Debian's chromium and chromium-driver are needed (make test installs them)",
    ),
]

PASSWORD = "a long passphrase"
SAID = "If you do not pay today we will have you arrested."


@pytest.fixture
def product(dialguard_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    env = dialguard_env | {"DIALGUARD_QA_PACK": "en-collections"}
    running = Running(env, tmp_path / "up.log")
    try:
        running.wait_green(GREEN_WITHIN)
        yield running
    finally:
        running.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _db(env: dict[str, str]) -> Path:
    return Path(env["DIALGUARD_DATA_DIR"]) / "dialguard.db"


def _wait(what: Any, timeout: float = 240.0, every: float = 1.0) -> Any:
    """`what()` until it is true; an element that went stale (the page was replaced
    between finding it and reading it, as after a form's POST) is "not yet"."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = what()
        except StaleElementReferenceException:
            found = None
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out")


def _flagged_call(env: dict[str, str], tmp_path: Path) -> tuple[str, float]:
    """Import a call in which the agent threatens arrest; (recording id, flag second)."""
    wav = call_audio(
        tmp_path / "call.wav",
        [("agent", 0.5, "This is John from Acme Recovery."), ("agent", 4.0, SAID)],
        seconds=10.0,
    )
    stored = dialguard(
        [
            "recording",
            "store",
            str(wav),
            "--call-id",
            "browser-1",
            "--agent",
            "agent7",
            "--debtor",
            "ACC-0001",
        ],
        env,
    )
    assert stored.returncode == 0, stored.stdout + stored.stderr

    def flag() -> tuple[str, float] | None:
        with sqlite3.connect(_db(env)) as conn:
            row = conn.execute(
                "SELECT recording_id, start_s FROM qa_flags WHERE rule = 'threat-arrest'"
            ).fetchone()
        return (str(row[0]), float(row[1])) if row else None

    found: tuple[str, float] = _wait(flag)
    return found


def _log_in(driver: Any, base: str, username: str, code: str = "") -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    if code:
        driver.find_element(By.NAME, "code").send_keys(code)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    _wait(lambda: "/login" not in driver.current_url, timeout=20, every=0.2)


def _play(driver: Any) -> float:
    """Wait until the player has the audio (through the cookie-authenticated API)."""
    script = "const p = document.getElementById('player'); return p ? p.readyState : -1;"
    _wait(lambda: driver.execute_script(script) >= 1, timeout=30, every=0.2)
    duration: float = driver.execute_script("return document.getElementById('player').duration")
    return duration


def _text(driver: Any, element_id: str) -> str:
    """The element's text, or "" while the page after a form post is still loading."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        return str(driver.find_element(By.ID, element_id).text)
    except WebDriverException:
        return ""


def _agent_call_page(
    driver: Any, base: str, env: dict[str, str], tmp_path: Path, shots: Path
) -> None:
    """An agent looks up a debtor imported by the collection system, one number on a DNC list."""
    from selenium.webdriver.common.by import By

    debtors = tmp_path / "debtors.csv"
    debtors.write_text(
        "client,external_id,name,stage,timezone,numbers,callback_windows\n"
        'bank-a,ACC-0001,王小明,early,Asia/Shanghai,"debtor:13800138000;relative:13900139000;'
        'employer:01058001234;emergency:13700137000",Mon-Fri 18:00-20:00\n'
    )
    blocked = tmp_path / "dnc.csv"
    blocked.write_text("13900139000,asked not to be called at home\n")
    for command in (
        ["admin", "create-user", "agent7", "--role", "agent", "--password-stdin"],
        ["debtors", "import", str(debtors)],
        ["dnc", "import", str(blocked), "--client", "bank-a"],
    ):
        done = dialguard(command, env, stdin=PASSWORD + "\n")
        assert done.returncode == 0, done.stdout + done.stderr
    driver.delete_all_cookies()
    _log_in(driver, base, "agent7")
    driver.find_element(By.LINK_TEXT, "Call").click()
    look = driver.find_element(By.ID, "by-account")
    look.find_element(By.NAME, "client").send_keys("bank-a")
    look.find_element(By.NAME, "account").send_keys("ACC-0001")
    look.find_element(By.XPATH, ".//button[text()='Look up']").click()
    rows = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "tr.number"), 20, 0.2)
    shown = {row.find_element(By.TAG_NAME, "td").text: row.text for row in rows}
    assert set(shown) == {"+86138****8000", "+86139****9000", "+8610****1234", "+86137****7000"}
    assert "not called" in shown["+86139****9000"] and "relative" in shown["+86139****9000"]
    for masked, text in shown.items():  # the clock is real: now, or from when
        assert masked == "+86139****9000" or re.search(r"may call (now|from \d{4}-)", text), text
    assert "王小明" not in driver.page_source
    locked = driver.execute_script(
        "return [document.body.getAttribute('oncopy'), document.body.getAttribute('onpaste'),"
        " getComputedStyle(document.querySelector('main')).userSelect];"
    )
    assert locked == ["return false", "return false", "none"], locked
    driver.save_screenshot(str(shots / "console-agent-call.png"))


def test_qa_and_supervisor_flows(
    product: Running, browser: Any, tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    env = product.env
    for name, role in (("qa1", "qa"), ("sup1", "supervisor")):
        made = dialguard(
            ["admin", "create-user", name, "--role", role, "--password-stdin"],
            env,
            stdin=PASSWORD + "\n",
        )
        assert made.returncode == 0, made.stderr
    enrolled = dialguard(["admin", "enroll-totp", "sup1"], env)
    secret = re.search(r"secret \(to type in by hand\): (\w+)", enrolled.stdout)
    assert secret is not None, enrolled.stdout
    recording_id, flag_at = _flagged_call(env, tmp_path)
    base = f"http://127.0.0.1:{env['DIALGUARD_API_PORT']}"
    shots = Path(os.environ.get("DIALGUARD_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    # QA: search -> open the call -> play from the flag -> confirm it.
    _log_in(browser, base, "qa1")
    browser.get(f"{base}/search?q=arrested")
    hit = browser.find_element(By.CSS_SELECTOR, "tr.hit a")
    assert "<mark>" in browser.find_element(By.CSS_SELECTOR, "tr.hit").get_attribute("innerHTML")
    browser.save_screenshot(str(shots / "console-search.png"))
    hit.click()
    browser.find_element(By.NAME, "reason").send_keys("weekly QA review")
    browser.find_element(By.XPATH, "//button[text()='Play']").click()
    assert _play(browser) > 8.0
    browser.find_element(By.CSS_SELECTOR, "a.seek").click()
    position = browser.execute_script("return document.getElementById('player').currentTime")
    assert abs(position - flag_at) < 0.5, (position, flag_at)
    browser.save_screenshot(str(shots / "console-call.png"))
    browser.find_element(By.XPATH, "//button[text()='Confirm']").click()
    _wait(lambda: "confirmed" in browser.find_element(By.CSS_SELECTOR, "td.state").text, 20, 0.2)

    # Supervisor: password and one-time code -> find -> play -> download with a reason.
    browser.delete_all_cookies()
    _log_in(browser, base, "sup1", code_at(secret.group(1), time.time()))
    browser.find_element(By.LINK_TEXT, "Recordings").click()
    browser.find_element(By.NAME, "case").send_keys("ACC-0001")
    browser.find_element(By.XPATH, "//button[text()='Find']").click()
    found = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "tr.recording a"), 20, 0.2)
    assert len(found) == 1 and "ACC-0001" in browser.find_element(By.ID, "find").get_attribute(
        "innerHTML"
    )
    browser.save_screenshot(str(shots / "console-recordings.png"))
    found[0].click()
    _wait(lambda: f"/calls/{recording_id}" in browser.current_url, 20, 0.2)
    browser.find_element(By.NAME, "reason").send_keys("bank complaint 4411")
    browser.find_element(By.XPATH, "//button[text()='Play']").click()
    _play(browser)
    form = browser.find_element(By.ID, "download")
    form.find_element(By.NAME, "reason").send_keys("bank complaint 4411, copy for the bank")
    link = browser.execute_script(
        "const f = document.getElementById('download');"
        "return f.action + '?' + new URLSearchParams(new FormData(f)).toString();"
    )  # what the Download button asks for; fetched here, as a download leaves no page
    assert "download=true" in link and "reason=bank+complaint+4411" in link
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer().then("
        "b => done([r.status, r.headers.get('content-disposition'), b.byteLength])));",
        link,
    )
    assert fetched[0] == 200 and f"{recording_id}.ogg" in fetched[1] and fetched[2] > 10_000
    hold = browser.find_element(By.ID, "legal-hold")
    hold.find_element(By.NAME, "reason").send_keys("dispute 4411")
    hold.find_element(By.XPATH, ".//button[text()='Place legal hold']").click()
    _wait(lambda: "On legal hold" in _text(browser, "hold-state"), 20, 0.2)

    # Supervisor: the retrieval-request queue: file one, see its due time, fulfil it.
    browser.find_element(By.LINK_TEXT, "Retrieval requests").click()
    filing = browser.find_element(By.ID, "file")
    filing.find_element(By.NAME, "subject").send_keys("ACC-0001")
    filing.find_element(By.NAME, "reason").send_keys("bank-a complaint 4411")
    filing.find_element(By.XPATH, ".//button[text()='File request']").click()
    _wait(lambda: "ACC-0001" in _text(browser, "queue"), 20, 0.2)
    browser.save_screenshot(str(shots / "console-retrieval.png"))
    row = browser.find_element(By.CSS_SELECTOR, "tr.request")
    row.find_element(By.NAME, "recording_id").send_keys(recording_id)
    row.find_element(By.XPATH, ".//button[text()='Fulfil']").click()
    _wait(lambda: "Nothing waiting." in browser.page_source, 20, 0.2)
    browser.get(f"{base}/status")
    assert "Keep-up ratio" in browser.page_source
    browser.save_screenshot(str(shots / "console-status.png"))

    # Agent: look a debtor up; each number says whether it may be called now.
    _agent_call_page(browser, base, env, tmp_path, shots)

    with sqlite3.connect(_db(env)) as conn:
        actions = [(a, b) for a, b in conn.execute("SELECT actor, action FROM audit_log")]
    for entry in [
        ("qa1", "login"),
        ("qa1", "search"),
        ("qa1", "play"),
        ("qa1", "qa-flag-confirm"),
        ("sup1", "login"),
        ("sup1", "recording-search"),
        ("sup1", "play"),
        ("sup1", "download"),
        ("sup1", "legal-hold-on"),
        ("sup1", "retrieval-request"),
        ("sup1", "retrieval-fulfil"),
        ("agent7", "debtor-view"),
    ]:
        assert entry in actions, (entry, actions)
    verified = dialguard(["audit", "verify"], env)
    assert verified.returncode == 0 and "audit log intact" in verified.stdout


def test_admin_pages(product: Running, browser: Any, tmp_path: Path) -> None:
    """An admin (password and one-time code) picks a preset and a pack; screenshots of the pages."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    def text(element_id: str) -> str:
        """The element's text, or "" while the page after a form post is still loading."""
        try:
            return str(browser.find_element(By.ID, element_id).text)
        except WebDriverException:
            return ""

    env = product.env
    made = dialguard(
        ["admin", "create-user", "admin1", "--role", "admin", "--password-stdin"],
        env,
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    enrolled = dialguard(["admin", "enroll-totp", "admin1"], env)
    secret = re.search(r"secret \(to type in by hand\): (\w+)", enrolled.stdout)
    assert secret is not None, enrolled.stdout
    base = f"http://127.0.0.1:{env['DIALGUARD_API_PORT']}"
    shots = Path(os.environ.get("DIALGUARD_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)

    _log_in(browser, base, "admin1", code_at(secret.group(1), time.time()))
    browser.find_element(By.LINK_TEXT, "Admin").click()
    _wait(lambda: browser.current_url.endswith("/admin/users"), timeout=20, every=0.2)
    assert "admin1" in browser.find_element(By.ID, "accounts").text
    browser.save_screenshot(str(shots / "console-admin-users.png"))
    browser.get(f"{base}/admin/policy")
    browser.find_element(By.XPATH, "//button[text()='Use cn-workdays']").click()
    _wait(lambda: "cn-workdays (chosen here" in text("active-preset"), 20, 0.2)
    browser.save_screenshot(str(shots / "console-admin-policy.png"))
    browser.get(f"{base}/admin/packs")
    browser.find_element(By.CSS_SELECTOR, "tr[data-ref='shipped:cn-collections'] button").click()
    _wait(lambda: "cn-collections" in text("active-pack"), 20, 0.2)
    browser.save_screenshot(str(shots / "console-admin-packs.png"))

    with sqlite3.connect(_db(env)) as conn:
        settings = dict(conn.execute("SELECT key, value FROM site_settings"))
        actions = [a for (a,) in conn.execute("SELECT action FROM audit_log WHERE actor='admin1'")]
    assert settings == {"policy_preset": "cn-workdays", "qa_pack": "shipped:cn-collections"}
    assert actions == ["login", "policy-preset-changed", "qa-pack-activated"]
