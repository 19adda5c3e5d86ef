"""Answer policy questions from faq.yaml: fuzzy search over each entry's question and phrasings.

Matching works on normalised text (Simplified, lower case, half-width, no
spaces or punctuation); words of one drafting.yaml ``question.synonyms``
group become the group's first word (删稿 -> 删帖), then the
``question.filler`` words are removed ("我们", "怎么办", "吗"). Three signals,
each 0-1, blended with W_FUZZY, W_BIGRAM, W_CHAR:

- rapidfuzz ``fuzz.ratio`` / ``fuzz.partial_ratio`` (discounted when the
  lengths differ a lot) between the question and the closest question or
  phrasing of an entry; only entries sharing a bigram are compared;
- the share of the question's character bigrams, and of its characters, found
  in the entry's question and phrasings, weighted by rarity (IDF over all
  entries): "举报" or "平台", which every entry has, count for little, "加私"
  or "律师函" for much.

Two more signals handle how people really ask:

- an entry's ``keywords`` are the words that carry its topic (收费/删帖费/付费
  for Art. 26): a question containing one gains up to KEY_BONUS, less when
  several entries share the word;
- colloquial endings (要交钱不, 删了没有) lose their particle, and when the
  best score stays below CONFIDENT the question is compared again by pinyin
  syllables, so homophone typos (举包 for 举报, 准被 for 准备) still match.

`search` returns [] when the best score is below THRESHOLD, so the dialog can
say it does not know; a best score below CONFIDENT is a guess the dialog
should word as "您是不是想问……". Questions outside the topic that share words
with an entry (e.g. "我想注册一家新公司") can score between the two.
"""
from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict

from rapidfuzz import fuzz

from .cite import cite
from .text import normalise

THRESHOLD = 0.3         # below this the best entry is not an answer
CONFIDENT = 0.5         # at or above this the best entry is the answer; between: "您是不是想问…"
RELATIVE = 0.75         # further results must score at least this share of the best
W_FUZZY, W_BIGRAM, W_CHAR = 0.4, 0.35, 0.25
KEY_BONUS = 0.2         # added for a topic keyword found in the question (shared keywords add less)
PARTIAL_BASE = 0.6      # weight of a partial match of very different lengths
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)
# a question particle at the very end: 要交钱不, 删了没有, 能删不能
_TAIL = re.compile(r"(?:不能|没有|不|没|否)$")
_A_NOT_A = re.compile(r"(\w)[不没]\1")


def _question_cfg(kb) -> dict:
    return ((getattr(kb, "drafting", None) or {}).get("question") or {})


def _bigrams(s: str) -> list[str]:
    if len(s) == 1:
        return [s]
    return [s[i:i + 2] for i in range(len(s) - 1)]


def _idf(sets, n: int) -> dict[str, float]:
    df: Counter = Counter()
    for s in sets:
        df.update(s)
    return {g: math.log((n + 1) / (c + 0.5)) for g, c in df.items()}


