"""A small client of the operators' API, used by ``huqi cases`` while ``huqi serve`` holds the store."""
from __future__ import annotations

import json
from typing import Any, Optional

import aiohttp

from bot.ops import OpsError

PREFIX = "/api/v1"


class ApiUnreachable(Exception):
    """The service did not answer (not running there, wrong host/port)."""


class ApiClient:
    def __init__(self, base: str, token: str, timeout: float = 60):
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: Optional[aiohttp.ClientSession] = None

    async def __aenter__(self) -> "ApiClient":
        self._session = aiohttp.ClientSession(timeout=self.timeout,
                                              headers={"Authorization": f"Bearer {self.token}"})
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, *, params: Any = None, body: Optional[dict] = None) -> bytes:
        """The response body of a successful call; OpsError (the API's code and message) otherwise."""
        assert self._session is not None, "use 'async with ApiClient(...)'"
        try:
            async with self._session.request(method, self.base + PREFIX + path, params=params,
                                             json=body) as resp:
                data = await resp.read()
                if resp.status < 400:
                    return data
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise ApiUnreachable(f"{self.base}: {type(e).__name__}") from None
        raise _error(resp.status, data)

    async def download(self, path: str, out) -> int:
        """Stream a successful response's body into the binary file ``out``; returns its size."""
        assert self._session is not None, "use 'async with ApiClient(...)'"
        try:
            async with self._session.request("GET", self.base + PREFIX + path) as resp:
                if resp.status >= 400:
                    data = await resp.read()
                else:
                    size = 0
                    async for block in resp.content.iter_chunked(1 << 20):
                        out.write(block)
                        size += len(block)
                    return size
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            raise ApiUnreachable(f"{self.base}: {type(e).__name__}") from None
        raise _error(resp.status, data)

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        return json.loads(await self.call(method, path, **kw))


def _error(status: int, data: bytes) -> OpsError:
    """The API's JSON error as an OpsError (its code, message and details)."""
    try:
        err = json.loads(data)["error"]
        code, message = str(err["code"]), str(err["message"])
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
    except (ValueError, KeyError, TypeError):
        code, message, details = f"http_{status}", f"HTTP {status}", {}
    return OpsError(code, message, status, **details)


def query(filters: dict) -> list[tuple[str, str]]:
    """Filters (values or lists of values) as repeated query parameters."""
    out = []
    for key, value in filters.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None:
                out.append((key, str(v)))
    return out
