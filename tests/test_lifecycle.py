"""The case status lifecycle (dialogs/data/lifecycle.yaml, dialogs/lifecycle.py)."""

import copy
from datetime import datetime, timezone

import pytest
import yaml

from bot.store import open_store
from dialogs.lifecycle import (
    DATA_FILE,
    LifecycleError,
    TransitionRefused,
    allowed,
    current_channel,
    load_lifecycle,
    missing_evidence,
    next_action,
    next_channel,
    parse_lifecycle,
    record,
    transition,
)

NOW = "2026-11-05T08:00:00+00:00"
LC = load_lifecycle()

# The lifecycle as specified; the YAML must say exactly this.
EXPECTED = {
    "draft": ["ready", "submitted", "closed"],
    "ready": ["draft", "submitted", "closed"],
    "submitted": ["accepted", "action_taken", "rejected", "no_response", "escalated", "closed"],
    "accepted": ["action_taken", "rejected", "no_response", "escalated", "closed"],
    "action_taken": ["escalated", "closed"],
    "rejected": ["escalated", "closed"],
    "no_response": ["accepted", "action_taken", "rejected", "escalated", "closed"],
    "escalated": ["accepted", "action_taken", "rejected", "no_response", "escalated", "closed"],
    "closed": [],
}
LABELS = {
    "draft": "草稿", "ready": "材料齐全", "submitted": "已提交", "accepted": "已受理",
    "action_taken": "已处理", "rejected": "被驳回", "no_response": "没有回应", "escalated": "已升级",
    "closed": "已结案",
}
STATUSES = list(EXPECTED)

PLAN = [  # as card.case_record makes it, for an extortion case across regions
    {"id": "platform", "channel": "platform", "order": 1, "kind": "do", "if": None},
    {"id": "platform_extortion", "channel": "platform", "order": 1, "kind": "do", "if": None},
    {"id": "platform_dispute", "channel": "platform", "order": 1, "kind": "expect", "if": None},
    {"id": "police_extortion", "channel": "police", "order": 1, "kind": "do", "if": None},
    {"id": "province", "channel": "province", "order": 2, "kind": "do", "if": "no_response"},
    {"id": "central_escalation", "channel": "central", "order": 2, "kind": "do", "if": "no_response"},
    {"id": "court", "channel": "court", "order": 3, "kind": "option", "if": None},
    {"id": "police_option", "channel": "police", "order": 3, "kind": "option", "if": None},
]


def case_in(status, *, channel="platform", plan=PLAN):
    """A case in ``status``; past submission it has been submitted to ``channel``."""
    history = []
    if status not in ("draft", "ready"):
        history.append({"when": NOW, "from": "ready", "to": "submitted", "channel": channel})
    if status not in ("draft", "ready", "submitted"):
        history.append({"when": NOW, "from": "submitted", "to": status})
    return {"id": "HQ-2611-7K3Q", "status": status, "plan": copy.deepcopy(plan), "history": history,
            "evidence": [{"id": "licence", "title": "营业执照", "required": True, "provided": True}]}


def fields_for(to):
    """Required fields for a transition to ``to``."""
    return {
        "submitted": {"channel": "platform"},
        "escalated": {},  # the plan's next channel
        "action_taken": {"outcome": "deleted"},
        "rejected": {"reason": "平台认为不构成侵权"},
        "closed": {"reason": "withdrawn"},
    }.get(to, {})


# -- the data ---------------------------------------------------------------------


def test_statuses_labels_and_meanings():
    assert list(LC.statuses) == STATUSES
    for sid, st in LC.statuses.items():
        assert st.label == LABELS[sid]
        assert st.meaning and "\n" not in st.meaning
    assert set(LC.outcomes) == {"deleted", "made_private", "dispute_label", "account_measures", "clarification"}
    assert set(LC.close_reasons) == {"resolved", "withdrawn"}
    assert list(LC.channels) == ["platform", "province", "central", "police", "court"]


