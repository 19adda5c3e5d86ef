"""Classify a description: ranked sub-types with scores, the type, the platform and the flags."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from . import taxonomy
from .matcher import FUZZY_MIN_LEN, CueIndex, denied_spans, parse_cue
from .platforms import PlatformResolver
from .text import Normalised, normalise

WEAK = 0.4             # weight of a weak cue
STRONG = 2.0           # weight of a decisive cue ("与公司无关", "撤稿")
TYPE_SHARE = 0.6       # how much a type-level cue adds to each of its sub-types
OTHER_BASE = 0.3       # the ".other" sub-type of a type that has evidence
DECAY = 0.6            # the k-th cue of the same target counts DECAY**k
EXAMPLE_FLOOR = 45.0   # rapidfuzz ratio below which an example says nothing
EXAMPLE_WEIGHT = 1.2
FUZZY_ENOUGH = 1.5     # exact evidence this strong for one target: no typo search
BAYES_WEIGHT = 3.0     # the naive Bayes posterior of a sub-type adds up to this
BAYES_OTHER = 0.7      # share of it a catch-all, or an unexplained out-of-scope reading, gets
NOTHING = 0.35         # raw score of out_of_scope.other when nothing matched
UNSURE_BELOW = 0.5     # a best score under this is reported as unsure
MIN_CANDIDATES = 3


@dataclass
class Result:
    type: str
    subtype: str
    candidates: list[dict]
    platform: str | None
    platforms: list[str]
    flags: list[str]
    links: list[str]
    unsure: bool
    traditional: bool
    english: bool = False      # written in English: classified, answered in Chinese with a note
    cues: dict[str, list[str]] = field(default_factory=dict)   # sub-type -> cues that fired

    def as_json(self, id_: object = None) -> dict:
        out = {"id": id_} if id_ is not None else {}
        out.update(type=self.type, subtype=self.subtype, candidates=self.candidates,
                   platform=self.platform, platforms=self.platforms, flags=self.flags, unsure=self.unsure)
        return out


_DECAY_ARRAY = DECAY ** np.arange(64)
_SUB, _TYPE, _BLOCK, _FLAG, _NOT_FLAG = range(5)     # what a cue votes for
DENIED_REACH = 8         # characters after a negating word that its denial covers


def _squash(raw: float) -> float:
    return round(raw / (raw + 1.0), 3)


class Classifier:
    def __init__(self, kb):
        cues = []
        for tid, t in kb.types.items():
            cues += [parse_cue(c, 1.0, f"type:{tid}") for c in t.get("cues") or []]
            cues += [parse_cue(c, WEAK, f"type:{tid}") for c in t.get("weak_cues") or []]
            cues += [parse_cue(c, STRONG, f"type:{tid}") for c in t.get("strong_cues") or []]
        for sid, s in kb.subtypes.items():
            cues += [parse_cue(c, 1.0, sid) for c in s.get("cues") or []]
            cues += [parse_cue(c, WEAK, sid) for c in s.get("weak_cues") or []]
            cues += [parse_cue(c, STRONG, sid) for c in s.get("strong_cues") or []]
            cues += [parse_cue(c, 0.0, f"block:{sid}") for c in s.get("not_if") or []]
        for fid, f in kb.flags.items():
            cues += [parse_cue(c, 1.0, f"flag:{fid}") for c in f.get("cues") or []]
            cues += [parse_cue(c, 0.0, "flag-") for c in f.get("not_cues") or []]
        # decisive, out-of-scope, blocking and flag phrases must be said, not guessed
        self.index = CueIndex(cues, fuzzy_ok=lambda c: 0 < c.weight <= 1.0
                              and not c.target.startswith(("out_of_scope", "block:", "flag")),
                              latin_stems=True)
        self.is_flag = [c.target.startswith("flag") for c in self.index.cues]
        self.examples: list[str] = []
        self.example_target: list[str] = []
        for sid, s in kb.subtypes.items():
            for e in s.get("examples") or []:
                self.examples.append(normalise(e).compact)
                self.example_target.append(sid)
        self.subtypes = list(kb.subtypes)
        from .bayes import CharBayes
        learned = [(normalise(t).compact, sid) for sid, texts in (kb.examples or {}).items() for t in texts]
        learned += [(e, sid) for e, sid in zip(self.examples, self.example_target)]
        self.bayes = CharBayes(self.subtypes, learned) if learned else None
        self.type_of = {sid: taxonomy.type_of(sid) for sid in self.subtypes}
        # scores are vectors over the sub-types, in the order of types.yaml
        self.index_of = {sid: i for i, sid in enumerate(self.subtypes)}
        types = list(dict.fromkeys(self.type_of.values()))
        self.type_slot = {f"type:{t}": i for i, t in enumerate(types)}
        self.type_of_sub = np.array([types.index(self.type_of[sid]) for sid in self.subtypes])
        self.catch_all = np.array([sid.endswith(".other") and not sid.startswith("out_of_scope")
                                   for sid in self.subtypes])
        self.learned_share = np.where([sid.endswith(".other") for sid in self.subtypes], BAYES_OTHER, 1.0)
        self.not_infringement = np.array([sid.startswith("out_of_scope") for sid in self.subtypes])
        self.nothing = self.index_of["out_of_scope.other"]
        # every cue target as a number: sub-types first, then types, then the rest
        # (blocks, flags), so scores add up with bincount instead of per-cue dicts
        targets = list(self.subtypes) + list(self.type_slot)
        targets += sorted({c.target for c in self.index.cues} - set(targets))
        self.target_id = {t: i for i, t in enumerate(targets)}
        self.n_targets = len(targets)
        cues = self.index.cues
        self.cue_target = np.array([self.target_id[c.target] for c in cues], dtype=np.intp)
        self.cue_weight = np.array([c.weight for c in cues], dtype=float)
        self.cue_target_list, self.cue_weight_list = self.cue_target.tolist(), self.cue_weight.tolist()
        self.type_ids = np.array([self.target_id[t] for t in self.type_slot], dtype=np.intp)
        self.cue_blocks = [self.index_of.get(c.target[6:], -1) if c.target.startswith("block:") else -1
                           for c in cues]
        # total (per target) @ spread = raw (per sub-type): its own score plus TYPE_SHARE of its type's
        n = len(self.subtypes)
        self.n_scored = n + len(self.type_slot)
        self.spread = np.zeros((self.n_targets, n))
        self.spread[np.arange(n), np.arange(n)] = 1.0
        self.spread[n + self.type_of_sub, np.arange(n)] = TYPE_SHARE
        self.catch_alls = [(i, n + int(self.type_of_sub[i])) for i in np.flatnonzero(self.catch_all)]
        self.not_infringement_idx = np.flatnonzero(self.not_infringement).tolist()
        self.no_learning = np.zeros(n)
        self.others_of = [np.flatnonzero(self.type_of_sub != self.type_of_sub[i]) for i in range(n)]
        self.cue_kind = [_SUB if c.target in self.index_of else _BLOCK if c.target.startswith("block:")
                         else _NOT_FLAG if c.target == "flag-" else _FLAG if c.target.startswith("flag:")
                         else _TYPE for c in cues]
        self.platforms = PlatformResolver(kb.platforms, kb.platform_exceptions)

    def classify(self, text: str) -> Result:
        norm = normalise(text)
        raw, fired, stated, learned = self._score(norm)
        order = np.argsort(-raw, kind="stable")[:max(MIN_CANDIDATES, 5)].tolist()   # ties: types.yaml order
        best = order[0]
        best_sid, best_raw = self.subtypes[best], float(raw[best])
        top = raw[order].tolist()
        candidates = [{"subtype": self.subtypes[i], "score": _squash(v)} for i, v in zip(order, top)]
        platform, seen = self.platforms.resolve(norm)
        others = self.others_of[best]
        second_type = float(raw[others].max()) if len(others) else 0.0
        # sure only with said evidence: what was learned from examples ranks, it does not decide
        said = best_raw - float(learned[best])
        flags = self._flags(stated, best_sid if said >= 1.0 else None, seen)
        unsure = _squash(said) < UNSURE_BELOW or best_raw - second_type < 0.25 * best_raw
        return Result(
            type=self.type_of[best_sid], subtype=best_sid, candidates=candidates,
            platform=platform, platforms=seen, flags=flags, links=list(norm.links),
            unsure=unsure, traditional=norm.traditional, english=norm.english, cues=fired,
        )

    def _totals(self, hits: list[tuple[int, float]]) -> np.ndarray:
        """Score per target: a target's k-th best cue counts DECAY**k."""
        total = np.zeros(self.n_targets)
        if not hits:
            return total
        pairs = np.array(hits)                     # (cue, credit) rows
        tgt = self.cue_target[pairs[:, 0].astype(np.intp)]
        w = self.cue_weight[pairs[:, 0].astype(np.intp)] * pairs[:, 1]
        order = np.argsort(tgt * (2 * STRONG + 1.0) - w, kind="stable")   # by target, best cue first
        tgt, w = tgt[order], w[order]
        rank = np.arange(len(tgt)) - np.searchsorted(tgt, tgt)
        return np.bincount(tgt, w * DECAY ** rank, minlength=self.n_targets)

    def _score(self, norm: Normalised) -> tuple[np.ndarray, dict[str, list[str]], set[str], np.ndarray]:
        """(score per sub-type, cues that fired per sub-type, flags stated, the learned part of the score)."""
        text = norm.compact
        index = self.index
        found = index.found_parts(text)
        hits = index.match(text, fuzzy=False, found=found)
        if len(text) >= FUZZY_MIN_LEN:
            # the typo search only runs when no target has enough exact evidence
            exact: dict[int, float] = {}
            target, weight = self.cue_target_list, self.cue_weight_list
            for ci, _ in hits:
                exact[target[ci]] = exact.get(target[ci], 0.0) + weight[ci]
            if max(exact.values(), default=0.0) < FUZZY_ENOUGH:
                hits += index._fuzzy(text, {h[0] for h in hits})
        fired: dict[str, list[str]] = defaultdict(list)
        flag_hits, blocked, silenced, scoring = [], set(), [], []
        cues, kind = index.cues, self.cue_kind
        for hit in hits:
            ci = hit[0]
            k = kind[ci]
            if k == _SUB:
                scoring.append(hit)
                fired[cues[ci].target].append(cues[ci].text)
            elif k == _FLAG:
                flag_hits.append(ci)
            elif k == _NOT_FLAG:        # a phrase that looks like a flag but is not
                n = len(cues[ci].parts[0])
                blocked.update(j for i in found[index.cue_parts[ci][0]] for j in range(i, i + n))
            else:
                scoring.append(hit)
                if k == _BLOCK:
                    silenced.append(self.cue_blocks[ci])
        stated = set()
        for ci in flag_hits:
            pid = index.cue_parts[ci][0]
            length = len(index.parts[pid])
            if any(not blocked.intersection(range(i, i + length)) for i in found[pid]):
                stated.add(cues[ci].target[5:])
        total = self._totals(scoring)
        if silenced:
            total[silenced] = 0.0       # a blocking phrase silences the sub-type's own cues
        raw = total @ self.spread        # own score plus TYPE_SHARE of its type's
        head = total[:self.n_scored].tolist()     # sub-types, then types
        best_said = max(head)
        for c, t in self.catch_alls:
            if head[c] > 0 or head[t] > 0:
                raw[c] += OTHER_BASE
        learned = self.no_learning
        # the examples are Chinese: their wording says nothing about an English text
        if text and self.bayes is not None and not norm.english:
            # what is denied says nothing of the kind
            plain = denied_spans(text, DENIED_REACH)
            posterior = self.bayes.posterior_of(plain)
            if posterior is not None:
                # a catch-all is chosen for lack of specifics, and "not infringement" needs a
                # stated reason: wording alone weighs less there
                share = self.learned_share.copy()
                for i in self.not_infringement_idx:
                    if head[i] == 0:
                        share[i] = BAYES_OTHER
                learned = (BAYES_WEIGHT * share) * posterior
                if silenced:
                    learned[silenced] = 0.0     # what a blocking phrase rules out, wording does not bring back
                raw += learned
        if text and self.examples and best_said < FUZZY_ENOUGH and not norm.english:
            # like the typo search, a fallback: strong cues need no look-alike example
            for _, sim, idx in process.extract(text, self.examples, scorer=fuzz.ratio,
                                               limit=3, score_cutoff=EXAMPLE_FLOOR):
                raw[self.index_of[self.example_target[idx]]] += \
                    EXAMPLE_WEIGHT * (sim - EXAMPLE_FLOOR) / (100 - EXAMPLE_FLOOR)
        raw[self.nothing] = max(raw[self.nothing], NOTHING)
        return raw, dict(fired), stated, learned

    def _flags(self, stated: set[str], best: str | None, seen_platforms: list[str]) -> list[str]:
        """The flags the text states; `best` is the reading when its own cues said so."""
        found = set(stated)
        if best == "interference.extortion":
            found.add("extortion")
        if best == "interference.competitor_smear":
            found.add("dispute")
        if best == "interference.account_matrix":      # matrix accounts are the flag's own case
            found.add("cross_platform")
        if len(seen_platforms) >= 2:
            found.add("cross_platform")
        return [f for f in taxonomy.FLAGS if f in found]
