"""The corrections of the knowledge-base audit (issue 10), each pinned by the article it rests on."""
from __future__ import annotations

import pytest

from knowledge import knowledge
from knowledge.measures import expected_measures
from knowledge.routing import channel_plan


@pytest.fixture(scope="module")
def kb():
    return knowledge()


def sources(entry) -> list[str]:
    value = entry.get("source") if isinstance(entry, dict) else entry
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def keys(entry) -> set[str]:
    return {s.split()[0] for s in sources(entry)}


def account_items(kb, subtype, flags=()):
    ms = expected_measures(kb, subtype, list(flags))
    m = next((m for m in ms if m["id"] == "account_action"), None)
    return m["items"] if m else []


# 1. Art. 23(4): "恶意集纳企业负面信息或发布涉企负面信息,进行敲诈勒索的"
def test_art_23_4_applies_to_aggregation_and_extortion_only(kb):
    for sid in ("interference.negative_aggregation", "interference.extortion"):
        assert "第二十三条(四)" in account_items(kb, sid), sid
    for sid in ("interference.search_suggestions", "interference.hot_topic_marketing",
                "interference.competitor_smear", "interference.paid_negative", "interference.account_matrix"):
        assert sid in kb.subtypes
        assert "第二十三条(四)" not in account_items(kb, sid), sid
    # the extortion flag brings Art. 23(4) whatever the sub-type
    assert "第二十三条(四)" in account_items(kb, "interference.competitor_smear", ["extortion"])
    # the sub-type can be given separately too
    ms = expected_measures(kb, "interference", [], subtype="interference.extortion")
    assert "account_action" in [m["id"] for m in ms]
    assert "account_action" not in [m["id"] for m in expected_measures(kb, "interference", [])]


# 2. notice 三(二) and guidance (十四) tell the provincial office to forward; the enterprise may contact the centre
def test_central_escalation_rests_on_the_provincial_forwarding(kb):
    step = next(s for s in kb.routing["steps"] if s["id"] == "central_escalation")
    src = sources(step)
    assert "notice 三(二)" in src and "guidance (十四)" in src
    assert "research" not in keys(step)
    assert "common_knowledge" in keys(step)            # contacting the centre directly
    assert "province_unknown" not in (step.get("when") or [])
    cond = next(c for c in kb.routing["conditions"] if c["id"] == "province_unknown")
    assert "research" not in keys(cond)
    faq = kb.faq["which_channel"]
    assert "notice 三(二)" in sources(faq) and "research" not in keys(faq)


# 3. no source sends cross-platform cases to the centre (三(二) is about cross-region)
def test_cross_platform_alone_does_not_route_to_the_centre(kb):
    for s in kb.routing["steps"]:
        when = s.get("when")
        when = [when] if isinstance(when, str) else when or []
        if "flag:cross_platform" in when:
            assert s["channel"] != "central", s["id"]
    plan = channel_plan(kb, platform="weibo", province="guangdong", flags=["cross_platform"],
                        type_id="interference", cross_region=False)
    assert not [s for s in plan if s["channel"] == "central"]


# 4. guidance (十九): "探索建立线上网民申诉受理窗口", not "windows exist"
def test_appeal_window_is_cited_as_guidance_19(kb):
    step = next(s for s in kb.routing["steps"] if s["id"] == "province")
    assert "guidance (十九)" in sources(step)
    assert "设有申诉窗口" not in step["what"]


# 5. guidance (四) addresses the 网信 departments; the platform's duty is Art. 19
def test_grading_is_art_19_and_guidance_4_is_for_the_authorities(kb):
    g = kb.measures["grading"]
    assert "WS Art. 19" in sources(g)
    assert "guidance (四)" not in sources(g)
    assert "从重" not in g["when"]
    assert "guidance (四)" in sources(g["authority_note"])


# 6. 12377 and www.12377.cn are general knowledge, in no seed
def test_12377_is_general_knowledge_everywhere(kb):
    central = kb.channels["central"]
    assert central["verified"] is False
    assert keys(central) == {"common_knowledge"}
    for fid in ("hotline_12377", "which_channel", "platform_ignores"):
        assert "common_knowledge" in keys(kb.faq[fid]), fid


# 7. the research says nothing of "也可以先向12377反映"
def test_no_research_claim_that_one_may_go_to_12377_first(kb):
    for fid in ("local_other", "matrix_accounts"):
        assert "research" not in keys(kb.faq[fid]), fid
        assert "12377" not in kb.faq[fid]["answer"], fid
    for item in kb.channels["central"]["when_to_use"]:
        if keys(item) == {"research"}:
            assert item.get("verified") is False, item["text"]


# 8. no source names the zone "涉企侵权举报专区"; research says only an enterprise reporting page
def test_enterprise_zone_has_no_invented_name(kb):
    zone = kb.channels["central"]["enterprise_zone"]
    assert zone["name"] != "涉企侵权举报专区" and "专区" not in zone["name"]
    assert zone["verified"] is False


# 9. finding a province's portal through 12377 is general knowledge
def test_directory_hint_is_unverified(kb):
    central = kb.channels["central"]
    assert central["directory_hint_verified"] is False
    assert "research" not in keys(central["directory_hint_source"])


# 10-12. readings that the cited articles do not state
@pytest.mark.parametrize("tid,wrong", [
    ("impersonation", "WS Art. 6(4)"),
    ("privacy_leak", "WS Art. 14(3)"),
    ("misleading", None),
])
def test_not_covered_readings_are_marked_as_huqis(kb, tid, wrong):
    items = kb.types[tid]["not_covered"]
    assert any(keys(nc) == {"huqi_reading"} for nc in items), tid
    if wrong:
        assert all(wrong not in sources(nc) for nc in items)
    # each remaining guidance (十七) citation is about 舆论监督 / reporting, never analysts
    for nc in items:
        if "guidance (十七)" in sources(nc):
            assert "分析师" not in nc["text"]


# 13. Art. 12 covers 企业或企业家 only
def test_vulgar_association_is_about_enterprise_or_entrepreneur(kb):
    sub = kb.subtypes["insult.vulgar_association"]
    assert sources(sub) == ["WS Art. 12(3)"]
    assert "员工" not in sub["explanation"] and "员工" not in sub["title"]


# 14. the 405-platform announcement names only 抖音电商、快手电商、夸克浏览器、完美世界
def test_publish405_backs_only_the_platforms_it_names(kb):
    citing = {pid for pid, p in kb.platforms.items() if "publish405" in keys(p["complaint"])}
    assert citing <= {"douyin", "kuaishou"}
    for pid, p in kb.platforms.items():
        if "common_knowledge" in keys(p["complaint"]) or "research" in keys(p["complaint"]):
            assert p["complaint"]["verified"] is False, pid


# 15. the cases say what the reports say
def test_cases_do_not_overstate(kb):
    prop = kb.cases["gd_matrix_property"]
    assert "WS Art. 23" in sources(prop)                # closing accounts needs 事实清楚、举证充分
    assert "直接关号" not in prop["lesson"]
    privacy = kb.cases["fj_csrc_executive_privacy"]
    assert all(t.startswith("privacy_leak") for t in privacy["types"])
    anta = kb.cases["fj_anta_misattribution"]
    assert "网信" not in anta["title"]


# 16. the two strong_cues lists of account_matrix are one list again
def test_account_matrix_keeps_both_strong_cue_lists(kb):
    cues = kb.subtypes["interference.account_matrix"]["strong_cues"]
    assert "矩阵账号" in cues and "一群小号" in cues
