"""The classifier on descriptions written the way an enterprise's officer types
them: every sub-type reachable, out-of-scope cases recognised, candidates in
the contract's shape, honest about being unsure, robust to Traditional script
and typos, and the flags that change the advice."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from knowledge import classify, knowledge, taxonomy
from knowledge.text import normalise, to_traditional

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "eval" / "dev_cases.jsonl"
# heldout_like, _b, _d, _e and _g were written independently and are now the
# classifier's examples (knowledge/data/examples.yaml); heldout_c and heldout_f are
# kept out of everything it learns from, so they measure how descriptions written by
# others fare (heldout_f was written to be hard; heldout_k adds English, Traditional and
# several platforms, and was written before the cues it is scored against).
HELDOUT = [ROOT / "tests" / "data" / "heldout_c.jsonl", ROOT / "tests" / "data" / "heldout_f.jsonl",
           ROOT / "tests" / "data" / "heldout_k.jsonl"]

# One description per sub-type, written for these tests (not taken from
# dev_cases.jsonl or from the `examples:` of types.yaml).
REACH = {
    "impersonation.account_identity": "抖音上出现一个叫“XX科技官方旗舰店”的账号,头像直接用了我们的商标,粉丝以为是我们开的",
    "impersonation.posing_as": "最近有人在微信群里以我们公司名义发招商通知,说交两万元就能做区域代理,我们从来没发过这种东西",
    "impersonation.site_or_app": "有人仿冒我们的官网做了一个钓鱼网站,域名就多了个字母,客户在上面登录被盗了账号",
    "impersonation.other": "百度上搜我们品牌出来一个假的售后电话,好几个客户打过去被骗了钱",
    "misleading.distorted_news": "我们上个月的新闻稿被一个公众号转载时删掉了关键一句,意思完全变了,看起来像我们承认了质量问题",
    "misleading.retracted": "之前那家媒体的报道已经撤稿并公开道歉了,但是现在还有很多号在转发原文",
    "misleading.stale_rehash": "几年前的旧闻被人翻出来重新发,删掉了日期和当时的处理结果,网友都以为是最近的事",
    "misleading.clickbait": "那篇文章标题写着“某某集团惊天骗局曝光”,正文讲的只是一个客户退款慢,完全文不对题",
    "misleading.one_sided": "记者只写了三个顾客的投诉,对我们已经给所有人退款赔偿的事只字不提,以偏概全",
    "misleading.out_of_context": "我们总裁在行业峰会上的发言被人截取了半句话,剪成视频说他瞧不起农民工",
    "misleading.announcement_misread": "我们刚发了季度报告,有个财经博主把其中一项计提解读成公司资不抵债,误导投资者",
    "misleading.other": "有个帖子说得模棱两可,很多网友看完都误会我们要涨价了,其实没有这回事",
    "rumor.private_life": "有人在网上编造我们董事长有婚外情,还说他在外面有私生子,纯属捏造",
    "rumor.fabricated_violation": "网上有人造谣说我们公司偷税漏税几千万,已经被税务局查处,根本没有这回事",
    "rumor.staff_misconduct": "有人发帖说我们公司的财务总监挪用公款被警察带走了,完全是瞎编的,他人好好的在上班",
    "rumor.exaggerated_difficulty": "有个自媒体发文章说我们资金链断了发不出工资,公司马上要倒闭,全是谣言",
    "rumor.distorted_operations": "我们去越南投资建厂是正常的业务布局,被人歪曲成老板要转移资产外逃",
    "rumor.product_quality": "有人发视频说我们家的洗发水含有致癌物质,用了会掉头发,我们有合格的检测报告",
    "rumor.innovation": "有篇文章说我们的核心技术都是抄袭国外的,专利也是买来的,根本没有研发能力,纯属抹黑",
    "rumor.other": "网上流传我们公司要被外资收购整体搬走的消息,员工都很恐慌,这是虚假信息",
    "insult.abuse": "一个博主在直播里一直用脏话辱骂我们老板,说我们是垃圾公司、骗子公司",
    "insult.defaced_portrait": "有人把我们创始人的照片P成了猪头,做成表情包在各个群里发",
    "insult.vulgar_association": "有人编黄段子说我们公司女员工靠陪睡拿订单,内容非常低俗",
    "insult.other": "有个账号发了一张图,把我们公司的标志和花圈、棺材放在一起,诅咒我们早点关门",
    "privacy_leak.identity_documents": "有人把我们董事长的身份证号码和护照照片发到了论坛上",
    "privacy_leak.contact_details": "我们老板的私人手机号和家庭住址被人公布在网上,号召大家上门去找他",
    "privacy_leak.other": "有人把我们总经理在医院的病历和检查报告拍照发到网上",
    "interference.extortion": "有个自媒体写了我们的负面文章,然后联系我们说付五万块钱就删稿,不给就继续发",
    "interference.negative_aggregation": "一个号把我们公司这十年来的所有负面新闻整理成合集,每周发一次",
    "interference.paid_negative": "我们查到有人在兼职群里招募写手,按篇付费让人写我们产品的差评",
    "interference.hot_topic_marketing": "最近行业出了个热点事件,有营销号趁机把我们品牌也捆绑进去炒作,目的是给自己直播间带货引流",
    "interference.account_matrix": "几十个账号在同一时间发了一模一样的内容攻击我们,明显是一伙人操控的矩阵号",
    "interference.competitor_smear": "我们的竞争对手利用自己的平台优势,推送大量说我们产品不如他们的对比文章,踩我们捧自己",
    "interference.search_suggestions": "在百度搜索我们公司名字,下拉框就出现“某某公司倒闭”的联想词,根本没有这回事",
    "out_of_scope.legitimate_criticism": "一个顾客在点评上写我们的外卖分量少、送得慢,说的确实是真的,这个能删吗",
    "out_of_scope.personal": "我个人在网上和别人吵架,被对方骂了,这事跟我们公司没关系,能举报吗",
    "out_of_scope.ip_goods": "淘宝上有很多店铺在卖我们品牌的假货,价格很低,怎么处理",
    "out_of_scope.other": "请问注册公司需要准备哪些材料",
}

# A second, differently worded description for most sub-types: shorter, more
# colloquial, some harder. Judged in aggregate, like an evaluation set.
PARAPHRASES = [
    ("impersonation.account_identity", "小红书有个号叫我们品牌名加“客服中心”,还挂着我们的logo,在私信里让顾客加微信退款"),
    ("impersonation.account_identity", "有人注册了一个跟我们董事长同名的微博,头像用的是他的照片,天天发荐股信息"),
    ("impersonation.posing_as", "有人打着我们公司的旗号在网上招聘,要求应聘者先交培训费,这不是我们发的"),
    ("impersonation.posing_as", "网上流传一封“致全体员工的信”,署名是我们总裁,说要降薪50%,这信是伪造的,我们从未发布"),
    ("impersonation.site_or_app", "应用商店里有个假冒我们的app,名字和图标都一样,下载后要求用户充值"),
    ("impersonation.site_or_app", "有个网站把我们官网整个复制了,连ICP备案号都照搬,在上面卖假会员卡"),
    ("impersonation.other", "有人建了个微信群自称我们品牌官方粉丝群,在群里收会费,我们根本没有这个群"),
    ("impersonation.other", "网上到处是假的客服热线,冒充我们,消费者根本分不清真假"),
    ("misleading.distorted_news", "官方媒体发了一篇关于我们的报道,有个号转发时把原文的顺序调整了,还添油加醋,意思全变了"),
    ("misleading.distorted_news", "我们的澄清通稿被人删减后再发,只留了前半段,读者以为我们承认了"),
    ("misleading.retracted", "市监局对我们的处罚决定去年已经撤销了,可是网上还有人拿那个处罚说事"),
    ("misleading.retracted", "那个报道原媒体早就更正了,但是转载的文章还在流传"),
    ("misleading.stale_rehash", "2018年我们工厂出过一次安全事故,早就处理完了,最近有人把时间删掉当成新发生的事在传"),
    ("misleading.stale_rehash", "五年前的老新闻又被翻出来了,也不写当时已经整改完毕"),
    ("misleading.clickbait", "视频标题写“某某奶粉喝死人”,内容其实是一个孩子过敏,跟标题严重不符"),
    ("misleading.clickbait", "这篇文章就是标题党,封面写“某某银行暴雷”,正文说的是一个网点装修暂停营业"),
    ("misleading.one_sided", "报道里只说我们有两起投诉,故意不提我们已经全部解决了"),
    ("misleading.one_sided", "那个博主专挑我们产品的个别问题说事,好的方面一个字都不提,以偏概全"),
    ("misleading.out_of_context", "我们老板接受采访时说的话被断章取义了,前后文一去掉意思完全相反"),
    ("misleading.out_of_context", "有人把我们CEO演讲的片段剪出来,只放了半句话,说他看不起年轻人"),
    ("misleading.announcement_misread", "股吧里有人曲解我们的减持公告,说大股东要清仓跑路"),
    ("misleading.announcement_misread", "我们年报里有一笔正常的资产减值,被人解读成公司快不行了"),
    ("misleading.other", "有人发的内容让大家误解了我们的会员规则,很多人以为要收费了"),
    ("rumor.private_life", "有人造谣说我们老板包养情人,还和老婆闹离婚"),
    ("rumor.private_life", "网上传我们女总裁的绯闻,说她跟某明星有私情,都是胡编的"),
    ("rumor.fabricated_violation", "有帖子说我们公司搞传销、非法集资,已经被公安立案了,我们根本没有"),
    ("rumor.fabricated_violation", "有人造谣我们工厂违规排污被环保局罚款查封,其实我们每次检查都合格"),
    ("rumor.staff_misconduct", "有人编造我们快递员偷拆客户包裹,配的视频根本不是我们的员工"),
    ("rumor.staff_misconduct", "网上说我们一个高管因为受贿被纪委留置了,纯属捏造,他今天还在开会"),
    ("rumor.exaggerated_difficulty", "网上都在传我们要破产了,说我们欠了供应商一大笔钱,工资都发不出来"),
    ("rumor.exaggerated_difficulty", "有人说我们公司裁员一半,老板跑了,其实一切正常"),
    ("rumor.distorted_operations", "我们收购了一家德国公司,被人说成是在往海外转移资产"),
    ("rumor.distorted_operations", "公司总部正常搬迁到上海,有人说我们是撤离本地、割完韭菜就跑"),
    ("rumor.product_quality", "有人说我们的矿泉水细菌超标,喝了拉肚子,我们的产品批批检验合格"),
    ("rumor.product_quality", "网上说我们的电动车会自燃,配图是别的牌子的车"),
    ("rumor.innovation", "有人说我们的芯片是国外的套壳产品,根本没有自主研发能力"),
    ("rumor.innovation", "有个博主说我们高新技术企业的资质是骗来的,技术全是抄袭的"),
    ("rumor.other", "网上传我们公司要被国有化,员工都很慌,这是假消息"),
    ("insult.abuse", "有人在评论区骂我们老板是吸血鬼、奸商,还说去死吧"),
    ("insult.abuse", "一个大V发视频用各种脏话骂我们公司,说我们是流氓企业"),
    ("insult.defaced_portrait", "我们董事长的照片被人恶搞成黑白遗照,在网上传"),
    ("insult.defaced_portrait", "有人用AI换脸把我们老板的脸换到搞笑视频上,做成鬼畜"),
    ("insult.vulgar_association", "有个帖子把我们品牌和色情内容关联在一起,说我们的代言人是卖淫的"),
    ("insult.other", "有人做了我们公司的“讣告”,配上灵堂照片,诅咒我们公司倒闭"),
    ("privacy_leak.identity_documents", "有人在贴吧晒出了我们老板的身份证正反面和户籍信息"),
    ("privacy_leak.identity_documents", "董事长的护照和驾驶证照片被人发到网上了"),
    ("privacy_leak.contact_details", "有人把我们总经理的手机号码和住的小区门牌号发在微博上,让网友去骚扰"),
    ("privacy_leak.contact_details", "我们CEO的私人邮箱和电话号码被人人肉出来挂到网上"),
    ("privacy_leak.other", "有人把我们董事长的银行流水和房产信息发到了网上"),
    ("privacy_leak.other", "有人公布了我们老板孩子的学校和每天的行踪轨迹"),
    ("interference.extortion", "有个号威胁我们,说不投放广告就继续发负面,开价十万"),
    ("interference.extortion", "对方说只要签一个年度合作协议,他们就撤稿,否则继续曝光"),
    ("interference.negative_aggregation", "有个公众号做了个盘点,把我们历年的负面新闻汇总在一起反复发"),
    ("interference.negative_aggregation", "有人专门起底我们公司的黑历史,整理成系列文章"),
    ("interference.paid_negative", "有证据表明那个测评博主收了同行的钱,专门写我们的负面测评"),
    ("interference.paid_negative", "有人雇水军在各个平台刷我们的差评,按条付费"),
    ("interference.hot_topic_marketing", "最近有个食品安全的热点,营销号借机把我们品牌也扯进去,就是为了涨粉卖课"),
    ("interference.account_matrix", "一晚上出现了上百个小号,统一口径发同样的内容骂我们,明显是马甲"),
    ("interference.account_matrix", "有人用一批关联账号在多个平台同时发帖攻击我们"),
    ("interference.competitor_smear", "友商在他们自家的平台上推送贬低我们的文章,搞不正当竞争"),
    ("interference.competitor_smear", "同行找了几个大号发对比评测,故意把我们的产品说得一无是处"),
    ("interference.search_suggestions", "在搜索引擎里输入我们公司名,相关搜索里出现“某某公司骗局”"),
    ("interference.search_suggestions", "平台的热搜推荐词里出现了“某某公司倒闭”,点进去什么都没有"),
    ("out_of_scope.legitimate_criticism", "有媒体报道了我们被罚款的事,内容和处罚决定书一致,我们能让他删吗"),
    ("out_of_scope.legitimate_criticism", "客户在网上投诉我们快递延误,情况属实,我们已经道歉了"),
    ("out_of_scope.personal", "我是公司普通员工,前男友在网上发我的照片骂我,和公司无关"),
    ("out_of_scope.personal", "邻居在业主群里骂我,这是我们私人恩怨"),
    ("out_of_scope.ip_goods", "有人盗用我们的产品图片和详情页在拼多多开店卖货"),
    ("out_of_scope.ip_goods", "我们拍的广告片被人未经授权使用,搬运到自己的账号上"),
    ("out_of_scope.other", "您好,请问你们这个机器人是干什么用的"),
    ("out_of_scope.other", "营业执照变更要怎么办理"),
]


def top3(r) -> list[str]:
    return [c["subtype"] for c in r.candidates[:3]]


# ------------------------------------------------------------------ reachability

def test_reach_covers_the_whole_taxonomy():
    assert set(REACH) == set(taxonomy.SUBTYPE_IDS)
    assert {s for s, _ in PARAPHRASES} == set(taxonomy.SUBTYPE_IDS)


def test_descriptions_are_not_copied_from_the_knowledge_base_or_dev_set():
    kb = knowledge()
    known = {normalise(e).compact for s in kb.subtypes.values() for e in s.get("examples") or []}
    if DEV.exists():
        import json
        known |= {normalise(json.loads(l)["text"]).compact
                  for l in DEV.read_text(encoding="utf-8").splitlines() if l.strip()}
    mine = list(REACH.values()) + [t for _, t in PARAPHRASES]
    assert not [t for t in mine if normalise(t).compact in known]


@pytest.mark.parametrize("subtype", taxonomy.SUBTYPE_IDS)
def test_every_subtype_is_reachable(subtype):
    r = classify(REACH[subtype])
    assert r.subtype == subtype, (REACH[subtype], top3(r), dict(r.cues))
    assert r.type == taxonomy.type_of(subtype)


def test_paraphrases_in_aggregate():
    type_ok = sub3_ok = 0
    misses = []
    for subtype, text in PARAPHRASES:
        r = classify(text)
        type_ok += r.type == taxonomy.type_of(subtype)
        sub3_ok += subtype in top3(r)
        if subtype not in top3(r):
            misses.append(f"{subtype}: got {top3(r)} | {text}")
    n = len(PARAPHRASES)
    assert type_ok / n >= 0.85 and sub3_ok / n >= 0.90, (type_ok / n, sub3_ok / n, misses)


# ------------------------------------------------------------------ out of scope

@pytest.mark.parametrize("subtype, text", [
    # honest reviews
    ("out_of_scope.legitimate_criticism", "顾客说我们服务态度差,这个评价属实,我们已经道歉了"),
    ("out_of_scope.legitimate_criticism", "有个消费者在网上发帖说我们的手机续航差,确实是这样的"),
    # true reporting
    ("out_of_scope.legitimate_criticism", "一家媒体如实报道了我们拖欠供应商货款的事,报道内容都是真的"),
    ("out_of_scope.legitimate_criticism", "记者报道的我们被环保部门罚款的事情况属实,能不能让平台删掉"),
    # personal quarrels
    ("out_of_scope.personal", "我和我前女友在网上互骂,跟公司没关系"),
    ("out_of_scope.personal", "我们一个员工跟邻居吵架被人挂到网上,这是他个人的事,和单位无关"),
    # counterfeit goods
    ("out_of_scope.ip_goods", "京东上有商家卖假冒我们商标的洗衣液"),
    ("out_of_scope.ip_goods", "闲鱼上有人在卖高仿我们品牌的包,怎么投诉"),
    # copyright
    ("out_of_scope.ip_goods", "有人未经许可使用我们拍的照片做广告"),
    ("out_of_scope.ip_goods", "有人在拼多多卖盗版的我们公司出版的书"),
    # patent (the taxonomy sends patent disputes to IP channels too)
    ("out_of_scope.ip_goods", "有家厂抄袭我们的产品外观设计,侵犯我们的专利,还在网上卖"),
], ids=[
    "honest-review-1", "honest-review-2", "true-report-1", "true-report-2", "personal-1", "personal-2",
    "counterfeit-1", "counterfeit-2", "copyright-1", "copyright-2", "patent"])
def test_out_of_scope(subtype, text):
    r = classify(text)
    assert r.type == "out_of_scope", (text, top3(r), dict(r.cues))
    assert r.subtype == subtype, (text, top3(r))
    assert r.flags == []        # no channel advice for what is not a report


@pytest.mark.parametrize("text, subtype", [
    # "none of it is true" must not read as "it is true"
    ("他说我们偷税,没有一句是真的,纯属造谣", "rumor.fabricated_violation"),
    ("网上说我们产品有毒,我们确实没有任何问题,检测全部合格", "rumor.product_quality"),
    ("网上说我们偷税漏税,这些都不属实", "rumor.fabricated_violation"),
    ("网上说我们偷税漏税,这不是真的", "rumor.fabricated_violation"),
], ids=["not-one-word-true", "we-really-have-no-problem", "not-true-shishu", "not-true-zhende"])
def test_denials_are_not_admissions(text, subtype):
    r = classify(text)
    assert r.type != "out_of_scope", (text, top3(r), dict(r.cues))
    assert r.subtype == subtype, (text, top3(r))


@pytest.mark.parametrize("text", [
    "有人说我们的产品致癌物超标,是假冒伪劣",
    "有人在网上说我们的奶粉是假冒产品,喝了会中毒,纯属造谣",
    "网上说我们卖的都是假货,其实全部是正品,有检验报告",
], ids=["shoddy-and-carcinogenic", "fake-milk-powder-rumor", "says-we-sell-fakes"])
def test_a_rumor_that_our_products_are_fake_is_not_a_counterfeit_complaint(text):
    """"They say our goods are fake" is a product rumor (WS Art. 10(6)); only
    "someone sells fakes of our brand" goes to the IP channels."""
    r = classify(text)
    assert r.subtype == "rumor.product_quality", (text, top3(r), dict(r.cues))


@pytest.mark.parametrize("text", [
    "网上有个视频用AI把我们董事长的脸换了上去,还配了他的声音,在直播间带货卖保健品",
    "有人用我们创始人的数字人形象录视频推荐股票,声音是克隆的",
    "一段深度伪造的视频里我们总裁在号召大家买某只股票",
], ids=["face-swap-selling", "digital-human-stocks", "deep-fake"])
def test_ai_cloning_of_an_executive_to_sell_is_posing_as(text):
    """WS Art. 6(2) 假借企业家名义发布信息, not a defaced portrait (12(2))."""
    r = classify(text)
    assert r.subtype == "impersonation.posing_as", (text, top3(r), dict(r.cues))


@pytest.mark.parametrize("text", [
    "公司官网昨晚被黑客入侵了,首页换成了博彩链接",
    "我们的官方微博账号被盗了,盗号的人发了一堆广告",
    "服务器被植入木马,网站打开就跳转到别的页面",
], ids=["defaced-site", "stolen-account", "trojan"])
def test_a_hacked_site_or_account_is_a_security_incident(text):
    r = classify(text)
    assert r.subtype == "out_of_scope.other", (text, top3(r), dict(r.cues))
    assert "extortion" not in r.flags


@pytest.mark.parametrize("text", [
    "有人在评论区骂我们是汉奸企业,说老板是卖国贼",
    "一个博主说我们公司是美国的走狗,让粉丝都来骂",
], ids=["hanjian", "zougou"])
def test_political_labels_are_abuse(text):
    """WS Art. 12(1) 攻击谩骂企业或企业家."""
    r = classify(text)
    assert r.subtype == "insult.abuse", (text, top3(r), dict(r.cues))


def test_a_competitors_staff_swearing_is_abuse_with_the_dispute_flag():
    r = classify("对面那家竞争对手的业务员在客户面前辱骂我们,说我们是骗子公司,视频被发到了网上")
    assert r.subtype == "insult.abuse", (top3(r), dict(r.cues))
    assert "dispute" in r.flags


def test_a_competitor_using_its_reach_is_still_a_smear():
    r = classify("竞争对手利用自家平台的流量优势,在首页推送说我们产品有安全隐患的文章")
    assert r.subtype == "interference.competitor_smear", (top3(r), dict(r.cues))
    assert "dispute" in r.flags


@pytest.mark.parametrize("text, subtype", [
    ("A blogger keeps spreading rumors that our chairman was arrested for bribery.", "rumor.staff_misconduct"),
    ("Someone registered an account using our company name and logo as the avatar.",
     "impersonation.account_identity"),
    ("Our founder's passport and ID card photos were posted on a forum.", "privacy_leak.identity_documents"),
    ("The reporter said he would publish the story unless we paid an advertising fee.", "interference.extortion"),
    ("When people search for our brand the autocomplete shows 'scam'.", "interference.search_suggestions"),
    ("Hackers defaced our corporate website last night.", "out_of_scope.other"),
], ids=["rumor", "fake-account", "passport", "extortion", "autocomplete", "hacked"])
def test_english_descriptions_are_classified(text, subtype):
    r = classify(text)
    assert r.english
    assert r.subtype == subtype, (text, top3(r), dict(r.cues))


def test_a_chinese_description_with_english_words_is_not_english():
    r = classify("competitor 的 sales 在群里发 fake 的检测报告,说我们的设备不合格")
    assert not r.english


# ------------------------------------------------------------------ shape

@pytest.mark.parametrize("text", list(REACH.values())[:12] + ["", "😡", "网上有个帖子", "x" * 20_000])
def test_candidates_shape(text):
    r = classify(text)
    c = r.candidates
    assert len(c) >= 3
    subs = [x["subtype"] for x in c]
    assert len(set(subs)) == len(subs) and set(subs) <= set(taxonomy.SUBTYPE_IDS)
    scores = [x["score"] for x in c]
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True)
    assert c[0]["subtype"] == r.subtype
    assert r.type == taxonomy.type_of(r.subtype)
    assert set(r.flags) <= set(taxonomy.FLAGS)
    assert r.platform is None or r.platform in knowledge().platforms


def test_clear_case_scores_higher_than_a_vague_one():
    clear = classify(REACH["rumor.exaggerated_difficulty"]).candidates[0]["score"]
    vague = classify("我们公司被人搞了").candidates[0]["score"]
    assert clear > vague


# ------------------------------------------------------------------ unsure

UNSURE = {
    "empty": "", "spaces": "   ", "emoji": "😡😡😡", "one-emoji": "🙏", "latin-garbage": "asdkjhqwe zxcmnb",
    "question-marks": "?????", "digits": "1234567", "control": "\x00\x01", "haha": "哈哈哈哈", "de-de": "的的的的的的",
    "zip-header": "PK\x03\x04\x14\x00", "en": "嗯", "ok": "ok",
    # vague: something happened, but nothing says what
    "vague-gao-le": "我们公司被人搞了,怎么办", "vague-a-post": "网上有个帖子", "vague-help": "帮帮我们",
    "vague-something": "有人发了一条关于我们的东西", "vague-hacked": "我们被黑了",
    "vague-not-good": "网上有人说我们不好", "vague-how": "这个怎么处理",
}


@pytest.mark.parametrize("text", list(UNSURE.values()), ids=list(UNSURE))
def test_unsure_for_empty_garbage_or_vague(text):
    r = classify(text)
    assert r.unsure is True, (text, top3(r), r.candidates[0]["score"])


@pytest.mark.parametrize("subtype", ["rumor.exaggerated_difficulty", "interference.extortion",
                                     "privacy_leak.contact_details", "impersonation.site_or_app",
                                     "out_of_scope.ip_goods"])
def test_not_unsure_for_a_clear_case(subtype):
    assert classify(REACH[subtype]).unsure is False


# ------------------------------------------------------------------ script and typos

@pytest.mark.parametrize("subtype", taxonomy.SUBTYPE_IDS)
def test_traditional_classifies_like_simplified(subtype):
    simp = REACH[subtype]
    trad = to_traditional(simp)
    assert trad != simp
    a, b = classify(simp), classify(trad)
    assert b.traditional is True and a.traditional is False
    assert (b.type, b.subtype, b.candidates, b.platform, b.flags) == \
           (a.type, a.subtype, a.candidates, a.platform, a.flags)


@pytest.mark.parametrize("subtype, text", [
    # pinyin-IME homophone slips, one character in the decisive phrase
    ("rumor.exaggerated_difficulty", "有个自媒体说我们资金连断裂了"),            # 链 → 连
    ("interference.search_suggestions", "我们公司名字的搜索联想次里出现了倒闭两个字"),  # 词 → 次
    ("privacy_leak.identity_documents", "有人把我们老板的身份正号码发到网上"),     # 证 → 正
    ("misleading.clickbait", "那篇文章标题当,标题与内容严重不服"),               # 党 → 当, 符 → 服
    ("interference.paid_negative", "有人在兼职群招暮写手写我们的黑稿"),           # 募 → 暮
    ("misleading.out_of_context", "我们老板的讲话被人断章取意了"),               # 义 → 意 (a 4-character idiom)
    ("interference.search_suggestions", "百度搜我们公司,大家都在收里出现骗局"),     # 搜 → 收
    ("rumor.fabricated_violation", "有人在网上说我们公司财务照假"),               # 造 → 照 (inside a 4-character cue)
    # variant characters people type all the time
    ("interference.account_matrix", "一堆矩阵帐号在骂我们"),                      # 账号 / 帐号
    ("misleading.retracted", "那家媒体的报道已经被撤消了,还有人在传"),           # 撤销 / 撤消
], ids=["lian-duanlie", "lianxiang-ci", "shenfen-zheng", "biaoti-dang", "zhao-mu", "duanzhang-quyi-4char",
        "dajia-dou-zai-shou", "caiwu-zhaojia", "variant-zhanghao", "variant-chexiao"])
def test_one_wrong_character_still_classifies(subtype, text):
    r = classify(text)
    assert r.subtype == subtype, (text, top3(r), dict(r.cues))


# ------------------------------------------------------------------ flags

def flags(text: str) -> list[str]:
    return classify(text).flags


@pytest.mark.parametrize("text", [
    "对方要我们交三万块删帖费,不然就继续发我们的负面",
    "有个自称记者的人说,不想被曝光的话就投十万广告费",
    "那个号发了我们的黑稿,私下开价五万说给钱就删",
], ids=["shantie-fei", "guanggao-fei", "kaijia"])
def test_extortion_flag(text):
    r = classify(text)
    assert "extortion" in r.flags
    assert r.subtype == "interference.extortion"


def test_extortion_is_also_a_police_matter():
    """The flag's meaning and the channel plan both send the user to the police."""
    kb = knowledge()
    assert any(w in kb.flags["extortion"]["meaning"] for w in ("公安", "报警", "报案"))
    police = [s for s in kb.routing["steps"] if s["channel"] == "police"]
    assert any("flag:extortion" in (s["when"] if isinstance(s["when"], list) else [s["when"]])
               for s in police)


