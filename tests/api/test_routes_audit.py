"""Reading the audit log over HTTP: all of it for admins, a client's own for its auditor."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import record
from api.web.auth import issue_token
from api.web.services import Services
from tests.apps import make_app
from tests.factories import T0, add_recording


def test_admin_reads_everything_and_the_auditor_only_their_client(
    services: Services, engine: Engine
) -> None:
    client = TestClient(make_app(services, engine))
    headers: dict[str, dict[str, str]] = {}
    with services.sessions() as session:
        for name, role, bank in (
            ("adm", "admin", None),
            ("aud-a", "auditor", "bank-a"),
            ("qa1", "qa", None),
        ):
            user = create_user(session, name, role, "a long passphrase", T0, client=bank)
            user.client_id = bank
            session.commit()
            headers[name] = {"Authorization": f"Bearer {issue_token(session, user, 't', T0)}"}
        mine = add_recording(session, client_id="bank-a")
        theirs = add_recording(session, client_id="bank-b")
        record(session, "sup1", "play", mine.id, T0, reason="complaint 1")
        record(session, "sup1", "play", theirs.id, T0, reason="complaint 2")
        record(session, "qa1", "search", "还款", T0)

    def read(who: str, **params: Any) -> Any:
        answer = client.get("/api/v1/audit", params=params, headers=headers[who])
        assert answer.status_code == 200, answer.text
        return answer.json()

    everything = read("adm", check=True)
    assert [(e["actor"], e["action"]) for e in everything["entries"]] == [
        ("sup1", "play"),
        ("sup1", "play"),
        ("qa1", "search"),
    ]
    assert everything["chain_intact"] is True
    assert [e["target"] for e in read("adm", action="search")["entries"]] == ["还款"]
    own = read("aud-a")["entries"]
    assert [(e["target"], e["reason"]) for e in own] == [(mine.id, "complaint 1")]
    assert read("aud-a")["chain_intact"] is None
    assert client.get("/api/v1/audit", headers=headers["qa1"]).status_code == 403
    # reading the log is itself in the log
    assert [e["action"] for e in read("adm", actor="adm")["entries"]][:1] == ["audit-read"]
