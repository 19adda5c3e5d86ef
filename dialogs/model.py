"""The case model's errors and time format, shared by the lifecycle and every store backend."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Union

__all__ = ["StoreError", "CaseNotFound", "to_iso", "utcnow", "TimeLike"]

TimeLike = Union[datetime, str]


class StoreError(Exception):
    """Base class of case store errors."""


class CaseNotFound(StoreError, KeyError):
    """No such case, or it belongs to someone else (indistinguishable)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep it plain
        return f"case {self.args[0]} not found" if self.args else "case not found"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(value: TimeLike) -> str:
    """Canonical UTC ISO-8601 string (seconds precision) for a time."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r}") from None
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime or ISO string, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")