@pytest.mark.parametrize("text", [
    "公司正在准备IPO,网上突然冒出很多说我们偷税的帖子",
    "我们下个月就要上市了,这时候有人造谣说我们财务造假",
    "这事市场监管局已经立案调查了,结果还没出来,网上就有人说我们卖假药",
    "正在融资的关键时刻,有人造谣说我们资金链断裂",
], ids=["ipo", "next-month-listing", "under-investigation", "financing"])
def test_key_moment_flag(text):
    assert "key_moment" in flags(text), (text, classify(text).cues)


def test_stakeholder_versus_the_chairman_himself():
    assert "stakeholder" in flags("有人造谣说我们子公司的总经理被警察抓了")
    assert "stakeholder" in flags("网上有人造谣说我们公司的一个股东在外面赌博欠了几千万,完全是编的")
    assert "stakeholder" in flags("有人造谣说我们的副总裁吸毒被抓")
    assert "stakeholder" not in flags("有人造谣说我们董事长被警察抓了")
    assert "stakeholder" not in flags("有人造谣说我们公司董事长本人吸毒被抓")


@pytest.mark.parametrize("text", [
    "同一个账号已经第三次发这种谣言了,删了又发",
    "那个号被平台封了以后又注册新号继续造谣说我们产品有毒",
    "这个博主天天发视频骂我们是骗子公司,已经持续半年了",
], ids=["third-time", "new-account", "every-day"])
def test_repeat_offender_flag(text):
    assert "repeat_offender" in flags(text)