@pytest.mark.parametrize("status", STATUSES)
def test_allowed_is_the_specified_table(status):
    assert allowed(status) == EXPECTED[status]


def test_aliases_and_labels_name_statuses():
    assert allowed("new") == EXPECTED["draft"]
    assert allowed("已提交") == EXPECTED["submitted"]
    with pytest.raises(TransitionRefused, match="没有"):
        allowed("nonsense")


# -- every pair --------------------------------------------------------------------

ALLOWED_PAIRS = [(f, t) for f in STATUSES for t in EXPECTED[f]]
REFUSED_PAIRS = [(f, t) for f in STATUSES for t in STATUSES if t not in EXPECTED[f]]


def test_pairs_cover_everything():
    assert len(ALLOWED_PAIRS) + len(REFUSED_PAIRS) == len(STATUSES) ** 2


@pytest.mark.parametrize("frm,to", ALLOWED_PAIRS)
def test_every_allowed_transition_succeeds(frm, to):
    case = case_in(frm)
    before = copy.deepcopy(case)
    ev = transition(case, to, who="user", now=NOW, **fields_for(to))
    assert ev["from"] == frm and ev["to"] == to
    assert ev["who"] == "user" and ev["when"] == NOW
    assert set(ev) == {"when", "who", "from", "to", "channel", "ref", "outcome", "reason", "note"}
    assert case == before  # transition never changes the case


@pytest.mark.parametrize("frm,to", REFUSED_PAIRS)
def test_every_disallowed_transition_is_refused_with_the_allowed_list(frm, to):
    with pytest.raises(TransitionRefused) as exc:
        transition(case_in(frm), to, who="user", now=NOW, **fields_for(to))
    msg = str(exc.value)
    assert msg.startswith(f'当前状态"{LABELS[frm]}"')
    if EXPECTED[frm]:
        assert f'不能直接改为"{LABELS[to]}"' in msg
        listed = msg.split("可以改为:")[1]
        for target in EXPECTED[frm]:
            assert LABELS[target] in listed
        for other in set(STATUSES) - set(EXPECTED[frm]):
            assert LABELS[other] not in listed
    else:
        assert "终态" in msg


def test_refusal_message_reads_as_specified():
    with pytest.raises(TransitionRefused) as exc:
        transition(case_in("submitted"), "draft", who="user", now=NOW)
    assert str(exc.value) == (
        '当前状态"已提交"不能直接改为"草稿"。可以改为:已受理、已处理、被驳回、没有回应、已升级、已结案(撤回)。')


# -- closing --------------------------------------------------------------------------


@pytest.mark.parametrize("frm", [s for s in STATUSES if s != "closed"])
def test_withdrawing_is_allowed_from_every_open_status(frm):
    ev = transition(case_in(frm), "closed", who="user", reason="withdrawn", now=NOW)
    assert ev["reason"] == "withdrawn"
    assert transition(case_in(frm), "closed", who="user", reason="撤回", now=NOW)["reason"] == "withdrawn"


def test_resolved_only_after_action_taken():
    ev = transition(case_in("action_taken"), "closed", who="user", reason="resolved", now=NOW)
    assert ev["reason"] == "resolved"
    for frm in ("draft", "ready", "submitted", "accepted", "rejected", "escalated"):
        with pytest.raises(TransitionRefused, match="只能以"):
            transition(case_in(frm), "closed", who="user", reason="resolved", now=NOW)


def test_closing_needs_a_known_reason():
    with pytest.raises(TransitionRefused, match="结案需要说明原因"):
        transition(case_in("action_taken"), "closed", who="user", now=NOW)
    with pytest.raises(TransitionRefused, match="没有\"不想管了\"这个结案原因"):
        transition(case_in("action_taken"), "closed", who="user", reason="不想管了", now=NOW)


# -- required fields -------------------------------------------------------------------


