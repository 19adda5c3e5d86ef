"""Where is the content? A pasted link (short links from the apps' share
buttons included) or a platform's name in the description must resolve to the
right platform id, and ordinary words must not."""
from __future__ import annotations

import pytest

from knowledge import classify, get_classifier, knowledge
from knowledge.text import normalise

KB = knowledge()
PLATFORMS = KB.platforms


def resolver():
    return get_classifier().platforms


def where(text: str):
    """(platform, every platform seen) for a description, as the classifier resolves it."""
    return resolver().resolve(normalise(text))


DOMAINS = [(pid, d) for pid, p in PLATFORMS.items() for d in p.get("domains") or []]
NAMES = [(pid, str(a)) for pid, p in PLATFORMS.items()
         for a in [p.get("name")] + list(p.get("aliases") or []) + list(p.get("products") or [])]
LATIN_NAMES = sorted({a.lower() for _, a in NAMES if a.isascii()})


# ------------------------------------------------------------------ links

@pytest.mark.parametrize("pid, domain", DOMAINS, ids=[d for _, d in DOMAINS])
def test_every_domain_resolves_from_a_link(pid, domain):
    forms = [f"https://{domain}/a/7301234567", f"http://{domain}", f"{domain}/a/b?c=1",
             domain, f"HTTPS://{domain.upper()}/X"]
    for sub in ("www", "m"):
        host = f"{sub}.{domain}"
        if host not in {d for _, d in DOMAINS}:   # m.weibo.cn is listed itself
            forms.append(f"https://{host}/detail/99")
    for form in forms:
        for text in (f"有人发帖造谣说我们偷税 {form} 请处理",       # link between spaces
                     f"帖子链接{form}说我们偷税"):                  # glued to Chinese
            got, _ = where(text)
            assert got == pid, f"{text!r} -> {got}"


def test_link_decides_end_to_end():
    r = classify("有个号造谣说我们公司偷税漏税被查了 https://www.zhihu.com/question/612345/answer/998877")
    assert r.platform == "zhihu"
    assert r.links == ["https://www.zhihu.com/question/612345/answer/998877"]


# What the apps' share buttons put on the clipboard.
SHARES = [
    ("douyin", "4.10 Mjc:/ 复制打开抖音,看看【某某的作品】这家公司要倒闭了 # 热点 https://v.douyin.com/iRNBho6u/ 12/30 dnq:/"),
    ("xiaohongshu", "http://xhslink.com/a/AbCdEf12,复制本条信息,打开【小红书】App查看精彩内容!"),
    ("bilibili", "【某某公司黑幕揭秘-哔哩哔哩】 https://b23.tv/AbC1234"),
    ("weibo", "http://t.cn/A6abcDEF"),
    ("kuaishou", "https://v.kuaishou.com/AbCdEf 某某公司老板跑路了 复制此消息,打开【快手】直接观看!"),
    ("taobao", "【淘宝】https://m.tb.cn/h.5abcDEF?tk=AbCd CZ0001 「某某品牌旗舰店」点击链接直接打开"),
    ("jd", "https://3.cn/1a-BcDeF"),
    ("wechat", "https://mp.weixin.qq.com/s/AbCdEfGhIjKlMn"),
]


@pytest.mark.parametrize("pid, share", SHARES, ids=[p for p, _ in SHARES])
def test_short_links_from_share_buttons(pid, share):
    got, seen = where(share)
    assert got == pid
    assert seen == [pid]          # the app's name in the share text is the same platform
    assert "cross_platform" not in classify("有人造谣说我们公司资金链断裂 " + share).flags


@pytest.mark.parametrize("host, pid", [
    ("news.qq.com", "tencent_news"),
    ("new.qq.com", "tencent_news"),
    ("view.inews.qq.com", "tencent_news"),
    ("mp.weixin.qq.com", "wechat"),
    ("channels.weixin.qq.com", "wechat"),
    ("qq.com", "qq"),
    ("www.qq.com", "qq"),
    ("user.qzone.qq.com", "qq"),
    ("v.qq.com", "qq"),                  # any other qq.com page
    ("2.taobao.com", "xianyu"),
    ("world.taobao.com", "taobao"),
    ("guba.eastmoney.com", "eastmoney"),
    ("baike.baidu.com", "baidu"),
    ("zhuanlan.zhihu.com", "zhihu"),
    ("Weibo.COM.", "weibo"),             # case and the root dot
])
def test_longest_suffix_wins(host, pid):
    assert resolver().from_host(host) == pid
    got, _ = where(f"有人造谣 https://{host.rstrip('.')}/x/1 说我们偷税")
    assert got == pid


@pytest.mark.parametrize("host", [
    "notweibo.com", "weibo.com.phish.cn", "fakeqq.com", "myjd.com", "weibo.co", "douyin.com.cn.evil.top",
])
def test_look_alike_hosts_are_not_the_platform(host):
    assert resolver().from_host(host) is None
    got, _ = where(f"有个钓鱼网站 https://{host}/login 冒充我们")
    assert got is None


def test_unknown_link_with_a_named_platform():
    # the link is the enterprise's own site; the platform is named in words
    got, seen = where("抖音上有人说我们官网 https://www.example-brand.com 是假的")
    assert got == "douyin" and seen == ["douyin"]


