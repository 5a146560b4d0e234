"""How the gateway logs: one JSON object per line, for the gateway and uvicorn alike."""

from __future__ import annotations

import logging
from typing import Any

import orjson


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (request fields come from ``extra={"fields": …}``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def log_config(level: str) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` (uvicorn's ``log_config``) sending uvicorn's and
    strataml's records at ``level`` and above to stderr as JSON lines."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    lv = level.upper()
    return {
        "version": 1, "disable_existing_loggers": False, "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {"uvicorn": {"handlers": ["default"], "level": lv, "propagate": False},
                    "strataml": {"handlers": ["default"], "level": lv, "propagate": False}},
    }
