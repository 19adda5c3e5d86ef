"""Normalisation: whatever an officer pastes (Traditional, full-width, links,
junk) must come out as Simplified, lower-case, half-width text the cues can
match, with the links set aside — quickly, and without ever raising."""
from __future__ import annotations

import random
import time

import pytest

from knowledge.text import MAX_CHARS, normalise


# ------------------------------------------------------------------ script

def test_traditional_to_simplified_and_flag():
    n = normalise("有人在論壇上造謠,說我們公司資金鏈斷裂、馬上就要倒閉了")
    assert n.text == "有人在论坛上造谣,说我们公司资金链断裂、马上就要倒闭了"
    assert n.traditional is True


def test_simplified_is_not_flagged_traditional():
    n = normalise("有人在论坛上造谣,说我们公司资金链断裂、马上就要倒闭了")
    assert n.traditional is False
    assert n.text == "有人在论坛上造谣,说我们公司资金链断裂、马上就要倒闭了"


def test_short_traditional_phrase_is_flagged():
    assert normalise("老闆被抹黑").traditional is True
    assert normalise("老板被抹黑").traditional is False


def test_simplified_words_that_look_traditional_are_kept():
    # characters that are both valid Simplified and a Traditional variant
    for s in ("干部", "后来", "发表", "头发", "皇后"):
        assert normalise(s).text == s


def test_no_chinese_is_not_traditional():
    assert normalise("hello world 123").traditional is False
    assert normalise("").traditional is False


# ------------------------------------------------------------------ width, case, spaces

def test_full_width_letters_digits_punctuation():
    n = normalise("ＡＢＣ公司１２３号，真的吗？！（急）")
    assert n.text == "abc公司123号,真的吗?!(急)"


def test_mixed_case_is_lowered():
    assert normalise("WeiBo 上的 DouYin 视频 APP").text == "weibo 上的 douyin 视频 app"


def test_whitespace_collapses_and_compact_has_none():
    n = normalise("  有人\t在\n\n微博\u3000上   说\xa0我们\r\n  ")
    assert n.text == "有人 在 微博 上 说 我们"
    assert n.compact == "有人在微博上说我们"


def test_circled_and_styled_characters_fold():
    assert normalise("①号门店 𝐀𝐁𝐂").text == "1号门店 abc"


# ------------------------------------------------------------------ links

@pytest.mark.parametrize("raw, link, host", [
    ("https://m.weibo.cn/status/5012345678", "https://m.weibo.cn/status/5012345678", "m.weibo.cn"),
    ("http://www.douyin.com/video/7301", "http://www.douyin.com/video/7301", "www.douyin.com"),
    ("weibo.com/u/1234567", "https://weibo.com/u/1234567", "weibo.com"),
    ("www.zhihu.com", "https://www.zhihu.com", "www.zhihu.com"),
    ("v.douyin.com/iRNBho6u/", "https://v.douyin.com/iRNBho6u/", "v.douyin.com"),
    ("HTTPS://WEIBO.COM/ABC", "HTTPS://WEIBO.COM/ABC", "weibo.com"),
    ("t.cn/A6xYz", "https://t.cn/A6xYz", "t.cn"),
    ("mp.weixin.qq.com/s/AbC-dEf_12?scene=1", "https://mp.weixin.qq.com/s/AbC-dEf_12?scene=1", "mp.weixin.qq.com"),
])
def test_link_with_and_without_scheme(raw, link, host):
    n = normalise(f"对方发的帖子 {raw} 请看")
    assert n.links == (link,)
    assert n.hosts == (host,)
    assert n.text == "对方发的帖子 请看"      # the link is not matched as words


def test_link_glued_to_chinese_text():
    n = normalise("帖子地址是https://weibo.com/1234/Nabc然后他还说我们要倒闭")
    assert n.hosts == ("weibo.com",)
    assert n.links == ("https://weibo.com/1234/Nabc",)
    assert "然后他还说我们要倒闭" in n.text


def test_trailing_punctuation_is_not_part_of_the_link():
    n = normalise("见(https://b23.tv/xYz12),谢谢。")
    assert n.links == ("https://b23.tv/xYz12",)
    n = normalise("链接:www.douyin.com。")
    assert n.links == ("https://www.douyin.com",)


@pytest.mark.parametrize("raw", ["帖子在 www.douyin.com. 请看", "帖子在www.douyin.com.", "帖子在 www.douyin.com, 请看",
                                 "帖子在 www.douyin.com! 快看"], ids=["dot-space", "dot-end", "comma", "bang"])
def test_bare_host_followed_by_ascii_punctuation(raw):
    """Half-width punctuation right after a bare host (typed with the IME in
    half-width mode, or a full-width "．" folded by NFKC) ends the link."""
    n = normalise(raw)
    assert n.hosts == ("www.douyin.com",), n
    assert "douyin" not in n.text


