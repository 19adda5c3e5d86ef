"""``huqi serve`` as a whole: webhook and polling through real PTB and real HTTP, the outbox, health."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import aiohttp
import pytest
from aiohttp import web
from telegram import Update

from bot.config import load_settings
from bot.outbox import enqueue
from bot.sender import Sender
from bot.server import TELEGRAM, build_app
from bot.store import open_store
from tests.fake_telegram import TOKEN, FakeTelegram, button_update, keyboard, text_update, texts

ALICE, BOB = 1001, 2002
SECRET = "s3cret-Token_value"
DESCRIPTION = "有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def fake():
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


@asynccontextmanager
async def service(env: dict, store=None):
    """The aiohttp application of huqi serve on a free port, in this process."""
    port = free_port()
    settings = load_settings(dict(env, HUQI_HTTP_PORT=str(port)))
    store = store if store is not None else open_store(None, backend="memory")
    app = build_app(settings, store)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", store, app
    finally:
        await runner.cleanup()


def env_for(tmp_path, fake=None, **extra) -> dict:
    env = {"HUQI_DATA_DIR": str(tmp_path / "data")}
    if fake is not None:
        env.update(HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url,
                   HUQI_TELEGRAM_FILE_URL=fake.file_url)
    env.update(extra)
    return env


async def get_json(url: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            return resp.status, await resp.json()


# ── health ──────────────────────────────────────────────────────────
async def test_healthz_reports_store_bot_and_outbox_and_503_when_the_store_is_gone(tmp_path):
    async with service(env_for(tmp_path)) as (url, store, _app):
        status, body = await get_json(url + "/healthz")
        assert status == 200 and body["store"]["ok"] and body["bot"]["mode"] == "off"
        assert set(body["outbox"]) >= {"pending", "sent", "parked"}
        await store.close()
        status, body = await get_json(url + "/healthz")
        assert status == 503 and body["store"]["ok"] is False


# ── webhook mode ────────────────────────────────────────────────────
WEBHOOK_PATH = "/tg/hook"


def webhook_env(tmp_path, fake) -> dict:
    return env_for(tmp_path, fake, HUQI_WEBHOOK_URL="https://bot.example.org" + WEBHOOK_PATH,
                   HUQI_WEBHOOK_SECRET=SECRET)


async def test_webhook_mode_sets_the_webhook_and_answers_only_updates_with_the_secret(fake, tmp_path):
    async with service(webhook_env(tmp_path, fake)) as (url, store, _app):
        assert fake.webhook["url"] == "https://bot.example.org" + WEBHOOK_PATH
        assert fake.webhook["secret_token"] == SECRET
        assert not fake.called("getUpdates")
        hook = url + WEBHOOK_PATH
        assert await fake.post_webhook(hook, text_update(ALICE, "/start"), None) == 403
        assert await fake.post_webhook(hook, text_update(ALICE, "/start"), "wrong") == 403
        assert fake.sent(ALICE) == [] and await store.get_state(f"telegram:{ALICE}") is None
        assert await fake.post_webhook(hook, text_update(ALICE, "/start"), SECRET) == 200
        assert "您好，我是护企" in texts(fake.sent(ALICE))      # answered before the 200
        assert await fake.post_webhook(hook, text_update(ALICE, DESCRIPTION), SECRET) == 200
        assert "谣言性信息" in texts(fake.sent(ALICE))


async def test_a_webhook_update_that_cannot_be_parsed_is_acknowledged_and_skipped(fake, tmp_path, caplog):
    async with service(webhook_env(tmp_path, fake)) as (url, _store, _app):
        hook = url + WEBHOOK_PATH
        poison = {"message": {"chat": "13800138000", "text": "身份证 110101199003077777"}}
        with caplog.at_level("INFO"):
            assert await fake.post_webhook(hook, poison, SECRET) == 200
        assert "13800138000" not in caplog.text and "110101199003077777" not in caplog.text
        async with aiohttp.ClientSession() as http:
            async with http.post(hook, data=b"\xff{not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as r:
                assert r.status == 400
        assert await fake.post_webhook(hook, text_update(ALICE, "/start"), SECRET) == 200
        assert "您好，我是护企" in texts(fake.sent(ALICE))


async def test_a_webhook_update_is_answered_503_while_the_store_is_unusable(fake, tmp_path):
    async with service(webhook_env(tmp_path, fake)) as (url, store, _app):
        await store.close()
        status = await fake.post_webhook(url + WEBHOOK_PATH, text_update(ALICE, "/start"), SECRET)
        assert status == 503                                     # Telegram resends it later


# ── polling mode ────────────────────────────────────────────────────
async def test_polling_skips_an_update_ptb_cannot_parse_and_answers_the_next(fake, tmp_path):
    fake.push({"message": {"chat": "13800138000", "text": "身份证 110101199003077777"}})
    fake.push(text_update(ALICE, "/start"))
    proc = await start_serve(cli_env(tmp_path, HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url))
    try:
        await fake.wait_for(lambda: "您好，我是护企" in texts(fake.sent(ALICE)), timeout=15)
    finally:
        code, err = await stop(proc)
    assert code == 0
    assert "skipped update" in err                                # logged by its id ...
    assert "13800138000" not in err and "110101199003077777" not in err   # ... never its content
    assert TOKEN.split(":")[1] not in err
    assert len(fake.called("getUpdates")) < 50                    # not re-fetched forever


async def test_one_flooded_chat_does_not_hold_up_the_others(fake, tmp_path):
    fake.hold[ALICE] = asyncio.Event()
    async with service(env_for(tmp_path, fake)) as (_url, _store, _app):
        for _ in range(60):                                      # more than the concurrent slots
            fake.push(text_update(ALICE, "/help"))
        fake.push(text_update(BOB, "/start"))
        await fake.wait_for(lambda: "您好，我是护企" in texts(fake.sent(BOB)), timeout=10)
        assert len(fake.sent(ALICE)) <= 1                        # Alice's replies are still stuck
        fake.hold[ALICE].set()
        await fake.wait_for(lambda: len(fake.sent(ALICE)) >= 60, timeout=20)


# ── the outbox ──────────────────────────────────────────────────────
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_flood_control_delays_a_notification_then_delivers_it(fake, tmp_path):
    fake.failures["sendMessage"] = [(429, {"description": "Too Many Requests: retry after 1",
                                           "parameters": {"retry_after": 1}})]
    async with service(env_for(tmp_path, fake)) as (_url, store, app):
        owner = {"messenger": "telegram", "user_id": str(ALICE)}
        msg = await enqueue(store, kind="message", owner=owner, text="案件有新消息")
        for _ in range(100):                                      # refused once: put back for later
            first = await store.outbox_get(msg["id"])
            if first.get("last_error"):
                break
            await asyncio.sleep(0.02)
        assert first["last_error"] == "retry_after" and first["next_at"] > first["created_at"]
        await fake.wait_for(lambda: "案件有新消息" in texts(fake.sent(ALICE)), timeout=10)
        for _ in range(50):
            if (await store.outbox_get(msg["id"]))["status"] == "sent":
                break
            await asyncio.sleep(0.05)
        assert (await store.outbox_get(msg["id"]))["status"] == "sent"
        assert len(fake.called("sendMessage")) == 2             # refused once (429), then delivered once


async def test_a_message_that_keeps_failing_is_parked_for_staff(tmp_path):
    store = open_store(None, backend="memory")
    sender = Sender(store, max_attempts=3, base_delay=0)
    calls = []

    async def broken(msg):
        calls.append(msg["id"])
        raise ConnectionError("down")
    sender.register("telegram", broken)
    msg = await enqueue(store, kind="message", owner={"messenger": "telegram", "user_id": "1"}, text="x")
    for _ in range(5):
        await sender.drain_once()
    assert len(calls) == 3
    parked = await store.outbox_get(msg["id"])
    assert parked["status"] == "parked" and parked["attempts"] >= 2
    assert (await store.outbox_counts())["parked"] == 1


# ── the command ─────────────────────────────────────────────────────
def cli_env(tmp_path, **extra) -> dict:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", HUQI_DATA_DIR=str(tmp_path / "data"),
               HUQI_HTTP_PORT=str(free_port()))
    for k in ("TELEGRAM_BOT_TOKEN", "HUQI_TELEGRAM_TOKEN", "HUQI_WEBHOOK_URL", "HUQI_API_TOKEN", "HUQI_API_TOKENS"):
        env.pop(k, None)
    env.update(extra)
    return env


async def start_serve(env: dict) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert b"huqi serve" in line, (line, await proc.stderr.read())
    return proc


async def stop(proc, sig=signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, err.decode("utf-8", "replace")


async def test_serve_without_a_token_runs_the_staff_side_and_says_so_in_one_line(tmp_path):
    env = cli_env(tmp_path)
    proc = await start_serve(env)
    try:
        status, body = await get_json(f"http://127.0.0.1:{env['HUQI_HTTP_PORT']}/healthz")
        assert status == 200 and body["bot"]["mode"] == "off"
    finally:
        code, err = await stop(proc)
    assert code == 0 and "Traceback" not in err


@pytest.mark.parametrize("var,value", [("HUQI_HTTP_PORT", "eighty"), ("HUQI_WEBHOOK_URL", "ftp://x"),
                                       ("HUQI_OPERATOR_CHAT_ID", "ops"), ("HUQI_API_TOKENS", "a:b:c:d")])
async def test_a_malformed_setting_is_one_clear_line(tmp_path, var, value):
    env = cli_env(tmp_path, **{var: value})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    err = err.decode("utf-8")
    assert proc.returncode == 2 and var in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


async def test_sigterm_lets_the_turn_in_flight_finish(fake, tmp_path):
    fake.hold[ALICE] = asyncio.Event()
    env = cli_env(tmp_path, HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url)
    proc = await start_serve(env)
    try:
        fake.push(text_update(ALICE, "/start"))
        await fake.wait_for(lambda: fake.called("sendMessage"), timeout=15)   # the reply is in flight
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        fake.hold[ALICE].set()
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert any(keyboard(c) for c in fake.sent(ALICE)), "the whole turn was sent"
    store = open_store(tmp_path / "data")
    try:
        assert (await store.get_state(f"telegram:{ALICE}"))["state"]["step"]
    finally:
        await store.close()


# ── staff and owner, end to end ─────────────────────────────────────
API_TOKEN = "desk-token-0123456789"


async def api(base: str, method: str, path: str, body: dict | None = None, token: str = API_TOKEN):
    async with aiohttp.ClientSession() as http:
        async with http.request(method, base + path, json=body,
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def telegram_case(store, uid: int) -> str:
    case = await store.create({"owner": {"messenger": "telegram", "user_id": str(uid)}, "status": "draft",
                               "type": "rumor", "subtype": "rumor.exaggerated_difficulty", "platform": "weibo",
                               "province": "广东", "enterprise": "青禾食品有限公司"})
    return case["id"]


async def test_a_status_change_by_staff_reaches_the_owner_once_and_names_who_made_it(fake, tmp_path):
    env = env_for(tmp_path, fake, HUQI_API_TOKENS=f"desk:{API_TOKEN}")
    async with service(env) as (url, store, _app):
        case_id = await telegram_case(store, ALICE)
        status, body = await api(url, "POST", f"/api/v1/cases/{case_id}/transitions",
                                 {"to": "submitted", "channel": "platform", "note": "已代为提交"})
        assert status == 200, body
        await fake.wait_for(lambda: case_id in texts(fake.sent(ALICE)), timeout=10)
        await asyncio.sleep(1.5)                                  # a few more sender ticks
        assert texts(fake.sent(ALICE)).count(case_id) == 1
        assert fake.sent(BOB) == []
        case = await store.get(case_id)
        assert case["history"][-1]["who"] == "desk" and case["status"] == "submitted"
        (msg,) = await store.outbox_list(case_id=case_id)
        assert msg["status"] == "sent"
        status, body = await api(url, "POST", f"/api/v1/cases/{case_id}/transitions", {"to": "closed"})
        assert status == 409                                      # the lifecycle decides


async def test_closing_a_case_asks_the_owner_once_how_satisfied_they_are(fake, tmp_path):
    env = env_for(tmp_path, fake, HUQI_API_TOKENS=f"desk:{API_TOKEN}")
    async with service(env) as (url, store, app):
        case_id = await telegram_case(store, ALICE)
        for step in ({"to": "submitted", "channel": "platform"}, {"to": "action_taken", "outcome": "deleted"},
                     {"to": "closed", "reason": "resolved"}):
            status, body = await api(url, "POST", f"/api/v1/cases/{case_id}/transitions", step)
            assert status == 200, body
        ask = await fake.wait_for(lambda: [c for c in fake.sent(ALICE) if len(keyboard(c)) == 5], timeout=10)
        five = next(b for b in keyboard(ask[-1]) if b["text"].startswith("5"))
        tg = app[TELEGRAM]
        upd = Update.de_json(dict(button_update(ALICE, five["callback_data"]), update_id=10**6), tg.app.bot)
        await tg.app.process_update(upd)
        upd = Update.de_json(dict(text_update(ALICE, "处理很快，谢谢"), update_id=10**6 + 1), tg.app.bot)
        await tg.app.process_update(upd)
        sat = (await store.get(case_id))["satisfaction"]
        assert sat["score"] == 5 and sat["comment"] == "处理很快，谢谢"
        forged = Update.de_json(dict(button_update(BOB, f"sat:1:{case_id}"), update_id=10**6 + 2), tg.app.bot)
        await tg.app.process_update(forged)                       # not Bob's case: nothing changes
        assert (await store.get(case_id))["satisfaction"]["score"] == 5
        status, stats = await api(url, "GET", "/api/v1/stats")
        assert status == 200 and "satisfaction" in json.dumps(stats)


async def test_a_notification_queued_before_a_sigkill_arrives_once_after_the_restart(fake, tmp_path):
    env = cli_env(tmp_path, HUQI_API_TOKENS=f"desk:{API_TOKEN}")
    store = open_store(tmp_path / "data")
    case_id = await telegram_case(store, ALICE)
    await store.close()
    proc = await start_serve(env)                                 # staff side only: nothing is sent
    base = f"http://127.0.0.1:{env['HUQI_HTTP_PORT']}"
    try:
        status, body = await api(base, "POST", f"/api/v1/cases/{case_id}/transitions",
                                 {"to": "submitted", "channel": "platform"})
        assert status == 200, body
    finally:
        proc.kill()                                               # SIGKILL: no goodbye
        await proc.wait()
    env.update(HUQI_TELEGRAM_TOKEN=TOKEN, HUQI_TELEGRAM_API_URL=fake.base_url)
    for _ in range(2):                                            # restart, and restart again
        proc = await start_serve(env)
        try:
            await fake.wait_for(lambda: case_id in texts(fake.sent(ALICE)), timeout=15)
            await asyncio.sleep(1.5)
        finally:
            await stop(proc)
    assert texts(fake.sent(ALICE)).count(case_id) == 1


async def test_huqi_cases_set_status_works_while_the_service_runs(tmp_path):
    env = cli_env(tmp_path, HUQI_API_TOKENS=f"desk:{API_TOKEN}")
    store = open_store(tmp_path / "data")
    case_id = await telegram_case(store, ALICE)
    await store.close()
    proc = await start_serve(env)
    try:
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "cases", "set-status", case_id, "submitted", "--channel", "platform",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(cli.communicate(), 30)
        assert cli.returncode == 0, err.decode()
        status, body = await api(f"http://127.0.0.1:{env['HUQI_HTTP_PORT']}", "GET", f"/api/v1/cases/{case_id}")
        assert body["status"] == "submitted" and body["history"][-1]["to"] == "submitted"
        listing = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "cases", "list", "--platform", "微博", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(listing.communicate(), 30)
        assert listing.returncode == 0 and case_id in out.decode()
    finally:
        await stop(proc)


async def test_overdue_cases_are_announced_to_the_operators_chat_without_personal_data(fake, tmp_path):
    from bot import reminders
    store = open_store(None, backend="memory")
    case = await store.create({"owner": {"messenger": "telegram", "user_id": str(ALICE)}, "status": "draft",
                               "type": "privacy_leak", "platform": "weibo", "province": "上海",
                               "enterprise": "张三", "contact": "13800138000"})
    then = datetime.now(timezone.utc) - timedelta(days=10)
    await store.append_event(case["id"], {"when": then.isoformat(), "who": "t", "to": "submitted",
                                          "channel": "platform"})
    await reminders.schedule_after_submit(store, case["id"], 7, then)
    async with service(env_for(tmp_path, fake, HUQI_OPERATOR_CHAT_ID="-100500"), store=store):
        ops = await fake.wait_for(lambda: fake.sent(-100500), timeout=10)
        await fake.wait_for(lambda: case["id"] in texts(fake.sent(ALICE)), timeout=10)   # and the owner
    said = texts(ops)
    assert case["id"] in said and "泄密性信息" in said and "上海" in said
    assert "张三" not in said and "13800138000" not in said


# ── a whole case through the webhook, with a file, to the staff's package ──
class WebhookUser:
    def __init__(self, fake: FakeTelegram, hook: str, uid: int):
        self.fake, self.hook, self.uid = fake, hook, uid

    async def send(self, update: dict) -> list[dict]:
        mark = len(self.fake.calls)
        assert await self.fake.post_webhook(self.hook, update, SECRET) == 200
        return self.fake.sent(self.uid, mark)

    async def say(self, text: str) -> list[dict]:
        return await self.send(text_update(self.uid, text))

    async def press(self, label: str, replies: list[dict]) -> list[dict]:
        board = next(keyboard(c) for c in reversed(replies) if keyboard(c))
        button = next((b for b in board if b["text"].startswith(label)), None)
        assert button, f"no button {label!r} in {[b['text'] for b in board]}"
        return await self.send(button_update(self.uid, button["callback_data"]))


async def test_a_newcomer_reports_through_the_webhook_and_staff_download_the_evidence_package(fake, tmp_path):
    import hashlib
    import io
    import zipfile

    from tests.fake_telegram import document_update
    screenshot = b"\x89PNG evidence bytes" * 50
    fake.files["FILE-微博截图.png"] = screenshot
    env = dict(webhook_env(tmp_path, fake), HUQI_API_TOKENS=f"desk:{API_TOKEN}", HUQI_OPERATOR_CHAT_ID="-100500")
    async with service(env) as (url, store, _app):
        user = WebhookUser(fake, url + WEBHOOK_PATH, ALICE)
        await user.say("/start")
        replies = await user.say("有自媒体说我们杭州青禾食品资金链断裂马上破产 https://m.weibo.cn/status/4987654321")
        replies = await user.press("谣言", replies)
        await user.send(document_update(ALICE, "微博截图.png", len(screenshot)))
        replies = fake.sent(ALICE)
        replies = await user.press("都没有", replies)
        while not any(b["text"] == "保存为案件" for c in replies for b in keyboard(c)):
            replies = await user.press(keyboard(replies[-1])[0]["text"], replies)   # the offered default
        replies = await user.press("保存为案件", replies)
        (case,) = await store.list()
        assert case["id"] in texts(replies)
        (attachment,) = case["attachments"]
        assert attachment["sha256"] == hashlib.sha256(screenshot).hexdigest()
        assert attachment["ref"] == "FILE-微博截图.png" and attachment["received_at"] and attachment["size"] == len(screenshot)
        # the desk hears of the new case, without the reporter's words
        said = texts(await fake.wait_for(lambda: fake.sent(-100500), timeout=10))
        assert case["id"] in said and "资金链" not in said
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/api/v1/cases/{case['id']}/package",
                                headers={"Authorization": f"Bearer {API_TOKEN}"}) as resp:
                assert resp.status == 200
                data = await resp.read()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            stored = [n for n in names if n.endswith("微博截图.png")]
            assert stored and z.read(stored[0]) == screenshot
            manifest = next(z.read(n).decode("utf-8-sig") for n in names if n.endswith("manifest.csv"))
            assert hashlib.sha256(screenshot).hexdigest() in manifest


async def test_a_damaged_states_file_from_the_old_adapter_is_set_aside_and_the_service_starts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "telegram_states.json").write_bytes('{"v": 1, "users": {"1001": {"state": {"step": "描'.encode()[:-1])
    proc = await start_serve(cli_env(tmp_path))
    code, err = await stop(proc)
    assert code == 0 and "Traceback" not in err
    assert (data / "telegram_states.json.damaged").exists() and not (data / "telegram_states.json").exists()
