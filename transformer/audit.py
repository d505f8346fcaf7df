"""The audit trail: one JSON line per request on stdout, identifiers and counts only.

Lines go straight to the stream, not through logging: at batch 1 a log record, its caller
lookup and formatting cost more than building the line.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO

import orjson

logger = logging.getLogger(__name__)


class AuditTrail:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def record(self, line: dict[str, Any]) -> None:
        try:
            self._stream.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            # Unbuffered in effect: a line must reach the container log even if we crash next.
            self._stream.flush()
        except (OSError, ValueError) as exc:  # closed or broken stream: the request goes on
            logger.warning("audit line dropped: %s", type(exc).__name__)
