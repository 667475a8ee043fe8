"""Structured logs: one line per event, `event=NAME key=value ...` (logfmt).

Callers pass identifiers, codes and counts, never message bodies. Values a
client chose (a client_id, a user name) are quoted and escaped, so no input
can break a line in two and forge an entry; long values are cut short.
"""

from __future__ import annotations

import json
import logging
import re

_BARE = re.compile(r"[A-Za-z0-9_.:/@+{}-]+")
_MAX_VALUE_CHARS = 200


def log_event(
    logger: logging.Logger, event: str, level: int = logging.INFO, **fields: object
) -> None:
    """Log `event` with `fields` as one logfmt line (formatted only if enabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, format_event(event, fields))


def format_event(event: str, fields: dict[str, object]) -> str:
    parts = [f"event={event}"]
    parts.extend(f"{key}={_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def _value(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[:_MAX_VALUE_CHARS] + "..."
    if _BARE.fullmatch(text):
        return text
    # JSON string escaping: quotes, backslashes, control characters and
    # non-ASCII all become escapes, so the value stays on one line.
    return json.dumps(text)
