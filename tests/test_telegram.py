"""The Telegram adapter against a fake Bot API server: real PTB, no network.

Most tests hand updates to ``application.process_update`` (deterministic);
the polling path and the ``huqi`` command itself are driven through
getUpdates.  Webhook mode and the service as a whole: tests/test_serve.py.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from telegram import Update

from bot import files, reminders
from bot.conversation import Conversations
from bot.sender import Sender
from bot.store import open_store
from bot.sweep import sweep
from bot.telegram import TelegramBot, build_application
from bot.tg_render import button_value, callback_data, split_text
from dialogs.engine import Engine
from tests.fake_telegram import (TOKEN, FakeTelegram, _update_ids, button_update, document_update, keyboard,
                                 photo_update, text_update, texts)

ALICE, BOB = 1001, 2002
DESCRIPTION = "有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321"


# ── fixtures ────────────────────────────────────────────────────────
@pytest.fixture(scope="module")
def engine():
    return Engine()


@pytest.fixture
async def fake():
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


class Driver:
    """An adapter and its Application, fed updates through process_update."""

    def __init__(self, fake: FakeTelegram, adapter: TelegramBot, app):
        self.fake, self.adapter, self.app = fake, adapter, app

    async def send(self, update: dict) -> list[dict]:
        """Process one update; the messages it caused, to the update's user."""
        mark = len(self.fake.calls)
        await self.app.process_update(Update.de_json(dict(update, update_id=next(_update_ids)), self.app.bot))
        uid = (update.get("message") or update.get("callback_query"))["from"]["id"]
        return self.fake.sent(uid, mark)

    async def say(self, uid: int, text: str) -> list[dict]:
        return await self.send(text_update(uid, text))

    async def press(self, uid: int, label: str, replies: list[dict]) -> list[dict]:
        """Press the button whose label starts with ``label`` in the last keyboard of ``replies``."""
        board = next(keyboard(c) for c in reversed(replies) if keyboard(c))
        button = next((b for b in board if b["text"].startswith(label)), None)
        assert button, f"no button {label!r} in {[b['text'] for b in board]}"
        return await self.send(button_update(uid, button["callback_data"]))


def make_adapter(store, tmp_path, engine, **kw) -> TelegramBot:
    conversations = Conversations(store, "telegram", engine=engine)
    return TelegramBot(conversations, files_dir=tmp_path / "files", **kw)


@asynccontextmanager
async def running(fake, tmp_path, store, engine, **kw):
    store = store if store is not None else open_store(None, backend="memory")
    adapter = make_adapter(store, tmp_path, engine, **kw)
    app = build_application(TOKEN, adapter, base_url=fake.base_url, base_file_url=fake.file_url)
    await app.initialize()
    await adapter.post_init(app)
    try:
        yield Driver(fake, adapter, app)
    finally:
        await app.shutdown()


async def state_of(store, uid: int) -> dict:
    return ((await store.get_state(f"telegram:{uid}")) or {}).get("state") or {}


async def intake(d: Driver, uid: int) -> list[dict]:
    """From /start to the saved case, pressing buttons as a user would."""
    replies = await d.say(uid, "/start")
    replies = await d.say(uid, DESCRIPTION)
    replies = await d.press(uid, "谣言", replies)            # the reading is right
    replies = await d.press(uid, "都没有", replies)          # none of the situations
    replies = await d.say(uid, "青禾食品有限公司")
    replies = await d.say(uid, "深圳")
    assert "保存为案件" in [b["text"] for b in keyboard(replies[-1])]
    return await d.press(uid, "保存为案件", replies)


