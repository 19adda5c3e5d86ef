"""Find cue phrases in normalised text: exact (indexed), negation-aware, and fuzzy via rapidfuzz."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz

NEGATIONS = frozenset("不没未非无别")
NEGATION_WORDS = frozenset({"没有", "不是", "并非", "从未", "并无", "从来没", "从没", "根本没"})
_NEGATION_STARTS = frozenset(w[0] for w in NEGATION_WORDS)
NEGATION_REACH = 5     # characters before a cue in which a negating word still counts
FUZZY_MIN_LEN = 4      # shorter cues only match exactly
FUZZY_COVERAGE = 0.5   # share of a cue's bigrams that must occur before rapidfuzz is asked
FUZZY_CUTOFF = 75.0    # rapidfuzz partial_ratio needed for a fuzzy hit
FUZZY_CREDIT = 0.9     # a fuzzy hit counts this much of an exact one
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
    """All cues of the knowledge base, indexed by their parts' first characters."""

    def __init__(self, cues: list[Cue], fuzzy_ok=lambda cue: True, negatable: bool = True):
        self.negatable = negatable
        self.cues = cues
        self.parts: list[str] = sorted({p for c in cues for p in c.parts})
        part_id = {p: i for i, p in enumerate(self.parts)}
        self.cue_parts = [tuple(part_id[p] for p in c.parts) for c in cues]
        self.cues_by_first: dict[int, list[int]] = defaultdict(list)
        for ci, pids in enumerate(self.cue_parts):
            self.cues_by_first[pids[0]].append(ci)
        by_first2: dict[str, list[int]] = defaultdict(list)
        by_first1: dict[str, list[int]] = defaultdict(list)
        for i, p in enumerate(self.parts):
            (by_first2[p[:2]] if len(p) >= 2 else by_first1[p]).append(i)
        self.by_first2, self.by_first1 = dict(by_first2), dict(by_first1)
        # fuzzy candidates: single-part cues long enough to be worth it
        self.long_cues = [i for i, c in enumerate(cues)
                          if len(c.parts) == 1 and len(c.parts[0]) >= FUZZY_MIN_LEN
                          and not _is_latin(c.parts[0]) and fuzzy_ok(c)]
        self.bigram_cues: dict[str, list[int]] = defaultdict(list)
        self.cue_bigrams: dict[int, int] = {}
        self.cue_chars: dict[int, tuple[frozenset, int] | None] = {}
        for i in self.long_cues:
            grams = {c[k:k + 2] for c in cues[i].parts for k in range(len(c) - 1)}
            self.cue_bigrams[i] = len(grams)
            distinct = frozenset(cues[i].parts[0])
            self.cue_chars[i] = (distinct, len(distinct) - 1) if len(cues[i].parts[0]) <= 6 else None
            for g in grams:
                self.bigram_cues[g].append(i)

    def found_parts(self, text: str) -> dict[int, list[int]]:
        """Positions of every part that occurs without a negation just before it."""
        found: dict[int, list[int]] = {}
        get2, get1, parts = self.by_first2.get, self.by_first1.get, self.parts
        starts, negatable = text.startswith, self.negatable
        for i in range(len(text)):
            bucket = get2(text[i:i + 2])
            single = get1(text[i])
            if single:
                bucket = bucket + single if bucket else single
            elif not bucket:
                continue
            negated = None
            for pid in bucket:
                p = parts[pid]
                if not starts(p, i):
                    continue
                if negatable and p[0] not in NEGATIONS:
                    if negated is None:
                        negated = _negated(text, i)
                    if negated:
                        continue
                if p.isascii() and _latin_glued(text, i, len(p)):
                    continue
                if pid in found:
                    found[pid].append(i)
                else:
                    found[pid] = [i]
        return found

    def match(self, text: str, fuzzy: bool = True, found: dict[int, list[int]] | None = None,
              enough: float | None = None) -> list[tuple[int, float]]:
        """(cue index, credit) for every cue found in text (`found`: its found_parts, if known).

        Fuzzy matching is a fallback for typos: it is skipped when some target already
        has `enough` weight from exact hits."""
        if found is None:
            found = self.found_parts(text)
        hits = [(ci, 1.0) for pid in found for ci in self.cues_by_first.get(pid, ())
                if len(self.cue_parts[ci]) == 1 or _near(self.cue_parts[ci], found)]
        if fuzzy and enough is not None:
            per_target: dict[str, float] = defaultdict(float)
            for ci, _ in hits:
                per_target[self.cues[ci].target] += self.cues[ci].weight
            fuzzy = max(per_target.values(), default=0.0) < enough
        if fuzzy and len(text) >= FUZZY_MIN_LEN:
            hit = {ci for ci, _ in hits}
            hits.extend(self._fuzzy(text, hit))
        return hits

    def _fuzzy(self, text: str, already: set[int]) -> list[tuple[int, float]]:
        # first position of every bigram (the reversed walk keeps the earliest)
        where = {text[k:k + 2]: k for k in range(len(text) - 2, -1, -1)}
        counts: dict[int, int] = {}
        seen_at: dict[int, int] = {}
        postings = self.bigram_cues
        for g, k in where.items():
            for ci in postings.get(g, ()):
                if ci in counts:
                    counts[ci] += 1
                else:
                    counts[ci] = 1
                    seen_at[ci] = k
        out = []
        chars = None
        for ci, n in counts.items():
            if ci in already:
                continue
            if n < FUZZY_COVERAGE * self.cue_bigrams[ci]:
                # a slip in the middle of a short cue breaks two of its pairs:
                # still try it when all but one of its characters are there
                short = self.cue_chars[ci]
                if short is None:
                    continue
                chars = chars or set(text)
                if len(short[0] & chars) < short[1]:
                    continue
            cue = self.cues[ci].parts[0]
            if cue in text:
                continue        # there verbatim but negated: the exact pass already decided
            k = seen_at[ci]
            if _negated(text, k):
                continue
            window = text[max(0, k - len(cue)):k + 2 * len(cue)]
            score = fuzz.partial_ratio(cue, window, score_cutoff=FUZZY_CUTOFF)
            if score:
                out.append((ci, FUZZY_CREDIT))   # past the cutoff a slip counts nearly as the word
        return out


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


def _latin_glued(text: str, i: int, n: int) -> bool:
    """A latin cue inside a longer latin word (e.g. 'dy' in 'ready') does not count."""
    before = text[i - 1] if i > 0 else ""
    after = text[i + n] if i + n < len(text) else ""
    return (before.isascii() and before.isalnum()) or (after.isascii() and after.isalnum())


def parse_cue(text: str, weight: float, target: str) -> Cue:
    parts = tuple(" ".join(p.lower().split()) for p in str(text).split("+") if p.strip())
    return Cue(parts=parts, weight=weight, target=target, text=str(text))
