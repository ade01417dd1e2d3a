"""What the server's log may hold: no personal data, no secret, nothing that opens a chat.

- Every handler's output (uvicorn's, and ours) passes through bot.language.pii.mask, tracebacks included.
- Access lines: a shopper's session id in a path becomes `{session}`, and of a query string only
  harmless parameters with plain values are kept; any other parameter, name and value, is
  `[redacted]` (`?%74oken=` is a token too: names are compared decoded).
"""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import parse_qsl, urlencode

from bot.language.pii import mask

# Query parameters that say nothing about who asks (anything else is redacted).
SAFE_PARAMETERS = frozenset({"status", "after", "before", "limit"})
_SAFE_VALUE = re.compile(r"^[a-z0-9_]{0,20}$")  # a status, a number: anything else may be someone's secret
_SESSION_PATH = re.compile(r"^(/v1/chat/)[^/?]+")
_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


def redact_path(path: str) -> str:
    """A request path as an access line may show it."""
    path, sep, query = path.partition("?")
    path = _SESSION_PATH.sub(r"\1{session}", path)
    if not sep:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    shown = [urlencode([(k, v)]) if k in SAFE_PARAMETERS and _SAFE_VALUE.match(v) else
             f"{k}=[redacted]" if k in SAFE_PARAMETERS else "[redacted]" for k, v in pairs]
    return f"{path}?{'&'.join(shown)}"


class _RedactAccess(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(a) if isinstance(a, str) and a.startswith("/") else a
                                for a in record.args)
        return True


class MaskingFormatter(logging.Formatter):
    """Wraps a handler's formatter: the formatted record (message and traceback) with personal data masked."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask(self.inner.format(record))


_REDACT_ACCESS = _RedactAccess()


def protect() -> None:
    """Install the masking on every handler of the server's loggers (idempotent). A root logger
    without handlers gets one on stderr, so that our warnings and errors are masked too (Python's
    last-resort handler would print them as they are)."""
    access = logging.getLogger("uvicorn.access")
    if _REDACT_ACCESS not in access.filters:
        access.addFilter(_REDACT_ACCESS)
    root = logging.getLogger()
    if not root.handlers:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)
        root.addHandler(stderr)
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not isinstance(handler.formatter, MaskingFormatter):
                handler.setFormatter(MaskingFormatter(handler.formatter))
