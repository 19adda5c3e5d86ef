"""A character naive Bayes over example descriptions: how likely each sub-type is, from the wording."""
from __future__ import annotations

import numpy as np

from .text import distinct, pair_keys

SMOOTHING = 0.3
TEMPERATURE = 2.0      # > 1 flattens the posterior (naive Bayes is overconfident)


def features(compact: str) -> set[str]:
    """The character pairs of normalised, compact text (each counted once)."""
    return {compact[k:k + 2] for k in range(len(compact) - 1)}


class CharBayes:
    def __init__(self, labels: list[str], examples: list[tuple[str, str]]):
        """labels: every class, in order; examples: (compact text, label) pairs."""
        self.labels = labels
        index = {label: i for i, label in enumerate(labels)}
        # every example's distinct character pairs as integer keys, with its label:
        # (key, example) pairs made unique in one pass, so a pair counts once per example
        per_text = [pair_keys(text) for text, _ in examples]
        keys = np.concatenate(per_text) if per_text else np.zeros(0, dtype=np.int64)
        example = np.repeat(np.arange(len(per_text), dtype=np.int64), [len(k) for k in per_text])
        both = distinct((keys << 12) | example) if len(examples) < 4096 else \
            distinct(keys * len(examples) + example)
        keys, example = (both >> 12, both & 4095) if len(examples) < 4096 else \
            (both // len(examples), both % len(examples))
        label_of = np.array([index[label] for _, label in examples], dtype=np.intp)[example] \
            if len(examples) else np.zeros(0, dtype=np.intp)
        self._keys = distinct(keys)                                # the vocabulary, sorted
        row = np.searchsorted(self._keys, keys)
        counts = np.full((len(self._keys), len(labels)), SMOOTHING)
        np.add.at(counts, (row, label_of), 1.0)
        logp = np.log(counts / counts.sum(axis=0))
        # centred per feature: a feature common to every class says nothing
        self.weights = logp - logp.mean(axis=1, keepdims=True)

    def posterior(self, pairs: set[str]) -> np.ndarray | None:
        """Probability of each label (uniform prior) given the text's character pairs;
        None when no pair is known."""
        keys = np.array(sorted(int(pair_keys(p)[0]) for p in pairs if len(p) == 2), dtype=np.int64)
        return self._from_keys(keys)

    def posterior_of(self, compact: str) -> np.ndarray | None:
        """posterior() of every character pair of compact text, looked up with arrays."""
        return self._from_keys(distinct(pair_keys(compact)))

    def _from_keys(self, keys: np.ndarray) -> np.ndarray | None:
        if not len(self._keys) or not len(keys):
            return None
        pos = np.searchsorted(self._keys, keys)
        pos[pos == len(self._keys)] = 0
        ids = pos[self._keys[pos] == keys]
        if not len(ids):
            return None
        scores = self.weights[ids].sum(axis=0) / TEMPERATURE
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()
