"""Web chat throughput: 200 concurrent phone users through the real HTTP stack of ``huqi serve``.

The service runs in its own process (no Telegram token: the staff side and
the web chat, the default local store).  Each simulated user opens /chat
(gets a cookie and the page's CSRF token), keeps a long poll open as the page
does, and sends a run of messages, each after the previous answer (a
description, then /help, /faq, /help).  A round trip is one POST until its
answer.  Every entry a user received (from the answers and from the long
poll, merged by number) is checked: a message without its echo and answer is
lost; numbers not strictly increasing, an entry shown twice, or a message
answered out of order are reordered.

Usage: python bench/webchat.py [--quick] [--users N]
Prints one JSON object on its last line.
"""
from __future__ import annotations

import asyncio
import html
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

DESCRIPTION = "有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321"
MESSAGES = (DESCRIPTION, "/help", "/faq", "/help")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start(env: dict):
    log = tempfile.TemporaryFile()
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=log, cwd=str(ROOT))
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if not line:
        log.seek(0)
        raise RuntimeError(log.read().decode("utf-8", "replace")[-2000:])
    return proc


async def stop(proc) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


class User:
    def __init__(self, url: str, n: int):
        self.url, self.n = url, n
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                          connector=aiohttp.TCPConnector(limit=4))
        self.entries: dict[int, dict] = {}
        self.last = 0
        self.latencies: list[float] = []
        self.errors = 0
        self.done = False

    def take(self, messages: list[dict]) -> None:
        for e in messages:               # the answer and the poll may both carry an entry: merged by number
            self.entries.setdefault(e["seq"], e)
        if self.entries:
            self.last = max(self.last, max(self.entries))

    async def open(self) -> None:
        async with self.http.get(self.url + "/chat") as r:
            page = await r.text()
        self.csrf = json.loads(html.unescape(re.search(r'data-boot="([^"]*)"', page).group(1)))["csrf"]
        async with self.http.get(self.url + "/chat/api/events?after=0") as r:
            self.take((await r.json())["messages"])

    async def poll(self) -> None:
        while not self.done:
            try:
                async with self.http.get(f"{self.url}/chat/api/events?after={self.last}&wait=1") as r:
                    if r.status == 200:
                        self.take((await r.json())["messages"])
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)

    async def talk(self) -> None:
        for i, text in enumerate(MESSAGES):
            t0 = time.perf_counter()
            async with self.http.post(self.url + "/chat/api/send", headers={"X-CSRF-Token": self.csrf},
                                      json={"text": text, "cid": f"u{self.n}m{i}", "after": self.last}) as r:
                body = await r.json()
            if r.status != 200:
                self.errors += 1
                continue
            self.latencies.append((time.perf_counter() - t0) * 1000)
            self.take(body["messages"])

    def check(self) -> tuple[int, int]:
        """(lost, reordered) for this user's messages."""
        seqs = sorted(self.entries)
        log = [self.entries[s] for s in seqs]
        mine = [(i, e) for i, e in enumerate(log) if e.get("cid", "").startswith(f"u{self.n}m")]
        cids = [e["cid"] for _, e in mine]
        lost = len(MESSAGES) - len(set(cids))
        reordered = len(cids) - len(set(cids))           # a message taken twice
        if seqs != list(range(1, len(seqs) + 1)):
            lost += 1                                    # a gap: an entry never reached this user
        order = [int(e["cid"].rsplit("m", 1)[1]) for _, e in mine]
        if order != sorted(order):
            reordered += 1
        for k, (i, _e) in enumerate(mine):               # each message answered before the next one
            end = mine[k + 1][0] if k + 1 < len(mine) else len(log)
            if not any(x["from"] == "bot" for x in log[i + 1:end]):
                lost += 1
        return lost, reordered


async def run(url: str, users: int) -> dict:
    people = [User(url, n) for n in range(users)]
    await asyncio.gather(*(u.open() for u in people))
    polls = [asyncio.create_task(u.poll()) for u in people]
    await asyncio.sleep(0.5)
    start_t = time.perf_counter()
    await asyncio.gather(*(u.talk() for u in people))
    elapsed = time.perf_counter() - start_t
    await asyncio.sleep(1.0)
    for u in people:
        u.done = True
    for t in polls:
        t.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    lat = sorted(x for u in people for x in u.latencies)
    lost = reordered = 0
    for u in people:
        lo, re_ = u.check()
        lost, reordered = lost + lo, reordered + re_
    errors = sum(u.errors for u in people)
    for u in people:
        await u.http.close()
    return {"users": users, "round_trips": len(lat), "seconds": round(elapsed, 2),
            "round_trips_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(statistics.median(lat), 1) if lat else None,
            "p99_ms": round(lat[max(0, int(len(lat) * 0.99) - 1)], 1) if lat else None,
            "errors": errors, "lost": lost, "reordered": reordered}


async def main(users: int) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HUQI_DATA_DIR=tmp, HUQI_HTTP_PORT=str(port), HUQI_WEB_ADDRESS_RATE="10000000",
                   PYTHONIOENCODING="utf-8")
        for var in ("HUQI_TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN", "HUQI_DATABASE_URL", "HUQI_WEBHOOK_URL"):
            env.pop(var, None)
        proc = await start(env)
        try:
            result = await run(f"http://127.0.0.1:{port}", users)
        finally:
            await stop(proc)
    return {"bench": "webchat", "messages_per_user": len(MESSAGES), **result}


if __name__ == "__main__":
    n = 20 if "--quick" in sys.argv else 200
    if "--users" in sys.argv:
        n = int(sys.argv[sys.argv.index("--users") + 1])
    print(json.dumps(asyncio.run(main(n)), ensure_ascii=False))
