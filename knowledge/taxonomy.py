"""The stable ids of shared/spec/taxonomy.md. They never change once released."""

TYPES = ("impersonation", "misleading", "rumor", "insult", "privacy_leak",
         "interference", "out_of_scope")

SUBTYPES = {
    "impersonation": ("account_identity", "posing_as", "site_or_app", "other"),
    "misleading": ("distorted_news", "retracted", "stale_rehash", "clickbait",
                   "one_sided", "out_of_context", "announcement_misread", "other"),
    "rumor": ("private_life", "fabricated_violation", "staff_misconduct",
              "exaggerated_difficulty", "distorted_operations", "product_quality",
              "innovation", "other"),
    "insult": ("abuse", "defaced_portrait", "vulgar_association", "other"),
    "privacy_leak": ("identity_documents", "contact_details", "other"),
    "interference": ("extortion", "negative_aggregation", "paid_negative",
                     "hot_topic_marketing", "account_matrix", "competitor_smear",
                     "search_suggestions"),
    "out_of_scope": ("legitimate_criticism", "personal", "ip_goods", "other"),
}
SUBTYPE_IDS = tuple(f"{t}.{s}" for t in TYPES for s in SUBTYPES[t])

FLAGS = ("extortion", "dispute", "key_moment", "stakeholder", "repeat_offender",
         "cross_platform")

PLATFORMS = ("weibo", "douyin", "wechat", "qq", "kuaishou", "xiaohongshu",
             "bilibili", "zhihu", "baidu", "toutiao", "xueqiu", "eastmoney",
             "tencent_news", "netease", "sohu", "taobao", "xianyu", "jd",
             "pinduoduo", "dianping", "douban", "maimai")


def type_of(subtype: str) -> str:
    return subtype.split(".", 1)[0]