def test_submitted_requires_a_channel_and_keeps_the_reference():
    with pytest.raises(TransitionRefused, match="向哪个渠道提交"):
        transition(case_in("ready"), "submitted", who="user", now=NOW)
    with pytest.raises(TransitionRefused, match="没有\"微信群\"这个渠道"):
        transition(case_in("ready"), "submitted", who="user", channel="微信群", now=NOW)
    ev = transition(case_in("ready"), "submitted", who="user", channel="平台", ref=" TS-123 ", now=NOW)
    assert (ev["channel"], ev["ref"]) == ("platform", "TS-123")
    ev = transition(case_in("draft"), "已提交", who="user", channel="province", now=NOW)
    assert (ev["to"], ev["channel"], ev["ref"]) == ("submitted", "province", None)


def test_action_taken_requires_a_known_outcome():
    with pytest.raises(TransitionRefused, match="处置结果") as exc:
        transition(case_in("submitted"), "action_taken", who="user", now=NOW)
    for label in LC.outcomes.values():
        assert label in str(exc.value)
    with pytest.raises(TransitionRefused, match="没有\"罚款\"这个处置结果"):
        transition(case_in("submitted"), "action_taken", who="user", outcome="罚款", now=NOW)
    for oid, label in LC.outcomes.items():
        assert transition(case_in("accepted"), "action_taken", who="u", outcome=label, now=NOW)["outcome"] == oid
        assert transition(case_in("accepted"), "action_taken", who="u", outcome=oid, now=NOW)["outcome"] == oid


def test_rejected_requires_a_reason():
    for empty in (None, "", "   "):
        with pytest.raises(TransitionRefused, match="驳回的理由"):
            transition(case_in("submitted"), "rejected", who="user", reason=empty, now=NOW)
    ev = transition(case_in("submitted"), "rejected", who="user", reason="不构成侵权", now=NOW)
    assert ev["reason"] == "不构成侵权"
    assert ev["channel"] == "platform"  # the answer came from where the report is


def test_who_is_required():
    with pytest.raises(TransitionRefused, match="who"):
        transition(case_in("draft"), "ready", who="", now=NOW)


def test_now_may_be_a_datetime():
    ev = transition(case_in("draft"), "ready", who="user",
                    now=datetime(2026, 11, 5, 16, 0, tzinfo=timezone.utc))
    assert ev["when"] == "2026-11-05T16:00:00+00:00"


def test_escalation_goes_to_the_next_channel_of_the_plan():
    ev = transition(case_in("rejected"), "escalated", who="user", now=NOW)
    assert ev["channel"] == "province"
    ev = transition(case_in("submitted"), "escalated", who="user", channel="central", now=NOW)
    assert ev["channel"] == "central"
    with pytest.raises(TransitionRefused, match="换一个渠道"):
        transition(case_in("rejected"), "escalated", who="user", channel="platform", now=NOW)
    with pytest.raises(TransitionRefused, match="升级到哪个渠道"):
        transition(case_in("rejected", channel="court", plan=[]), "escalated", who="user", now=NOW)
    # past the plan, the backstop: the central reporting centre
    assert transition(case_in("rejected", plan=[]), "escalated", who="user", now=NOW)["channel"] == "central"


# -- history through a store ------------------------------------------------------------


async def test_history_events_carry_from_and_to():
    store = open_store(None, backend="memory")
    case = await store.create({"owner": {"messenger": "terminal", "user_id": "1"}, "plan": PLAN,
                               "status": "draft"})
    cid = case["id"]
    steps = [
        ("ready", {}),
        ("submitted", {"channel": "platform", "ref": "TS1"}),
        ("rejected", {"reason": "不构成侵权"}),
        ("escalated", {}),
        ("accepted", {}),
        ("action_taken", {"outcome": "deleted"}),
        ("closed", {"reason": "resolved", "note": "内容已删除"}),
    ]
    for to, kw in steps:
        case = await record(store, cid, to, who="user", now=NOW, **kw)
        assert case["status"] == to
    hist = case["history"]
    assert [(e["from"], e["to"]) for e in hist] == [
        ("draft", "ready"), ("ready", "submitted"), ("submitted", "rejected"), ("rejected", "escalated"),
        ("escalated", "accepted"), ("accepted", "action_taken"), ("action_taken", "closed")]
    assert [e["channel"] for e in hist] == [None, "platform", "platform", "province", "province", "province", None]
    assert hist[-1]["note"] == "内容已删除" and case["closed_at"]
    with pytest.raises(TransitionRefused, match="终态"):
        await record(store, cid, "submitted", who="user", channel="platform", now=NOW)
    assert len((await store.get(cid))["history"]) == len(steps)
    await store.close()


