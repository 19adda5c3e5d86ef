"""Scripted conversations through the dialog engine, as a user on a phone would have them."""
from __future__ import annotations

import json

import pytest

from dialogs.engine import Engine, new_state

ENTERPRISE = "杭州青禾食品有限公司"


@pytest.fixture(scope="module")
def engine():
    return Engine()


def texts(replies):
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies):
    return [b for r in replies for row in r.get("buttons") or [] for b in row]


def values(replies):
    return [b["value"] for b in buttons(replies)]


def answer_for(state, replies, want_subtype=None):
    """What a cooperative user sends at each step."""
    step = state["step"]
    if step == "confirm":
        subs = [v for v in values(replies) if v.startswith("sub:")]
        wanted = f"sub:{want_subtype}"
        return {"type": "button", "value": wanted if wanted in subs else subs[0]}
    if step == "pick_type":
        return {"type": "button", "value": f"type:{want_subtype.split('.')[0]}"}
    if step == "pick_subtype":
        return {"type": "button", "value": f"sub:{want_subtype}"}
    if step == "where":
        return {"type": "text", "text": "https://weibo.com/1234567890/NaBcD1234"}
    if step == "link":
        return {"type": "button", "value": "link:none"}
    if step == "facts":
        return {"type": "text", "text": "没有"}
    if step == "enterprise":
        return {"type": "text", "text": ENTERPRISE}
    if step == "province":
        return {"type": "text", "text": "浙江杭州"}
    if step == "role":
        return {"type": "button", "value": "role:self"}
    raise AssertionError(f"unexpected step {step}: {texts(replies)}")


def run_to_result(engine, description, want_subtype=None, roundtrip=False):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": description})
    transcript = [replies]
    for _ in range(30):
        if state["step"] == "result":
            return state, transcript
        if roundtrip:
            state = json.loads(json.dumps(state, ensure_ascii=False))
        state, replies = engine.handle(state, answer_for(state, replies, want_subtype))
        transcript.append(replies)
    raise AssertionError(f"never reached the result card; stuck at {state['step']}")


CASES = [
    ("impersonation.account_identity", "抖音上有人用我们公司的名字注册了账号，头像也是我们的logo，还在直播卖货"),
    ("misleading.clickbait", "有篇文章标题写我们公司涉嫌重大诈骗，点进去正文只是讲了一个普通退货纠纷"),
    ("rumor.exaggerated_difficulty", "有自媒体到处说我们资金链断裂、马上破产，员工工资都发不出来了，全是编的"),
    ("insult.abuse", "有个博主在视频里天天骂我们是骗子公司、黑心老板，满嘴脏话"),
    ("privacy_leak.contact_details", "有人把我们董事长的手机号和家庭住址发到网上，号召大家去堵他"),
    ("interference.extortion", "有个公众号发了我们的负面文章，然后私信说交五万公关费才能删"),
]


@pytest.mark.parametrize("subtype,description", CASES)
def test_each_type_reaches_a_result_card(engine, subtype, description):
    state, transcript = run_to_result(engine, description, subtype)
    card = texts(transcript[-1])
    case = state["case"]
    assert case["subtype"] == subtype
    assert engine.kb.types[case["type"]]["title"] in card
    assert "举报渠道" in card and "证据和材料清单" in card
    assert "第五条" in card                      # Art. 5 acceptance materials are always listed
    assert ENTERPRISE in card                    # the draft is filled with what the user told
    assert case["province"] == "zhejiang"
    assert "save" in values(transcript[-1])


def test_extortion_plan_sends_to_police_and_warns_not_to_pay(engine):
    state, transcript = run_to_result(engine, CASES[-1][1], "interference.extortion")
    card = texts(transcript[-1])
    assert "extortion" in state["case"]["flags"]
    assert "公安" in card


def test_out_of_scope_explains_and_creates_no_report(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "顾客在大众点评说我们上菜慢，说的都是实情，我们也承认，能删吗"})
    assert state["step"] == "out_of_scope"
    assert "舆论监督" in texts(replies)
    assert "save" not in values(replies)
    assert state["case"]["type"] is None


def test_counterfeit_goods_go_to_ip_channels(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "淘宝上好多店在卖我们牌子的假货"})
    assert state["step"] == "out_of_scope"
    assert "知识产权" in texts(replies)


def test_none_of_these_leads_to_the_type_menu_and_a_manual_choice(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有人在网上说我们公司的坏话，很难听，还说我们要倒闭"})
    assert state["step"] == "confirm"
    state, replies = engine.handle(state, {"type": "text", "text": "都不是"})
    assert state["step"] == "pick_type"
    state, replies = engine.handle(state, {"type": "text", "text": "3"})   # the third type: 谣言性信息
    assert state["step"] == "pick_subtype"
    state, replies = engine.handle(state, {"type": "button", "value": "sub:rumor.product_quality"})
    assert state["case"]["subtype"] == "rumor.product_quality"
    assert "第十条" in texts(replies)


def test_link_pasted_in_the_description_is_kept_and_decides_the_platform(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "这个号冒充我们官方账号 https://v.douyin.com/iRNBmkQ/"})
    assert state["case"]["links"] == ["https://v.douyin.com/iRNBmkQ/"]
    assert state["case"]["platform"] == "douyin"
    state, replies = engine.handle(state, answer_for(state, replies, "impersonation.account_identity"))
    assert state["step"] == "facts"           # where is skipped: the link said it
    assert "抖音" in texts(replies)


