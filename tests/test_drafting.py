"""The report draft: filled from the case, every fixed sentence from drafting.yaml, nothing invented."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from knowledge import KnowledgeError, knowledge, load
from knowledge.drafting import draft_filename, draft_report
from knowledge.evidence import checklist
from knowledge.loader import DATA_DIR


@pytest.fixture(scope="module")
def kb():
    return knowledge()


def case(**kw):
    base = dict(
        enterprise="深圳市星河智能科技有限公司", reporter_role="self", reporter_name=None, contact=None,
        type="rumor", subtype="rumor.exaggerated_difficulty", flags=[], platform="weibo",
        links=["https://weibo.com/7012345678/Pq1Ab2Cd3", "https://m.weibo.cn/status/5012345678901234"],
        province="guangdong", description="某博主发文称我司资金链断裂、即将破产,并号召客户退款,完全是捏造的。",
        evidence=[],
    )
    base.update(kw)
    return base


PHONE = re.compile(r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|\d{3}-\d{3,4}-\d{4}|400-?\d{3}-?\d{4}|12377|110)(?!\d)")


def phones(text: str, c: dict) -> list[str]:
    for link in c.get("links") or []:
        text = text.replace(link, " ")
    return PHONE.findall(text)


def test_contains_the_case(kb):
    c = case()
    d = draft_report(kb, c)
    assert d.startswith("涉企网络侵权信息举报\n")
    assert c["enterprise"] in d
    for link in c["links"]:
        assert link in d
    assert "微博" in d
    assert c["description"] in d
    assert "谣言性信息" in d and "夸大企业或企业家经营困难" in d
    assert "《工作规范》第十条(四)" in d                  # the article of the sub-type
    assert "《工作规范》第五条(四)" in d                  # the links, Art. 5(4)


def test_has_the_pledge_with_its_source(kb):
    d = draft_report(kb, case())
    pledge = kb.drafting["report"]["pledge"]
    assert pledge["text"].rstrip("。") in d
    assert "真实、合法" in d and "第五条(六)" in d
    assert "WS Art. 5(6)" in pledge["source"]


def test_sections_in_order(kb):
    d = draft_report(kb, case())
    heads = list(kb.drafting["report"]["sections"].values())
    positions = [d.index(h) for h in heads]
    assert positions == sorted(positions)


def test_no_unfilled_template_slots(kb):
    for c in (case(), case(reporter_role="agent", reporter_name="李律师", flags=list(kb.flags)),
              case(type="impersonation", subtype=None, links=[], platform=None, description=""),
              case(type="insult", subtype="insult.abuse", enterprise="", evidence=["business_licence", "截图"])):
        d = draft_report(kb, c)
        assert not re.search(r"\{[^{}]*\}", d), d
        assert "None" not in d


def test_never_a_phone_number_the_case_did_not_give(kb):
    for c in (case(), case(reporter_role="agent", flags=["extortion", "key_moment"], type="interference",
                           subtype="interference.extortion")):
        d = draft_report(kb, c)
        assert phones(d, c) == [], phones(d, c)
        assert "【联系人及电话】" in d
    given = case(contact="13912345678", reporter_name="王敏")
    d = draft_report(kb, given)
    assert phones(d, given) == ["13912345678"]
    assert "王敏 13912345678" in d
    assert "【联系人及电话】" not in d


def test_no_link_asks_for_the_exact_url(kb):
    d = draft_report(kb, case(links=[], platform=None))
    assert kb.drafting["report"]["placeholders"]["links"] in d
    assert kb.drafting["report"]["placeholders"]["platform"] in d
    assert "https://" not in d


def test_agent_wording_and_signature(kb):
    d = draft_report(kb, case(reporter_role="agent", reporter_name="广东某某律师事务所"))
    assert "举报代理人:广东某某律师事务所" in d
    assert "授权委托书" in d and "代理人(签字):广东某某律师事务所" in d
    assert "第五条(二)" in d
    self_d = draft_report(kb, case())
    assert "代理人" not in self_d
    # agent without a name gets a placeholder, not an invented one
    assert kb.drafting["report"]["placeholders"]["agent"] in draft_report(kb, case(reporter_role="agent"))


def test_requests_follow_the_expected_measures(kb):
    d = draft_report(kb, case(type="interference", subtype="interference.extortion", flags=["extortion"]))
    req = d[d.index("四、处理请求"):d.index("五、证据材料清单")]
    assert "删除" in req and "第二十条" in req
    assert "账号" in req and "第二十三条(四)" in req
    assert "加私" not in req
    d = draft_report(kb, case(flags=["key_moment"]))
    req = d[d.index("四、处理请求"):d.index("五、证据材料清单")]
    assert "限时加私" in req and "第二十一条" in req
    # a dispute adds the label as a fallback; deletion is still asked for
    d = draft_report(kb, case(flags=["dispute"]))
    req = d[d.index("四、处理请求"):d.index("五、证据材料清单")]
    assert "争议标记" in req and "删除" in req
    assert "第二十二条" in req


def test_every_sub_type_is_named_with_its_article(kb):
    ws = kb.documents["WS"]["short"]
    sids = ["rumor.exaggerated_difficulty", "rumor.product_quality", "insult.abuse"]
    d = draft_report(kb, case(subtypes=sids + ["out_of_scope.personal", "no.such_subtype", "rumor.product_quality"]))
    reason = d[d.index("三、举报事项与理由"):d.index("四、处理请求")]
    heads = []
    for sid in sids:
        sub = kb.subtypes[sid]
        named = f"{sub['title']}({ws}{sub['article']})"
        assert named in reason, (sid, reason)
        assert reason.count(f'{ws}{sub["article"]}规定的"{sub["title"]}"') == 1      # one reason each
        heads.append(reason.index(named))
    assert heads == sorted(heads)                                      # the main one first, in the case's order
    assert kb.subtypes["out_of_scope.personal"]["title"] not in reason
    assert "no.such_subtype" not in d and not re.search(r"\{[^{}]*\}", d)
    # one sub-type: the draft names it alone, as before
    one = draft_report(kb, case(subtypes=["rumor.exaggerated_difficulty"]))
    assert one == draft_report(kb, case())
    assert kb.subtypes["rumor.product_quality"]["title"] not in one


def test_flag_statements_are_written_in(kb):
    d = draft_report(kb, case(flags=["extortion", "stakeholder"]))
    assert "索要钱财" in d and "第十六条(一)" in d
    assert "第二十五条" in d


def test_evidence_list_numbered_from_ids_dicts_and_free_text(kb):
    items = checklist(kb, "rumor", agent=False)
    chosen = [i for i in items if i["id"] in ("business_licence", "authoritative_debunk")]
    c = case(evidence=chosen + ["third_party_certificate", "客户退款聊天记录截图", "statement"])
    d = draft_report(kb, c)
    ev = d[d.index("五、证据材料清单"):d.index("六、真实性声明")]
    lines = [l for l in ev.splitlines() if re.match(r"^\d+\. ", l)]
    assert [l.split(". ", 1)[0] for l in lines] == [str(n) for n in range(1, len(lines) + 1)]
    text = "\n".join(lines)
    assert "营业执照" in text and "权威辟谣信息" in text
    assert "具有特定资质的第三方机构出具的证明" in text and "客户退款聊天记录截图" in text
    assert "举报说明" not in text                # the draft itself is the statement


def test_without_evidence_the_required_attachments_are_listed(kb):
    d = draft_report(kb, case(reporter_role="agent"))
    ev = d[d.index("五、证据材料清单"):d.index("六、真实性声明")]
    assert "营业执照" in ev and "授权委托书" in ev and "初步证据" in ev
    assert "权威辟谣信息" not in ev                # type items are the user's choice


def test_date_is_a_placeholder(kb):
    d = draft_report(kb, case())
    assert kb.drafting["report"]["placeholders"]["date"] in d
    assert not re.search(r"20\d\d年", d)


def test_filename():
    assert draft_filename({"id": "HQ-2611-7K3Q"}) == "huqi-report-HQ-2611-7K3Q.txt"
    assert draft_filename({"case_id": "HQ-2611-7K3Q"}) == "huqi-report-HQ-2611-7K3Q.txt"
    assert draft_filename({}) == "huqi-report.txt"
    assert draft_filename({"id": "../../etc/passwd"}) == "huqi-report-etc-passwd.txt"
    assert draft_filename({"id": "报告 1"}).isascii()


# ---------------------------------------------------------------- the loader checks drafting.yaml

@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    return d


def _break(data: Path, old: str, new: str) -> list[str]:
    p = data / "drafting.yaml"
    text = p.read_text(encoding="utf-8")
    assert old in text
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(KnowledgeError) as exc:
        load(data)
    return [str(p) for p in exc.value.problems]


def test_loader_refuses_an_unknown_slot(data):
    problems = _break(data, "举报单位:{enterprise}", "举报单位:{company}")
    assert any("drafting.yaml" in p and "{company}" in p for p in problems), problems


def test_loader_requires_the_pledge_source(data):
    problems = _break(data, "    source: [WS Art. 5(6), WS Art. 18]\n", "")
    assert any("drafting.yaml" in p and "pledge" in p and "source" in p for p in problems), problems


def test_loader_requires_the_lines(data):
    problems = _break(data, "    facts: 事实经过:{description}\n", "")
    assert any("drafting.yaml" in p and "facts" in p for p in problems), problems


def test_loader_checks_flag_statement_ids(data):
    problems = _break(data, "    repeat_offender:\n      text:", "    repeat_offendr:\n      text:")
    assert any("repeat_offendr" in p for p in problems), problems
