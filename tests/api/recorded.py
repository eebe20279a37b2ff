"""A recording as the HTTP API tests find it: spooled, in both buckets, with a transcript,
and an API token for each role that reads it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from api.accounts.users import create_user
from api.audit.chain import AuditEntry
from api.web.auth import issue_token
from api.web.services import Services
from recording.store import CallInfo, fetch, spool_call, upload_pending
from tests.apps import make_app
from tests.factories import T0, add_transcript


class World:
    def __init__(self, services: Services, engine: Engine, capture: Path) -> None:
        self.services = services
        self.client = TestClient(make_app(services, engine))
        self.tokens: dict[str, str] = {}
        with services.sessions() as session:
            for name, role, client in (
                ("qa1", "qa", None),
                ("agent7", "agent", None),
                ("agent9", "agent", None),
                ("sup1", "supervisor", None),
                ("aud-a", "auditor", "bank-a"),
                ("aud-b", "auditor", "bank-b"),
            ):
                user = create_user(session, name, role, "a long passphrase", T0, client=client)
                user.client_id = client
                session.commit()
                self.tokens[name] = issue_token(session, user, "test", T0)
        info = CallInfo("call-1", "agent7", T0, debtor_id="D-1", client_id="bank-a")
        self.recording = spool_call(
            services.sessions, services.spool, services.keys, capture, info, 730, T0
        )
        upload_pending(services.sessions, services.spool, services.copies, T0)
        with services.sessions() as session:
            add_transcript(session, self.recording.id, [("agent", 0.2, "This call is recorded.")])
        plain = io.BytesIO()
        fetch(
            services.sessions,
            services.spool,
            services.copies,
            services.keys,
            self.recording.id,
            plain,
        )
        self.audio = plain.getvalue()

    def get(self, url: str, who: str | None, headers: dict[str, str] | None = None) -> Any:
        headers = dict(headers or {})
        if who:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return self.client.get(url, headers=headers)

    def audits(self) -> list[AuditEntry]:
        with self.services.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
