"""When an ended contract's client data goes: the rule, without I/O.

Apart from the job that deletes (`api.recordings.erasure`) so that the rule
reads as what it is and is tested on its own. REQUIREMENTS §5: the agency
deletes a client's data when its commission ends. Recordings cannot be cut
short (WORM), so `delete_after` is the day the last of them reaches the end
of its retention; until then the client's calls, their transcripts and QA
results stay usable for disputes. From then on the job deletes, and keeps
deleting whatever of that client turns up later (a debtor re-sent by the
collection system, a call transcribed late): a contract, once ended, stays
ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum


class Step(StrEnum):
    WAIT = "wait"  # before delete_after: the data is still the agency's to use
    DELETE = "delete"  # the first pass after delete_after
    SWEEP = "sweep"  # deleted before: only what arrived since


def contract_step(now: datetime, delete_after: datetime, data_deleted_at: datetime | None) -> Step:
    """What the retention job does with one ended contract at `now` (all times aware)."""
    if now < delete_after:
        return Step.WAIT
    return Step.DELETE if data_deleted_at is None else Step.SWEEP


def audited(step: Step, counts: Mapping[str, int]) -> bool:
    """Whether a pass goes into the audit log.

    The first pass always does, with its counts even if they are all zero: an
    auditor must be able to see that the deletion ran, not infer it from
    silence. Later passes run every hour; one that found nothing is not news.
    """
    if step is Step.WAIT:
        return False
    return step is Step.DELETE or any(counts.values())
