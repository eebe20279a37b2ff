"""The admin pages over HTTP: accounts, do-not-call import, policy preset, rule packs, keys.

Real database (both backends), real key ring, the real app; the dialer's
decision and the QA worker run as `dialguard up` runs them, against the same
database, to show an admin's choice taking effect without a restart.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from api.accounts.models import Role, User
from api.accounts.sessions import enroll_totp
from api.accounts.totp import code_at
from api.accounts.users import create_user
from api.audit.chain import AuditEntry, verify
from api.console.admin_rules import Change, Target, describe_policy, refused
from api.key_rotation import Rewrapped, rewrap_all
from api.web.services import Services
from dialer.decision import policy_decider
from dialer.models import DncEntry
from dialer.policy import CN_DEFAULT, CN_WORKDAYS, US_REGF, preset
from dialer.site import CallSite
from qa_scoring.models import QaResult
from qa_scoring.pack_store import UploadedPack, active_pack_source
from qa_scoring.worker import run_qa_child_loop
from recording.crypto import new_data_key
from recording.db.site_settings import POLICY_PRESET, SiteSetting
from recording.fields import open_text, sealed_under
from recording.keys import FileKeyRing, WrappedKey
from tests.apps import make_app
from tests.factories import T0, add_recording, add_transcript
from tests.helpers import dialguard

PASSWORD = "a long passphrase"
SH = ZoneInfo("Asia/Shanghai")
SATURDAY_10H = datetime(2026, 11, 28, 10, 0, tzinfo=SH)  # no make-up working day
NUMBER = "+8613800138000"

PACK = """\
name: site-zh
version: 1
language: zh
consequences: {1: 提醒, 2: 警告, 3: 罚款, 4: 停岗}
rules:
  - id: insult
    category: abuse
    severity: 3
    description: 辱骂
    phrases: [废物]
