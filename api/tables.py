"""Every package's tables on the one shared metadata, which Alembic compares with the migrations.

Each package declares its own tables on `recording.db.engine.Base`; importing them all here
means a migration or a process that starts from `api` sees the whole schema, and SQLAlchemy
can resolve every foreign key by table name.
"""

from __future__ import annotations

import api.accounts.models
import dialer.debtors.models
import dialer.models
import qa_scoring.models
import qa_scoring.pack_store
import recording.db.heartbeats
import recording.db.site_settings
import recording.models
import transcribe.models
from api.audit.chain import AuditEntry
from api.outcomes.webhooks import WebhookDelivery
from api.recordings.access import Playback
from api.recordings.contracts import ClientContract
from api.recordings.retrieval import RetrievalRequest
from recording.db.engine import Base

__all__ = [
    "AuditEntry",
    "ClientContract",
    "Playback",
    "RetrievalRequest",
    "WebhookDelivery",
    "target_metadata",
]

_REGISTERED = (
    api.accounts.models,
    dialer.debtors.models,
    dialer.models,
    qa_scoring.models,
    qa_scoring.pack_store,
    recording.db.heartbeats,
    recording.db.site_settings,
    recording.models,
    transcribe.models,
)

target_metadata = Base.metadata
