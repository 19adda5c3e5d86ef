"""Scripted newcomers: turns from the description to the result card, the first card's length, and
whether the plan and the materials are right. The last line is one JSON object.

Each situation is a user who answers whatever is asked from what they know (tests/drive.py).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dialogs.engine import Engine  # noqa: E402
from tests.drive import Newcomer, run_to_result  # noqa: E402

# name, the user, the channels the plan must hold, the materials the checklist must hold
SITUATIONS = [
    ("impersonation", Newcomer("抖音上有人用我们公司的名字注册了账号，头像也是我们的logo，还在直播卖货",
                               ["impersonation.account_identity"], link=None), {"platform"}, {"business_licence"}),
    ("misleading", Newcomer("有篇文章标题写我们公司涉嫌重大诈骗，点进去正文只是讲了一个普通退货纠纷",
                            ["misleading.clickbait"]), {"platform", "province"}, {"preliminary_evidence"}),
    ("rumor_named_company", Newcomer("有自媒体到处说我们杭州云帆科技资金链断裂、马上破产，全是编的",
                                     ["rumor.exaggerated_difficulty"]), {"platform", "province"},
     {"business_licence"}),
    ("insult", Newcomer("有个博主在视频里天天骂我们是骗子公司、黑心老板，满嘴脏话", ["insult.abuse"],
                        flags=["repeat_offender"]), {"platform"}, {"preliminary_evidence"}),
    ("privacy_two_subtypes", Newcomer("有人把我们董事长的身份证照片和手机号发到网上，号召大家去骚扰他",
                                      ["privacy_leak.identity_documents", "privacy_leak.contact_details"],
                                      province="广东"), {"platform", "police"}, {"business_licence"}),
    ("extortion", Newcomer("有个公众号发了我们的负面文章，然后私信说交五万公关费才能删",
                           ["interference.extortion"], province="北京"), {"platform", "police"},
     {"preliminary_evidence"}),
    ("matrix", Newcomer("几十个小号在各个平台同时发同一套文案抹黑我们，像是竞争对手找的水军",
                        ["interference.account_matrix"]), {"platform", "central"}, {"preliminary_evidence"}),
    ("key_moment", Newcomer("我们下个月就要上市了，突然有人发帖说我们财务造假，全是捏造的 https://weibo.com/123/AbC",
                            ["rumor.fabricated_violation"], province="上海"), {"platform", "province"},
     {"business_licence"}),
    ("traditional", Newcomer("有個帳號一直說我們公司要倒閉了，資金鏈斷裂，全是造謠", ["rumor.exaggerated_difficulty"],
                             province="广东"), {"platform", "province"}, {"business_licence"}),
    ("agent", Newcomer("我们律所受客户委托：有人在知乎发帖编造客户产品致癌，需要举报", ["rumor.product_quality"],
                       agent=True, enterprise="深圳某某科技有限公司", province="广东"), {"platform"},
     {"power_of_attorney", "agent_identity"}),
    ("stakeholder", Newcomer("有人在网上造谣我们子公司的总经理受贿被抓，根本没有这回事", ["rumor.private_life"],
                             flags=["stakeholder"]), {"platform"}, {"business_licence"}),
    ("dispute_employee", Newcomer("被开除的员工在小红书上说我们拖欠工资、虐待员工，都是编的",
                                  ["rumor.staff_misconduct"], flags=["dispute"]), {"platform"},
     {"preliminary_evidence"}),
    ("search_suggestions", Newcomer("百度搜我们公司名，联想词里出现“骗子”“倒闭”", ["interference.search_suggestions"]),
     {"platform"}, {"business_licence"}),
]
OUT_OF_SCOPE = [
    ("out_of_scope_criticism", "顾客在大众点评说我们上菜慢，说的都是实情，我们也承认，能删吗"),
    ("out_of_scope_fakes", "淘宝上好多店在卖我们牌子的假货"),
]


def run() -> dict:
    engine = Engine()
    rows, turns, chars = [], [], []
    for name, who, channels, materials in SITUATIONS:
        try:
            state, transcript, n = run_to_result(engine, who)
        except AssertionError as e:
            rows.append({"name": name, "error": str(e)[:120]})
            continue
        case = state["case"]
        first = transcript[-1][0]["text"]
        plan = {s["channel"] for s in engine.card.plan(case)}
        items = {e["id"] for e in engine.card.evidence(case)}
        rows.append({"name": name, "turns": n, "card_chars": len(first),
                     "type_right": case["subtype"] == who.subtypes[0]
                     and set(case.get("subtypes") or []) >= set(who.subtypes),
                     "plan_right": channels <= plan, "materials_right": materials <= items,
                     "flags": case["flags"], "province": case["province"], "lang": state["lang"]})
        turns.append(n)
        chars.append(len(first))
    for name, text in OUT_OF_SCOPE:
        state, _ = engine.start()
        state, replies = engine.handle(state, {"type": "text", "text": text})
        rows.append({"name": name, "turns": 0, "out_of_scope": state["step"] == "out_of_scope",
                     "no_card": not any(b["value"] == "save" for r in replies for row in r.get("buttons") or []
                                        for b in row)})
    ok = [r for r in rows if "error" not in r and "out_of_scope" not in r]
    return {
        "situations": len(rows),
        "turns_median": statistics.median(turns) if turns else None,
        "turns_max": max(turns) if turns else None,
        "card_chars_max": max(chars) if chars else None,
        "card_chars_median": statistics.median(chars) if chars else None,
        "type_right": sum(r["type_right"] for r in ok),
        "plan_right": sum(r["plan_right"] for r in ok),
        "materials_right": sum(r["materials_right"] for r in ok),
        "out_of_scope_right": sum(r.get("out_of_scope", False) and r.get("no_card", False) for r in rows),
        "errors": [r["name"] for r in rows if "error" in r],
        "rows": rows,
    }


if __name__ == "__main__":
    figures = run()
    for r in figures["rows"]:
        print(json.dumps(r, ensure_ascii=False))
    print(json.dumps({k: v for k, v in figures.items() if k != "rows"}, ensure_ascii=False))
