"""Telegram throughput: simulated users through the fake Bot API and the real PTB stack.

huqi serve runs in its own process (webhook mode, then polling) with 10,000
users' conversation states already stored; the fake Bot API and the simulated
users run in this process.  Each user sends a run of messages without
waiting (alternating /help and /faq, whose replies differ), and the fake
records the replies: round trips per second, p50/p99 from sending a message to
receiving its reply, and messages lost or out of order within a chat.  A plain
PTB echo bot (bench/echo_bot.py) goes through the same harness as the floor.
In-process beside it: the reminder sweep over 10,000 due reminders (the
longest the event loop was held) and the outbox drained with 10,000 queued.

Usage: python bench/telegram.py [--quick]
Prints one JSON object on its last line.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from tests.fake_telegram import FakeTelegram, text_update  # noqa: E402

SECRET = "bench-secret"
STORED = 10_000
MESSAGES_PER_USER = 4
COMMANDS = ("/help", "/faq")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(FakeTelegram):
    """The fake Bot API, timing when each chat's replies arrive."""

    def __init__(self):
        super().__init__()
        self.replies: dict[int, list[tuple[float, str]]] = {}

    async def api_sendMessage(self, params):
        chat = int(params["chat_id"])
        self.replies.setdefault(chat, []).append((time.perf_counter(), params.get("text", "")))
        return self._message(params, text="")

    async def _handle(self, request):                # do not keep every call: memory and time
        from aiohttp import web
        method = request.match_info["method"]
        params = await self._params(request)
        if self.failures.get(method):
            status, body = self.failures[method].pop(0)
            return web.json_response({"ok": False, "error_code": status} | body, status=status)
        result = await getattr(self, f"api_{method}", self.api_default)(params)
        return web.json_response({"ok": True, "result": result})


async def seed(data_dir: Path, users: int) -> None:
    from bot.store import open_store
    store = open_store(data_dir)
    try:
        state = {"state": {"step": "describe", "history": [], "case": {}}}
        for uid in range(users):
            await store.put_state(f"telegram:{5_000_000 + uid}", state)
    finally:
        await store.close()


async def settle(fake: Recorder, chats: list[int], expected: int, timeout: float = 60) -> None:
    """Wait until the chats received ``expected`` messages in all, or nothing came for a second."""
    deadline, last, quiet_since = time.perf_counter() + timeout, -1, time.perf_counter()
    while time.perf_counter() < deadline:
        got = sum(len(fake.replies.get(c, [])) for c in chats)
        if got >= expected:
            return
        if got != last:
            last, quiet_since = got, time.perf_counter()
        elif time.perf_counter() - quiet_since > 3:
            return
        await asyncio.sleep(0.02)


async def calibrate(fake: Recorder, send, uid: int) -> dict:
    """How many messages each command's reply takes, and how the first one starts."""
    shape = {}
    await send(text_update(uid, "/start"))
    await settle(fake, [uid], 1)
    await asyncio.sleep(0.5)
    for cmd in COMMANDS:
        before = len(fake.replies.get(uid, []))
        await send(text_update(uid, cmd))
        await settle(fake, [uid], before + 1)
        await asyncio.sleep(0.5)
        replies = fake.replies[uid][before:]
        shape[cmd] = (len(replies), replies[0][1][:10])
    return shape


async def run_load(fake: Recorder, send, users: int, per_user: int, shape: dict) -> dict:
    """Every user sends ``per_user`` messages (alternating commands); the figures for this run.

    A round trip ends when the last message of its reply arrived; a reply
    whose first message does not start as that command's reply is counted
    as out of order; missing messages as lost.
    """
    base = 100_000 + users * 1000
    chats = [base + u for u in range(users)]
    sent: dict[int, list[tuple[float, str]]] = {c: [] for c in chats}
    for c in chats:
        fake.replies.pop(c, None)
    start = time.perf_counter()

    async def user(uid: int) -> None:
        for i in range(per_user):
            cmd = COMMANDS[i % 2]
            sent[uid].append((time.perf_counter(), cmd))
            await send(text_update(uid, cmd))

    await asyncio.gather(*(user(c) for c in chats))
    expected = sum(shape[cmd][0] for c in chats for _t, cmd in sent[c])
    await settle(fake, chats, expected)
    elapsed = time.perf_counter() - start
    latencies, lost, reordered, done = [], 0, 0, 0
    for c in chats:
        replies = fake.replies.get(c, [])
        pos = 0
        for t_sent, cmd in sent[c]:
            count, head = shape[cmd]
            group = replies[pos:pos + count]
            pos += count
            if len(group) < count:
                lost += 1
                continue
            done += 1
            if not group[0][1].startswith(head):
                reordered += 1
            latencies.append((group[-1][0] - t_sent) * 1000)
    latencies.sort()
    return {"round_trips_per_s": round(done / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1) if latencies else None,
            "lost": lost, "reordered": reordered}


