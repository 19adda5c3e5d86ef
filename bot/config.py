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
    try:
        return max(1, int(os.environ.get("HUQI_REMINDER_DAYS", "7")))
    except ValueError:
        return 7
