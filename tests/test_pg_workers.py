"""Two ``huqi serve`` workers on one PostgreSQL database behind the Telegram
webhook (the fake Bot API, real HTTP, real PTB, real processes): any worker
takes any update, each chat's replies come in order, none lost or doubled,
and a worker killed mid-turn loses nothing acknowledged."""

import asyncio
import itertools
import os
import signal
import socket
import sys
import tempfile

import aiohttp
import pytest

from bot.store import open_store
from bot.store.migrations import migrate
from tests.fake_telegram import TOKEN, FakeTelegram, text_update
from tests.pg import require_cluster

SECRET = "workers-secret"
DESCRIPTION = "有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321"
SCRIPT = ["/start", DESCRIPTION, "/help"]
USERS = 50


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder(FakeTelegram):
    """The fake Bot API, keeping each chat's replies in arrival order."""

    def __init__(self):
        super().__init__()
        self.replies: dict[int, list[str]] = {}

    async def api_sendMessage(self, params):
        result = await super().api_sendMessage(params)
        self.replies.setdefault(int(params["chat_id"]), []).append(params.get("text", ""))
        return result


class Worker:
    def __init__(self, env: dict):
        self.port = free_port()
        self.hook = f"http://127.0.0.1:{self.port}/hook"
        self.env = dict(env, HUQI_HTTP_PORT=str(self.port), HUQI_WEBHOOK_URL=self.hook)
        self.proc = None
        self.log = tempfile.TemporaryFile()

    async def start(self) -> "Worker":
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "serve", env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=self.log)
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        assert b"huqi serve" in line, self.stderr()
        return self

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-3000:]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@pytest.fixture
async def fake():
    server = Recorder()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def env(tmp_path, fake):
    url = require_cluster().create_database()
    await migrate(url)
    env = dict(os.environ, PYTHONIOENCODING="utf-8", HUQI_DATABASE_URL=url, HUQI_DATA_DIR=str(tmp_path / "data"),
               HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url, HUQI_WEBHOOK_SECRET=SECRET)
    for k in ("TELEGRAM_BOT_TOKEN", "HUQI_API_TOKEN", "HUQI_API_TOKENS", "HUQI_OPERATOR_CHAT_ID"):
        env.pop(k, None)
    return env


