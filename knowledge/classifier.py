"""Classify a description: ranked sub-types with scores, the type, the platform and the flags."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from . import taxonomy
from .matcher import CueIndex, parse_cue
from .platforms import PlatformResolver
from .text import Normalised, normalise

WEAK = 0.4             # weight of a weak cue
STRONG = 2.0           # weight of a decisive cue ("与公司无关", "撤稿")
TYPE_SHARE = 0.6       # how much a type-level cue adds to each of its sub-types
OTHER_BASE = 0.3       # the ".other" sub-type of a type that has evidence
DECAY = 0.6            # the k-th cue of the same target counts DECAY**k
EXAMPLE_FLOOR = 45.0   # rapidfuzz ratio below which an example says nothing
EXAMPLE_WEIGHT = 1.2
FUZZY_ENOUGH = 2.5     # exact evidence this strong for one target: no typo search
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
    cues: dict[str, list[str]] = field(default_factory=dict)   # sub-type -> cues that fired

    def as_json(self, id_: object = None) -> dict:
        out = {"id": id_} if id_ is not None else {}
        out.update(type=self.type, subtype=self.subtype, candidates=self.candidates,
                   platform=self.platform, flags=self.flags, unsure=self.unsure)
        return out


_DECAYS = [DECAY ** k for k in range(64)]
_NEGATED_SPAN = re.compile(r"(?:没有|不是|并非|从未|并无|从来没|从没|根本没)[^,.;!?，。；！？]{0,8}")


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
                              and not c.target.startswith(("out_of_scope", "block:", "flag")))
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
        self.platforms = PlatformResolver(kb.platforms, kb.platform_exceptions)

    def classify(self, text: str) -> Result:
        norm = normalise(text)
        raw, fired, stated, learned = self._score(norm)
        order = np.argsort(-raw, kind="stable")          # ties keep the order of types.yaml
        best = int(order[0])
        best_sid, best_raw = self.subtypes[best], float(raw[best])
        candidates = [{"subtype": self.subtypes[i], "score": _squash(float(raw[i]))}
                      for i in order[:max(MIN_CANDIDATES, 5)]]
        platform, seen = self.platforms.resolve(norm)
        other_types = self.type_of_sub != self.type_of_sub[best]
        second_type = float(raw[other_types].max()) if other_types.any() else 0.0
        # sure only with said evidence: what was learned from examples ranks, it does not decide
        said = best_raw - float(learned[best])
        flags = self._flags(stated, best_sid if said >= 1.0 else None, seen)
        unsure = _squash(said) < UNSURE_BELOW or best_raw - second_type < 0.25 * best_raw
        return Result(
            type=taxonomy.type_of(best_sid), subtype=best_sid, candidates=candidates,
            platform=platform, platforms=seen, flags=flags, links=list(norm.links),
            unsure=unsure, traditional=norm.traditional, cues=fired,
        )

    def _score(self, norm: Normalised) -> tuple[np.ndarray, dict[str, list[str]], set[str], np.ndarray]:
        """(score per sub-type, cues that fired per sub-type, flags stated, the learned part of the score)."""
        text = norm.compact
        credits: dict[str, list[float]] = defaultdict(list)
        fired: dict[str, list[str]] = defaultdict(list)
        found = self.index.found_parts(text)
        flag_hits, blocked = [], set()
        cues, is_flag = self.index.cues, self.is_flag
        for ci, credit in self.index.match(text, found=found, enough=FUZZY_ENOUGH):
            cue = cues[ci]
            if is_flag[ci]:
                if cue.target == "flag-":     # a phrase that looks like a flag but is not
                    pid = self.index.cue_parts[ci][0]
                    blocked.update(k for i in found[pid] for k in range(i, i + len(cue.parts[0])))
                else:
                    flag_hits.append(ci)
                continue
            target = cue.target
            credits[target].append(cue.weight * credit)
            fired[target].append(cue.text)
        stated = set()
        for ci in flag_hits:
            pid = self.index.cue_parts[ci][0]
            length = len(self.index.parts[pid])
            if any(not blocked.intersection(range(i, i + length)) for i in found[pid]):
                stated.add(self.index.cues[ci].target[5:])
        total = {target: sum(c * d for c, d in zip(sorted(cs, reverse=True), _DECAYS))
                 for target, cs in credits.items()}
        for target in [t for t in total if t.startswith("block:")]:
            total.pop(target[6:], None)     # a blocking phrase silences the sub-type's own cues
        own = np.zeros(len(self.subtypes))
        by_type = np.zeros(len(self.type_slot))
        for target, value in total.items():
            i = self.index_of.get(target)
            if i is not None:
                own[i] = value
            elif target in self.type_slot:
                by_type[self.type_slot[target]] = value
        type_raw = by_type[self.type_of_sub]
        raw = own + TYPE_SHARE * type_raw
        raw[self.catch_all & ((type_raw > 0) | (own > 0))] += OTHER_BASE
        learned = np.zeros(len(self.subtypes))
        if text and self.bayes is not None:
            plain = _NEGATED_SPAN.sub("|", text)      # what is denied says nothing of the kind
            posterior = self.bayes.posterior({plain[k:k + 2] for k in range(len(plain) - 1)})
            if posterior is not None:
                # a catch-all is chosen for lack of specifics, and "not infringement" needs a
                # stated reason: wording alone weighs less there
                share = np.where(self.not_infringement & (own == 0), BAYES_OTHER, self.learned_share)
                learned = BAYES_WEIGHT * share * posterior
                raw += learned
        if text and self.examples and max(total.values(), default=0.0) < FUZZY_ENOUGH:
            # like the typo search, a fallback: strong cues need no look-alike example
            for _, sim, idx in process.extract(text, self.examples, scorer=fuzz.ratio,
                                               limit=3, score_cutoff=EXAMPLE_FLOOR):
                raw[self.index_of[self.example_target[idx]]] += \
                    EXAMPLE_WEIGHT * (sim - EXAMPLE_FLOOR) / (100 - EXAMPLE_FLOOR)
        raw[self.nothing] = max(raw[self.nothing], NOTHING)
        return raw, {k: v for k, v in fired.items() if not k.startswith(("type:", "block:"))}, stated, learned

    def _flags(self, stated: set[str], best: str | None, seen_platforms: list[str]) -> list[str]:
        """The flags the text states; `best` is the reading when its own cues said so."""
        found = set(stated)
        if best == "interference.extortion":
            found.add("extortion")
        if best == "interference.competitor_smear":
            found.add("dispute")
        if len(seen_platforms) >= 2:
            found.add("cross_platform")
        return [f for f in taxonomy.FLAGS if f in found]
