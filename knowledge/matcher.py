"""Find cue phrases in normalised text: exact (one Aho-Corasick pass), negation-aware, and fuzzy via rapidfuzz."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import ahocorasick_rs
import numpy as np
from rapidfuzz import fuzz

from .text import distinct, pair_keys

NEGATIONS = frozenset("不没未非无别")
NEGATION_WORDS = frozenset({"没有", "不是", "并非", "从未", "并无", "从来没", "从没", "根本没", "未见", "未发现"})
_NEGATION_STARTS = frozenset(w[0] for w in NEGATION_WORDS)
_NEGATION_CHARS = NEGATIONS | _NEGATION_STARTS
NEGATION_REACH = 5     # characters before a cue in which a negating word still counts
FUZZY_MIN_LEN = 4      # shorter cues only match exactly
FUZZY_COVERAGE = 0.5   # share of a cue's bigrams that must occur before rapidfuzz is asked
FUZZY_CUTOFF = 75.0    # rapidfuzz partial_ratio needed for a fuzzy hit
FUZZY_CREDIT = 0.9     # a fuzzy hit counts this much of an exact one
STEM_MIN = 4          # latin cues this long match inflected forms (see CueIndex)
WINDOW = 16            # the parts of an "A+B" cue must lie within this many characters


@dataclass(frozen=True)
class Cue:
    parts: tuple[str, ...]
    weight: float
    target: str          # what the cue votes for: a sub-type, "type:<id>" or "flag:<id>"
    text: str            # as written in the YAML, for explanations


def _is_latin(s: str) -> bool:
    return s.isascii()


class CueIndex:
    """All cues of the knowledge base, found in one pass of an Aho-Corasick automaton."""

    def __init__(self, cues: list[Cue], fuzzy_ok=lambda cue: True, negatable: bool = True,
                 latin_stems: bool = False):
        """latin_stems: a latin part of STEM_MIN letters or more matches as a word's start
        (rumor: rumors, rumored), shorter ones only as whole words."""
        self.negatable = negatable
        self.cues = cues
        self.parts: list[str] = sorted({p for c in cues for p in c.parts})
        part_id = {p: i for i, p in enumerate(self.parts)}
        self.cue_parts = [tuple(part_id[p] for p in c.parts) for c in cues]
        self.cues_by_first: dict[int, list[int]] = defaultdict(list)
        for ci, pids in enumerate(self.cue_parts):
            self.cues_by_first[pids[0]].append(ci)
        # the same by part number, one-part cues apart from "A+B" ones (which need _near)
        self._single_by_first: list[list[int]] = [[] for _ in self.parts]
        self._several_by_first: list[list[int]] = [[] for _ in self.parts]
        for ci, pids in enumerate(self.cue_parts):
            (self._single_by_first if len(pids) == 1 else self._several_by_first)[pids[0]].append(ci)
        # one automaton over every part: a single pass finds them all
        self._automaton = ahocorasick_rs.AhoCorasick(self.parts) if self.parts else None
        self._negatable = [negatable and p[0] not in NEGATIONS for p in self.parts]
        self._latin = [0 if not p.isascii() else 2 if latin_stems and len(p) >= STEM_MIN else 1
                       for p in self.parts]
        # fuzzy candidates: single-part cues long enough to be worth it
        self.long_cues = [i for i, c in enumerate(cues)
                          if len(c.parts) == 1 and len(c.parts[0]) >= FUZZY_MIN_LEN
                          and not _is_latin(c.parts[0]) and fuzzy_ok(c)]
        self.cue_bigrams: dict[int, int] = {}
        self.cue_chars: dict[int, tuple[frozenset, int] | None] = {}
        for i in self.long_cues:
            self.cue_bigrams[i] = len({c[k:k + 2] for c in cues[i].parts for k in range(len(c) - 1)})
            distinct = frozenset(cues[i].parts[0])
            self.cue_chars[i] = (distinct, len(distinct) - 1) if len(cues[i].parts[0]) <= 6 else None
        # the same postings as sorted arrays (pair key -> long cues), and each short
        # cue's distinct characters (a slip in the middle of a short cue breaks two of
        # its pairs: it is still tried when all but one of its characters are there)
        self._long = np.array(self.long_cues, dtype=np.intp)
        self._need = np.array([FUZZY_COVERAGE * self.cue_bigrams[ci] for ci in self.long_cues])
        self._short = np.array([self.cue_chars[ci] is not None for ci in self.long_cues], dtype=bool)
        self._need_chars = np.array([(self.cue_chars[ci] or (0, 0))[1] for ci in self.long_cues])
        grams, chars = defaultdict(list), defaultdict(list)
        for j, ci in enumerate(self.long_cues):
            for g in {c[k:k + 2] for c in cues[ci].parts for k in range(len(c) - 1)}:
                grams[int(pair_keys(g)[0])].append(j)
            for ch in self.cue_chars[ci][0] if self.cue_chars[ci] else ():
                chars[ord(ch)].append(j)
        self._grams, self._chars = _postings(grams), _postings(chars)

    def found_parts(self, text: str) -> dict[int, list[int]]:
        """Positions of every part that occurs without a negation just before it."""
        found: dict[int, list[int]] = {}
        if self._automaton is None or not text:
            return found
        negated = negated_positions(text) if self.negatable else ()
        negatable, latin = self._negatable, self._latin
        for pid, i, end in self._automaton.find_matches_as_indexes(text, overlapping=True):
            if negatable[pid] and i in negated:
                continue
            if latin[pid] and _latin_glued(text, i, end - i, latin[pid] == 1):
                continue
            where = found.get(pid)
            if where is None:
                found[pid] = [i]
            else:
                where.append(i)
        return found

    def match(self, text: str, fuzzy: bool = True, found: dict[int, list[int]] | None = None,
              enough: float | None = None) -> list[tuple[int, float]]:
        """(cue index, credit) for every cue found in text (`found`: its found_parts, if known).

        Fuzzy matching is a fallback for typos: it is skipped when some target already
        has `enough` weight from exact hits."""
        if found is None:
            found = self.found_parts(text)
        single, several, parts = self._single_by_first, self._several_by_first, self.cue_parts
        hits = [(ci, 1.0) for pid in found for ci in single[pid]]
        hits += [(ci, 1.0) for pid in found for ci in several[pid] if _near(parts[ci], found)]
        if fuzzy and enough is not None:
            per_target: dict[str, float] = defaultdict(float)
            for ci, _ in hits:
                per_target[self.cues[ci].target] += self.cues[ci].weight
            fuzzy = max(per_target.values(), default=0.0) < enough
        if fuzzy and len(text) >= FUZZY_MIN_LEN:
            hit = {ci for ci, _ in hits}
            hits.extend(self._fuzzy(text, hit))
        return hits

    def _bigram_counts(self, text: str) -> tuple[list[int], list[int], list[int]]:
        """(cue, how many of its character pairs text has, where the first of them is)
        for every fuzzy candidate: enough shared pairs, or a short cue with all but one
        of its characters in text; found with arrays."""
        keys = pair_keys(text)
        if not len(keys) or not len(self._long):
            return [], [], []
        uniq, first = np.unique(keys, return_index=True)
        cue, which = _lookup(self._grams, uniq)
        if not len(cue):
            return [], [], []
        counts = np.bincount(cue, minlength=len(self._long))
        ok = counts >= self._need
        maybe = (counts > 0) & self._short & ~ok
        if maybe.any():
            chars = distinct(np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32))
            have = np.bincount(_lookup(self._chars, chars.astype(np.int64))[0], minlength=len(self._long))
            ok |= maybe & (have >= self._need_chars)
        seen = np.full(len(self._long), len(text), dtype=np.int64)
        np.minimum.at(seen, cue, first[which])
        hit = np.flatnonzero(ok)
        return self._long[hit].tolist(), counts[hit].tolist(), seen[hit].tolist()

    def _fuzzy(self, text: str, already: set[int]) -> list[tuple[int, float]]:
        out = []
        for ci, _, k in zip(*self._bigram_counts(text)):
            if ci in already:
                continue
            cue = self.cues[ci].parts[0]
            if cue in text:
                continue        # there verbatim but negated: the exact pass already decided
            if _negated(text, k):
                continue
            window = text[max(0, k - len(cue)):k + 2 * len(cue)]
            score = fuzz.partial_ratio(cue, window, score_cutoff=FUZZY_CUTOFF)
            if score:
                out.append((ci, FUZZY_CREDIT))   # past the cutoff a slip counts nearly as the word
        return out


_STOPS = frozenset(",.;!?，。；！？")


def denied_spans(text: str, width: int, mark: str = "|") -> str:
    """text with every negating word and up to `width` characters after it, within
    its clause, replaced by `mark` (what is denied says nothing of the kind)."""
    spans = []
    for word in NEGATION_WORDS:
        start = text.find(word)
        while start != -1:
            end = start + len(word)
            limit = min(end + width, len(text))
            while end < limit and text[end] not in _STOPS:
                end += 1
            spans.append((start, end))
            start = text.find(word, start + 1)
    if not spans:
        return text
    out, at = [], 0
    for start, end in sorted(spans):
        if start < at:            # inside the previous span: already covered
            continue
        out += [text[at:start], mark]
        at = end
    out.append(text[at:])
    return "".join(out)


def negated_positions(text: str) -> set[int]:
    """Every position i where _negated(text, i) holds, found from the negations themselves."""
    out = set()
    for ch in NEGATIONS:          # str.find: no per-character Python objects for CJK text
        start = text.find(ch)
        while start != -1:
            out.add(start + 1)
            start = text.find(ch, start + 1)
    for word in NEGATION_WORDS:
        start = text.find(word)
        while start != -1:
            for i in range(start + len(word), min(start + NEGATION_REACH, len(text)) + 1):
                out.add(i)
                if text[i:i + 1] in _STOPS:
                    break
            start = text.find(word, start + 1)
    return out


def _postings(lists: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """key -> list of ids as arrays: (sorted keys, start, length, ids)."""
    keys = np.array(sorted(lists), dtype=np.int64)
    length = np.array([len(lists[k]) for k in keys.tolist()], dtype=np.intp)
    ids = np.array([j for k in keys.tolist() for j in lists[k]], dtype=np.intp)
    return keys, np.cumsum(length) - length, length, ids


def _lookup(postings, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids listed under the query keys, which query key each came from)."""
    keys, start, length, ids = postings
    if not len(keys):
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    slot = np.searchsorted(keys, query)
    slot[slot == len(keys)] = 0
    found = np.flatnonzero(keys[slot] == query)
    slot = slot[found]
    n = length[slot]
    total = int(n.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(n) - n, n)
    return ids[np.repeat(start[slot], n) + offsets], np.repeat(found, n)


