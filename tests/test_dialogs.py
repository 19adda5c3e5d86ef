"""Scripted conversations through the dialog engine, as a user on a phone would have them."""
from __future__ import annotations

import json
import re

import pytest

from dialogs.engine import Engine, new_state

from tests.drive import ENTERPRISE, Newcomer, texts, values
from tests.drive import run_to_result as drive


@pytest.fixture(scope="module")
def engine():
    return Engine()


def run_to_result(engine, description, want_subtype=None, roundtrip=False, **who):
    state, transcript, _turns = drive(engine, Newcomer(description, [want_subtype] if want_subtype else [], **who),
                                      roundtrip=roundtrip)
    return state, transcript


def answer_for(state, replies, want_subtype=None):
    from tests.drive import answer
    return answer(ENGINE, state, replies, Newcomer("", [want_subtype] if want_subtype else []))


ENGINE = Engine()


def press(engine, state, value):
    return engine.handle(state, {"type": "button", "value": value})


CASES = [
    ("impersonation.account_identity", "抖音上有人用我们公司的名字注册了账号，头像也是我们的logo，还在直播卖货"),
    ("misleading.clickbait", "有篇文章标题写我们公司涉嫌重大诈骗，点进去正文只是讲了一个普通退货纠纷"),
    ("rumor.exaggerated_difficulty", "有自媒体到处说我们资金链断裂、马上破产，员工工资都发不出来了，全是编的"),
    ("insult.abuse", "有个博主在视频里天天骂我们是骗子公司、黑心老板，满嘴脏话"),
    ("privacy_leak.contact_details", "有人把我们董事长的手机号和家庭住址发到网上，号召大家去堵他"),
    ("interference.extortion", "有个公众号发了我们的负面文章，然后私信说交五万公关费才能删"),
]


@pytest.mark.parametrize("subtype,description", CASES)
def test_each_type_reaches_a_short_result_card_with_the_rest_behind_buttons(engine, subtype, description):
    state, transcript = run_to_result(engine, description, subtype)
    first = transcript[-1][0]["text"]
    case = state["case"]
    assert case["subtype"] == subtype
    assert engine.kb.types[case["type"]]["title"] in first
    assert "第" in first and "条" in first                   # the type's article
    assert len(first) <= engine.flow.limits["card_chars"]    # one phone screen
    assert {"show:plan", "show:materials", "draft:view", "save"} <= set(values(transcript[-1]))
    assert case["province"] == "zhejiang"
    _, plan = press(engine, state, "show:plan")
    assert engine.say(state, "result_plan_header") in texts(plan)
    _, materials = press(engine, state, "show:materials")
    assert "第五条" in texts(materials)                  # Art. 5 acceptance materials are always listed
    _, draft = press(engine, state, "draft:view")
    assert ENTERPRISE in texts(draft)                    # the draft is filled with what the user told


def test_extortion_plan_sends_to_police_and_warns_not_to_pay(engine):
    state, transcript = run_to_result(engine, CASES[-1][1], "interference.extortion")
    assert "extortion" in state["case"]["flags"]
    _, plan = press(engine, state, "show:plan")
    assert "公安" in texts(plan)


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
    assert engine.say(state, "progress", n=2, total=4) in texts(replies)   # the progress marker: where is not counted


def markers(engine, transcript) -> list[tuple[int, int]]:
    """(n, total) of every progress marker the user saw, in order."""
    pattern = re.escape(engine.say(None, "progress", n=98765, total=43210))
    pattern = pattern.replace("98765", r"(\d+)").replace("43210", r"(\d+)")
    return [(int(n), int(t)) for replies in transcript for n, t in re.findall(pattern, texts(replies))]


