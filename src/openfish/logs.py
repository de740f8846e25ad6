"""Logging: every record carries the id of the request it belongs to."""

from __future__ import annotations

import logging

from openfish.middleware import REQUEST_ID

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the request being served ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def configure_logging(level: str) -> None:
    """Send openfish's records to stderr with request ids, at ``level``."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("openfish")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