def test_several_links_in_order():
    n = normalise("微博 https://weibo.com/1/a 抖音 v.douyin.com/x 小红书 xhslink.com/a/b")
    assert n.hosts == ("weibo.com", "v.douyin.com", "xhslink.com")


def test_full_width_url():
    n = normalise("原帖:ｈｔｔｐｓ：／／ｍ．ｗｅｉｂｏ．ｃｎ／ｓｔａｔｕｓ／１２３")
    assert n.hosts == ("m.weibo.cn",)
    assert n.links == ("https://m.weibo.cn/status/123",)
    assert n.text == "原帖:"


def test_dotted_words_that_are_not_links():
    for s in ("版本1.2.3发布", "e.g. 他说的", "No.1门店", "文件 report.docx", "金额3.5万"):
        assert normalise(s).links == (), s


# ------------------------------------------------------------------ junk

def test_c0_control_characters_are_dropped():
    n = normalise("造\x00谣\x07说\x1b我们\x7f倒闭\ufffd了")
    assert n.text == "造谣说我们倒闭了"


def test_c1_control_characters_are_dropped():
    """U+0080–U+009F are control characters too (they appear when bytes are
    decoded with the wrong codec)."""
    n = normalise("造\x81谣\x9b说我们\x80倒闭了")
    assert n.text == "造谣说我们倒闭了"


def test_zero_width_characters_do_not_split_phrases():
    """Text copied from posts often carries zero-width characters (some posters
    insert them on purpose to dodge keyword filters)."""
    n = normalise("资金链\u200b断裂\u200c,马上\u200d破产\ufeff,\u2060跑路")
    assert n.compact == "资金链断裂,马上破产,跑路"


def test_emoji_only():
    n = normalise("😡😡😡🙏🙏")
    assert n.links == () and n.traditional is False
    assert n.compact == "😡😡😡🙏🙏"


def test_empty_and_none():
    for raw in ("", "   \n\t ", None):
        n = normalise(raw)
        assert n.text == "" and n.compact == "" and n.links == ()


@pytest.mark.parametrize("raw", [
    "PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",                 # start of a .docx
    bytes(range(256)).decode("latin-1"),
    random.Random(7).randbytes(3000).decode("utf-8", errors="replace"),
    random.Random(8).randbytes(3000).decode("latin-1"),
    "\ud83d",                        # a lone surrogate: valid in JSON ("\ud83d"), not in UTF-8
    "abc\udcff\udcfe造谣",            # what surrogateescape decoding leaves behind
], ids=["docx-header", "all-latin1", "random-utf8-replaced", "random-latin1", "lone-surrogate", "surrogateescape"])
def test_binary_ish_strings_do_not_raise(raw):
    n = normalise(raw)
    assert isinstance(n.text, str) and len(n.text) <= MAX_CHARS
    n.text.encode("utf-8")           # whatever comes out can be written out again


# ------------------------------------------------------------------ size and speed

def _timed(raw: str):
    t = time.perf_counter()
    n = normalise(raw)
    return n, time.perf_counter() - t


def test_100kb_input_is_cut_and_fast():
    raw = "有人在微博上造谣说我们公司资金链断裂,马上要倒闭了。" * 4000    # ~100 K characters
    assert len(raw) >= 100_000
    n, dt = _timed(raw)
    assert len(n.text) <= MAX_CHARS
    assert n.text.startswith("有人在微博上造谣")
    assert n.original == raw
    assert dt < 0.1, f"{dt:.3f}s"


def test_100kb_of_links_is_cut_and_fast():
    raw = "https://weibo.com/u/1234567 " * 4000
    n, dt = _timed(raw)
    assert 0 < len(n.links) <= MAX_CHARS // 10
    assert dt < 0.1, f"{dt:.3f}s"


@pytest.mark.parametrize("name, raw", [
    ("dotted letters", "a." * 50_000),
    ("ip addresses", ".".join(str(i % 256) for i in range(30_000))),
    ("dotted words", ".".join(("data", "item", "value", "obj")[i % 4] for i in range(25_000))),
])
def test_100kb_of_dotted_garbage_is_fast(name, raw):
    """Long runs of dot-separated tokens (a pasted log or minified data) must
    not make the link pattern backtrack for seconds: one such message would
    stall the bot for everyone."""
    n, dt = _timed(raw)
    assert len(n.text) <= MAX_CHARS
    assert dt < 0.1, f"{name}: {dt:.3f}s"


# ------------------------------------------------------------------ stability

@pytest.mark.parametrize("raw", [
    "有人在論壇上造謠 https://weibo.com/1 ＡＢＣ",
    "WeiBo  上  有人\t说",
    "😡 ① 𝐀 (急) ...",
], ids=["traditional-link-fullwidth", "spaces", "symbols"])
def test_normalising_twice_changes_nothing(raw):
    once = normalise(raw)
    twice = normalise(once.text)
    assert twice.text == once.text
    assert twice.links == ()
