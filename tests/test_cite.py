"""Source strings become what a user reads: document short titles, Chinese numerals, merged lists."""
from __future__ import annotations

import re

import pytest

from knowledge import knowledge
from knowledge.cite import chinese_number, cite, format_locator


@pytest.fixture(scope="module")
def kb():
    return knowledge()


@pytest.mark.parametrize("source, expected", [
    ("WS Art. 10(4)", "《工作规范》第十条(四)"),
    ("WS Art. 5(6)", "《工作规范》第五条(六)"),
    ("WS Art. 29", "《工作规范》第二十九条"),
    ("WS Art. 1", "《工作规范》第一条"),
    ("WS Art. 20", "《工作规范》第二十条"),
    ("WS Art. 11(8)", "《工作规范》第十一条(八)"),
    ("WS Art. 5(2), Art. 7", "《工作规范》第五条(二)、第七条"),
    ("WS Art. 5(2), Art. 5(3)", "《工作规范》第五条(二)(三)"),
    ("WS Art. 21(1)(2)", "《工作规范》第二十一条(一)(二)"),
    ("guidance (十七)", "《指导意见》(十七)"),
    ("notice 三(二)", "《专项行动通知》三(二)"),
    ("notice 二.8", "《专项行动通知》第二部分第8项"),
    ("selfmedia 12", "《自媒体管理通知》第12条"),
    ("civil_code 第1024条", "《民法典》第1024条"),
    ("cases_2025 广东", "各地专项行动报道(广东)"),
    ("WS", "《工作规范》"),
    ("pipl", "《个人信息保护法》"),
    ("research", "公开资料(以平台页面为准)"),
])
def test_single_sources(kb, source, expected):
    assert cite(kb, source) == expected


def test_lists_join_with_the_enumeration_comma_and_share_the_title(kb):
    assert cite(kb, ["WS Art. 5(2)", "WS Art. 7"]) == "《工作规范》第五条(二)、第七条"
    assert cite(kb, ["WS Art. 21", "guidance (二十一)"]) == "《工作规范》第二十一条、《指导意见》(二十一)"
    assert cite(kb, ["guidance (十四)", "guidance (十九)", "notice 三(三)"]) == \
        "《指导意见》(十四)、(十九)、《专项行动通知》三(三)"


def test_items_of_one_article_are_merged_in_order(kb):
    assert cite(kb, ["WS Art. 22(1)", "WS Art. 22(2)", "WS Art. 22(3)"]) == "《工作规范》第二十二条(一)(二)(三)"
    assert cite(kb, ["WS Art. 23(4)", "WS Art. 23(2)"]) == "《工作规范》第二十三条(二)(四)"
    # a different document in between starts a new title
    assert cite(kb, ["WS Art. 26", "notice 二.8", "WS Art. 23(4)"]) == \
        "《工作规范》第二十六条、《专项行动通知》第二部分第8项、《工作规范》第二十三条(四)"


def test_duplicates_and_empties_are_dropped(kb):
    assert cite(kb, ["research", "research", "WS Art. 3", "WS Art. 3"]) == "公开资料(以平台页面为准)、《工作规范》第三条"
    assert cite(kb, []) == ""
    assert cite(kb, None) == ""
    assert cite(kb, ["", "  "]) == ""


def test_numbers():
    assert [chinese_number(n) for n in (1, 9, 10, 11, 19, 20, 21, 29)] == \
        ["一", "九", "十", "十一", "十九", "二十", "二十一", "二十九"]
    assert format_locator("Art. 3(8)") == "第三条(八)"


def test_every_source_in_the_data_reads_as_chinese(kb):
    """No raw key, 'Art.' or ASCII digit-in-brackets leaks into what users read."""
    sources: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "source":
                    sources.update([v] if isinstance(v, str) else [s for s in v or [] if isinstance(s, str)])
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for block in (kb.types, kb.flags, kb.evidence, kb.measures, kb.platforms, kb.channels,
                  kb.routing, kb.faq, kb.cases, kb.drafting):
        walk(block)
    assert len(sources) > 100
    for s in sources:
        text = cite(kb, s)
        assert text, s
        assert "Art" not in text and not re.search(r"\(\d+\)", text), (s, text)
        assert s.split()[0] not in text, (s, text)     # never a raw document key