# ── the conversation ────────────────────────────────────────────────
async def test_start_greets_with_an_inline_keyboard_and_a_description_is_read(fake, tmp_path, engine):
    async with running(fake, tmp_path, open_store(None, backend="memory"), engine) as d:
        replies = await d.say(ALICE, "/start")
        assert "您好，我是护企" in texts(replies)
        assert keyboard(replies[-1]), "the greeting offers buttons"
        assert [b["text"] for b in keyboard(replies[-1])][:1] == ["按类型选择"]
        replies = await d.say(ALICE, DESCRIPTION)
        assert "谣言性信息" in texts(replies)
        assert any(b["text"].startswith("谣言") for b in keyboard(replies[-1]))
        replies = await d.press(ALICE, "谣言", replies)
        assert fake.called("answerCallbackQuery"), "the button press is answered"
        assert "微博" in texts(replies)                          # the next step, from the link
        # a second /start is a restart, not the greeting
        replies = await d.say(ALICE, "/start")
        assert "重新开始" in texts(replies) and "您好，我是护企" not in texts(replies)


async def test_a_full_intake_saves_a_case_owned_by_the_telegram_user(fake, tmp_path, engine):
    store = open_store(None, backend="memory")
    async with running(fake, tmp_path, store, engine) as d:
        replies = await intake(d, ALICE)
        assert "已保存为案件 HQ-" in texts(replies)
        (case,) = await store.list()
        assert case["owner"] == {"messenger": "telegram", "user_id": str(ALICE)}
        assert case["enterprise"] == "青禾食品有限公司"
        # every callback_data fits Telegram's 64 bytes, every label is short
        for _m, p in fake.calls:
            for b in keyboard(p):
                assert len(b["callback_data"].encode()) <= 64 and len(b["text"]) <= 60
        # the draft comes as a document
        replies = await d.say(ALICE, "/cases")
        assert case["id"] in texts(replies)


async def test_the_draft_is_sent_as_a_utf8_document(fake, tmp_path, engine):
    async with running(fake, tmp_path, None, engine) as d:
        await d.say(ALICE, "/start")
        replies = await d.say(ALICE, DESCRIPTION)
        replies = await d.press(ALICE, "谣言", replies)
        replies = await d.press(ALICE, "都没有", replies)
        await d.say(ALICE, "青禾食品")
        replies = await d.say(ALICE, "深圳")
        replies = await d.press(ALICE, "举报草稿", replies)
        replies = await d.press(ALICE, "下载草稿文件", replies)
        (doc,) = [c for c in replies if c["method"] == "sendDocument"]
        assert doc["document"]["filename"].endswith((".txt", ".md"))
        assert "青禾食品" in doc["document"]["content"].decode("utf-8")


async def test_a_stranger_cannot_open_someone_elses_case(fake, tmp_path, engine):
    store = open_store(None, backend="memory")
    async with running(fake, tmp_path, store, engine) as d:
        await intake(d, ALICE)
        (case,) = await store.list()
        await d.say(BOB, "/start")
        answered = len(fake.called("answerCallbackQuery"))
        for forged in (f"case:{case['id']}", f"rem:none:{case['id']}", "act:withdraw", "b:1", "b:999999", "x" * 64):
            replies = await d.send(button_update(BOB, forged))
            assert case["id"] not in texts(replies) and "青禾" not in texts(replies)
            assert "没看懂" in texts(replies)
        replies = await d.say(BOB, "/cases")
        assert case["id"] not in texts(replies)
        assert (await store.get(case["id"]))["status"] == "draft"
        assert len(fake.called("answerCallbackQuery")) == answered + 6     # every press is answered


async def test_documents_and_photos_are_downloaded_with_their_sha256_and_bad_files_refused(fake, tmp_path, engine):
    store = open_store(None, backend="memory")
    png, jpg = b"\x89PNG fake screenshot", b"\xff\xd8 fake photo"
    fake.files.update({"FILE-截图.png": png, "P2": jpg})
    async with running(fake, tmp_path, store, engine) as d:
        await d.say(ALICE, "/start")
        replies = await d.send(document_update(ALICE, "截图.png", len(png)))
        assert "截图.png" in texts(replies)
        replies = await d.send(photo_update(ALICE))
        assert "photo_PU2.jpg" in texts(replies)
        big = await d.send(document_update(ALICE, "录屏.mp4", 25 * 1024 * 1024, mime="video/mp4"))
        assert "20 MB" in texts(big) and "录屏.mp4" in texts(big)
        exe = await d.send(document_update(ALICE, "setup.exe", 10, mime="application/x-msdownload"))
        assert "setup.exe" in texts(exe) and "类型" in texts(exe)
        attachments = (await state_of(store, ALICE))["case"]["attachments"]
        assert [a["sha256"] for a in attachments] == [hashlib.sha256(png).hexdigest(),
                                                      hashlib.sha256(jpg).hexdigest()]
        for a, content in zip(attachments, (png, jpg)):
            path = files.path_for(tmp_path / "files", a["sha256"])
            assert path.read_bytes() == content and (path.stat().st_mode & 0o777) == 0o600
        assert not any(c[0] == "getFile" and "setup" in str(c[1]) for c in fake.calls)   # refused before download