def test_facts_already_stated_are_not_asked_again(engine):
    state, _ = run_to_result(engine, "有人在我们上市前夕集中发负面，还暗示可以通过合作解决，要我们投广告", "interference.extortion")
    assert "extortion" in state["case"]["flags"] and "key_moment" in state["case"]["flags"]
    assert "extortion" not in state["case"]["asked"]


def test_back_returns_to_the_previous_step_and_undoes_its_answer(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    state, replies = engine.handle(state, answer_for(state, replies, CASES[2][0]))
    assert state["step"] == "where"
    state, replies = engine.handle(state, {"type": "command", "name": "back"})
    assert state["step"] == "confirm"
    assert state["case"]["subtype"] is None
    state, replies = engine.handle(state, {"type": "text", "text": "/back"})
    assert state["step"] == "describe"
    state, replies = engine.handle(state, {"type": "text", "text": "/back"})
    assert state["step"] == "describe"
    assert "第一步" in texts(replies)


def test_restart_and_cancel_forget_the_case(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[0][1]})
    state, replies = engine.handle(state, {"type": "text", "text": "/restart"})
    assert state["step"] == "describe" and state["case"]["description"] == ""
    state, replies = engine.handle(state, {"type": "text", "text": CASES[0][1]})
    state, replies = engine.handle(state, {"type": "command", "name": "cancel"})
    assert state["step"] == "describe" and state["case"]["description"] == ""
    assert "取消" in texts(replies)


def test_a_question_in_the_middle_is_answered_and_the_step_resumes(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    state, replies = engine.handle(state, answer_for(state, replies, CASES[2][0]))
    state, replies = engine.handle(state, {"type": "button", "value": "platform:weibo"})
    state, replies = engine.handle(state, {"type": "button", "value": "link:none"})
    assert state["step"] == "facts"
    before = json.dumps(state, ensure_ascii=False, sort_keys=True)
    state, replies = engine.handle(state, {"type": "text", "text": "限时加私是什么意思？"})
    out = texts(replies)
    assert "限时加私" in out and "第二十一条" in out
    assert json.dumps(state, ensure_ascii=False, sort_keys=True) == before
    assert values(replies)[-3:] == ["yes", "no", "unknown"]   # the interrupted question again


def test_unknown_question_says_so_and_offers_topics(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "你们公司的食堂好吃吗？"})
    assert any(v.startswith("topic:") for v in values(replies))


@pytest.mark.parametrize("bad", ["", "   ", "\x00\x01\x02\x03\x04\x05\x06\x07" * 10, "😀😀😀", "字" * 50_000, "?"])
def test_garbage_at_every_step_keeps_the_step_and_the_case(engine, bad):
    state, replies = engine.start()
    steps_seen = set()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    for _ in range(30):
        if state["step"] == "result":
            break
        snapshot = json.dumps(state["case"], ensure_ascii=False, sort_keys=True)
        step = state["step"]
        steps_seen.add(step)
        after, garbage_replies = engine.handle(state, {"type": "text", "text": bad})
        assert garbage_replies, "garbage must get an answer"
        if step != "enterprise" or not bad.strip() or bad == "?":
            # free text is only taken as the enterprise name
            pass
        if step not in ("enterprise",):
            assert after["step"] == step, (step, bad)
            assert json.dumps(after["case"], ensure_ascii=False, sort_keys=True) == snapshot
        state, replies = engine.handle(state, answer_for(state, replies, CASES[2][0]))
    assert state["step"] == "result"
    assert {"confirm", "facts", "province", "role"} <= steps_seen


