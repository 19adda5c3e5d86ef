"""A user's session against the case store: effects carried out, and only on the user's own cases."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bot.session import Session
from bot.store import open_store
from dialogs.engine import Engine

INTAKE = ["有自媒体说我们公司资金链断裂马上破产 https://m.weibo.cn/status/4987654321", "1",
          "都没有", "青禾食品", "深圳", "保存为案件"]


@pytest.fixture
def engine():
    return Engine()


async def saved_case(session: Session) -> str:
    session.start()
    replies = []
    for line in INTAKE:
        replies = await session.turn({"type": "text", "text": line})
    text = "\n".join(r.get("text", "") for r in replies)
    assert "已保存为案件" in text
    return session.state["case"]["case_id"]


async def test_saving_creates_a_draft_owned_by_the_user(engine):
    store = open_store(None, backend="memory")
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    case_id = await saved_case(alice)
    case = await store.get(case_id)
    assert case["owner"] == {"messenger": "telegram", "user_id": "1001"}
    assert case["status"] == "draft" and case["history"][0]["to"] == "draft"
    assert case["enterprise"] == "青禾食品" and case["platform"] == "weibo"


async def test_nobody_sees_or_changes_another_users_case(engine):
    store = open_store(None, backend="memory")
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    bob = Session(engine, store, {"messenger": "telegram", "user_id": "2002"})
    case_id = await saved_case(alice)
    bob.start()
    listed = await bob.turn({"type": "command", "name": "cases"})
    assert case_id not in "\n".join(r.get("text", "") for r in listed)
    forged = await bob.turn({"type": "button", "value": f"case:{case_id}"})
    assert case_id not in "\n".join(r.get("text", "") for r in forged)
    # even if asked directly, the store answers as for a case that does not exist
    assert await bob._carry_out({"effect": "get_case", "case_id": case_id}) == {"type": "case", "case": None}
    answer = await bob._carry_out({"effect": "transition", "case_id": case_id, "to": "closed", "reason": "withdrawn"})
    assert answer["error"] and answer["case"] is None
    assert (await store.get(case_id))["status"] == "draft"


async def test_a_due_reminder_reaches_only_its_owner(engine):
    store = open_store(None, backend="memory")
    later = datetime.now(timezone.utc) + timedelta(days=8)
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    case_id = await saved_case(alice)
    await alice.turn({"type": "command", "name": "cases"})
    await alice.turn({"type": "button", "value": f"case:{case_id}"})
    await alice.turn({"type": "text", "text": "我已提交到一个渠道"})
    await alice.turn({"type": "text", "text": "平台"})
    await alice.turn({"type": "text", "text": "没有编号"})
    assert (await store.get(case_id))["status"] == "submitted"
    bob = Session(engine, store, {"messenger": "telegram", "user_id": "2002"}, clock=lambda: later)
    bob.start()
    assert await bob.due_reminders() == []
    alice_later = Session(engine, store, alice.owner, clock=lambda: later)
    alice_later.start()
    shown = await alice_later.due_reminders()
    assert case_id in shown[0]["text"] and "不是法定期限" in shown[0]["text"]


class FullDisk:
    """A store whose writes fail as on a full disk; reads work."""

    def __init__(self, store):
        self.store, self.full = store, True

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if name in ("create", "update", "append_event", "set_reminder") and self.full:
            async def refuse(*a, **kw):
                raise OSError(28, "No space left on device")
            return refuse
        return attr


async def test_a_failed_save_is_a_sentence_the_conversation_stays_and_the_save_can_be_retried(engine):
    from dialogs.model import StoreError
    store = FullDisk(open_store(None, backend="memory"))
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    alice.start()
    for line in INTAKE[:-1]:
        await alice.turn({"type": "text", "text": line})
    before = dict(alice.state)
    replies = await alice.turn({"type": "button", "value": "save"})
    assert engine.say(alice.state, "store_failed") in "\n".join(r.get("text", "") for r in replies)
    assert alice.state["step"] == before["step"] == "result" and alice.state["case"] == before["case"]
    assert "save" in [b["value"] for r in replies for row in r.get("buttons") or [] for b in row]
    store.full = False
    replies = await alice.turn({"type": "button", "value": "save"})
    assert alice.state["step"] == "done" and (await store.list())
    # a StoreError (closed store, ...) is handled the same way

    async def closed(*a, **kw):
        raise StoreError("closed")
    alice.store = type("Closed", (), {"list": closed, "get": closed})()
    replies = await alice.turn({"type": "command", "name": "cases"})
    assert engine.say(alice.state, "store_failed") in "\n".join(r.get("text", "") for r in replies)


def said(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


async def test_a_case_followed_to_the_end_parallel_channels_contact_and_a_confirmed_close(engine):
    store = open_store(None, backend="memory")
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    case_id = await saved_case(alice)
    await alice.turn({"type": "command", "name": "cases"})
    await alice.turn({"type": "button", "value": f"case:{case_id}"})
    for line in ("我已提交到一个渠道", "平台", "WB-7", "我已提交到一个渠道", "公安机关", "没有编号"):
        replies = await alice.turn({"type": "text", "text": line})
    case = await store.get(case_id)
    assert set(case["channels"]) == {"platform", "police"}         # both run at once
    assert "WB-7" in said(replies) and "公安机关" in said(replies)
    # the contact person and phone: kept on the case, shown masked, counted as provided
    await alice.turn({"type": "text", "text": "填写联系人"})
    replies = await alice.turn({"type": "text", "text": "张律师 13800138000"})
    assert "138****8000" in said(replies) and "13800138000" not in said(replies)
    case = await store.get(case_id)
    assert case["contact"] == "13800138000"
    assert next(e for e in case["evidence"] if e["id"] == "reporter_contact")["provided"]
    # the evidence package and the draft come from the stored case
    replies = await alice.turn({"type": "text", "text": "证据包"})
    (pack,) = [r["file"] for r in replies if "file" in r]
    assert case_id in pack["name"] and "https://m.weibo.cn/status/4987654321" in pack["content"]
    replies = await alice.turn({"type": "text", "text": "查看草稿"})
    assert "13800138000" in said(replies) and "【联系人及电话】" not in said(replies)
    replies = await alice.turn({"type": "text", "text": "下载草稿文件"})
    (draft,) = [r["file"] for r in replies if "file" in r]
    assert draft["name"] == f"huqi-report-{case_id}.txt" and "13800138000" in draft["content"]
    # the platform acted; closing as resolved is offered, and confirmed before it happens
    await alice.turn({"type": "text", "text": "平台已处理"})
    replies = await alice.turn({"type": "text", "text": "已删除"})
    assert (await store.get(case_id))["channels"]["platform"]["outcome"] == "deleted"
    assert any(b["value"] == "hist:all" for r in replies for row in r.get("buttons") or [] for b in row)
    replies = await alice.turn({"type": "button", "value": "act:close:resolved"})
    assert alice.state["step"] == "confirm_close" and (await store.get(case_id))["status"] != "closed"
    replies = await alice.turn({"type": "text", "text": "先不结案"})
    assert (await store.get(case_id))["status"] != "closed"
    await alice.turn({"type": "button", "value": "act:close:resolved"})
    replies = await alice.turn({"type": "text", "text": "👍"})
    case = await store.get(case_id)
    assert case["status"] == "closed" and case["history"][-1]["reason"] == "resolved"


async def test_answering_a_reminder_with_acted_asks_about_that_channel(engine):
    from dialogs.typeset import typeset
    store = open_store(None, backend="memory")
    later = datetime.now(timezone.utc) + timedelta(days=8)
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    case_id = await saved_case(alice)
    await alice.turn({"type": "command", "name": "cases"})
    await alice.turn({"type": "button", "value": f"case:{case_id}"})
    for line in ("我已提交到一个渠道", "平台", "WB-3"):
        await alice.turn({"type": "text", "text": line})
    back = Session(engine, store, alice.owner, clock=lambda: later)
    back.start()
    assert await back.due_reminders()
    replies = await back.turn({"type": "button", "value": f"rem:done:{case_id}"})
    assert typeset(engine.flow.tracking["ask_outcome"].format(channel="平台")) in said(replies)
    await back.turn({"type": "text", "text": "已删除"})
    case = await store.get(case_id)
    assert case["channels"]["platform"]["status"] == "action_taken" and case["status"] == "action_taken"
    assert await back.due_reminders() == []            # answered: no more reminders


async def test_no_response_is_recorded_on_that_channel_and_the_next_one_is_offered(engine):
    store = open_store(None, backend="memory")
    alice = Session(engine, store, {"messenger": "telegram", "user_id": "1001"})
    case_id = await saved_case(alice)
    await alice.turn({"type": "command", "name": "cases"})
    await alice.turn({"type": "button", "value": f"case:{case_id}"})
    for line in ("我已提交到一个渠道", "平台", "WB-3"):
        await alice.turn({"type": "text", "text": line})
    replies = await alice.turn({"type": "text", "text": "平台没有回应,找下一个渠道"})
    case = await store.get(case_id)
    assert case["channels"]["platform"]["status"] == "no_response"
    offered = [b["value"] for r in replies for row in r.get("buttons") or [] for b in row]
    assert "act:escalate:province" in offered
    await alice.turn({"type": "button", "value": "act:escalate:province"})
    case = await store.get(case_id)
    assert case["channels"]["platform"]["status"] == "no_response"      # the platform's track stays
    assert case["channels"]["province"]["status"] == "escalated" and case["status"] == "escalated"
    # the platform may still answer later
    await alice.turn({"type": "text", "text": "平台已受理"})
    assert (await store.get(case_id))["channels"]["platform"]["status"] == "accepted"
