"""Structured logging: one JSON object per line, with the process's component.

Extra fields given to a log call (`extra={"call_id": ...}`) become keys of the
line. Callers mask phone numbers first; the formatter masks again
(`transcribe.redact.mask_personal`: phone, card and resident ID numbers, also
spoken in Chinese numerals) in the message, every text field and tracebacks,
because one forgotten call site, or a library's exception that quotes a
bad row, would otherwise put a debtor's number into log storage for good.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from transcribe.redact import mask_personal

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI copy of msg
}


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "msg": mask_personal(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                if isinstance(value, (int, float, bool)):
                    line[key] = value
                else:
                    line[key] = mask_personal(value if isinstance(value, str) else str(value))
        if record.exc_info:
            line["error"] = mask_personal(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str, component: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("urllib3", "httpx", "faster_whisper", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
