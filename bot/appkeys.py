"""Typed keys for what the aiohttp application shares with its routes."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from aiohttp import web

from bot.config import Settings

STORE = web.AppKey("store", Any)                 # the CaseStore
SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Callable[[], datetime])
STATUS = web.AppKey("status", dict)              # {"bot": ..., "mode": ...} for /healthz
