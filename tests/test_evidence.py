"""The evidence checklist: WS Art. 5 acceptance items, agent items, then the type's items."""
from __future__ import annotations

import pytest

from knowledge import knowledge
from knowledge.evidence import agent_note, checklist, find_item, type_note


@pytest.fixture(scope="module")
def kb():
    return knowledge()


KEYS = {"id", "title", "article", "hint", "source", "cite", "group", "required"}


def ids(items):
    return [i["id"] for i in items]


def test_agent_gets_power_of_attorney_and_identity(kb):
    items = checklist(kb, "rumor", agent=True)
    assert "power_of_attorney" in ids(items) and "agent_identity" in ids(items)
    poa = next(i for i in items if i["id"] == "power_of_attorney")
    assert poa["group"] == "agent" and poa["required"] is True
    assert poa["cite"] == "《工作规范》第五条(二)"


def test_self_report_has_no_agent_items(kb):
    items = checklist(kb, "rumor", agent=False)
    assert "power_of_attorney" not in ids(items)
    assert "agent_identity" not in ids(items)
    assert not [i for i in items if i["group"] == "agent"]


def test_acceptance_items_come_first_and_are_required(kb):
    items = checklist(kb, "misleading", agent=False)
    groups = [i["group"] for i in items]
    assert groups == sorted(groups, key=lambda g: g != "acceptance")
    assert ids(items)[:2] == ["statement", "business_licence"]
    assert "truth_pledge" in ids(items)
    for i in items:
        assert KEYS <= set(i)
        assert i["required"] is (i["group"] != "type")
        assert i["title"] and i["hint"] and i["cite"].startswith("《")


def test_insult_has_no_type_items_but_the_note(kb):
    items = checklist(kb, "insult", agent=False)
    assert [i for i in items if i["group"] == "type"] == []
    note = type_note(kb, "insult")
    assert note is not None
    assert "第十三条" in note["cite"]
    assert "身份证明" in note["text"]
    assert type_note(kb, "privacy_leak")["cite"].startswith("《工作规范》第十五条")


def test_impersonation_note_says_nothing_more_is_needed_in_principle(kb):
    note = type_note(kb, "impersonation")
    assert "原则上不再要其他证据" in note["text"]
    assert "第七条" in note["cite"]


def test_subtype_tagged_items_come_first(kb):
    items = [i for i in checklist(kb, "misleading", agent=False, subtype="misleading.retracted") if i["group"] == "type"]
    assert ids(items)[0] == "retraction_letter"
    assert items[0]["relevant"] is True
    # without a sub-type the file's order is kept
    plain = [i for i in checklist(kb, "misleading", agent=False) if i["group"] == "type"]
    assert ids(plain)[0] == "source_article"


def test_flag_tagged_items_come_first(kb):
    items = [i for i in checklist(kb, "interference", agent=False, flags=["extortion"]) if i["group"] == "type"]
    assert ids(items)[0] == "extortion_records"
    items = [i for i in checklist(kb, "rumor", agent=False, flags=["dispute"]) if i["group"] == "type"]
    assert ids(items)[0] == "contracts"


def test_every_type_item_appears_once(kb):
    for tid, block in kb.evidence["by_type"].items():
        items = checklist(kb, tid, agent=True, subtype=None)
        type_ids = [i["id"] for i in items if i["group"] == "type"]
        assert type_ids == [e["id"] for e in block.get("items") or []]
        assert len(ids(items)) == len(set(ids(items)))


def test_out_of_scope_gets_nothing(kb):
    assert checklist(kb, "out_of_scope", agent=True) == []
    assert type_note(kb, "out_of_scope") is None


def test_helpers(kb):
    assert find_item(kb, "retraction_letter")["article"] == "第九条(二)"
    assert find_item(kb, "business_licence")["article"] == "第五条(二)"
    assert find_item(kb, "nope") is None
    assert "授权委托书" in agent_note(kb)["text"]
