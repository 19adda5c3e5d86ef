"""The report an enterprise copies or downloads, filled from what the case holds.

Every fixed sentence comes from drafting.yaml ``report``; this module only
puts the case's facts into its slots. What the case does not hold stays a
visible 【placeholder】 for the user to fill in — above all the contact and the
date: huqi never invents a phone number, a URL or a date.

Case keys read: enterprise, reporter_role ("self" | "agent"), reporter_name,
contact, type, subtype, subtypes (the further ones are named too), flags,
platform, links, description, evidence (a list of checklist item dicts or
evidence ids or free text), and id / case_id (file name).
"""
from __future__ import annotations

import re

from .cite import cite
from .evidence import checklist, find_item
from .measures import expected_measures


class _Slots(dict):
    """str.format_map mapping that fails loudly on a slot the template has but the code did not fill."""

    def __missing__(self, key):
        raise KeyError(f"drafting.yaml uses slot {{{key}}} that draft_report does not fill")


def _fill(template: str, **values) -> str:
    return template.format_map(_Slots(values))


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _with_cite(text: str, citation: str) -> str:
    """"……。" + cite -> "……(cite)。"."""
    text = _text(text)
    if not citation:
        return text
    if text.endswith("。"):
        return f"{text[:-1]}({citation})。"
    return f"{text}({citation})"


def _first_sentence(text: str) -> str:
    text = " ".join(_text(text).split())
    head, dot, _ = text.partition("。")
    return head + dot


def _article_cite(kb, entry: dict) -> str:
    """《工作规范》 + the entry's `article` (第十条(四)), or its source when it has no WS article."""
    article = _text(entry.get("article"))
    if article.startswith("第"):
        return kb.documents.get("WS", {}).get("short", "") + article
    return cite(kb, entry.get("source"))


def _evidence_titles(kb, case: dict, inline: set[str]) -> list[str]:
    titles: list[str] = []
    for e in case.get("evidence") or []:
        if isinstance(e, dict):
            if e.get("id") in inline:
                continue
            title = _text(e.get("title"))
        else:
            item = find_item(kb, str(e))
            if item is not None:
                if item.get("id") in inline:
                    continue
                title = _text(item.get("title"))
            else:
                title = _text(str(e))          # free text the user typed, e.g. "聊天记录截图"
        if title and title not in titles:
            titles.append(title)
    return titles


def _other_subtypes(kb, case: dict, main: str) -> list[dict]:
    """The case's further sub-types (``case["subtypes"]`` after the main one), known and within the taxonomy."""
    out, seen = [], {main}
    for sid in case.get("subtypes") or []:
        sub = kb.subtypes.get(sid) if isinstance(sid, str) else None
        if sub and sid not in seen and sub.get("type") in kb.types and sub.get("type") != "out_of_scope":
            seen.add(sid)
            out.append(sub)
    return out


