"""Configuration from the environment."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where cases and drafts live: HUQI_DATA_DIR, default ./data."""
    return Path(os.environ.get("HUQI_DATA_DIR") or "data").resolve()


def telegram_token() -> str | None:
    return os.environ.get("HUQI_TELEGRAM_TOKEN") or os.environ.get("TELEGRAM_BOT_TOKEN") or None


def reminder_days() -> int:
    """Days without news before a reminder: HUQI_REMINDER_DAYS, else routing.yaml's
    no_response_days (huqi's own default, not a legal time limit)."""
    from knowledge import knowledge
    from knowledge.routing import no_response_days
    default = no_response_days(knowledge())
    try:
        return max(1, int(os.environ.get("HUQI_REMINDER_DAYS", default)))
    except ValueError:
        return default