@pytest.mark.parametrize("who", [
    Newcomer("网上有人造谣说我们公司资金链断裂要破产了", ["rumor.exaggerated_difficulty"], link=None),  # name unknown
    Newcomer("有人在微博上造谣说我们公司资金链断裂要破产了", ["rumor.exaggerated_difficulty"]),
    Newcomer(f"有人在网上造谣说{ENTERPRISE}资金链断裂要破产了", ["rumor.exaggerated_difficulty"]),   # name known
    Newcomer("这个号冒充我们官方账号 https://v.douyin.com/iRNBmkQ/", ["impersonation.account_identity"], agent=True),
])
def test_the_progress_marker_counts_the_questions_actually_asked(engine, who):
    state, transcript, _turns = drive(engine, who)
    seen = markers(engine, transcript)
    assert seen, "no progress marker shown"
    assert [n for n, _ in seen] == list(range(1, len(seen) + 1))       # 1, 2, 3 … never repeated, no gap
    assert {t for _, t in seen} == {len(seen)}                          # the total is the number asked
    assert state["case"]["enterprise"] == ENTERPRISE


def test_the_progress_marker_stays_on_step_one_while_the_type_is_picked(engine):
    who = Newcomer("有人说我们公司的坏话", ["rumor.product_quality"], agent=True)
    state, transcript, _turns = drive(engine, who)
    seen = markers(engine, transcript)
    ns = [n for n, _ in seen]
    assert ns == sorted(ns) and all(n <= t for n, t in seen)
    assert sorted(set(ns)) == list(range(1, seen[-1][1] + 1)) and ns[-1] == seen[-1][1]
    assert ns.count(1) == 3                                             # confirm, the type, the sub-type
    assert state["case"]["subtype"] == "rumor.product_quality"


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
    assert state["step"] == "facts"
    def conversation(s):      # the state without what is on screen
        return json.dumps({k: v for k, v in s.items() if k != "shown"}, ensure_ascii=False, sort_keys=True)
    before = conversation(state)
    asked = values(replies)
    state, replies = engine.handle(state, {"type": "text", "text": "限时加私是什么意思？"})
    out = texts(replies)
    assert "限时加私" in out and "第二十一条" in out
    assert conversation(state) == before
    assert values(replies)[-len(asked):] == asked            # the interrupted question again


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
    assert {"confirm", "facts", "province"} <= steps_seen


def test_forged_and_stale_buttons_are_refused(engine):
    state, replies = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    for forged in ["sub:rumor.nonexistent", "facts:agent", "province:guangdong", "faq:no_such_entry", "draft:view",
                   "save", "cases:x", None, 42]:
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
    provided = {item["id"] for item in record["evidence"] if item["provided"]}
    assert provided == {"url_or_locator"}        # the link given in the intake counts; nothing else yet
    json.dumps(record)   # plain data
    state, replies = engine.handle(state, {"type": "saved", "case_id": "HQ-2611-7K3Q"})
    assert "HQ-2611-7K3Q" in texts(replies)


def test_draft_download_is_a_file_with_the_pledge(engine):
    state, _ = run_to_result(engine, CASES[1][1], CASES[1][0])
    state, replies = engine.handle(state, {"type": "button", "value": "draft:view"})
    state, replies = engine.handle(state, {"type": "button", "value": "draft:file"})
    files = [r["file"] for r in replies if "file" in r]
    assert files and files[0]["name"].endswith(".txt")
    assert files[0]["name"] != "huqi-report.txt"            # named after the type before saving
    assert ENTERPRISE in files[0]["content"]
    assert "真实" in files[0]["content"]
    state, replies = engine.handle(state, {"type": "button", "value": "save"})
    (saving,) = [r for r in replies if "effect" in r]
    state, replies = engine.handle(state, {"type": "saved", "case_id": "HQ-2611-7K3Q"})
    assert "draft:view" in values(replies)                   # the draft stays reachable after saving
    state, replies = engine.handle(state, {"type": "button", "value": "draft:file"})
    assert [r["effect"] for r in replies] == ["get_case"]   # written from the stored case
    stored = dict(saving["case"], id="HQ-2611-7K3Q", contact="13800138000")
    state, replies = engine.handle(state, {"type": "case", "case": stored})
    (draft,) = [r["file"] for r in replies if "file" in r]
    assert draft["name"] == "huqi-report-HQ-2611-7K3Q.txt" and "13800138000" in draft["content"]