def test_a_single_post_is_not_a_repeat_offender():
    assert "repeat_offender" not in flags("有个号发了一条帖子造谣说我们产品有毒")


@pytest.mark.parametrize("text", [
    "发帖的是我们刚辞退的前员工,说我们拖欠工资,我们正在劳动仲裁",
    "造谣的是一个跟我们有合同纠纷的供应商,说我们骗钱",
    "我们已经起诉了那个博主,他还在继续说我们的产品有毒",
], ids=["ex-employee", "contract", "lawsuit"])
def test_dispute_flag(text):
    assert "dispute" in flags(text)


@pytest.mark.parametrize("text, flag", [
    ("对方没有要钱,就是单纯造谣说我们要倒闭", "extortion"),
    ("造谣的不是竞争对手,是一个普通网民,说我们产品有毒", "dispute"),
    ("我们和发帖人没有纠纷,他就是恶意造谣说我们偷税", "dispute"),
], ids=["no-money-asked", "not-a-competitor", "no-dispute"])
def test_negated_flags_do_not_fire(text, flag):
    assert flag not in flags(text), (text, classify(text).cues)


def test_no_flags_for_a_plain_case():
    assert flags("有人在网上造谣说我们公司偷税漏税被查封了") == []


def test_out_of_scope_still_states_its_facts():
    # flags are what the text states (taxonomy.md), whatever the reading: a competitor
    # selling fakes is an IP matter, and the parties are competitors
    from knowledge import classify
    r = classify("竞争对手在淘宝上卖我们品牌的假货")
    assert r.type == "out_of_scope"
    assert r.flags == ["dispute"]