class FaqIndex:
    """Search the FAQ of a knowledge base (build once, query many times)."""

    def __init__(self, kb):
        self.kb = kb
        cfg = _question_cfg(kb)
        filler = sorted({normalise(str(w)).compact for w in cfg.get("filler") or []} - {""}, key=len, reverse=True)
        self._filler = re.compile("|".join(map(re.escape, filler))) if filler else None
        canon: dict[str, str] = {}
        for group in cfg.get("synonyms") or []:
            words = [normalise(str(w)).compact for w in group or []]
            for w in words[1:]:
                if w and w != words[0]:
                    canon.setdefault(w, words[0])
        self._canon = canon
        self._synonyms = re.compile("|".join(map(re.escape, sorted(canon, key=len, reverse=True)))) if canon else None
        self.entries: dict[str, dict] = kb.faq
        self.texts: list[tuple[str, str]] = []          # (faq id, core text)
        self.grams: dict[str, set[str]] = {}
        self.chars: dict[str, set[str]] = {}
        for fid, f in self.entries.items():
            grams: set[str] = set()
            chars: set[str] = set()
            for t in [f.get("question", "")] + list(f.get("phrasings") or []):
                core = self.core(str(t))
                if core:
                    self.texts.append((fid, core))
                    grams.update(_bigrams(core))
                    chars.update(core)
            self.grams[fid], self.chars[fid] = grams, chars
        n = max(len(self.entries), 1)
        self.max_idf = math.log((n + 1) / 0.5)
        self.idf = _idf(self.grams.values(), n)
        self.char_idf = _idf(self.chars.values(), n)
        self.by_gram: dict[str, set[int]] = defaultdict(set)
        for i, (_, core) in enumerate(self.texts):
            for g in _bigrams(core):
                self.by_gram[g].add(i)
        # topic keywords: keyword -> entries; weight 1 for a keyword of one entry, less when shared
        self.keywords: dict[str, set[str]] = defaultdict(set)
        self.combos: dict[tuple[str, ...], set[str]] = defaultdict(set)    # "平台+钱": every part present
        for fid, f in self.entries.items():
            for k in f.get("keywords") or []:
                parts = tuple(p for p in (self.core(x, strip=False) for x in str(k).split("+")) if p)
                if len(parts) > 1:
                    self.combos[parts].add(fid)
                elif parts:
                    self.keywords[parts[0]].add(fid)
        self._keyword_re = (re.compile("|".join(map(re.escape, sorted(self.keywords, key=len, reverse=True))))
                            if self.keywords else None)
        self._pinyin: dict[str, tuple[set[str], set[str]]] | None = None   # built on first need
        # a keyword counts only in a question, or in a message with a word of our domain: an enterprise
        # name ("广东某某网络科技有限公司") is not a question about 广东's channels
        domain = sorted({self.core(str(w), strip=False) for w in cfg.get("domain_words") or []} - {""},
                        key=len, reverse=True)
        self._domain = re.compile("|".join(map(re.escape, domain))) if domain else None

    def core(self, text: str, strip: bool = True) -> str:
        """Normalised text: synonyms to their group's word; with `strip`, filler and a final particle off."""
        s = _PUNCT.sub("", normalise(text).compact)
        s = _A_NOT_A.sub(r"\1", s)            # 收不收 -> 收, 要不要 -> 要
        if self._synonyms:
            s = self._synonyms.sub(lambda m: self._canon[m.group(0)], s)
        if strip and self._filler:
            stripped = self._filler.sub("", s)
            if len(stripped) >= 2:
                s = stripped
        if strip and len(s) > 3:
            s = _TAIL.sub("", s)
        return s

    def _keyword_hits(self, raw: str, q: str = "") -> dict[str, float]:
        """Entries whose topic keywords occur in the question, with a weight 0-1."""
        if not self._keyword_re:
            return {}
        out: dict[str, float] = {}
        # the whole text, synonyms applied, filler kept: removing 的 would join 老板的身份证 into 老板身份
        text = self.core(raw, strip=False)
        if self._domain is not None and not self._domain.search(text) and not looks_like_question(raw, self.kb):
            return {}
        found = [self.keywords[m.group(0)] for m in self._keyword_re.finditer(text)]
        found += [owners for parts, owners in self.combos.items() if all(p in text for p in parts)]
        for owners in found:
            weight = 1.0 / len(owners) ** 0.5
            for fid in owners:
                out[fid] = max(out.get(fid, 0.0), weight)
        return out

    def _pinyin_index(self) -> dict[str, tuple[set[str], set[str]]]:
        """fid -> (syllables, syllable bigrams) of its question and phrasings; built on first need."""
        if self._pinyin is None:
            self._pinyin = {}
            for fid, core in self.texts:
                syl = _syllables(core)
                have = self._pinyin.setdefault(fid, (set(), set()))
                have[0].update(syl)
                have[1].update(_pairs(syl))
        return self._pinyin

    def _overlap(self, q_grams: set[str], have: set[str] | Counter, idf: dict[str, float]) -> float:
        """IDF-weighted share of the question's n-grams found in the entry."""
        total = sum(idf.get(g, self.max_idf) for g in q_grams)
        hit = sum(idf.get(g, self.max_idf) for g in q_grams if g in have)
        return hit / total if total else 0.0

    def scores(self, question: str) -> dict[str, float]:
        """Every entry sharing a bigram or a topic keyword with the question, with its score 0-1."""
        q = self.core(question)
        if not q:
            return {}
        q_grams, q_chars = set(_bigrams(q)), set(q)
        keys = self._keyword_hits(question, q)
        candidates: set[int] = set()
        for g in q_grams:
            candidates |= self.by_gram.get(g, set())
        best_fuzzy: dict[str, float] = {fid: 0.0 for fid in keys}
        for i in candidates:
            fid, text = self.texts[i]
            r = fuzz.ratio(q, text)
            if min(len(q), len(text)) >= 3:
                # a phrasing inside a longer question or the other way round, discounted by length
                shorter, longer = sorted((len(q), len(text)))
                r = max(r, fuzz.partial_ratio(q, text) * (PARTIAL_BASE + (1 - PARTIAL_BASE) * shorter / longer))
            best_fuzzy[fid] = max(best_fuzzy.get(fid, 0.0), r / 100.0)
        out = {}
        for fid, fz in best_fuzzy.items():
            score = (W_FUZZY * fz + W_BIGRAM * self._overlap(q_grams, self.grams[fid], self.idf)
                     + W_CHAR * self._overlap(q_chars, self.chars[fid], self.char_idf)
                     + KEY_BONUS * keys.get(fid, 0.0))
            out[fid] = round(min(score, 1.0), 3)
        if (not out or max(out.values()) < CONFIDENT) and len(q) >= 3:
            self._by_sound(q, out, keys)
        return out

    def _by_sound(self, q: str, out: dict[str, float], keys: dict[str, float]) -> None:
        """Score again by pinyin syllables (homophone typos); keep the better score of each entry."""
        syl = _syllables(q)
        if not syl:
            return
        q_pairs, q_syl = set(_pairs(syl)), set(syl)
        for fid, (have_syl, have_pairs) in self._pinyin_index().items():
            pair_share = len(q_pairs & have_pairs) / len(q_pairs) if q_pairs else 0.0
            if pair_share < 0.5:
                continue
            syl_share = len(q_syl & have_syl) / len(q_syl)
            # no rarity weights for sounds: count them a little less than characters
            score = 0.85 * (W_FUZZY * pair_share + W_BIGRAM * pair_share + W_CHAR * syl_share) \
                + KEY_BONUS * keys.get(fid, 0.0)
            score = round(min(score, 1.0), 3)
            if score > out.get(fid, 0.0):
                out[fid] = score

    def search(self, question: str, limit: int = 3) -> list[tuple[dict, float]]:
        """Best entries with scores 0-1, best first; [] when nothing is close enough."""
        scored = sorted(self.scores(question).items(), key=lambda kv: -kv[1])
        if not scored or scored[0][1] < THRESHOLD:
            return []
        top = scored[0][1]
        return [(self.entry(fid), s) for fid, s in scored[:max(limit, 1)] if s >= max(THRESHOLD, RELATIVE * top)]

    def nearest(self, question: str, limit: int = 3) -> list[tuple[str, float]]:
        """The closest entries even when none is close enough to answer (for `huqi faq`): the
        scored candidates, else the entries sharing the most rare characters with the question."""
        scored = sorted(self.scores(question).items(), key=lambda kv: -kv[1])
        if not scored:
            q_chars = set(self.core(question))
            scored = sorted(((fid, round(W_CHAR * self._overlap(q_chars, chars, self.char_idf), 3))
                             for fid, chars in self.chars.items()), key=lambda kv: -kv[1])
            scored = [(fid, s) for fid, s in scored if s > 0]
        return scored[:max(limit, 0)]

    def entry(self, faq_id: str) -> dict:
        f = self.entries[faq_id]
        return dict(f, answer=(f.get("answer") or "").strip(), cite=cite(self.kb, f.get("source")))

    def get(self, faq_id: str) -> dict | None:
        return self.entry(faq_id) if faq_id in self.entries else None

    def related(self, faq_id: str) -> list[dict]:
        f = self.entries.get(faq_id)
        if not f:
            return []
        return [self.entry(r) for r in f.get("related") or [] if r in self.entries]

    def topics(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for fid, f in self.entries.items():
            out.setdefault(f.get("topic") or "misc", []).append(self.entry(fid))
        return out


def _syllables(text: str) -> list[str]:
    """Toneless pinyin of the Chinese characters of `text` (other characters dropped)."""
    # imported on first need, without the phrase dictionary (a third of a second to load): one reading
    # per character is enough when both sides are read the same way
    os.environ.setdefault("PYPINYIN_NO_PHRASES", "1")
    from pypinyin import Style, lazy_pinyin
    return [p for p, ch in zip(lazy_pinyin(text, style=Style.NORMAL, errors=lambda s: ["" for _ in s]), text)
            if p and "\u4e00" <= ch <= "\u9fff"]


def _pairs(syl: list[str]) -> list[str]:
    return [a + " " + b for a, b in zip(syl, syl[1:])] if len(syl) > 1 else list(syl)


def looks_like_question(text: str, kb=None) -> bool:
    """A question mark, a question particle at the end, or a question word in the last clause."""
    if kb is None:
        from . import knowledge
        kb = knowledge()
    cfg = _question_cfg(kb)
    s = normalise(text or "").text
    if not s:
        return False
    if any(m and normalise(str(m)).text in s for m in cfg.get("marks") or []):
        return True
    trailing = normalise(str(cfg.get("trailing") or "")).text + " "
    tail = s.rstrip(trailing)
    # a particle ends a question only after something was asked: "否" alone is an answer
    if any(tail.endswith(str(e)) and len(tail) > len(str(e)) for e in cfg.get("endings") or []):
        return True
    limit = int(cfg.get("max_chars_for_words") or 60)
    if len(tail) > limit:
        return False
    last = re.split(r"[。.!;;\n]", tail)
    clause = next((c for c in reversed(last) if c.strip()), tail)
    return any(str(w) in clause for w in cfg.get("words") or [])