def test_agent_gets_power_of_attorney_in_the_checklist(engine):
    state, transcript = run_to_result(engine, CASES[4][1], CASES[4][0], agent=True)
    assert state["case"]["reporter_role"] == "agent"
    assert "授权委托书" in texts(transcript[-1])            # among the top materials on the card


def test_a_file_is_kept_as_an_attachment_and_a_huge_one_refused(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "file", "name": "截图.png", "size": 120_000, "ref": "f1"})
    assert state["case"]["attachments"][0]["name"] == "截图.png"
    state, replies = engine.handle(state, {"type": "file", "name": "录像.mp4", "size": 900 * 1024 * 1024, "ref": "f2"})
    assert len(state["case"]["attachments"]) == 1
    assert "太大" in texts(replies)


def test_new_state_is_json(engine):
    assert json.loads(json.dumps(new_state())) == new_state()


def test_picking_a_platform_without_a_link_reminds_to_add_it(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    state, replies = engine.handle(state, answer_for(state, replies, CASES[2][0]))
    state, replies = engine.handle(state, {"type": "text", "text": "微博"})
    assert state["step"] == "facts" and state["case"]["platform"] == "weibo"
    assert engine.say(state, "card_no_link") in texts(replies)


def test_a_short_simplified_answer_keeps_traditional_replies(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有個帳號一直說我們公司要倒閉了，資金鏈斷裂，全是造謠"})
    state, replies = engine.handle(state, {"type": "text", "text": "1"})
    state, replies = engine.handle(state, {"type": "text", "text": "跳过"})
    assert state["lang"] == "hant"


def test_unconfirmed_platform_instructions_are_worded_as_such(engine):
    state, transcript = run_to_result(engine, CASES[2][1], CASES[2][0])   # the where step answers with a weibo link
    _, replies = press(engine, state, "show:plan")
    plan = texts(replies)
    weibo = engine.kb.platforms["weibo"]["complaint"]
    assert weibo.get("verified") is False
    assert "以平台页面为准" in plan
    assert "以平台页面为准" in transcript[-1][0]["text"]       # on the card too


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
    assert state["step"] == "facts" and state["case"]["platform"] is None


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


def test_newcomers_reach_the_card_in_few_turns(engine):
    import statistics
    import bench.newcomer as bench
    turns = []
    for _name, who, channels, materials in bench.SITUATIONS:
        state, transcript, n = drive(engine, who)
        turns.append(n)
        assert channels <= {s["channel"] for s in engine.card.plan(state["case"])}
        assert materials <= {e["id"] for e in engine.card.evidence(state["case"])}
    assert statistics.median(turns) <= 5 and max(turns) <= 7


def test_several_subtypes_may_apply(engine):
    who = Newcomer("有人把我们董事长的身份证照片和手机号发到网上，号召大家去骚扰他",
                   ["privacy_leak.identity_documents", "privacy_leak.contact_details"])
    state, transcript, _ = drive(engine, who)
    assert state["case"]["subtypes"] == who.subtypes
    assert all(engine.kb.subtypes[s]["title"] in transcript[-1][0]["text"] for s in who.subtypes)


def test_situations_are_one_multi_select_and_the_province_is_confirmed_with_one_tap(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": "有自媒体说我们杭州云帆科技资金链断裂马上破产 https://weibo.com/1/AbC"})
    assert state["case"]["enterprise"] == "杭州云帆科技"
    state, replies = engine.handle(state, {"type": "text", "text": "👍"})           # an emoji confirms the reading
    assert state["step"] == "facts"
    flags = [v for v in values(replies) if v.startswith("facts:") and v not in ("facts:none", "facts:agent")]
    assert len(flags) >= 3                                                       # asked together
    state, replies = engine.handle(state, {"type": "button", "value": flags[0]})  # a tap toggles
    assert state["step"] == "facts" and "facts:done" in values(replies)
    state, replies = engine.handle(state, {"type": "button", "value": flags[1]})
    state, replies = engine.handle(state, {"type": "button", "value": "facts:done"})
    assert set(state["case"]["flags"]) >= {flags[0][6:], flags[1][6:]}
    assert state["step"] == "province" and state["pending"]["province_guess"] == "zhejiang"
    state, replies = engine.handle(state, {"type": "text", "text": "没错"})
    assert state["step"] == "result" and state["case"]["province"] == "zhejiang"


def test_a_number_past_the_last_option_re_asks_and_opens_nothing(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    n = len(values(replies)) + 1
    after, replies = engine.handle(state, {"type": "text", "text": str(n)})
    assert not any("effect" in r for r in replies)
    assert after["step"] == "confirm" and after["case"] == state["case"]
    assert engine.say(state, "no_option") in texts(replies)


def test_a_traditional_writer_reads_traditional_to_the_goodbye_but_gets_a_simplified_draft(engine):
    state, transcript, _ = drive(engine, Newcomer("有個帳號一直說我們公司要倒閉了，資金鏈斷裂，全是造謠",
                                                 ["rumor.exaggerated_difficulty"]))
    assert state["lang"] == "hant"
    state, replies = engine.handle(state, {"type": "button", "value": "draft:file"})
    (draft,) = [r["file"] for r in replies if "file" in r]
    assert "举报" in draft["content"] and "舉報" not in draft["content"]
    state, replies = engine.handle(state, {"type": "button", "value": "draft:hant"})
    (copy,) = [r["file"] for r in replies if "file" in r]
    assert "舉報" in copy["content"] and copy["name"] != draft["name"]
    state, replies = engine.handle(state, {"type": "command", "name": "quit"})
    assert replies[-1].get("end") and engine.say(state, "bye") in texts(replies)
    assert engine.say(state, "bye") != engine.flow.text("bye")


def test_contact_person_and_phone_fill_the_draft_and_are_shown_masked(engine):
    state, _ = run_to_result(engine, CASES[2][1], CASES[2][0])
    state, replies = engine.handle(state, {"type": "text", "text": "张律师 13800138000"})
    assert state["case"]["contact"] == "13800138000" and state["case"]["reporter_name"] == "张律师"
    assert "138****8000" in texts(replies) and "13800138000" not in texts(replies)
    state, replies = engine.handle(state, {"type": "button", "value": "draft:file"})
    (draft,) = [r["file"] for r in replies if "file" in r]
    assert "13800138000" in draft["content"] and "【联系人及电话】" not in draft["content"]


def test_thumbs_down_and_bu_shi_mean_none_of_these(engine):
    for word in ("👎", "不是", "都不是"):
        state, _ = engine.start()
        state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
        state, replies = engine.handle(state, {"type": "text", "text": word})
        assert state["step"] == "pick_type", word


def test_my_cases_with_none_saved_says_so_and_asks_the_open_question_again(engine):
    state, _ = engine.start()
    state, replies = engine.handle(state, {"type": "text", "text": CASES[2][1]})
    asked = values(replies)
    state, replies = engine.handle(state, {"type": "cases", "cases": []})
    from dialogs.typeset import typeset
    assert typeset(engine.flow.tracking["no_cases"]) in texts(replies)
    assert values(replies) == asked and state["step"] == "confirm"


def test_words_that_are_not_a_new_incident_keep_the_plan(engine):
    state, _ = run_to_result(engine, CASES[2][1], CASES[2][0])
    for words in ("下载举报草稿", "好的谢谢", "嗯"):
        after, replies = engine.handle(state, {"type": "text", "text": words})
        assert after["step"] == "result" and after["case"] == state["case"], words
        assert "save" in values(replies)
    after, replies = engine.handle(state, {"type": "text", "text": CASES[0][1]})     # a new incident: a new intake
    assert after["step"] == "confirm" and CASES[0][0] in after["case"]["candidates"]


def test_several_subtypes_gather_the_materials_of_each(engine):
    one = {"type": "interference", "subtype": "interference.extortion", "subtypes": ["interference.extortion"],
           "flags": [], "reporter_role": "self"}
    both = dict(one, subtypes=["interference.extortion", "interference.account_matrix"])
    ids_one = [e["id"] for e in engine.card.evidence(one)]
    ids_both = [e["id"] for e in engine.card.evidence(both)]
    assert set(ids_one) < set(ids_both) and len(ids_both) == len(set(ids_both))