"""


class Site:
    """The app with an admin (TOTP enrolled) and one account of every other role."""

    def __init__(self, services: Services, engine: Engine) -> None:
        self.number_secret = b"k" * 32
        services = replace(services, number_secret=self.number_secret)
        self.services = services
        self.engine = engine
        self.app = make_app(services, engine)
        self.secrets: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("admin1", "admin", None),
                ("sup1", "supervisor", None),
                ("qa1", "qa", None),
                ("agent7", "agent", None),
                ("aud-b", "auditor", "bank-b"),
            ):
                user = create_user(session, name, role, PASSWORD, T0, client=client)
                user.client_id = client
                session.commit()
                if role in ("admin", "supervisor"):
                    self.secrets[name] = enroll_totp(session, user, services.keys)

    def browser(self) -> TestClient:
        return TestClient(self.app, follow_redirects=False)

    def logged_in(self, username: str, password: str = PASSWORD) -> TestClient:
        client = self.browser()
        code = code_at(self.secrets[username], time.time()) if username in self.secrets else ""
        answer = client.post(
            "/login", data={"username": username, "password": password, "code": code}
        )
        assert answer.status_code == 303, answer.text
        return client

    def csrf(self, client: TestClient, page: str = "/admin/users") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', client.get(page).text)
        assert found is not None
        return found.group(1)

    def audit(self) -> list[tuple[str, str, str, dict[str, object]]]:
        with self.services.sessions() as session:
            rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
            return [(e.actor, e.action, e.target, json.loads(e.detail)) for e in rows]

    def user(self, username: str) -> User:
        with self.services.sessions() as session:
            found = session.scalar(select(User).where(User.username == username))
            assert found is not None
            return found

    def count(self, model: type) -> int:
        with self.services.sessions() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def site(services: Services, engine: Engine) -> Site:
    return Site(services, engine)


PAGES = ("/admin", "/admin/users", "/admin/dnc", "/admin/policy", "/admin/packs", "/admin/keys")
FORMS: list[tuple[str, dict[str, str], dict[str, tuple[str, bytes]] | None]] = [
    (
        "/admin/users",
        {"username": "new1", "role": "qa", "password": PASSWORD, "password_again": PASSWORD},
        None,
    ),
    ("/admin/users/qa1/role", {"role": "admin"}, None),
    ("/admin/users/agent7/disable", {}, None),
    ("/admin/users/qa1/unlock", {}, None),
    ("/admin/users/sup1/reset-totp", {}, None),
    ("/admin/dnc", {"scope": "global"}, {"file": ("dnc.csv", f"{NUMBER},asked\n".encode())}),
    ("/admin/policy", {"preset": "us-regf"}, None),
    ("/admin/packs", {}, {"file": ("pack.yaml", PACK.encode())}),
    ("/admin/packs/active", {"ref": "shipped:en-collections"}, None),
]


# --- who may ---------------------------------------------------------------------------------


def test_admin_pages_are_for_admins_only(site: Site) -> None:
    anonymous = site.browser()
    for page in PAGES:
        assert anonymous.get(page).headers["location"].startswith("/login"), page
    for name in ("sup1", "qa1", "agent7", "aud-b"):
        other = site.logged_in(name)
        token = re.search(r'name="csrf" value="([^"]+)"', other.get("/").text or "")
        for page in PAGES:
            assert other.get(page).status_code == 403, (name, page)
        for url, form, files in FORMS:
            data = form | {"csrf": token.group(1) if token else ""}
            assert other.post(url, data=data, files=files).status_code == 403, (name, url)
        if name != "agent7":
            assert 'href="/admin"' not in other.get("/search").text
    admin = site.logged_in("admin1")
    assert admin.get("/admin").headers["location"] == "/admin/users"
    for page in PAGES[1:]:
        answer = admin.get(page)
        assert answer.status_code == 200 and 'href="/admin"' in answer.text, page
        assert answer.headers["cache-control"] == "no-store"
    assert site.count(SiteSetting) == 0 and site.count(UploadedPack) == 0
    assert site.count(DncEntry) == 0 and site.user("agent7").disabled is False


def test_every_admin_form_needs_the_session_token(site: Site) -> None:
    admin = site.logged_in("admin1")
    before = site.audit()
    for url, form, files in FORMS:
        for token in (None, "forged-token"):
            data = form if token is None else form | {"csrf": token}
            answer = admin.post(url, data=data, files=files)
            assert answer.status_code == 403, (url, token, answer.text)
    assert site.audit() == before
    assert site.count(SiteSetting) == 0 and site.count(UploadedPack) == 0
    assert site.count(DncEntry) == 0
    assert site.user("qa1").role is Role.QA and site.user("agent7").disabled is False
    assert site.user("sup1").totp_sealed is not None
    assert "new1" not in admin.get("/admin/users").text


# --- users and roles --------------------------------------------------------------------------


def test_accounts_are_created_and_changed_and_every_change_is_audited(site: Site) -> None:
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin)
    new = {
        "username": "aud-c",
        "role": "auditor",
        "password": PASSWORD,
        "password_again": PASSWORD,
        "csrf": csrf,
    }
    no_client = admin.post("/admin/users", data=new)
    assert no_client.status_code == 400 and "give the client id" in no_client.text
    short = admin.post(
        "/admin/users",
        data=new | {"client": "bank-c", "password": "short", "password_again": "short"},
    )
    assert short.status_code == 400 and "password too short" in short.text
    made = admin.post("/admin/users", data=new | {"client": "bank-c"})
    assert made.status_code == 200 and "created auditor aud-c" in made.text
    assert site.user("aud-c").client_id == "bank-c"
    taken = admin.post("/admin/users", data=new | {"client": "bank-c"})
    assert taken.status_code == 400 and "already exists" in taken.text
    site.logged_in("aud-c")  # the initial password works

    promoted = admin.post("/admin/users/qa1/role", data={"csrf": csrf, "role": "supervisor"})
    assert "qa1 is now supervisor" in promoted.text and site.user("qa1").role is Role.SUPERVISOR

    agent = site.logged_in("agent7")
    assert agent.get("/agent").status_code == 200
    admin.post("/admin/users/agent7/disable", data={"csrf": csrf})
    assert site.user("agent7").disabled
    assert agent.get("/agent").headers["location"].startswith("/login")  # session ended
    refused_login = site.browser().post("/login", data={"username": "agent7", "password": PASSWORD})
    assert refused_login.status_code == 401
    admin.post("/admin/users/agent7/enable", data={"csrf": csrf})
    site.logged_in("agent7")

    wrong = site.browser()
    for _ in range(5):  # 3 failures, then that browser waits (429) and nothing more is counted
        wrong.post("/login", data={"username": "aud-b", "password": "not the password"})
    row = re.search(r'data-user="aud-b">.*?</tr>', admin.get("/admin/users").text, re.S)
    assert row is not None and "locked" in row.group(0)
    locked = site.browser().post("/login", data={"username": "aud-b", "password": PASSWORD})
    assert locked.status_code == 429  # the same source waits, even with the right password
    unlocked = admin.post("/admin/users/aud-b/unlock", data={"csrf": csrf})
    assert "3 failed login(s) forgotten" in unlocked.text
    site.logged_in("aud-b")

    old_secret = site.secrets["sup1"]
    reset = admin.post("/admin/users/sup1/reset-totp", data={"csrf": csrf})
    secret = re.search(r'class="secret">(\w+)<', reset.text)
    assert secret is not None and secret.group(1) != old_secret
    assert "otpauth://totp/Dialguard%3Asup1" in reset.text
    site.secrets["sup1"] = secret.group(1)
    site.logged_in("sup1")

    changes = [
        (actor, action, target)
        for actor, action, target, _ in site.audit()
        if actor == "admin1" and action not in ("login",)
    ]
    assert changes == [
        ("admin1", "user-created", "aud-c"),
        ("admin1", "user-role-changed", "qa1"),
        ("admin1", "user-disabled", "agent7"),
        ("admin1", "user-enabled", "agent7"),
        ("admin1", "user-unlocked", "aud-b"),
        ("admin1", "totp-reset", "sup1"),
    ]
    details = {(a, t): d for actor, a, t, d in site.audit() if actor == "admin1"}
    assert details[("user-role-changed", "qa1")]["from"] == "qa"
    assert details[("user-role-changed", "qa1")]["to"] == "supervisor"
    assert details[("user-created", "aud-c")] == {"role": "auditor", "client": "bank-c"}
    assert all(secret.group(1) not in json.dumps(d) for d in details.values())
    with site.services.sessions() as session:
        assert verify(session) == []


def test_the_last_admin_stays_and_no_admin_disables_themselves(site: Site) -> None:
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin)
    demote = admin.post("/admin/users/admin1/role", data={"csrf": csrf, "role": "qa"})
    assert demote.status_code == 400 and "admin1 is the last admin" in demote.text
    itself = admin.post("/admin/users/admin1/disable", data={"csrf": csrf})
    assert itself.status_code == 400 and "cannot disable your own account" in itself.text
    assert site.user("admin1").role is Role.ADMIN and not site.user("admin1").disabled
    assert not [a for _, a, _, _ in site.audit() if a.startswith("user-")]

    admin.post("/admin/users/qa1/role", data={"csrf": csrf, "role": "admin"})
    still = admin.post("/admin/users/admin1/disable", data={"csrf": csrf})
    assert still.status_code == 400 and not site.user("admin1").disabled
    stepped_down = admin.post("/admin/users/admin1/role", data={"csrf": csrf, "role": "qa"})
    assert stepped_down.status_code == 200 and site.user("admin1").role is Role.QA
    assert admin.get("/admin/users").status_code == 403  # takes effect on the next request


@pytest.mark.parametrize(
    ("actor", "target", "change", "admins", "role", "client", "why"),
    [
        ("a1", Target("a1", Role.ADMIN, False), Change.DISABLE, 2, None, None, "your own"),
        ("a1", Target("a2", Role.ADMIN, False), Change.DISABLE, 1, None, None, "last admin"),
        ("a1", Target("a2", Role.ADMIN, False), Change.DISABLE, 2, None, None, None),
        ("a1", Target("a1", Role.ADMIN, False), Change.ROLE, 1, Role.QA, None, "last admin"),
        ("a1", Target("a1", Role.ADMIN, False), Change.ROLE, 1, Role.ADMIN, None, None),
        ("a1", Target("a1", Role.ADMIN, False), Change.ROLE, 2, Role.QA, None, None),
        ("a1", Target("a2", Role.ADMIN, True), Change.ROLE, 1, Role.QA, None, None),
        ("a1", Target("q", Role.QA, False), Change.ROLE, 1, Role.AUDITOR, None, "client id"),
        ("a1", Target("q", Role.QA, False), Change.ROLE, 1, Role.AUDITOR, "bank-a", None),
        ("a1", Target("q", Role.QA, False), Change.ROLE, 1, None, None, "choose a role"),
        ("a1", Target("a1", Role.ADMIN, False), Change.UNLOCK, 1, None, None, None),
        ("a1", Target("a1", Role.ADMIN, False), Change.RESET_TOTP, 1, None, None, None),
        ("a1", Target("a2", Role.ADMIN, True), Change.ENABLE, 1, None, None, None),
    ],
)
def test_account_change_refusals(
    actor: str,
    target: Target,
    change: Change,
    admins: int,
    role: Role | None,
    client: str | None,
    why: str | None,
) -> None:
    answer = refused(actor, target, change, admins, role, client)
    assert (answer is None) if why is None else (answer is not None and why in answer)


# --- do-not-call ------------------------------------------------------------------------------


def _decider(site: Site, default: str = "cn-default") -> CallSite:
    return CallSite(
        sessions=site.services.sessions,
        policy=preset(default),
        site_tz=SH,
        calendar=None,
        number_secret=site.number_secret,
        spool=site.services.spool,
        keys=site.services.keys,
        retention_days=730,
        clock=lambda: SATURDAY_10H.replace(hour=11),
    )


def test_dnc_upload_is_all_or_nothing_and_the_dialer_refuses_listed_numbers(site: Site) -> None:
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin)
    decide = policy_decider(_decider(site, "us-regf"))
    assert decide(NUMBER, None)[0] is True
    bad = "number,reason\n13800138000,asked\n12345,typo\n+86 139 0013 9000\n"
    answer = admin.post(
        "/admin/dnc",
        data={"csrf": csrf, "scope": "global"},
        files={"file": ("list.csv", bad.encode())},
    )
    assert answer.status_code == 400 and "nothing was imported" in answer.text
    assert re.search(r'class="row-error"><td>3</td>', answer.text), answer.text
    assert site.count(DncEntry) == 0 and decide(NUMBER, None)[0] is True
    no_id = admin.post(
        "/admin/dnc",
        data={"csrf": csrf, "scope": "client"},
        files={"file": ("list.csv", b"13800138000\n")},
    )
    assert no_id.status_code == 400 and site.count(DncEntry) == 0

    good = "number,reason\n13800138000,asked never to be called\n+86 139 0013 9000\n"
    done = admin.post(
        "/admin/dnc",
        data={"csrf": csrf, "scope": "global"},
        files={"file": ("list.csv", good.encode())},
    )
    assert done.status_code == 200 and "2 number(s) added to the global" in done.text
    again = admin.post(
        "/admin/dnc",
        data={"csrf": csrf, "scope": "client", "scope_id": "bank-a"},
        files={"file": ("list.csv", good.encode())},
    )
    assert "2 number(s) added to the client (bank-a)" in again.text
    assert site.count(DncEntry) == 4
    allowed, rule, _ = decide(NUMBER, None)
    assert (allowed, rule) == (False, "do_not_call")
    imports = [(a, t, d) for actor, a, t, d in site.audit() if a.startswith("dnc-import")]
    assert [(a, t) for a, t, _ in imports] == [
        ("dnc-import-refused", "global:"),
        ("dnc-import", "global:"),
        ("dnc-import", "client:bank-a"),
    ]
    assert imports[1][2]["added"] == 2 and imports[0][2]["errors"] == 1
    assert "13800138000" not in json.dumps(site.audit(), ensure_ascii=False)


# --- policy preset ----------------------------------------------------------------------------


def test_preset_chosen_in_the_console_decides_the_next_call_without_a_restart(site: Site) -> None:
    running = policy_decider(_decider(site, "cn-default"))  # built once, as a dialer worker is
    assert running(NUMBER, None)[:2] == (True, "allowed")
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin, "/admin/policy")
    page = admin.get("/admin/policy").text
    assert "<strong>cn-default</strong>" in page and "DIALGUARD_POLICY_PRESET" in page
    assert "At most 7 call attempts in 7 days" in page  # us-regf in plain words

    unknown = admin.post("/admin/policy", data={"csrf": csrf, "preset": "anything-goes"})
    assert unknown.status_code == 400 and site.count(SiteSetting) == 0

    chosen = admin.post("/admin/policy", data={"csrf": csrf, "preset": "cn-workdays"})
    assert chosen.status_code == 200 and "chosen here by admin1" in chosen.text
    allowed, rule, reason = running(NUMBER, None)
    assert (allowed, rule) == (False, "holiday") and "working days only" in reason
    admin.post("/admin/policy", data={"csrf": csrf, "preset": "cn-default"})
    assert running(NUMBER, None)[0] is True
    changes = [(t, d) for _, a, t, d in site.audit() if a == "policy-preset-changed"]
    assert changes == [
        ("cn-workdays", {"from": "cn-default", "to": "cn-workdays"}),
        ("cn-default", {"from": "cn-workdays", "to": "cn-default"}),
    ]
    with site.services.sessions() as session:
        stored = session.get(SiteSetting, POLICY_PRESET)
        assert stored is not None and stored.updated_by == "admin1"


@pytest.mark.parametrize(
    ("policy", "says", "never"),
    [
        (
            CN_DEFAULT,
            [
                "08:00 and 21:00",
                "any day",
                "Never between 22:00 and 08:00",
                "3 calls a day",
                "3 days in a row, 2 days",
                "6 attempts a day",
            ],
            ["7 days"],
        ),
        (CN_WORKDAYS, ["09:00 and 21:00", "working days only"], ["any day"]),
        (
            US_REGF,
            ["08:00 and 21:00", "7 call attempts in 7 days", "within 7 days after"],
            ["Never between", "a day to one"],
        ),
    ],
)
def test_presets_in_plain_words(policy: object, says: list[str], never: list[str]) -> None:
    text = " ".join(describe_policy(policy))  # type: ignore[arg-type]
    for words in says:
        assert words in text, (words, text)
    for words in never:
        assert words not in text, (words, text)


# --- rule packs -------------------------------------------------------------------------------


def test_an_invalid_pack_is_named_by_line_and_field_and_changes_nothing(site: Site) -> None:
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin, "/admin/packs")
    broken = PACK.replace("severity: 3", "severity: 7")
    answer = admin.post(
        "/admin/packs", data={"csrf": csrf}, files={"file": ("site-zh.yaml", broken.encode())}
    )
    assert answer.status_code == 400
    assert "site-zh.yaml line 8: rule &#39;insult&#39;: severity must be 1-4, not 7" in answer.text
    typo = PACK.replace("    phrases:", "    phrasse:")
    answer = admin.post(
        "/admin/packs", data={"csrf": csrf}, files={"file": ("site-zh.yaml", typo.encode())}
    )
    assert "line 10" in answer.text and "unknown field &#39;phrasse&#39;" in answer.text
    assert site.count(UploadedPack) == 0 and site.count(SiteSetting) == 0
    assert "site-zh" not in admin.get("/admin/packs").text
    refusals = [a for _, a, _, _ in site.audit() if a.startswith("qa-pack")]
    assert refusals == ["qa-pack-refused", "qa-pack-refused"]


def _wait_for(what: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _scored_with(site: Site, recording_id: str) -> set[str]:
    with site.services.sessions() as session:
        return set(
            session.scalars(select(QaResult.pack).where(QaResult.recording_id == recording_id))
        )


def test_the_active_pack_is_what_the_running_qa_worker_scores_with(site: Site) -> None:
    admin = site.logged_in("admin1")
    csrf = site.csrf(admin, "/admin/packs")
    page = admin.get("/admin/packs").text
    assert "<strong>cn-collections v" in page and "DIALGUARD_QA_PACK" in page
    stored = admin.post(
        "/admin/packs", data={"csrf": csrf}, files={"file": ("site-zh.yaml", PACK.encode())}
    )
    assert stored.status_code == 200 and "site-zh version 1 (1 rules) is stored" in stored.text
    again = admin.post(
        "/admin/packs", data={"csrf": csrf}, files={"file": ("site-zh.yaml", PACK.encode())}
    )
    assert again.status_code == 400 and "already exists" in again.text
    with site.services.sessions() as session:
        pack_id = session.scalar(select(UploadedPack.id))

    stop = threading.Event()
    worker = threading.Thread(
        target=run_qa_child_loop,
        args=(
            site.services.sessions,
            active_pack_source(site.services.sessions, "cn-collections"),
            stop,
        ),
    )
    worker.start()
    try:
        with site.services.sessions() as session:
            first = add_recording(session)
            add_transcript(session, first.id, [("agent", 1.0, "你就是个废物。")])
        _wait_for(lambda: _scored_with(site, first.id) == {"cn-collections"})

        chosen = admin.post(
            "/admin/packs/active", data={"csrf": csrf, "ref": f"uploaded:{pack_id}"}
        )
        assert "scored with site-zh version 1" in chosen.text
        with site.services.sessions() as session:
            second = add_recording(session)
            add_transcript(session, second.id, [("agent", 1.0, "你就是个废物。")])
        _wait_for(lambda: "site-zh" in _scored_with(site, second.id))
    finally:
        stop.set()
        worker.join(30)
    with site.services.sessions() as session:
        result = session.scalar(
            select(QaResult).where(QaResult.recording_id == second.id, QaResult.pack == "site-zh")
        )
        assert result is not None and result.pack_version == "1"
        assert "insult" in result.result_json
    actions = [(a, t, d) for _, a, t, d in site.audit() if a.startswith("qa-pack")]
    assert [(a, t) for a, t, _ in actions] == [
        ("qa-pack-uploaded", "site-zh v1"),
        ("qa-pack-refused", "site-zh.yaml"),
        ("qa-pack-activated", "site-zh v1"),
    ]
    assert actions[2][2] == {"from": "shipped:cn-collections", "to": f"uploaded:{pack_id}"}


# --- keys -------------------------------------------------------------------------------------


def test_keys_page_names_ids_never_material_and_rotation_rewraps(
    site: Site, tmp_path: Path
) -> None:
    ring = site.services.keys
    assert isinstance(ring, FileKeyRing)
    dek = new_data_key()
    with site.services.sessions() as session:
        kept = add_recording(session)
        wrapped = ring.wrap(dek)
        kept.kek_id, kept.wrapped_dek = wrapped.kek_id, wrapped.blob
        erased = add_recording(session)  # crypto-erased by retention: stays erased
        session.commit()
        reviewer = create_user(session, "qa9", "qa", "a long passphrase", T0)
        one_time_secret = enroll_totp(session, reviewer, ring)
        enrolled = session.scalar(
            select(func.count()).select_from(User).where(User.totp_sealed.is_not(None))
        )
    first = ring.current_kek_id
    admin = site.logged_in("admin1")
    page = admin.get("/admin/keys").text
    material = json.loads(Path(ring.path).read_text())["keys"][first]["key"]
    assert first in page and "current" in page and "dialguard keys rotate" in page
    assert material not in page and base64.b64decode(material).hex() not in page

    second = ring.rotate()
    assert rewrap_all(site.services.sessions, ring) == Rewrapped(1, 0, enrolled or 0)
    with site.services.sessions() as session:
        moved = session.get(type(kept), kept.id)
        assert moved is not None and moved.kek_id == second and moved.wrapped_dek is not None
        assert ring.unwrap(WrappedKey(second, moved.wrapped_dek)) == dek
        totp_row = session.get(User, reviewer.id)
        assert totp_row is not None and totp_row.totp_sealed is not None
        assert sealed_under(totp_row.totp_sealed) == second  # the one-time-code secret moved too
        assert open_text(ring, totp_row.totp_sealed) == one_time_secret
        gone = session.get(type(erased), erased.id)
        assert gone is not None and gone.kek_id is None and gone.wrapped_dek is None
    assert rewrap_all(site.services.sessions, ring) == Rewrapped(0, 0, 0), "nothing left to move"
    rows = re.findall(
        r'<tr class="kek"><td><code>([\w-]+)</code></td>\s*<td>(.*?)</td>',
        admin.get("/admin/keys").text,
    )
    assert rows[0][0] == second and "current" in rows[0][1]
    assert (first, "older (kept to open what it wraps)") in rows


def test_keys_rotate_command(dialguard_env: dict[str, str]) -> None:
    answer = dialguard(["keys", "rotate"], dialguard_env)
    assert answer.returncode == 0, answer.stderr
    assert re.search(r"key-encryption key kek-\d{8}-[0-9a-f]{8} is current", answer.stdout)
    assert "re-wrapped the data keys of 0 recording(s)" in answer.stdout
    keys = json.loads(
        (Path(dialguard_env["DIALGUARD_DATA_DIR"]) / "keys" / "recording-keys.json").read_text()
    )
    assert len(keys["keys"]) == 2