# ------------------------------------------------------------------ names

@pytest.mark.parametrize("pid, name", NAMES, ids=[f"{p}-{i}" if not a.isascii() else f"{p}-{a}"
                                                  for i, (p, a) in enumerate(NAMES)])
def test_every_name_alias_and_product_is_found_in_a_sentence(pid, name):
    for text in (f"我们在{name}上看到一条帖子", f"{name}上有人说我们公司要倒闭",
                 f"有人在 {name.upper()} 发帖骂我们"):
        got, seen = where(text)
        assert got == pid, f"{text!r} -> {got} {seen}"


@pytest.mark.parametrize("alias", LATIN_NAMES)
def test_latin_names_do_not_fire_inside_other_words(alias):
    for text in (f"我们的新品叫 super{alias}pro,销量不错", f"型号 x{alias} 已上市", f"项目代号{alias}s2"):
        got, seen = where(text)
        assert seen == [], f"{alias!r} in {text!r} -> {seen}"


@pytest.mark.parametrize("text", [
    "I'm ready to go, thanks", "we play football every week", "升级到jdk17后报错", "wxyz项目进展顺利",
    "vxlan网络故障", "tbd,稍后确认", "ksp玩家", "pdda格式",
])
def test_ordinary_latin_words_name_no_platform(text):
    assert where(text) == (None, [])


@pytest.mark.parametrize("text, not_pid", [
    ("我们是京东方的供应商,有人说我们要破产", "jd"),
    ("我们南京东路门店被人造谣", "jd"),
    ("谣言像滚雪球一样越传越多", "xueqiu"),
    ("这件事居然上了头条", "toutiao"),
])
def test_ordinary_chinese_words_containing_a_name(text, not_pid):
    _, seen = where(text)
    assert not_pid not in seen


def test_several_names_in_one_sentence_in_order():
    _, seen = where("先是知乎,后来小红书和B站也有人转")
    assert seen == ["zhihu", "xiaohongshu", "bilibili"]


def test_longer_product_name_wins_over_its_platform():
    assert where("抖音电商的店铺页上有人冒充我们") == ("douyin", ["douyin"])
    assert where("微信公众号发文说我们要倒闭") == ("wechat", ["wechat"])


# ------------------------------------------------------------------ several platforms

def test_two_platforms_named_without_a_link_the_first_named_is_the_platform():
    r = classify("微博和抖音上都有人造谣说我们公司资金链断裂,马上要破产")
    assert r.platform == "weibo"
    assert r.platforms == ["weibo", "douyin"]
    assert "cross_platform" in r.flags


@pytest.mark.parametrize("text, first, every", [
    ("小红书、B站、知乎上同时出现一批帖子,说我们的奶粉喝了致癌", "xiaohongshu", ["xiaohongshu", "bilibili", "zhihu"]),
    ("抖音快手都有,说我们的火锅底料用的是回收油", "douyin", ["douyin", "kuaishou"]),
    ("股吧、雪球上同一时间冒出很多帖子说我们董事长被带走了", "eastmoney", ["eastmoney", "xueqiu"]),
    ("Posts on Weibo and Douyin call our company a scam", "weibo", ["weibo", "douyin"]),
], ids=["three", "glued", "finance", "english"])
def test_several_platforms_named(text, first, every):
    r = classify(text)
    assert (r.platform, r.platforms) == (first, every)
    assert "cross_platform" in r.flags
    assert r.as_json()["platforms"] == every


@pytest.mark.parametrize("text, pid", [
    ("有个公号写文章说我们的奶茶用的是过期原料", "wechat"),
    ("一篇公众号文章把我们去年早被撤销的处罚又拿出来说", "wechat"),
    ("群里有人在传我们公司要倒闭了,让大家赶紧去退卡", "wechat"),
    ("视频号上有个账号冒用我们的品牌名直播卖货", "wechat"),
    ("股吧里有人造谣说我们财务造假", "eastmoney"),
    ("QQ群里有人发我们老板的电话", "qq"),
], ids=["gonghao", "gzh-article", "qunli", "shipinhao", "guba", "qq-group"])
def test_a_product_word_alone_names_the_platform(text, pid):
    r = classify(text)
    assert r.platform == pid and r.platforms == [pid]
    assert "cross_platform" not in r.flags


@pytest.mark.parametrize("text", ["办公号码被人公开在网上了", "人群里有人喊我们是骗子"])
def test_words_containing_a_product_word_are_not_the_platform(text):
    assert classify(text).platforms == []


def test_a_link_decides_even_when_another_platform_is_named():
    r = classify("抖音上也有人转发这条 https://weibo.com/1234/Nabc 说我们偷税漏税")
    assert r.platform == "weibo"
    assert r.platforms == ["weibo", "douyin"]
    assert "cross_platform" in r.flags


def test_same_platform_by_link_and_name_is_not_cross_platform():
    r = classify("微博上有人造谣说我们偷税漏税 https://weibo.com/1234/Nabc")
    assert r.platform == "weibo"
    assert "cross_platform" not in r.flags


def test_no_platform():
    r = classify("有人在网上造谣说我们公司偷税漏税被查封了")
    assert r.platform is None and r.platforms == []
    assert "cross_platform" not in r.flags