async def test_new_cases_start_as_draft():
    store = open_store(None, backend="memory")
    case = await store.create({"owner": {"messenger": "terminal", "user_id": "1"}})
    assert case["status"] == "new"
    case = await record(store, case["id"], "ready", who="user", now=NOW)
    assert case["history"][0]["from"] == "draft"
    await store.close()


# -- next channel -------------------------------------------------------------------------


def test_next_channel_walks_the_plan():
    case = case_in("draft")
    assert current_channel(case) is None
    assert next_channel(case)["id"] == "platform"
    walked = []
    case = case_in("submitted")
    while True:
        step = next_channel(case)
        if step is None:
            break
        walked.append(step["id"])
        case["history"].append({"to": "escalated", "channel": step["channel"]})
        assert current_channel(case) == step["channel"]
    assert walked == ["province", "central_escalation", "police_extortion", "backstop_court"]   # then the courts


def test_next_channel_skips_expect_and_option_steps():
    plan = [s for s in PLAN if s["channel"] == "platform" or s["kind"] == "option"]
    assert next_channel(case_in("rejected", plan=plan))["id"] == "backstop_central"   # options skipped: the backstop
    assert next_channel(case_in("rejected", plan=[]))["channel"] == "central"
    assert next_channel(case_in("rejected", channel="court", plan=[])) is None
    assert next_channel({"status": "rejected"}) is None


def test_the_backstop_offers_the_police_only_where_money_was_demanded():
    case = case_in("rejected", channel="central", plan=[])
    assert next_channel(case)["channel"] == "court"
    case["flags"] = ["extortion"]
    assert next_channel(case)["channel"] == "police"
    assert "12377" in next_channel(case_in("rejected", plan=[]))["what"]


def test_next_channel_does_not_go_back_down_the_ladder():
    case = case_in("rejected", channel="central")
    assert next_channel(case)["channel"] == "police"


# -- evidence and hints --------------------------------------------------------------------


def test_missing_evidence():
    case = {"evidence": [
        {"id": "a", "title": "营业执照", "required": True, "provided": False},
        {"id": "b", "title": "截图", "required": True, "provided": True},
        {"id": "c", "title": "授权书", "required": False, "provided": False},
        {"id": "d", "title": "链接"},  # required by default
    ]}
    assert [e["id"] for e in missing_evidence(case)] == ["a", "d"]
    assert missing_evidence({}) == []
    # what the case holds itself counts, for cases saved before it was marked
    old = {"links": ["https://weibo.com/1/x"], "contact": "13800138000", "evidence": [
        {"id": "url_or_locator", "title": "链接", "required": True, "provided": False},
        {"id": "reporter_contact", "title": "联系方式", "required": True, "provided": False}]}
    assert missing_evidence(old) == []


@pytest.mark.parametrize("status", STATUSES)
def test_next_action_for_every_status(status):
    hint = next_action(case_in(status))
    assert hint and "{" not in hint and "}" not in hint


def test_next_action_variants():
    draft = {"status": "draft", "evidence": [{"title": "营业执照"}, {"title": "截图", "provided": True}]}
    assert "还缺 1 项" in next_action(draft) and "营业执照" in next_action(draft)
    draft["evidence"][0]["provided"] = True
    assert "材料已经齐全" in next_action(draft)
    assert "属地网信办" in next_action(case_in("rejected"))
    assert "没有下一个渠道" in next_action(case_in("rejected", channel="court", plan=[]))
    assert "平台" in next_action(case_in("submitted"))


