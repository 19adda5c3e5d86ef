"""Free text to a province id: names, aliases, cities, abbreviations, Traditional, pinyin."""
from __future__ import annotations

import pytest

from knowledge import knowledge
from knowledge.provinces import match_province, province_name


@pytest.fixture(scope="module")
def kb():
    return knowledge()


@pytest.mark.parametrize("text, pid", [
    ("广东", "guangdong"),
    ("粤", "guangdong"),
    ("深圳的公司", "guangdong"),
    ("广东省深圳市", "guangdong"),
    ("guangdong", "guangdong"),
    ("Guang Dong Province", "guangdong"),
    ("廣東", "guangdong"),
    ("廣州", "guangdong"),
    ("新疆兵团", "bingtuan"),
    ("新疆生产建设兵团", "bingtuan"),
    ("石河子", "bingtuan"),
    ("新疆", "xinjiang"),
    ("乌鲁木齐市", "xinjiang"),
    ("沪", "shanghai"),
    ("在京", "beijing"),
    ("我们是一家杭州的公司", "zhejiang"),
    ("浙江西部", "zhejiang"),          # 江西 inside 浙江西部 must not win
    ("黑龍江省哈爾濱市", "heilongjiang"),
    ("内蒙", "neimenggu"),
    ("呼和浩特", "neimenggu"),
    ("重慶", "chongqing"),
    ("shaanxi", "shaanxi"),
    ("shanxi", "shanxi"),
    ("xizang", "xizang"),
    ("beijing city", "beijing"),
    ("湖北武汉", "hubei"),
    ("福建厦门", "fujian"),
])
def test_matches(kb, text, pid):
    assert match_province(kb, text) == pid


@pytest.mark.parametrize("text", [
    "", "   ", "今天天气不错", "总部在北京,工厂在广东", "香港", "asdfgh", "广冬", "?",
])
def test_unsure_or_nothing_is_none(kb, text):
    assert match_province(kb, text) is None


def test_every_name_alias_and_city_of_the_data_matches_its_own_province(kb):
    for pid, p in kb.provinces.items():
        for n in [p["name"]] + list(p.get("aliases") or []) + list(p.get("cities") or []):
            assert match_province(kb, n) == pid, (n, pid)


def test_province_name(kb):
    assert province_name(kb, "guangdong") == "广东省"
    assert province_name(kb, "bingtuan") == "新疆生产建设兵团"
    assert province_name(kb, None) == ""
    assert province_name(kb, "atlantis") == ""
