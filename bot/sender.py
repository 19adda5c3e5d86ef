"""The outbox sender: delivers queued notifications at least once, retrying what failed.

Each messenger registers a ``deliver(msg)`` coroutine.  It returns when the
message was delivered and raises :class:`Blocked` (the user blocked the bot:
recorded on the case, never retried), :class:`RetryLater` (flood control: try
again after the given seconds) or any other exception (network, 5xx: retried
with exponential backoff, parked after ``max_attempts`` and shown to staff).
A message is marked sent only after its delivery returned, so a crash in
between resends it rather than loses it.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Awaitable, Callable

from bot.background import Background

log = logging.getLogger("huqi.sender")

Deliver = Callable[[dict], Awaitable[None]]


class Blocked(Exception):
    """The recipient cannot be reached and never will be (blocked the bot, chat gone)."""


class RetryLater(Exception):
    def __init__(self, seconds: float):
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = float(seconds)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Sender(Background):
    task_name = "huqi-outbox-sender"

    def __init__(self, store, clock: Callable[[], datetime] = utcnow, *, max_attempts: int = 8,
                 base_delay: float = 2.0, max_delay: float = 3600.0, lease_seconds: float = 120.0,
                 batch: int = 50, idle_seconds: float = 1.0):
        self.store = store
        self.clock = clock
        self.deliverers: dict[str, Deliver] = {}
        self.operator: Deliver | None = None
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease_seconds = lease_seconds
        self.batch = batch
        self.idle_seconds = idle_seconds
        self._wake = asyncio.Event()
        self.sent = 0

    def register(self, messenger: str, deliver: Deliver) -> None:
        self.deliverers[messenger] = deliver

    def wake(self) -> None:
        """Something was queued: look now instead of at the next idle tick."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Claim one batch and deliver it; returns how many were claimed."""
        msgs = await self.store.outbox_claim(self.clock(), limit=self.batch, lease_seconds=self.lease_seconds)
        for msg in msgs:
            await self.deliver(msg)
        return len(msgs)

    async def deliver(self, msg: dict) -> None:
        target = self._target(msg)
        if target is None:          # its messenger is not running in this process (staff side alone): it waits
            await self.store.outbox_retry(msg["id"], self.clock() + timedelta(seconds=self.max_delay), "no sender here")
            log.info("outbox %s waits: no sender for its recipient runs here", msg["id"])
            return
        try:
            await target(msg)
        except Blocked as e:
            await self.store.outbox_fail(msg["id"], "blocked", type(e).__name__)
            await self._note_blocked(msg)
            log.info("outbox %s: recipient unreachable (case %s)", msg["id"], msg.get("case_id"))
            return
        except RetryLater as e:
            await self.store.outbox_retry(msg["id"], self.clock() + timedelta(seconds=e.seconds), "retry_after")
            log.info("outbox %s: flood control, retry in %.0f s", msg["id"], e.seconds)
            return
        except asyncio.CancelledError:
            raise
        except Exception as e:              # network, 5xx: back off, park after N tries
            attempts = int(msg.get("attempts") or 0) + 1
            if attempts >= self.max_attempts:
                await self.store.outbox_fail(msg["id"], "parked", type(e).__name__)
                log.warning("outbox %s parked after %d attempts: %s", msg["id"], attempts, type(e).__name__)
            else:
                delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
                await self.store.outbox_retry(msg["id"], self.clock() + timedelta(seconds=delay), type(e).__name__)
                log.info("outbox %s: attempt %d failed (%s), retry in %.0f s", msg["id"], attempts,
                         type(e).__name__, delay)
            return
        await self.store.outbox_sent(msg["id"], self.clock())
        self.sent += 1

    def _target(self, msg: dict) -> Deliver | None:
        if "chat_id" in msg:
            return self.operator
        return self.deliverers.get((msg.get("owner") or {}).get("messenger"))

    async def _note_blocked(self, msg: dict) -> None:
        if not msg.get("case_id") or "owner" not in msg:
            return
        try:
            await self.store.update(msg["case_id"], {"owner_unreachable": self.clock().isoformat(timespec="seconds")})
        except Exception as e:               # the case may be purged meanwhile
            log.info("outbox %s: could not mark case unreachable: %s", msg["id"], type(e).__name__)

    # background task
    async def _run(self) -> None:
        while True:
            try:
                if await self.drain_once():
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("outbox sender: %s", type(e).__name__)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.idle_seconds)
            except asyncio.TimeoutError:
                pass
