"""Logging: every record carries the id of the request it belongs to, and no record carries a secret.

Secrets reach log lines by ways openfish does not control: uvicorn logs each WebSocket handshake with
its full query string (the legacy realtime socket takes its token there), the ``websockets`` library
logs request lines and headers at debug level, and exception messages may quote URLs. So redaction
works on the finished message of every record, in a filter on every handler openfish installs
(handler filters, unlike logger filters, also see the records that propagate from child loggers).
"""

from __future__ import annotations

import logging
import logging.config
import re
from typing import Any
from urllib.parse import unquote_plus

from openfish.middleware import REQUEST_ID

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
#: What a redacted value is replaced with.
REDACTED = "[redacted]"
#: Query parameters whose values are credentials (compared case-insensitively, after decoding).
SENSITIVE_PARAMETERS = frozenset(
    {"token", "sig", "signature", "api_key", "apikey", "key", "secret", "password", "access_token"}
)
#: The loggers openfish and uvicorn log through that get openfish's handler.
LOGGERS = ("openfish", "uvicorn", "uvicorn.access")
#: uvicorn's loggers that reach that handler through their parent ``uvicorn``, as in uvicorn's own config.
UVICORN_CHILDREN = ("uvicorn.error", "uvicorn.asgi")
# uvicorn's own level below DEBUG (it registers the name only when it configures logging itself).
TRACE = 5

# A parameter in a query string; the value ends where the next parameter, the fragment, or the
# surrounding text (space, quote, bracket) begins.
_QUERY_PARAMETER = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;#?\s\"'<>]+)=(?P<value>[^&;#\s\"'<>]*)")
# An underscore, also percent-encoded, so an escaped copy of a token in a URL is caught as well.
_UNDERSCORE = r"(?:_|%5[Ff])"
_SECRETS = (
    # API tokens (``ofk_tok_<hex>_<secret>``, see services/accounts/tokens.py), and anything else on
    # that prefix.
    re.compile(rf"\bofk{_UNDERSCORE}(?:[A-Za-z0-9-]|{_UNDERSCORE})+"),
    re.compile(rf"\bwhsec{_UNDERSCORE}(?:[A-Za-z0-9-]|{_UNDERSCORE})+"),
)
# ``Bearer <token68>`` (RFC 6750); a placeholder such as ``Bearer <token>`` in a message is no match.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9\-._~+/]+=*")


def _redact_parameter(match: re.Match[str]) -> str:
    # Decoded, so ``?%74oken=`` (which the server reads as ``token``) is redacted too.
    if unquote_plus(match["name"]).strip().lower() not in SENSITIVE_PARAMETERS or not match["value"]:
        return match.group(0)
    return f"{match['lead']}{match['name']}={REDACTED}"


def redact(text: str) -> str:
    """``text`` with every credential it holds replaced by ``[redacted]``: the values of sensitive
    query parameters (``token``, ``sig``, ``key``, ... see ``SENSITIVE_PARAMETERS``), API tokens
    (``ofk_...``), webhook secrets (``whsec_...``) and ``Bearer`` credentials, wherever they appear."""
    text = _QUERY_PARAMETER.sub(_redact_parameter, text)
    for pattern in _SECRETS:
        text = pattern.sub(REDACTED, text)
    return _BEARER.sub(rf"\1\2{REDACTED}", text)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the request being served ("-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class RedactionFilter(logging.Filter):
    """Rewrites a record so that its message, traceback and stack hold no credentials (see ``redact``).

    The message is merged with its arguments first: a secret may only be recognisable in the whole
    line (a path in one argument, its query in another).
    """

    _traceback_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # A bad logging call; logging would print its arguments raw while reporting the error.
            message = f"{record.msg} (arguments that do not fit the message: {record.args!r})"
        record.msg = redact(message)
        record.args = ()
        # Formatters reuse ``exc_text`` when it is set, so the redacted traceback is the one printed.
        if record.exc_info and not record.exc_text:
            record.exc_text = self._traceback_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _level(level: str) -> int:
    name = level.upper()
    if name == "TRACE":
        logging.addLevelName(TRACE, "TRACE")
        return TRACE
    number = logging.getLevelName(name)
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` configuration (also given to uvicorn as its ``log_config``):
    openfish's and uvicorn's loggers at ``level``, every other library's at WARNING or above, all
    through one stderr handler that adds request ids and redacts secrets."""
    threshold = _level(level)
    return {
        "version": 1,
        # Loggers created at import time (openfish.access, openfish.realtime, ...) must keep working.
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "redact": {"()": RedactionFilter},
        },
        "formatters": {"openfish": {"format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "openfish",
                "filters": ["request_id", "redact"],
            }
        },
        "loggers": {
            **{name: {"handlers": ["stderr"], "level": threshold, "propagate": False} for name in LOGGERS},
            **{name: {"handlers": [], "level": threshold, "propagate": True} for name in UVICORN_CHILDREN},
        },
        # Other libraries (sqlalchemy, httpx, asyncio, ...) are heard from at WARNING and above only:
        # their debug output is noise, and some of it would quote requests.
        "root": {"handlers": ["stderr"], "level": max(threshold, logging.WARNING)},
    }


def configure_logging(level: str) -> None:
    """Send openfish's, uvicorn's and other libraries' records to stderr with request ids and without
    secrets, openfish's and uvicorn's at ``level``."""
    logging.config.dictConfig(log_config(level))
