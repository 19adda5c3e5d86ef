"""The terminal chat as a new user starts it: `huqi` with no Telegram token, stdin scripted."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HUQI = [sys.executable, "-m", "bot.cli"]


def chat(lines, data_dir: Path, *args):
    env = dict(os.environ, HUQI_DATA_DIR=str(data_dir), PYTHONIOENCODING="utf-8")
    env.pop("HUQI_TELEGRAM_TOKEN", None)
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.run(HUQI + list(args), input="\n".join(lines) + "\n", capture_output=True,
                          env=env, timeout=60, text=True, encoding="utf-8")


def test_a_scripted_conversation_reaches_the_plan_and_saves_a_case(tmp_path):
    lines = ["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321",
             "1",                       # the reading is right
             "都没有",                  # none of the situations
             "青禾食品有限公司", "深圳", "1",   # 1 = the plan
             "举报草稿", "保存为案件", "/quit"]
    run = chat(lines, tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "谣言性信息" in out and "第十条（四）" in out
    assert "举报渠道" in out and "广东" in out
    assert "青禾食品有限公司" in out            # the draft is filled in
    assert "已保存为案件 HQ-" in out
    assert "Traceback" not in run.stderr
    # the case is in the store, owned by the terminal user
    assert (tmp_path / "cases.log").exists() or any(tmp_path.iterdir())


def test_numbers_words_back_and_quit_work(tmp_path):
    run = chat(["1", "3", "/back", "2", "/quit"], tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "请选择最接近的类型" in out            # 1 = 按类型选择
    assert "谣言性信息" in out                  # 3 = the third type
    assert "好的，已结束本次咨询" in out


def test_garbage_and_eof_do_not_crash(tmp_path):
    run = chat(["", "\x00\x01\x02\x03\x04\x05\x06", "字" * 50_000, "?"], tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "太长" in run.stdout


def test_a_second_chat_on_the_same_data_dir_still_talks(tmp_path):
    env = dict(os.environ, HUQI_DATA_DIR=str(tmp_path))
    first = subprocess.Popen(HUQI + ["chat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=True)
    try:
        first.stdout.readline()               # it has started and holds the lock
        second = chat(["你好", "/quit"], tmp_path, "chat")
        assert second.returncode == 0
        assert "不能保存案件" in second.stderr
    finally:
        first.communicate("/quit\n", timeout=30)


def test_a_saved_case_is_followed_in_a_later_chat(tmp_path):
    first = chat(["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1",
                  "都没有", "青禾食品", "深圳", "保存为案件", "/quit"], tmp_path)
    assert "已保存为案件 HQ-" in first.stdout, first.stdout[-2000:]
    later = chat(["/cases", "1", "我已提交到一个渠道", "1", "WB-2026-001", "平台没有回应,找下一个渠道",
                  "我已提交到属地网信办", "/quit"], tmp_path)
    out = later.stdout
    assert "您的案件" in out
    assert '现在是"已提交"' in out and "WB-2026-001" in out        # the reference number is shown
    assert '现在是"已升级"' in out and "属地网信办" in out
    assert "Traceback" not in later.stderr


def test_someone_elses_case_number_reveals_nothing(tmp_path):
    from dialogs.engine import Engine
    engine = Engine()
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "button", "value": "case:HQ-2611-7K3Q"})
    assert not any("effect" in r for r in replies)        # never asked the store for it
    state, replies = engine.handle(state, {"type": "button", "value": "act:withdraw"})
    assert not any("effect" in r for r in replies)


def test_evidence_is_marked_links_added_and_escalation_confirmed(tmp_path):
    chat(["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1",
          "都没有", "青禾食品", "深圳", "保存为案件", "/quit"], tmp_path)
    run = chat(["/cases", "1", "补充材料", "举报说明", "https://weibo.com/123/AbCd", "完成",
                "我已提交到一个渠道", "平台", "WB-001", "平台没有回应,找下一个渠道", "我已提交到属地网信办", "/quit"],
               tmp_path)
    out = run.stdout
    assert "已把链接记进案件" in out
    assert "还缺 4 项" in out         # 举报说明 is marked; the link given in the intake counted from the start
    assert "下一步：向属地网信办举报" in out          # the next channel is shown before moving on
    assert '现在是"已升级"' in out
    assert "Traceback" not in run.stderr


def test_a_reminder_is_shown_when_a_submitted_case_has_had_no_news(tmp_path, monkeypatch):
    import asyncio
    from datetime import datetime, timedelta, timezone

    from bot.store import open_store
    from bot import reminders

    chat(["有自媒体说我们公司资金链断裂马上破产", "1", "微博",
          "都没有", "青禾食品", "深圳", "保存为案件", "/quit"], tmp_path)

    async def submit_long_ago():
        store = open_store(tmp_path)
        try:
            (case,) = await store.list()
            then = datetime.now(timezone.utc) - timedelta(days=10)
            await store.append_event(case["id"], {"when": then.isoformat(), "who": "test", "to": "submitted",
                                                   "channel": "platform"})
            await reminders.schedule_after_submit(store, case["id"], 7, then)
            return case["id"]
        finally:
            await store.close()

    case_id = asyncio.run(submit_long_ago())
    run = chat(["没回应", "/quit"], tmp_path)
    out = run.stdout
    assert case_id in out and "不是法定期限" in out
    assert "下一步：向属地网信办举报" in out


def test_a_case_with_all_materials_becomes_ready(tmp_path):
    chat(["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1",
          "都没有", "青禾食品", "深圳", "保存为案件", "/quit"], tmp_path)
    # the six Art. 5 materials; the link (4th) came with the intake; the list keeps its order as items are marked
    lines = ["/cases", "1", "补充材料", "1", "2", "3", "5", "6", "/quit"]
    run = chat(lines, tmp_path)
    assert "材料都已备齐" in run.stdout
    assert '现在是"材料齐全"' in run.stdout
    import asyncio
    from bot.store import open_store

    async def history():
        store = open_store(tmp_path)
        try:
            (case,) = await store.list()
            return case
        finally:
            await store.close()
    case = asyncio.run(history())
    assert case["status"] == "ready"
    assert [e["to"] for e in case["history"]] == ["draft", "ready"]
    assert all(e["provided"] for e in case["evidence"] if e["required"])


def test_a_full_disk_at_save_is_one_sentence_and_the_chat_goes_on(tmp_path):
    import asyncio
    import io

    from bot.store import open_store
    from bot.terminal import run
    from tests.test_session import FullDisk

    store = FullDisk(open_store(None, backend="memory"))
    lines = ["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1", "都没有",
             "青禾食品有限公司", "深圳", "保存为案件", "渠道方案", "/quit"]
    out = io.StringIO()
    code = asyncio.run(run(io.StringIO("\n".join(lines) + "\n"), out, store=store, drafts_dir=tmp_path))
    text = out.getvalue()
    assert code == 0
    assert "案件库暂时写不进去" in text                     # one clear sentence
    assert "已保存为案件" not in text
    assert text.count("举报渠道") >= 1                    # the conversation went on after it
    assert "好的，已结束本次咨询" in text
