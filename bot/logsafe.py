"""Logging for the service: the bot token blanked out, update content never written.

PTB logs the whole raw update when it cannot parse one ("Received data was
…"), and httpx logs request URLs, which carry the bot token.  A filter on the
root handlers rewrites such records before any handler formats them.
"""
from __future__ import annotations

import logging

WITHHELD = "(content withheld)"


class SafeRecords(logging.Filter):
    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(("telegram", "httpx", "httpcore", "aiohttp")):
            try:
                message = record.getMessage()
            except Exception:
                message = str(record.msg)
            if "Received data" in message or "update" in message.lower() and "{" in message:
                message = message.split("Received data", 1)[0].split("{", 1)[0] + WITHHELD
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = self._scrub(message), ()
        elif self.secrets:
            try:
                message = record.getMessage()
            except Exception:
                return True
            scrubbed = self._scrub(message)
            if scrubbed != message:
                record.msg, record.args = scrubbed, ()
        return True

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<secret>")
        return text


def setup(secrets: list[str], level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    safe = SafeRecords(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SafeRecords) for f in handler.filters):
            handler.addFilter(safe)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
