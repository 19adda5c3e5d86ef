"""Where the conversation meets the service: English descriptions, staff messages in the case view."""
from __future__ import annotations

from bot.session import Session
from bot.store import open_store
from dialogs.engine import Engine
from dialogs.typeset import typeset

OWNER = {"messenger": "telegram", "user_id": "1001"}


def said(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


async def test_an_english_description_is_classified_and_answered_in_chinese_with_a_note():
    engine = Engine()
    s = Session(engine, None, OWNER)
    s.start()
    out = said(await s.turn({"type": "text", "text": "Someone on Weibo claims our company is going bankrupt, "
                                                      "it is a complete fabrication"}))
    assert typeset(engine.flow.text("english_note")) in out
    assert s.state["step"] == "confirm" and s.state["case"]["candidates"][0].startswith("rumor.")


async def test_a_staff_message_in_the_history_does_not_show_as_a_status_in_the_case_view():
    store = open_store(None, backend="memory")
    case = await store.create({"owner": OWNER, "status": "draft", "type": "rumor",
                               "subtype": "rumor.exaggerated_difficulty", "platform": "weibo"})
    await store.append_event(case["id"], {"who": "desk", "kind": "message", "message": "请补充营业执照"})
    s = Session(Engine(), store, OWNER)
    s.start()
    listing = await s.turn({"type": "command", "name": "cases"})
    view = await s.turn({"type": "button", "value": f"case:{case['id']}"})
    assert case["id"] in said(listing) and case["id"] in said(view)
    assert "None" not in said(view)