def draft_report(kb, case: dict) -> str:
    """The report text in Simplified Chinese (sections of drafting.yaml `report`)."""
    t = kb.drafting["report"]
    ph, lines, sec = t["placeholders"], t["lines"], t["sections"]

    enterprise = _text(case.get("enterprise")) or ph["enterprise"]
    agent = case.get("reporter_role") == "agent"
    agent_name = _text(case.get("reporter_name")) or ph["agent"]
    contact_parts = [_text(case.get("reporter_name")), _text(case.get("contact"))]
    contact = " ".join(p for p in contact_parts if p) if _text(case.get("contact")) else ph["contact"]
    type_id = case.get("type")
    subtype_id = case.get("subtype")
    flags = [f for f in case.get("flags") or [] if f in kb.flags]
    links = [str(l).strip() for l in case.get("links") or [] if str(l).strip()]
    platform = kb.platforms.get(case.get("platform") or "")
    description = _text(case.get("description")) or ph["description"]

    out: list[str] = [t["title"].strip(), ""]

    # 一、举报主体
    out.append(sec["reporter"])
    out.append(_fill(lines["enterprise"], enterprise=enterprise))
    if agent:
        out.append(_fill(lines["agent"], agent=agent_name, enterprise=enterprise, cite=cite(kb, t["agent_source"])))
    else:
        out.append(_fill(lines["self"], cite=cite(kb, t["self_source"])))
    out.append(_fill(lines["contact"], contact=contact))
    out.append("")

    # 二、被举报内容
    out.append(sec["content"])
    out.append(_fill(lines["platform"], platform=platform["name"] if platform else ph["platform"]))
    out.append(_fill(lines["links"], cite=cite(kb, t["links_source"])))
    if links:
        out += [f"{i}. {link}" for i, link in enumerate(links, 1)]
    else:
        out.append(ph["links"])
    out.append("")

    # 三、举报事项与理由
    out.append(sec["reason"])
    ttype = kb.types.get(type_id) if type_id != "out_of_scope" else None
    sub = kb.subtypes.get(subtype_id) if ttype and subtype_id else None
    if sub and sub.get("type") != type_id:
        sub = None
    if ttype:
        type_cite = _article_cite(kb, ttype)
        out.append(_fill(lines["type"], type_title=ttype["title"], type_cite=type_cite))
        subs = [sub] + _other_subtypes(kb, case, subtype_id) if sub else []
        if sub:
            items = [_fill(lines["subtype_item"], subtype_title=s["title"], subtype_cite=_article_cite(kb, s))
                     for s in subs]
            out.append(_fill(lines["subtype"], subtypes=_text(lines["subtype_sep"]).join(items)))
        out.append(_fill(lines["facts"], description=description))
        reason = _first_sentence(sub.get("explanation") if sub else ttype.get("explanation"))
        if sub:
            for key, s in zip(["reason"] + ["reason_also"] * len(subs), subs):
                out.append(_fill(lines[key], subtype_cite=_article_cite(kb, s), subtype_title=s["title"],
                                 reason=_first_sentence(s.get("explanation"))))
        else:
            out.append(_fill(lines["reason_type_only"], type_cite=type_cite, type_title=ttype["title"], reason=reason))
    else:
        out.append(_fill(lines["type"], type_title=ph["type"], type_cite=cite(kb, "WS Art. 4")))
        out.append(_fill(lines["facts"], description=description))
    statements = t.get("flag_statements") or {}
    for f in flags:
        st = statements.get(f)
        if st:
            out.append(_with_cite(st["text"], cite(kb, st.get("source"))))
    out.append("")

    # 四、处理请求
    out.append(sec["request"])
    requests = t.get("requests") or {}
    wanted = expected_measures(kb, type_id, flags, subtype=subtype_id) if ttype else []
    if not any(m["id"] == "delete" for m in wanted):
        # the enterprise asks for deletion even where a dispute makes a label the likelier outcome
        delete = kb.measures.get("delete") or {}
        wanted.insert(0, {"id": "delete", "cite": cite(kb, delete.get("source"))})
    n = 0
    for m in wanted:
        template = requests.get(m["id"])
        if template:
            n += 1
            out.append(f"{n}. " + _fill(template, cite=m["cite"]))
    out.append("")

    # 五、证据材料清单
    out.append(sec["evidence"])
    inline = set(t.get("inline_items") or [])
    titles = _evidence_titles(kb, case, inline)
    if not titles:
        # the Art. 5 items every report attaches; the draft itself is the statement, pledge and URL list
        titles = [i["title"] for i in checklist(kb, type_id, agent=agent)
                  if i["group"] != "type" and i["id"] not in inline] if ttype else []
        titles = titles or [ph["evidence"]]
    out += [f"{i}. {title}" for i, title in enumerate(titles, 1)]
    out.append(lines["evidence_more"])
    out.append("")

    # 六、真实性声明
    out.append(sec["pledge"])
    pledge = t["pledge"]
    out.append(_with_cite(pledge["text"], cite(kb, pledge.get("source"))))
    out.append("")
    out.append(_fill(lines["signature"], enterprise=enterprise))
    if agent:
        out.append(_fill(lines["agent_signature"], agent=agent_name))
    out.append(_fill(lines["date"], date=ph["date"]))
    return "\n".join(out).rstrip() + "\n"


_SAFE = re.compile(r"[^A-Za-z0-9-]+")


def draft_filename(case: dict) -> str:
    """ASCII file name for the download: huqi-report-HQ-2611-7K3Q.txt, or huqi-report.txt without an id."""
    raw = str(case.get("id") or case.get("case_id") or "") if isinstance(case, dict) else ""
    safe = _SAFE.sub("-", raw).strip("-")[:40]
    return f"huqi-report-{safe}.txt" if safe else "huqi-report.txt"