# -- validation of the data ---------------------------------------------------------------


def _data():
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


def _status(data, sid):
    return next(s for s in data["statuses"] if s["id"] == sid)


def test_the_yaml_parses():
    assert parse_lifecycle(_data()).allowed("submitted") == EXPECTED["submitted"]


@pytest.mark.parametrize("breakage,complaint", [
    (lambda d: _status(d, "draft")["to"].append("nowhere"), "unknown target"),
    (lambda d: _status(d, "ready").update(to=["submitted"]), "withdrawing"),
    (lambda d: _status(d, "closed").update(to=["draft"]), "final"),
    (lambda d: _status(d, "draft")["next_action"].update(default="{oops}"), "placeholder"),
    (lambda d: _status(d, "draft")["next_action"].pop("default"), "default"),
    (lambda d: d["messages"].pop("refused"), "messages.refused"),
    (lambda d: d["requires"].update(closed=["colour"]), "requires.closed"),
    (lambda d: d["outcomes"].append({"id": "deleted", "label": "x"}), "duplicate"),
    (lambda d: d["reminder"].update(text="{case}"), "reminder.text"),
])
def test_broken_data_is_refused(breakage, complaint):
    data = _data()
    breakage(data)
    with pytest.raises(LifecycleError, match=complaint):
        parse_lifecycle(data)


# -- per-channel tracks ---------------------------------------------------------------------


async def test_the_platform_and_the_police_run_in_parallel_each_with_its_track():
    from bot.store import open_store
    from dialogs.lifecycle import possible_transitions, tracks
    store = open_store(None, backend="memory")
    case = await store.create({"status": "draft", "plan": copy.deepcopy(PLAN), "flags": ["extortion"],
                               "owner": {"messenger": "terminal", "user_id": "u"}})
    cid = case["id"]
    await record(store, cid, "submitted", who="user", channel="platform", ref="WB-1", now=NOW)
    await record(store, cid, "submitted", who="user", channel="police", ref="JJ-9", now=NOW)
    await record(store, cid, "accepted", who="user", channel="police", now=NOW)
    case = await record(store, cid, "action_taken", who="user", channel="platform", outcome="deleted", now=NOW)
    assert case["channels"]["platform"]["status"] == "action_taken"
    assert case["channels"]["platform"]["ref"] == "WB-1"
    assert case["channels"]["police"] == dict(case["channels"]["police"], status="accepted", ref="JJ-9")
    assert case["status"] == "action_taken"                      # derived: the most advanced track
    case = await record(store, cid, "action_taken", who="user", channel="police", outcome="account_measures", now=NOW)
    assert case["status"] == "action_taken" and tracks(case) == case["channels"]
    options = possible_transitions(case)
    assert {"to": "closed", "channel": None, "reason": "resolved"} in [
        {k: o.get(k) for k in ("to", "channel", "reason")} for o in options]
    assert all(o["label"] for o in options)
    case = await record(store, cid, "closed", who="user", reason="resolved", now=NOW)
    assert [o["to"] for o in possible_transitions(case)] == ["reopen"]
    case = await record(store, cid, "reopen", who="staff:ops", now=NOW)      # staff reopen
    assert case["status"] == "action_taken" and case["history"][-1]["from"] == "closed"
    with pytest.raises(TransitionRefused):
        await record(store, cid, "reopen", who="staff:ops", now=NOW)


def test_old_cases_without_tracks_are_read_from_their_history():
    from dialogs.lifecycle import possible_transitions, tracks
    case = case_in("rejected")
    assert tracks(case) == {"platform": dict(tracks(case)["platform"], status="rejected")}
    labels = [o["label"] for o in possible_transitions(case)]
    assert any("属地网信办" in label for label in labels)            # escalate to the next channel