def test_forged_and_stale_buttons_are_refused(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    for forged in ["sub:rumor.nonexistent", "role:self", "province:guangdong", "faq:no_such_entry", None, 42]:
        after, replies = engine.handle(state, {"type": "button", "value": forged})
        assert after["step"] == "confirm" and after["case"] == state["case"]
        assert "没看懂" in texts(replies)


def test_state_survives_serialisation_at_every_step(engine):
    plain, plain_transcript = run_to_result(engine, CASES[0][1], CASES[0][0])
    stored, stored_transcript = run_to_result(engine, CASES[0][1], CASES[0][0], roundtrip=True)
    assert plain == stored
    assert plain_transcript == stored_transcript


def test_a_broken_state_starts_over_instead_of_failing(engine):
    for broken in [None, {}, {"v": 99}, {"v": 1, "step": "nowhere", "case": {}}, "not a dict"]:
        state, replies = engine.handle(broken, {"type": "text", "text": CASES[0][1]})
        assert state["step"] in ("confirm", "describe")


def test_traditional_input_gets_traditional_replies(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有個帳號一直說我們公司要倒閉了，資金鏈斷裂，全是造謠"})
    assert state["lang"] == "hant"
    out = texts(replies)
    assert "謠言" in out or "這屬於" in out
    assert "这属于" not in out


def test_save_emits_a_complete_case_record_for_the_store(engine):
    state, transcript = run_to_result(engine, CASES[2][1], CASES[2][0])
    state, replies = engine.handle(state, {"type": "button", "value": "save"})
    effects = [r for r in replies if "effect" in r]
    assert len(effects) == 1 and effects[0]["effect"] == "save_case"
    record = effects[0]["case"]
    for key in ("enterprise", "reporter_role", "type", "subtype", "flags", "platform", "links",
                "province", "plan", "evidence", "description"):
        assert key in record, key
    assert record["enterprise"] == ENTERPRISE
    assert record["plan"] and record["evidence"]
    assert all(item["provided"] is False for item in record["evidence"])
    json.dumps(record)   # plain data
    state, replies = engine.handle(state, {"type": "saved", "case_id": "HQ-2611-7K3Q"})
    assert "HQ-2611-7K3Q" in texts(replies)


def test_draft_download_is_a_file_with_the_pledge(engine):
    state, _ = run_to_result(engine, CASES[1][1], CASES[1][0])
    state, replies = engine.handle(state, {"type": "button", "value": "draft"})
    files = [r["file"] for r in replies if "file" in r]
    assert files and files[0]["name"].endswith(".txt")
    assert ENTERPRISE in files[0]["content"]
    assert "真实" in files[0]["content"]


def test_agent_gets_power_of_attorney_in_the_checklist(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[4][1]})
    for _ in range(20):
        if state["step"] == "role":
            state, replies = engine.handle(state, {"type": "text", "text": "受委托代理举报"})
            break
        state, replies = engine.handle(state, answer_for(state, replies, CASES[4][0]))
    assert state["step"] == "result"
    assert "授权委托书" in texts(replies)


def test_a_file_is_kept_as_an_attachment_and_a_huge_one_refused(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "file", "name": "截图.png", "size": 120_000, "ref": "f1"})
    assert state["case"]["attachments"][0]["name"] == "截图.png"
    state, replies = engine.handle(state, {"type": "file", "name": "录像.mp4", "size": 900 * 1024 * 1024, "ref": "f2"})
    assert len(state["case"]["attachments"]) == 1
    assert "太大" in texts(replies)


def test_new_state_is_json(engine):
    assert json.loads(json.dumps(new_state())) == new_state()


def test_a_bare_no_at_the_link_step_means_no_link(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    state, replies = engine.handle(state, answer_for(state, replies, CASES[2][0]))
    state, replies = engine.handle(state, {"type": "button", "value": "platform:weibo"})
    assert state["step"] == "link"
    state, replies = engine.handle(state, {"type": "text", "text": "否"})
    assert state["step"] == "facts"
    assert "链接" in texts(replies)          # reminded to add the link before submitting


def test_a_short_simplified_answer_keeps_traditional_replies(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有個帳號一直說我們公司要倒閉了，資金鏈斷裂，全是造謠"})
    state, replies = engine.handle(state, {"type": "text", "text": "1"})
    state, replies = engine.handle(state, {"type": "text", "text": "跳过"})
    assert state["lang"] == "hant"


def test_unconfirmed_platform_instructions_are_worded_as_such(engine):
    state, transcript = run_to_result(engine, CASES[2][1], CASES[2][0])   # the where step answers with a weibo link
    plan = next(r["text"] for r in transcript[-1] if "举报渠道" in r.get("text", ""))
    weibo = engine.kb.platforms["weibo"]["complaint"]
    assert weibo.get("verified") is False
    assert "以平台页面为准" in plan


def test_a_weakly_matching_question_is_offered_not_asserted(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "公司注销怎么办理？"})
    assert "是不是想问" in texts(replies)
    assert not any("——" in r.get("text", "") for r in replies)      # no cited answer given as if it fitted
    assert any(v.startswith("faq:") for v in values(replies))


def test_not_knowing_the_platform_moves_on(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有人在网上发了我们董事长的身份证照片和家庭住址"})
    state, replies = engine.handle(state, answer_for(state, replies, "privacy_leak.identity_documents"))
    assert state["step"] == "where"
    state, replies = engine.handle(state, {"type": "text", "text": "不知道"})
    assert state["step"] == "link" and state["case"]["platform"] is None


def test_a_vague_complaint_about_us_offers_the_types_and_takes_a_fuller_description(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "我们被搞了"})
    assert state["step"] == "pick_type"
    state, replies = engine.handle(state, {"type": "text", "text": "有个公众号说我们公司资金链断裂要破产了，全是编的"})
    assert state["step"] == "confirm"
    assert "rumor.exaggerated_difficulty" in state["case"]["candidates"]


def test_chit_chat_is_not_taken_for_a_report(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "帮我查下天气"})
    assert state["step"] == "describe"
    assert "涉企网络侵权" in texts(replies)
