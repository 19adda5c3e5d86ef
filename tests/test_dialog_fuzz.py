"""Random input at every step: the engine always answers, never raises, and its state stays plain JSON."""
from __future__ import annotations

import json
import random

import pytest

from dialogs.engine import Engine

TEXTS = ["", " ", "1", "2", "9", "99", "0", "-1", "是", "否", "不清楚", "没有", "跳过", "都不是", "/back", "/restart",
         "/cancel", "/help", "/faq", "/cases", "/nonsense", "限时加私是什么?", "广东", "深圳", "台灣", "北京市",
         "有自媒体说我们公司资金链断裂马上破产", "https://v.douyin.com/iRNBmkQ/", "青禾食品有限公司",
         "企业自己举报", "保存为案件", "下载举报草稿", "\x00\x01\x02\x03\x04\x05", "😀" * 10, "字" * 3000,
         "有個帳號冒充我們官方", "?", "？？？", "{\"type\": \"button\"}", "<script>alert(1)</script>",
         "1 2", "1 3", "👍", "👎", "张律师 13800138000", "对的", "都没有", "证据包", "渠道方案"]
VALUES = ["yes", "no", "unknown", "go:pick_type", "go:faq_topics", "type:rumor", "type:nope", "sub:rumor.other",
          "sub:insult.abuse", "platform:weibo", "platform:none", "link:none", "province:guangdong", "province:other",
          "role:self", "role:agent", "save", "draft", "restart", "faq:what_counts", "faq:nope", "topic:scope",
          "show:cases", "show:laws", "case:HQ-2611-7K3Q", "act:withdraw", "act:escalate_confirm", "rem:none:HQ-1",
          "ev:done", "ch:platform", "out:deleted", "", None, 7, ["x"],
          "act:close:resolved", "close:yes", "act:accepted:platform", "draft:view", "draft:file", "draft:hant",
          "show:plan", "show:materials", "topic:materials", "facts:none", "facts:extortion", "facts:done",
          "hist:all", "act:escalate_offer:platform", "ev:statement", "go:contact", "contact:none"]


def random_event(rng: random.Random) -> object:
    kind = rng.random()
    if kind < 0.45:
        return {"type": "text", "text": rng.choice(TEXTS)}
    if kind < 0.8:
        return {"type": "button", "value": rng.choice(VALUES)}
    if kind < 0.85:
        return {"type": "file", "name": rng.choice(["a.png", "", None, "x" * 500]),
                "size": rng.choice([10, 10**9, -1, "big", None])}
    if kind < 0.9:
        return {"type": "command", "name": rng.choice(["back", "restart", "cases", "", None])}
    if kind < 0.95:
        return {"type": rng.choice(["saved", "cases", "case", "transitioned", "updated", "reminder"]),
                "case_id": rng.choice([None, "HQ-2611-7K3Q"]), "case": rng.choice([None, {}, "x"]),
                "cases": rng.choice([None, [], "x"])}
    return rng.choice([None, "text", 42, {"no": "type"}])


@pytest.mark.parametrize("seed", range(12))
def test_random_conversations_never_break(seed):
    engine = Engine()
    rng = random.Random(seed)
    state, _ = engine.start()
    for _ in range(150):
        event = random_event(rng)
        state, replies = engine.handle(state, event)
        assert isinstance(replies, list)
        from_adapter = isinstance(event, dict) and event.get("type") in (
            "saved", "cases", "case", "transitioned", "updated", "reminder")
        assert replies or from_adapter, f"no answer to {event!r} at {state['step']}"
        json.loads(json.dumps(state, ensure_ascii=False))
        for r in replies:
            assert "text" in r or "effect" in r or "file" in r


FOLLOW = ["/cases", "1", "2", "3", "5", "8", "12", "我已提交到一个渠道", "平台", "WB-1", "没有编号", "平台已受理",
          "平台已处理", "已删除", "平台驳回", "证据不足", "平台没有回应,找下一个渠道", "填写联系人",
          "张律师 13800138000", "查看草稿", "下载草稿文件", "证据包", "撤回案件", "确定", "先不结案", "全部记录",
          "补充材料", "完成", "https://weibo.com/1/x", "👍", "👎", "/back", "/restart", "保存为案件", "1 2"]


@pytest.mark.parametrize("seed", range(6))
async def test_random_follow_up_of_a_saved_case_never_breaks(seed):
    from bot.session import Session
    from bot.store import open_store
    from tests.test_session import INTAKE
    rng = random.Random(seed)
    store = open_store(None, backend="memory")
    session = Session(ENGINE, store, {"messenger": "terminal", "user_id": "fuzz"})
    session.start()
    for line in INTAKE + [rng.choice(FOLLOW) for _ in range(60)]:
        replies = await session.turn({"type": "text", "text": line})
        assert replies, f"no answer to {line!r} at {session.state['step']}"
        json.loads(json.dumps(session.state, ensure_ascii=False))
    for case in await store.list():
        assert case["status"] in ("draft", "ready", "submitted", "accepted", "action_taken", "rejected",
                                  "no_response", "escalated", "closed")


ENGINE = Engine()
