"""What a newcomer meets in the console: how to make the first admin, and what dials."""

from __future__ import annotations

from api.accounts.users import create_user
from api.cli.supervisor import DialerPlan
from dialer.pool import size_pool
from tests.api.console_site import PASSWORD, Console
from tests.factories import T0


def test_the_login_page_says_how_to_make_the_first_admin(console: Console) -> None:
    page = console.browser().get("/login")
    assert page.status_code == 200
    assert "No admin account yet" in page.text
    assert "dialguard admin create-user NAME --role admin" in page.text
    with console.services.sessions() as session:
        create_user(session, "boss", "admin", PASSWORD, T0)
    assert "No admin account yet" not in console.browser().get("/login").text


def test_the_status_page_shows_the_pool_and_marks_the_test_carrier(console: Console) -> None:
    supervisor = console.supervisor()
    assert "Not known to this API process" in supervisor.get("/status").text
    plan = DialerPlan(
        size_pool(2, 22 * 2**30),
        carrier_port=40123,
        carrier_line=None,
    )
    console.app.state.dialer_status = plan.status_lines()  # as `dialguard up` sets it
    page = supervisor.get("/status").text
    assert "50 workers = 100 calls: 2 cores (25 workers a core), 22.0 GiB available" in page
    assert '<strong class="error">TEST CARRIER on 127.0.0.1:40123' in page
    console.app.state.dialer_status = DialerPlan(
        size_pool(2, None, 4), trunk="sip:c:5060"
    ).status_lines()
    page = supervisor.get("/status").text
    assert "4 workers = 8 calls: set by DIALGUARD_DIALER_WORKERS" in page
    assert "trunk sip:c:5060" in page and "TEST CARRIER" not in page


def test_the_status_page_says_the_pool_and_the_carrier_in_chinese(console: Console) -> None:
    supervisor = console.supervisor()
    supervisor.headers["Accept-Language"] = "zh-CN,zh;q=0.9"
    console.app.state.dialer_status = DialerPlan(
        size_pool(2, 22 * 2**30), carrier_port=40123, carrier_line=None
    ).status_lines()
    page = supervisor.get("/status").text
    assert "50 个拨号进程 = 100 路呼叫：2 核（每核 25 个进程），可用内存 22.0 GiB" in page
    assert '<strong class="error">测试线路（127.0.0.1:40123）' in page
    assert "Dialer pool" not in page and "TEST CARRIER" not in page