async def post(http, worker: Worker, update: dict) -> int:
    async with http.post(worker.hook, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
        await r.read()
        return r.status


async def test_serve_refuses_an_outdated_schema_saying_what_to_run(tmp_path):
    url = require_cluster().create_database()  # empty: never migrated
    env = dict(os.environ, PYTHONIOENCODING="utf-8", HUQI_DATABASE_URL=url, HUQI_DATA_DIR=str(tmp_path / "d"),
               HUQI_HTTP_PORT=str(free_port()))
    env.pop("HUQI_TELEGRAM_TOKEN", None)
    env.pop("TELEGRAM_BOT_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    err = err.decode("utf-8")
    assert proc.returncode == 2 and "huqi db migrate" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_two_workers_fifty_users_in_order_and_a_worker_killed_mid_turn(fake, env):
    a, b = await asyncio.gather(Worker(env).start(), Worker(env).start())
    workers = [a, b]
    ids = itertools.count(1)
    gate = asyncio.Event()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            # What one user gets for the script, all on one worker.
            expected, calibration = [], 900
            for text in SCRIPT:
                before = len(fake.replies.get(calibration, []))
                assert await post(http, a, dict(text_update(calibration, text), update_id=next(ids))) == 200
                expected.append(fake.replies[calibration][before:])
            assert all(expected) and "谣言性信息" in "".join(expected[1])

            # Fifty users at once, each message to the other worker than the last.
            async def user(uid: int, offset: int) -> None:
                for i, text in enumerate(SCRIPT):
                    worker = workers[(offset + i) % 2]
                    assert await post(http, worker, dict(text_update(uid, text), update_id=next(ids))) == 200

            users = [1000 + u for u in range(USERS)]
            await asyncio.gather(*(user(uid, n % 2) for n, uid in enumerate(users)))
            flat = [m for group in expected for m in group]
            wrong = [uid for uid in users if fake.replies.get(uid) != flat]
            assert not wrong, f"{len(wrong)} chats lost, doubled or reordered replies, e.g. {wrong[:3]}"

            # Notifications queued while both run: each sent by exactly one worker's sender.
            from bot.outbox import enqueue

            store = open_store(None, backend="postgres", url=env["HUQI_DATABASE_URL"])
            try:
                for n in range(60):
                    await enqueue(store, kind="message", owner={"messenger": "telegram", "user_id": str(3000 + n % 30)},
                                  text=f"notice-{n}")
                async with asyncio.timeout(60):
                    while (await store.outbox_counts())["sent"] < 60:
                        await asyncio.sleep(0.2)
                await asyncio.sleep(2)  # a few more sender ticks on both workers
            finally:
                await store.close()
            delivered = [t for chat in range(3000, 3030) for t in fake.replies.get(chat, [])]
            assert sorted(delivered) == sorted(f"notice-{n}" for n in range(60))

            # A worker killed mid-turn: the reply is in flight when a dies.
            victim = 777
            assert await post(http, b, dict(text_update(victim, "/start"), update_id=next(ids))) == 200
            gate = fake.hold[victim] = asyncio.Event()  # this reply never reaches the user
            update = dict(text_update(victim, DESCRIPTION), update_id=next(ids))
            calls = len(fake.called("sendMessage"))
            in_flight = asyncio.create_task(post(http, a, update))
            await fake.wait_for(lambda: any(str(p.get("chat_id")) == str(victim)
                                            for p in fake.called("sendMessage")[calls:]), timeout=30)
            a.proc.kill()  # SIGKILL: no goodbye
            await a.proc.wait()
            with pytest.raises(aiohttp.ClientError):
                await in_flight  # never acknowledged: Telegram sends it again, here to b
            del fake.hold[victim]
            async with asyncio.timeout(30):
                assert await post(http, b, update) == 200  # a's chat lock went with its connection
            assert fake.replies[victim] == expected[0] + expected[1]
            assert await post(http, b, dict(text_update(victim, "/help"), update_id=next(ids))) == 200
            assert fake.replies[victim] == flat
            # Everyone else carries on with the surviving worker.
            assert await post(http, b, dict(text_update(users[0], "/help"), update_id=next(ids))) == 200
            assert fake.replies[users[0]] == flat + expected[2]
    finally:
        gate.set()  # let the fake finish the call it was holding
        for w in workers:
            await w.stop()
    store = open_store(None, backend="postgres", url=env["HUQI_DATABASE_URL"])
    try:
        assert await store.count_states() == USERS + 2 + 30  # the notified chats have a state too
        victim_state = await store.get_state(f"telegram:{victim}")
        other = await store.get_state(f"telegram:{users[1]}")  # the same script, no kill
        assert victim_state["state"]["step"] == other["state"]["step"]
    finally:
        await store.close()


async def healthz(http, worker: Worker) -> int:
    async with http.get(f"http://127.0.0.1:{worker.port}/healthz") as r:
        await r.read()
        return r.status


async def test_postgres_restarted_under_a_worker_503_meanwhile_and_no_update_lost(fake, tmp_path):
    from tests.pg import Cluster, find_bindir

    require_cluster()
    cluster = Cluster(find_bindir(), durable=True).start()  # a server of its own, to stop and start
    url = cluster.create_database("huqi")
    await migrate(url)
    env = dict(os.environ, PYTHONIOENCODING="utf-8", HUQI_DATABASE_URL=url, HUQI_DATA_DIR=str(tmp_path / "data"),
               HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url, HUQI_WEBHOOK_SECRET=SECRET,
               HUQI_DATABASE_TIMEOUT="2")
    for k in ("TELEGRAM_BOT_TOKEN", "HUQI_API_TOKEN", "HUQI_API_TOKENS", "HUQI_OPERATOR_CHAT_ID"):
        env.pop(k, None)
    worker = await Worker(env).start()
    uid, ids = 4242, itertools.count(1)
    try:
        async with aiohttp.ClientSession() as http:
            assert await healthz(http, worker) == 200
            assert await post(http, worker, dict(text_update(uid, "/start"), update_id=next(ids))) == 200
            greeting = list(fake.replies[uid])
            cluster.stop_server("fast")
            assert await healthz(http, worker) == 503
            update = dict(text_update(uid, DESCRIPTION), update_id=next(ids))
            assert await post(http, worker, update) == 503  # not handled: Telegram sends it again
            assert fake.replies[uid] == greeting
            cluster.start_server()
            async with asyncio.timeout(60):
                while await healthz(http, worker) != 200:  # the worker reconnects by itself
                    await asyncio.sleep(0.3)
            assert await post(http, worker, update) == 200  # the resent update
            assert "谣言性信息" in "".join(fake.replies[uid][len(greeting):])
    finally:
        await worker.stop()
        cluster.destroy()
    assert worker.proc.returncode == 0, worker.stderr()