def _negated(text: str, i: int) -> bool:
    """A negation right before position i (不属实), or a negating word a few
    characters before it in the same clause (没有要钱, 不是竞争对手)."""
    if i > 0 and text[i - 1] in NEGATIONS:
        return True
    before = text[max(0, i - NEGATION_REACH):i]
    if _NEGATION_STARTS.isdisjoint(before):
        return False
    for stop in ",.;!?，。；！？":
        before = before.rpartition(stop)[2]
    return any(w in before for w in NEGATION_WORDS)


def _near(pids: tuple[int, ...], found: dict[int, list[int]]) -> bool:
    """All parts occur, some occurrence of each within WINDOW of the first part's."""
    if not all(p in found for p in pids):
        return False
    return any(all(any(abs(j - i) <= WINDOW for j in found[p]) for p in pids[1:])
               for i in found[pids[0]])


def _latin_glued(text: str, i: int, n: int, whole: bool = True) -> bool:
    """A latin cue inside a longer latin word (e.g. 'dy' in 'ready') does not count;
    with whole=False only the start must be a word's start (a stem: 'rumor' in 'rumors')."""
    before = text[i - 1] if i > 0 else ""
    if before.isascii() and before.isalnum():
        return True
    after = text[i + n] if i + n < len(text) else ""
    return whole and after.isascii() and after.isalnum()


def parse_cue(text: str, weight: float, target: str) -> Cue:
    parts = tuple(" ".join(p.lower().split()) for p in str(text).split("+") if p.strip())
    return Cue(parts=parts, weight=weight, target=target, text=str(text))
