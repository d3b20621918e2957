"""Log hygiene: tokens never reach a log line.

uvicorn's access log prints the request line with its query string, and hub clients send their JWT as
`?access_token=` (browsers cannot set headers on WebSockets and SSE). `RedactTokens` rewrites the values
of token-bearing query keys to `***` in every record it sees; `install()` puts it on the loggers that
print URLs (uvicorn's access and error loggers, httpx's client log).
"""

from __future__ import annotations

import logging
import re

SECRET_KEYS = ("access_token", "token", "key", "sig", "signature")
_PATTERN = re.compile(r"(?i)([?&](?:" + "|".join(SECRET_KEYS) + r")=)[^&\s\"']+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    return _BEARER.sub(r"\1***", _PATTERN.sub(r"\1***", text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn", "httpx", "hub")


def install() -> None:
    """Idempotent: adds the filter once to each logger that may print a URL."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
