"""The channel plan: which steps of routing.yaml apply to a case, in order, and whom to contact."""
from __future__ import annotations

import re

import pytest

from knowledge import knowledge
from knowledge.routing import channel_plan, contact, next_channel, no_response_days, out_of_scope_advice


@pytest.fixture(scope="module")
def kb():
    return knowledge()


def plan(kb, flags=(), platform="weibo", province="guangdong", type_id="rumor", **kw):
    return channel_plan(kb, platform=platform, province=province, flags=list(flags), type_id=type_id, **kw)


def ids(steps):
    return [s["id"] for s in steps]


def step(steps, sid):
    return next(s for s in steps if s["id"] == sid)


KEYS = {"id", "channel", "order", "kind", "what", "source", "cite", "contact", "if"}


def test_plain_case_platform_first_then_province_if_ignored(kb):
    p = plan(kb)
    assert ids(p)[0] == "platform"
    assert ids(p) == ["platform", "province", "court", "police_option"]
    for s in p:
        assert KEYS <= set(s), s
        assert s["what"] and s["cite"] and "Art" not in s["cite"]
    assert step(p, "platform")["if"] is None
    assert step(p, "province")["if"] in ("no_response", "refused")
    assert set(step(p, "province")["if_any"]) == {"no_response", "refused"}
    assert step(p, "court")["if"] == "refused"           # court is an option once the platform refuses
    assert step(p, "police_option")["if"] is None
    # orders never go down
    orders = [s["order"] for s in p]
    assert orders == sorted(orders)


def test_platform_contact_comes_from_platforms_yaml(kb):
    c = step(plan(kb, platform="douyin"), "platform")["contact"]
    assert c["name"] == "抖音"
    assert "举报" in c["how"]
    assert c["url"] == kb.platforms["douyin"]["complaint"]["url"] == ""
    assert c["verified"] is False


def test_unknown_platform_leaves_the_contact_empty(kb):
    c = step(plan(kb, platform=None), "platform")["contact"]
    assert c["name"] == "" and c["url"] == "" and c["how"] == ""


def test_guangdong_has_its_sourced_portal(kb):
    c = step(plan(kb, province="guangdong"), "province")["contact"]
    assert c["portal"] == "广东省互联网举报中心"
    assert c["url"].startswith("https://rp.gdjubao.cn/")
    assert c["office"] == c["name"] == "广东省委网信办"
    assert c["province_name"] == "广东省"
    assert c["directory_hint"] == ""


def test_province_without_portal_gets_the_12377_directory_hint_and_no_url(kb):
    c = step(plan(kb, province="beijing"), "province")["contact"]
    assert c["portal"] == "" and c["url"] == ""
    assert "12377" in c["directory_hint"]


def test_unknown_province_goes_to_the_province_step_with_the_directory_hint(kb):
    """The enterprise files at its own province (guidance (十四)); no source sends an unknown
    province to 12377, so the plan keeps the province step and says how to find the office."""
    p = plan(kb, province=None)
    assert "central_escalation" not in ids(p)
    prov = step(p, "province")
    assert prov["if"] in ("no_response", "refused")
    c = prov["contact"]
    assert c["province"] is None and c["url"] == ""
    assert "12377" in c["directory_hint"]
    assert c["verified"] is False                       # the hint is general knowledge
    # every URL shown comes from the data
    known = {kb.channels["central"]["enterprise_zone"]["url"], kb.channels["central"]["website"]}
    for s in p:
        for value in _strings(s["contact"]):
            for url in re.findall(r"https?://\S+", value):
                assert url in known, url
    # an unknown province id counts as unknown
    assert ids(plan(kb, province="atlantis")) == ids(p)


def test_central_contact_is_general_knowledge_not_a_seed(kb):
    c = step(plan(kb, cross_region=True), "central_escalation")["contact"]
    assert c["hotline"] == "12377" and c["website"] == "www.12377.cn"
    assert c["verified"] is False
    assert "common_knowledge" in kb.channels["central"]["source"]
    assert c["enterprise_zone"]["verified"] is False


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def test_extortion_includes_police_now_and_the_platform_extortion_step(kb):
    p = plan(kb, flags=["extortion"], type_id="interference")
    police = step(p, "police_extortion")
    assert police["order"] == 1 and police["if"] is None and police["kind"] == "do"
    assert police["contact"]["hotline"] == "110"
    assert "platform_extortion" in ids(p)
    assert "不要付钱" in step(p, "platform_extortion")["what"]


def test_stakeholder_plan_mentions_the_provincial_referral(kb):
    p = plan(kb, flags=["stakeholder"])
    s = step(p, "platform_stakeholder")
    assert s["kind"] == "expect"
    assert "省级网信部门" in s["what"]
    assert "第二十五条" in s["cite"]


def test_key_moment_asks_for_temporary_private(kb):
    p = plan(kb, flags=["key_moment"])
    assert "限时加私" in step(p, "platform_key_moment")["what"]
    assert "platform_key_moment" not in ids(plan(kb))


def test_dispute_makes_court_an_option_now(kb):
    p = plan(kb, flags=["dispute"])
    assert step(p, "court")["if"] is None
    assert "platform_dispute" in ids(p)


def test_cross_platform_counts_as_cross_region(kb):
    p = plan(kb, flags=["cross_platform"])
    # no source sends cross-platform cases to the centre: they are reported on each platform
    assert all(s["channel"] != "central" or s["if"] for s in p)
    assert step(p, "cross_platform_reports")["channel"] == "platform"
    assert step(p, "cross_platform_reports")["if"] is None
    assert step(p, "central_escalation")["if"] in ("no_response", "refused")
    assert "platform_account_measures" in ids(p)
    # the dialog may also settle cross_region itself
    assert "central_escalation" in ids(plan(kb, cross_region=True))
    assert "central_escalation" not in ids(plan(kb))


def test_out_of_scope_has_no_plan_but_advice(kb):
    assert plan(kb, type_id="out_of_scope") == []
    assert plan(kb, type_id="no_such_type") == []
    advice = out_of_scope_advice(kb, "out_of_scope.ip_goods")
    assert "知识产权" in advice["what"] and advice["cite"]
    assert out_of_scope_advice(kb, "rumor.other") is None


def test_next_channel_climbs_platform_province_central(kb):
    p = plan(kb, flags=["cross_platform"])
    assert next_channel(kb, p, "platform")["id"] == "province"
    assert next_channel(kb, p, "platform_account_measures")["id"] == "province"
    assert next_channel(kb, p, "province")["id"] == "central_escalation"
    assert next_channel(kb, p, "central_escalation") is None
    # without a province the platform escalates to the province step (its directory hint), not to 12377
    p2 = plan(kb, province=None)
    assert next_channel(kb, p2, "platform")["id"] == "province"
    assert next_channel(kb, p2, "province") is None
    # nothing above the province when the case is local
    assert next_channel(kb, plan(kb), "province") is None
    assert next_channel(kb, plan(kb), "no_such_step") is None
    assert next_channel(kb, plan(kb, flags=["extortion"]), "police_extortion") is None


def test_no_response_days(kb):
    assert no_response_days(kb) == kb.routing["no_response_days"] == 7


def test_contact_for_each_channel(kb):
    assert contact(kb, "court")["name"] == "人民法院"
    assert contact(kb, "police")["hotline"] == "110"
    zone = contact(kb, "central")["enterprise_zone"]
    assert zone["url"] == kb.channels["central"]["enterprise_zone"]["url"] == contact(kb, "central")["url"]
    assert contact(kb, "central", province="guangdong")["directory_hint"] == ""
