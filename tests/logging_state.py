"""Whether a test left logging switched off for the tests after it (tests/conftest.py checks every test)."""

from __future__ import annotations

import logging


def logging_switched_off() -> str | None:
    """What is wrong when logging is disabled process-wide (`logging.disable`), else None; turns it on."""
    level = logging.root.manager.disable
    if not level:
        return None
    logging.disable(logging.NOTSET)
    return (
        f"logging was left disabled up to level {logging.getLevelName(level)}: every later test in this "
        "worker would miss its log lines"
    )
