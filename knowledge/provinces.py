"""Which province an enterprise is in, from what the user typed ("粤", "深圳的公司", "廣東", "guangdong").

Names, aliases and cities come from channels.yaml. Matching, on normalised
text (Simplified, lower case, no spaces):

1. every name/alias/city found as a substring; overlapping finds keep the
   longest (then the earliest), so 新疆生产建设兵团 beats 新疆 and 浙江西部 is
   浙江; finds of two different provinces make the answer unsure (None);
2. a one-character abbreviation (`abbr`: 粤, 沪) only when it is all the
   user typed, perhaps with 省/市/企业 around it;
3. Latin letters against the province ids, which are their pinyin
   (guangdong, shaanxi, neimenggu), exactly or very close (rapidfuzz);
4. a short Chinese answer close to one name (rapidfuzz), when nothing else matched.
"""
from __future__ import annotations

import re
from rapidfuzz import fuzz, process

from .text import normalise

_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
# what people put around a bare abbreviation or name: "粤企", "沪上的公司", "在京"
_AROUND = re.compile(r"^(?:在|是|我们在|我们是|公司在|企业在)?(.+?)(?:省|市|自治区|地区|企业|企|公司|的公司|的企业|上|这边|那边)*$")
_LATIN_DROP = re.compile(r"(province|city|shi|sheng|autonomousregion|zizhiqu)$")
LATIN_CUTOFF = 88.0     # rapidfuzz ratio for a pinyin spelling
CHINESE_CUTOFF = 75.0   # rapidfuzz ratio for a short Chinese answer
MARGIN = 5.0            # the best must beat the second by this much


class _Index:
    def __init__(self, kb):
        self.names: dict[str, str] = {}
        self.abbr: dict[str, str] = {}
        for pid, p in kb.provinces.items():
            for n in [p.get("name", "")] + list(p.get("aliases") or []) + list(p.get("cities") or []):
                n = normalise(str(n)).compact
                if n:
                    self.names.setdefault(n, pid)
            for a in p.get("abbr") or []:
                a = normalise(str(a)).compact
                if a:
                    self.abbr.setdefault(a, pid)
        self.ordered = sorted(self.names, key=len, reverse=True)
        self.ids = {pid: pid for pid in kb.provinces}


_CACHE: dict[int, tuple[object, _Index]] = {}


def _index(kb) -> _Index:
    # KnowledgeBase is an unhashable dataclass; key on its id and keep it alive
    hit = _CACHE.get(id(kb))
    if hit is None or hit[0] is not kb:
        if len(_CACHE) > 4:
            _CACHE.clear()
        hit = _CACHE[id(kb)] = (kb, _Index(kb))
    return hit[1]


def _substrings(idx: _Index, text: str) -> list[str]:
    taken = [False] * len(text)
    found: list[tuple[int, str]] = []
    for name in idx.ordered:                       # longest first
        start = 0
        while (i := text.find(name, start)) >= 0:
            start = i + 1
            if any(taken[i:i + len(name)]):
                continue
            for k in range(i, i + len(name)):
                taken[k] = True
            found.append((i, idx.names[name]))
    return [pid for _, pid in sorted(found)]


def match_province(kb, text: str) -> str | None:
    """The province id the text names, or None when there is none or it is unsure."""
    if not text or not isinstance(text, str):
        return None
    idx = _index(kb)
    compact = _NOISE.sub("", normalise(text).compact)
    if not compact:
        return None
    found = list(dict.fromkeys(_substrings(idx, compact)))
    if found:
        return found[0] if len(found) == 1 else None
    m = _AROUND.match(compact)
    core = m.group(1) if m else compact
    if core in idx.abbr:
        return idx.abbr[core]
    if compact.isascii():
        latin = _LATIN_DROP.sub("", compact)
        if latin in idx.ids:
            return latin
        return _fuzzy(latin, list(idx.ids), LATIN_CUTOFF, idx.ids)
    if len(compact) <= 8:
        return _fuzzy(compact, list(idx.names), CHINESE_CUTOFF, idx.names)
    return None


def _fuzzy(query: str, choices: list[str], cutoff: float, owner: dict[str, str]) -> str | None:
    if len(query) < 2:
        return None
    best = process.extract(query, choices, scorer=fuzz.ratio, limit=5)
    best = [(c, s) for c, s, _ in best if s >= cutoff]
    if not best:
        return None
    top_pid = owner[best[0][0]]
    rival = next((s for c, s in best[1:] if owner[c] != top_pid), 0.0)
    return top_pid if best[0][1] - rival >= MARGIN else None


def province_name(kb, pid: str | None) -> str:
    """The province's full name ("广东省"), or "" for None or an unknown id."""
    p = kb.provinces.get(pid) if pid else None
    return p.get("name", "") if p else ""
