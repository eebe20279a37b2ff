"""The console in headless Chromium against a running `dialguard up`: the QA and supervisor flows.

A call is imported through the real pipeline (encode, encrypt, two copies),
transcribed by Whisper and scored by the QA worker; then a QA reviewer
searches for what the agent said, opens the call, plays from the flag and
confirms it, and a supervisor (password and one-time code) finds the call,
plays it and downloads it with a reason. Every step is in the audit log, and
the log verifies. Screenshots of the pages go to a temporary folder, or to
the folder named by DIALGUARD_SCREENSHOTS (`docs/` holds the published ones).
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

from api.totp import code_at
from tests.audio import call_audio
from tests.helpers import dialguard
from tests.test_up import GREEN_WITHIN, Running

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
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                 "--autoplay-policy=no-user-gesture-required"):  # fmt: skip
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
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
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
        ["recording", "store", str(wav), "--call-id", "browser-1", "--agent", "agent7"], env
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
    driver.find_element(By.TAG_NAME, "button").click()
    _wait(lambda: "/login" not in driver.current_url, timeout=20, every=0.2)


def _play(driver: Any) -> float:
    """Wait until the player has the audio (through the cookie-authenticated API)."""
    script = "const p = document.getElementById('player'); return p ? p.readyState : -1;"
    _wait(lambda: driver.execute_script(script) >= 1, timeout=30, every=0.2)
    duration: float = driver.execute_script("return document.getElementById('player').duration")
    return duration


def test_qa_and_supervisor_flows(
    product: Running, browser: Any, tmp_path: Path, dialguard_env: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By

    env = product.env
    for name, role in (("qa1", "qa"), ("sup1", "supervisor")):
        made = dialguard(["admin", "create-user", name, "--role", role, "--password-stdin"], env,
                         stdin=PASSWORD + "\n")  # fmt: skip
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
    browser.get(f"{base}/search?agent=agent7")
    browser.find_element(By.CSS_SELECTOR, "tr.hit a").click()
    browser.find_element(By.NAME, "reason").send_keys("bank complaint 4411")
    browser.find_element(By.XPATH, "//button[text()='Play']").click()
    _play(browser)
    link = browser.find_element(By.LINK_TEXT, "Download").get_attribute("href")
    assert "download=true" in link and "reason=bank+complaint+4411" in link
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer().then("
        "b => done([r.status, r.headers.get('content-disposition'), b.byteLength])));",
        link,
    )
    assert fetched[0] == 200 and f"{recording_id}.ogg" in fetched[1] and fetched[2] > 10_000
    browser.get(f"{base}/status")
    assert "Keep-up ratio" in browser.page_source
    browser.save_screenshot(str(shots / "console-status.png"))

    with sqlite3.connect(_db(env)) as conn:
        actions = [(a, b) for a, b in conn.execute("SELECT actor, action FROM audit_log")]
    for entry in [("qa1", "login"), ("qa1", "search"), ("qa1", "play"),
                  ("qa1", "qa-flag-confirm"), ("sup1", "login"), ("sup1", "download")]:  # fmt: skip
        assert entry in actions, (entry, actions)
    verified = dialguard(["audit", "verify"], env)
    assert verified.returncode == 0 and "audit log intact" in verified.stdout