async def test_group_chats_are_ignored(fake, tmp_path, engine):
    async with running(fake, tmp_path, None, engine) as d:
        assert await d.say(ALICE, "/start") != []
        mark = len(fake.calls)
        group = dict(text_update(ALICE, DESCRIPTION, chat="group"), update_id=next(_update_ids))
        await d.app.process_update(Update.de_json(group, d.app.bot))
        assert fake.calls[mark:] == []


async def test_a_restarted_adapter_continues_the_conversation(fake, tmp_path, engine):
    store = open_store(tmp_path / "data")
    async with running(fake, tmp_path, store, engine) as d:
        await d.say(ALICE, "/start")
        reading = await d.say(ALICE, DESCRIPTION)
    await store.close()
    store = open_store(tmp_path / "data")                         # a new process, same data dir
    try:
        async with running(fake, tmp_path, store, engine) as d:
            replies = await d.press(ALICE, "谣言", reading)       # a button sent before the restart
            assert "没看懂" not in texts(replies)
            assert "微博" in texts(replies)
            replies = await d.say(ALICE, "/start")                # not a newcomer any more
            assert "您好，我是护企" not in texts(replies)
    finally:
        await store.close()


def test_long_button_values_go_through_a_table_and_long_texts_are_split():
    record: dict = {}
    long = "faq:" + "很长的问题" * 20
    data = callback_data(record, long)
    assert data.startswith("b:") and len(data.encode()) <= 64
    assert callback_data(record, long) == data                  # the same value, the same key
    assert button_value(record, data) == long
    assert button_value(record, "b:424242") == "b:424242"      # unknown: the engine refuses it
    assert callback_data(record, "sub:rumor.fabricated") == "sub:rumor.fabricated"
    assert callback_data(record, "b:sneaky").startswith("b:") and button_value(record, callback_data(record, "b:sneaky")) == "b:sneaky"
    text = ("第一行\n" + "字" * 3000 + "\n") * 3
    parts = split_text(text)
    assert all(len(p) <= 4096 for p in parts) and "".join(parts).replace("\n", "") == text.replace("\n", "")
    emoji = "😀" * 3000
    assert all(len(p.encode("utf-16-le")) // 2 <= 4096 for p in split_text(emoji))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")     # PTB's own RetryAfter.__init__
async def test_flood_control_is_waited_out(fake, tmp_path, engine, monkeypatch):
    waited = []

    async def no_sleep(seconds):
        waited.append(seconds)
    monkeypatch.setattr("bot.telegram._sleep", no_sleep)
    fake.failures["sendMessage"] = [(429, {"description": "Too Many Requests: retry after 3",
                                           "parameters": {"retry_after": 3}})]
    async with running(fake, tmp_path, None, engine) as d:
        replies = await d.say(ALICE, "/start")
        assert waited == [3]
        assert "您好，我是护企" in texts(replies[1:])             # the refused message was sent again


async def test_a_failing_turn_is_apologised_for_and_logged_without_content(fake, tmp_path, engine, caplog):
    async with running(fake, tmp_path, None, engine) as d:
        await d.say(ALICE, "/start")

        def broken(state, event):
            raise RuntimeError("boom")
        d.adapter.conversations.engine = type("Broken", (), {"handle": staticmethod(broken),
                                                             "flow": engine.flow})()
        with caplog.at_level("INFO", logger="huqi.telegram"):
            replies = await d.say(ALICE, DESCRIPTION)
        assert "出了点问题" in texts(replies)
        assert "资金链" not in caplog.text and "1001" in caplog.text


# ── reminders, through the outbox ───────────────────────────────────
async def _submitted_long_ago(store, uid: int) -> str:
    case = await store.create({"owner": {"messenger": "telegram", "user_id": str(uid)}, "status": "draft",
                               "type": "rumor", "subtype": "rumor.fabricated", "platform": "weibo"})
    then = datetime.now(timezone.utc) - timedelta(days=10)
    await store.append_event(case["id"], {"when": then.isoformat(), "who": "test", "to": "submitted",
                                          "channel": "platform"})
    await reminders.schedule_after_submit(store, case["id"], 7, then)
    return case["id"]


def _sender(store, adapter) -> Sender:
    sender = Sender(store)
    sender.register("telegram", adapter.deliver_owner)
    return sender


async def test_a_due_reminder_is_queued_once_and_delivered_once_with_working_buttons(fake, tmp_path, engine):
    store = open_store(None, backend="memory")
    case_id = await _submitted_long_ago(store, ALICE)
    async with running(fake, tmp_path, store, engine) as d:
        now = datetime.now(timezone.utc)
        assert await sweep(store, now) == 1
        assert await sweep(store, now) == 0                      # queued once per due time
        sender = _sender(store, d.adapter)
        assert await sender.drain_once() == 1
        assert await sender.drain_once() == 0
        sent = fake.sent(ALICE)
        assert case_id in texts(sent) and "不是法定期限" in texts(sent)
        assert fake.sent(BOB) == []
        (msg,) = await store.outbox_list(case_id=case_id)
        assert msg["status"] == "sent"
        replies = await d.send(button_update(ALICE, keyboard(sent[-1])[0]["callback_data"]))
        assert "没看懂" not in texts(replies)                     # its buttons work


async def test_a_blocked_user_is_recorded_and_not_retried_but_a_network_failure_is(fake, tmp_path, engine):
    store = open_store(None, backend="memory")
    alice_case = await _submitted_long_ago(store, ALICE)
    bob_case = await _submitted_long_ago(store, BOB)
    fake.chat_failures[ALICE] = [(403, {"description": "Forbidden: bot was blocked by the user"})]
    fake.chat_failures[BOB] = [(502, {"description": "Bad Gateway"})]
    async with running(fake, tmp_path, store, engine) as d:
        now = datetime.now(timezone.utc)
        await sweep(store, now)
        sender = _sender(store, d.adapter)
        sender.base_delay = 0
        await sender.drain_once()
        (a,) = await store.outbox_list(case_id=alice_case)
        assert a["status"] == "blocked"
        assert (await store.get(alice_case)).get("owner_unreachable")
        (b,) = await store.outbox_list(case_id=bob_case)
        assert b["status"] == "pending" and b["attempts"] == 1
        await sender.drain_once()                                 # Bob's is tried again, Alice's is not
        (b,) = await store.outbox_list(case_id=bob_case)
        assert b["status"] == "sent"
        assert len(fake.sent(ALICE)) == 1 and bob_case in texts(fake.sent(BOB))


# ── polling and the command ─────────────────────────────────────────
@asynccontextmanager
async def polling(fake, tmp_path, engine):
    """The adapter as run_polling runs it: updates fetched by getUpdates, handled concurrently."""
    adapter = make_adapter(open_store(None, backend="memory"), tmp_path, engine)
    app = build_application(TOKEN, adapter, base_url=fake.base_url)
    await app.initialize()
    await adapter.post_init(app)
    await app.updater.start_polling(poll_interval=0, timeout=1, allowed_updates=["message", "callback_query"])
    await app.start()
    try:
        yield app
    finally:
        for gate in fake.hold.values():
            gate.set()
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def test_the_polling_path(fake, tmp_path, engine):
    async with polling(fake, tmp_path, engine):
        fake.push(text_update(ALICE, "/start"))
        # the greeting and the first question are separate messages: wait for the buttons
        await fake.wait_for(lambda: any(keyboard(c) for c in fake.sent(ALICE)))
        greeting = fake.sent(ALICE)
        assert "您好，我是护企" in texts(greeting)
        mark = len(fake.calls)
        fake.push(button_update(ALICE, next(keyboard(c) for c in greeting if keyboard(c))[0]["callback_data"]))
        await fake.wait_for(lambda: fake.called("answerCallbackQuery") and fake.sent(ALICE, mark))
        assert "请选择最接近的类型" in texts(fake.sent(ALICE, mark))
    methods = [m for m, _ in fake.calls]
    assert {"getMe", "deleteWebhook", "getUpdates", "setMyCommands"} <= set(methods)


async def test_a_slow_chat_does_not_hold_up_others_and_each_users_messages_keep_their_order(fake, tmp_path, engine):
    fake.hold[ALICE] = asyncio.Event()
    async with polling(fake, tmp_path, engine):
        fake.push(text_update(ALICE, "/start"))
        fake.push(text_update(ALICE, DESCRIPTION))
        fake.push(text_update(ALICE, "/help"))
        fake.push(text_update(BOB, "/start"))
        await fake.wait_for(lambda: fake.sent(BOB))             # while Alice's replies are stuck
        assert fake.sent(ALICE) == [] or "您好" in texts(fake.sent(ALICE)[:1])
        fake.hold[ALICE].set()
        await fake.wait_for(lambda: "使用说明" in texts(fake.sent(ALICE)))
        said = texts(fake.sent(ALICE))
        assert said.index("您好，我是护企") < said.index("谣言性信息") < said.index("使用说明")


def _env(tmp_path, fake=None, token=TOKEN) -> dict:
    env = dict(os.environ, HUQI_DATA_DIR=str(tmp_path), PYTHONIOENCODING="utf-8", HUQI_HTTP_PORT="0")
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.pop("HUQI_TELEGRAM_TOKEN", None)
    if token:
        env["HUQI_TELEGRAM_TOKEN"] = token
    if fake:
        env["HUQI_TELEGRAM_API_URL"] = fake.base_url
    return env


async def test_huqi_with_a_token_runs_the_bot_until_stopped(fake, tmp_path):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", env=_env(tmp_path, fake),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        fake.push(text_update(ALICE, "/start"))
        fake.push(text_update(ALICE, DESCRIPTION))
        await fake.wait_for(lambda: "谣言性信息" in texts(fake.sent(ALICE)), timeout=15)
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), 15)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode("utf-8", "replace")
    assert proc.returncode == 0, log
    assert "Traceback" not in log
    assert str(ALICE) in log                                     # user ids are logged ...
    assert "资金链" not in log and TOKEN not in log               # ... message text and the token are not
    store = open_store(tmp_path)                                 # the lock was released
    try:
        assert (await state_of(store, ALICE))["step"] == "confirm"   # the state is in the store
    finally:
        await store.close()


async def test_a_locked_store_stops_the_bot_with_a_clear_message(tmp_path):
    store = open_store(tmp_path)
    try:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "telegram",
                                                    env=_env(tmp_path, token=TOKEN),
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await store.close()
    assert proc.returncode != 0
    assert "另一个 huqi 进程" in err.decode("utf-8")


async def test_a_rejected_token_stops_the_bot_with_a_clear_message(fake, tmp_path):
    fake.failures["getMe"] = [(401, {"description": "Unauthorized"})]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "telegram",
                                                env=_env(tmp_path, fake),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    assert "rejected the bot token" in err.decode("utf-8")
    assert TOKEN not in err.decode("utf-8") and TOKEN.split(":")[1] not in err.decode("utf-8")
    store = open_store(tmp_path)                                 # closed on the way out
    await store.close()


async def test_telegram_without_a_token_says_so(tmp_path):
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "telegram",
                                                env=_env(tmp_path, token=None),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and "HUQI_TELEGRAM_TOKEN" in err.decode("utf-8")
