"""Turn `source` strings into what a user reads: "WS Art. 10(4)" -> "《工作规范》第十条(四)".

A source string is "<document key> <locator>" (see SCHEMA.md). Locators:

- ``Art. 10(4)``, ``Art. 21(1)(2)``, ``Art. 5(2), Art. 7``  -> 第十条(四), 第二十一条(一)(二), 第五条(二)、第七条
- ``(十七)``, ``三(二)``, ``第1024条``                      -> kept as written
- ``二.8``                                                -> 第二部分第8项
- ``12`` (a bare number)                                  -> 第12条
- any other text, e.g. ``广东``                            -> (广东)

A bare key gives the document's ``short``, unless drafting.yaml
``cite.bare`` words it differently (``research`` -> "公开资料(以平台页面为准)").
Punctuation follows the data files (ASCII brackets, as in types.yaml ``article``).
Consecutive sources from the same document share one title, and items of the
same article share the article:
``[WS Art. 5(2), WS Art. 7]`` -> "《工作规范》第五条(二)、第七条";
``[WS Art. 22(1), WS Art. 22(2)]`` -> "《工作规范》第二十二条(一)(二)".
"""
from __future__ import annotations

import re
from typing import Iterable

_DIGITS = "零一二三四五六七八九"
_ART = re.compile(r"Art\.\s*(\d+)((?:\s*\(\s*\d+\s*\))*)", re.IGNORECASE)
_PAREN_NUM = re.compile(r"\(\s*(\d+)\s*\)")
_ITEMISED = re.compile(r"(第[一二三四五六七八九十]+条)((?:\([一二三四五六七八九十]+\))+)$")
_SECTION_ITEM = re.compile(r"^([一二三四五六七八九十]+)\.(\d+)$")


def chinese_number(n: int) -> str:
    """1 -> 一, 10 -> 十, 13 -> 十三, 20 -> 二十, 29 -> 二十九, 100+ -> digits."""
    if n < 0 or n >= 100:
        return str(n)
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _DIGITS[tens]
    return head + "十" + (_DIGITS[ones] if ones else "")


def _article(m: re.Match) -> str:
    items = "".join(f"({chinese_number(int(x))})" for x in _PAREN_NUM.findall(m.group(2) or ""))
    return f"第{chinese_number(int(m.group(1)))}条{items}"


def _from_chinese(s: str) -> int:
    if "十" in s:
        tens, _, ones = s.partition("十")
        return (_DIGITS.index(tens) if tens else 1) * 10 + (_DIGITS.index(ones) if ones else 0)
    return _DIGITS.index(s)


def _merge(prev: str, piece: str) -> str | None:
    """"…第二十三条(四)" + "第二十三条(二)" -> "…第二十三条(二)(四)"; None when not the same article."""
    m, p = _ITEMISED.match(piece), _ITEMISED.search(prev)
    if not (m and p and p.group(1) == m.group(1)):
        return None
    items = re.findall(r"\(([一二三四五六七八九十]+)\)", p.group(2) + m.group(2))
    items = sorted(dict.fromkeys(items), key=_from_chinese)
    return prev[:p.start(2)] + "".join(f"({i})" for i in items)


def format_locator(locator: str) -> str:
    """The user-facing form of the part after the document key ("" for none)."""
    loc = locator.strip()
    if not loc:
        return ""
    if _ART.search(loc):
        pieces: list[str] = []
        for piece in (_article(m) for m in _ART.finditer(loc)):
            merged = _merge(pieces[-1], piece) if pieces else None
            if merged:
                pieces[-1] = merged
            else:
                pieces.append(piece)
        return "、".join(pieces)
    m = _SECTION_ITEM.match(loc)
    if m:
        return f"第{m.group(1)}部分第{m.group(2)}项"
    if loc.isdigit():
        return f"第{loc}条"
    if loc.startswith(("第", "(", "\uff08")) or re.match(r"^[一二三四五六七八九十]+(\(|$)", loc):
        return loc
    return f"({loc})"


def _parts(kb, source: str) -> tuple[str, str, bool]:
    """(document title as cited, locator as cited, is_bare)."""
    source = source.strip()
    key, _, locator = source.partition(" ")
    doc = kb.documents.get(key)
    if doc is None:
        # unknown keys are refused by the loader; never show an id to a user
        return source, "", True
    title = doc.get("short") or doc.get("title") or key
    if not locator.strip():
        bare = ((getattr(kb, "drafting", None) or {}).get("cite") or {}).get("bare") or {}
        return bare.get(key, title), "", True
    return title, format_locator(locator), False


def cite(kb, source: str | Iterable[str] | None) -> str:
    """One readable citation for a source string or a list of them ("" for none)."""
    if source is None:
        return ""
    sources = [source] if isinstance(source, str) else [s for s in source if isinstance(s, str)]
    sep = _separator(kb)
    out: list[str] = []
    last_title = None
    seen: set[str] = set()
    for s in sources:
        if not s or not s.strip():
            continue
        title, loc, bare = _parts(kb, s)
        if bare:
            piece, last_title = title, None
        elif title == last_title:
            piece = loc
        else:
            piece, last_title = title + loc, title
        key = title + loc
        if key in seen:
            continue
        seen.add(key)
        merged = _merge(out[-1], piece) if out and piece == loc else None
        if merged:
            out[-1] = merged            # 第二十二条(一)、第二十二条(二) -> 第二十二条(一)(二)
            continue
        out.append(piece)
    return sep.join(out)


def _separator(kb) -> str:
    return ((getattr(kb, "drafting", None) or {}).get("cite") or {}).get("separator") or "、"