# ------------------------------------------------------------------ the data the classifier matches

def _cue_parts(entry):
    for fld in ("cues", "weak_cues", "strong_cues", "not_cues"):
        for cue in entry.get(fld) or []:
            for part in str(cue).split("+"):
                yield fld, str(cue), part.strip()


def test_every_cue_and_platform_name_can_match():
    """Cues are matched against normalised, space-free text: a cue with a
    space, a capital that normalises differently, Traditional or full-width
    characters can never fire."""
    kb = knowledge()
    bad = []
    entries = ([(t, e) for t, e in kb.types.items()] + [(s, e) for s, e in kb.subtypes.items()]
               + [(f, e) for f, e in kb.flags.items()])
    for owner, e in entries:
        for fld, cue, part in _cue_parts(e):
            if normalise(part).compact != part.lower():
                bad.append(f"{owner} {fld}: {cue!r}")
    for pid, p in kb.platforms.items():
        for a in [p.get("name")] + list(p.get("aliases") or []) + list(p.get("products") or []):
            if normalise(str(a)).text != str(a).lower():
                bad.append(f"platform {pid}: {a!r}")
    assert not bad, bad


def test_no_platform_name_is_also_an_exception():
    """A word in name_exceptions is blanked before names are matched, so a
    platform name listed there can never resolve."""
    kb = knowledge()
    exceptions = {w.lower() for w in kb.platform_exceptions}
    clash = [(pid, a) for pid, p in kb.platforms.items()
             for a in [p.get("name")] + list(p.get("aliases") or []) + list(p.get("products") or [])
             if str(a).lower() in exceptions]
    assert not clash, clash


