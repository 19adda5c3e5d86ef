"""Workspace sessions: sign-in with a named token, a cookie that expires when idle, CSRF tokens, slowed failures."""
from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from aiohttp import web

log = logging.getLogger("huqi.workspace")

COOKIE = "huqi_ops"
IDLE_SECONDS = 30 * 60
MAX_SESSIONS = 10_000
FAIL_DELAY = 0.5             # seconds after the first failed sign-in from an address, doubling
FAIL_DELAY_MAX = 8.0
FAIL_FORGET = 15 * 60        # an address's failures are forgotten after this long without one


@dataclass
class Session:
    sid: str
    name: str
    role: str
    csrf: str
    last: float

    @property
    def can_change(self) -> bool:
        return self.role == "operator"


@dataclass
class Sessions:
    """Signed-in staff by session id, in memory (a restart signs everyone out)."""
    idle: float = IDLE_SECONDS
    fail_delay: float = FAIL_DELAY
    clock: Callable[[], float] = time.monotonic
    sleep: Callable = asyncio.sleep
    by_id: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)     # address -> (count, last failure)

    def open(self, name: str, role: str) -> Session:
        if len(self.by_id) >= MAX_SESSIONS:
            self._drop_idle()
            if len(self.by_id) >= MAX_SESSIONS:
                oldest = min(self.by_id.values(), key=lambda s: s.last)
                del self.by_id[oldest.sid]
        s = Session(secrets.token_urlsafe(32), name, role, secrets.token_urlsafe(32), self.clock())
        self.by_id[s.sid] = s
        return s

    def find(self, sid: Optional[str]) -> tuple[Optional[Session], bool]:
        """(the live session, whether one expired); touching it keeps it alive."""
        s = self.by_id.get(sid) if sid else None
        if s is None:
            return None, False
        now = self.clock()
        if now - s.last > self.idle:
            del self.by_id[s.sid]
            return None, True
        s.last = now
        return s, False

    def close(self, sid: Optional[str]) -> None:
        self.by_id.pop(sid or "", None)

    def _drop_idle(self) -> None:
        now = self.clock()
        for sid in [k for k, s in self.by_id.items() if now - s.last > self.idle]:
            del self.by_id[sid]

    async def failed(self, address: str) -> None:
        """Record a failed sign-in from ``address`` and wait before answering (longer each time)."""
        now = self.clock()
        count, last = self.failures.get(address, (0, now))
        count = 1 if now - last > FAIL_FORGET else count + 1
        if len(self.failures) > MAX_SESSIONS:
            self.failures.clear()
        self.failures[address] = (count, now)
        log.warning("workspace sign-in refused from %s (failure %d)", address, count)
        await self.sleep(min(self.fail_delay * 2 ** (count - 1), FAIL_DELAY_MAX))

    def succeeded(self, address: str) -> None:
        self.failures.pop(address, None)


SESSIONS = web.AppKey("workspace_sessions", Sessions)


def client_address(request: web.Request) -> str:
    return request.remote or "?"


def is_https(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "").lower() == "https"


def set_cookie(request: web.Request, resp: web.StreamResponse, session: Session) -> None:
    resp.set_cookie(COOKIE, session.sid, path="/ops", httponly=True, samesite="Strict", secure=is_https(request))


def clear_cookie(request: web.Request, resp: web.StreamResponse) -> None:
    resp.del_cookie(COOKIE, path="/ops", httponly=True, samesite="Strict", secure=is_https(request))


def current(request: web.Request) -> tuple[Optional[Session], bool]:
    return request.app[SESSIONS].find(request.cookies.get(COOKIE))


def csrf_ok(session: Session, presented: object) -> bool:
    if not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), session.csrf.encode())
