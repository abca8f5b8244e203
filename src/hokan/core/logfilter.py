"""The console's logging filter (settings.LOGGING): the console level holds for every logger.

A handler without a level lets through every record that reaches it, and a record logged on
a logger whose own level is lower than the root's (the enrichment job sets its logger to INFO
while it writes the daily log file) still propagates to the root's handlers: so setting the
root's level alone does not keep INFO lines off the console. ``ConsoleLevel`` is a filter on
the console handler: a record passes when its level is at least ``level``, or when its logger
is one of ``always`` (or below one), whatever its level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable


class ConsoleLevel(logging.Filter):
    """level: a level name ("WARNING") or number; always: logger names that pass at any level
    (e.g. "hokan.notify": success notices, INFO, always reach the console)."""

    def __init__(self, level: str | int = "WARNING", always: Iterable[str] = ()) -> None:
        super().__init__()
        self.levelno = logging.getLevelName(level.upper()) if isinstance(level, str) else int(level)
        if not isinstance(self.levelno, int):
            raise ValueError(f"HOKAN_LOG_LEVEL: unknown logging level {level!r}")
        self.always = tuple(always)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.levelno:
            return True
        return any(record.name == name or record.name.startswith(name + ".") for name in self.always)