# ------------------------------------------------------------------ evaluation sets

def _evaluate():
    spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "bench" / "evaluate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.evaluate


@pytest.mark.skipif(not DEV.exists(), reason="shared/eval/dev_cases.jsonl is not beside the repo")
def test_dev_set_figures():
    f = _evaluate()(DEV)
    print("dev:", f)
    assert f["cases"] >= 50
    assert f["type_top1"] >= 0.90, f
    assert f["subtype_top3"] >= 0.90, f
    assert f["platform_accuracy"] >= 0.98, f


@pytest.mark.parametrize("path", HELDOUT, ids=lambda p: p.stem)
def test_held_out_figures(path):
    f = _evaluate()(path)
    print(path.stem, f)
    assert f["cases"] >= 100
    assert f["type_top1"] >= 0.88, f
    assert f["subtype_top3"] >= 0.90, f
    assert f["platform_accuracy"] >= 0.98, f


@pytest.mark.parametrize("path", HELDOUT, ids=lambda p: p.stem)
def test_the_held_out_sets_are_not_among_the_examples(path):
    import json
    from knowledge import knowledge
    learned = {t for texts in knowledge().examples.values() for t in texts}
    held_out = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert not learned.intersection(held_out)


@pytest.mark.parametrize("text", ["有个公众号一直发文章抹黑我们，还私信说给5万就删",
                                  "对方说转两千块就删帖"])
def test_a_price_for_deleting_is_the_extortion_flag(text):
    assert "extortion" in classify(text).flags


def test_a_platform_that_simply_deleted_is_not_extortion():
    assert "extortion" not in classify("我们投诉以后平台看了就删了，但是那个号又发了一遍").flags
