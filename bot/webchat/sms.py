"""Binding a web identity to a mobile number confirmed by an SMS code, through a pluggable sender.

``HUQI_SMS_SENDER=package.module:factory``: ``factory(settings)`` returns an
object with ``async send(phone, text)`` (the organisation's SMS provider).
Only keyed hashes of the number and the code are stored, with the number
masked for display; a code lives 10 minutes and takes 5 tries.
"""
from __future__ import annotations

import hashlib
import hmac
import importlib
import re
import secrets
from datetime import datetime, timedelta

CODE_MINUTES = 10
CODE_TRIES = 5
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def load_sender(spec: str | None, settings):
    """The configured sender, or None when SMS binding is not enabled."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)(settings)


def normalise_phone(text) -> str | None:
    """A mainland mobile number as 11 digits (spaces, dashes, +86 forgiven), or None."""
    s = re.sub(r"[\s\-()]", "", str(text or ""))
    s = re.sub(r"^(\+?86)", "", s) if len(s) > 11 else s
    return s if MOBILE.match(s) else None


def masked(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:]


def phone_key(secret: bytes, phone: str) -> str:
    return "webphone:" + hmac.new(secret, f"phone:{phone}".encode(), hashlib.sha256).hexdigest()


def _code_hash(secret: bytes, key: str, code: str) -> str:
    return hmac.new(secret, f"sms:{key}:{code}".encode(), hashlib.sha256).hexdigest()


def new_challenge(secret: bytes, phone: str, now: datetime) -> tuple[str, dict]:
    """(the code to send, what to keep in the user's record: no number, no code, only keyed hashes)."""
    code = f"{secrets.randbelow(10**6):06d}"
    key = phone_key(secret, phone)
    return code, {"key": key, "masked": masked(phone), "code": _code_hash(secret, key, code),
                  "expires": (now + timedelta(minutes=CODE_MINUTES)).isoformat(timespec="seconds"), "tries": 0}


def check(secret: bytes, challenge: dict | None, typed: str, now: datetime) -> str:
    """"ok", "wrong", "expired" or "none" for a typed code against the pending challenge (counts the try)."""
    if not challenge:
        return "none"
    if challenge["tries"] >= CODE_TRIES or now.isoformat(timespec="seconds") > challenge["expires"]:
        return "expired"
    challenge["tries"] += 1
    code = re.sub(r"\s", "", str(typed or ""))[:12]
    return "ok" if hmac.compare_digest(_code_hash(secret, challenge["key"], code), challenge["code"]) else "wrong"