async def start(cmd: list[str], env: dict):
    """Start a server process; its log goes to a temporary file (a full pipe would stall it)."""
    log = tempfile.TemporaryFile()
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=log,
                                                cwd=str(ROOT))
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line:
            log.seek(0)
            raise RuntimeError(log.read().decode("utf-8", "replace")[-2000:])
        if b"huqi serve" in line or b"ready" in line:
            return proc


async def stop(proc) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


def webhook_sender(http: aiohttp.ClientSession, url: str, ids):
    async def send(update: dict) -> None:
        update = dict(update, update_id=next(ids))
        async with http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
            await r.read()
    return send


async def bench_service(fake: Recorder, data_dir: Path, sizes: list[int], mode: str) -> dict:
    port = free_port()
    env = dict(os.environ, HUQI_DATA_DIR=str(data_dir), HUQI_TELEGRAM_TOKEN="123456:TEST-token",
               HUQI_TELEGRAM_API_URL=fake.base_url, HUQI_HTTP_PORT=str(port), PYTHONIOENCODING="utf-8")
    if mode == "webhook":
        env.update(HUQI_WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", HUQI_WEBHOOK_SECRET=SECRET)
    proc = await start([sys.executable, "-m", "bot.cli", "serve"], env)
    out = {}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            ids = itertools.count(1)
            if mode == "webhook":
                send = webhook_sender(http, f"http://127.0.0.1:{port}/hook", ids)
            else:
                async def send(update):
                    fake.push(update)
            shape = await calibrate(fake, send, 99)
            for n in sizes:
                out[n] = await run_load(fake, send, n, MESSAGES_PER_USER, shape)
    finally:
        await stop(proc)
    return out


async def bench_echo(fake: Recorder, users: int) -> dict:
    port = free_port()
    proc = await start([sys.executable, "-m", "bench.echo_bot", str(port), fake.base_url], dict(os.environ))
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            send = webhook_sender(http, f"http://127.0.0.1:{port}/hook", itertools.count(1))
            shape = await calibrate(fake, send, 98)
            return await run_load(fake, send, users, MESSAGES_PER_USER, shape)
    finally:
        await stop(proc)


async def loop_lag_during(coro) -> tuple[float, object]:
    """Run ``coro``; the longest the event loop was held meanwhile (ms)."""
    worst = 0.0
    done = False

    async def ticker():
        nonlocal worst
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            worst = max(worst, (now - last) * 1000 - 1)
            last = now
    tick = asyncio.create_task(ticker())
    try:
        result = await coro
    finally:
        done = True
        await tick
    return worst, result


async def bench_sweep_and_outbox(data_dir: Path, due: int) -> dict:
    from bot.outbox import enqueue
    from bot.sender import Sender
    from bot.store import open_store
    from bot.sweep import sweep

    from bot.server import settle, warm
    warm()
    store = open_store(data_dir)
    try:
        then = datetime.now(timezone.utc) - timedelta(days=30)
        for i in range(due):
            case = await store.create({"owner": {"messenger": "telegram", "user_id": str(7_000_000 + i)},
                                       "status": "submitted", "type": "rumor", "platform": "weibo"})
            await store.set_reminder(case["id"], then, "no_news", days=7)
        settle()                                # as huqi serve does once it has started
        block_ms, queued = await loop_lag_during(sweep(store, datetime.now(timezone.utc)))
        for i in range(due - queued):
            await enqueue(store, kind="message", owner={"messenger": "telegram", "user_id": str(i)}, text="x")
        sender = Sender(store)

        async def deliver(msg):
            return None
        sender.register("telegram", deliver)
        t0 = time.perf_counter()
        while await sender.drain_once():
            pass
        drain = due / (time.perf_counter() - t0)
        return {"sweep_due": due, "sweep_queued": queued, "sweep_max_block_ms": round(block_ms, 1),
                "outbox_queued": due, "outbox_drain_per_s": round(drain, 1)}
    finally:
        await store.close()


async def main(quick: bool) -> dict:
    stored = 1000 if quick else STORED
    sizes = [1, 20, 200]
    fake = Recorder()
    await fake.start()
    results: dict = {"stored_users": stored, "messages_per_user": MESSAGES_PER_USER}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            await seed(data, stored)
            webhook = await bench_service(fake, data, sizes, "webhook")
            polling = await bench_service(fake, data, [200], "polling")
            echo = await bench_echo(fake, 200)
            extra = await bench_sweep_and_outbox(Path(tmp) / "sweep", 1000 if quick else 10_000)
    finally:
        await fake.stop()
    for n, r in webhook.items():
        results[f"webhook_{n}"] = r
    results["polling_200"] = polling[200]
    results["echo_200"] = echo
    results.update(
        round_trips_per_s_200=webhook[200]["round_trips_per_s"], p99_ms_200=webhook[200]["p99_ms"],
        echo_round_trips_per_s_200=echo["round_trips_per_s"],
        ratio_to_echo=round(echo["round_trips_per_s"] / max(0.1, webhook[200]["round_trips_per_s"]), 2),
        lost=sum(r["lost"] for r in [*webhook.values(), polling[200]]),
        reordered=sum(r["reordered"] for r in [*webhook.values(), polling[200]]),
        **extra)
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main("--quick" in sys.argv)), ensure_ascii=False))
