"""A character naive Bayes over example descriptions: how likely each sub-type is, from the wording."""
from __future__ import annotations

import numpy as np

from .text import pair_keys as _pair_keys

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
        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for text, label in examples:
            for f in features(text):
                rows.append(self.vocab.setdefault(f, len(self.vocab)))
                cols.append(index[label])
        counts = np.full((len(self.vocab), len(labels)), SMOOTHING)
        np.add.at(counts, (np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp)), 1.0)
        logp = np.log(counts / counts.sum(axis=0))
        # centred per feature: a feature common to every class says nothing
        self.weights = logp - logp.mean(axis=1, keepdims=True)
        # the vocabulary as sorted integer keys, for a vectorised look-up
        keys = np.array([int(_pair_keys(f)[0]) for f in self.vocab], dtype=np.int64)
        order = np.argsort(keys)
        self._keys = keys[order]
        self._rows = np.arange(len(keys), dtype=np.intp)[order]

    def posterior(self, pairs: set[str]) -> np.ndarray | None:
        """Probability of each label (uniform prior) given the text's character pairs;
        None when no pair is known."""
        ids = [i for i in map(self.vocab.get, pairs) if i is not None]
        return self._from_rows(np.array(ids, dtype=np.intp))

    def posterior_of(self, compact: str) -> np.ndarray | None:
        """posterior() of every character pair of compact text, looked up with arrays."""
        if not self.vocab:
            return None
        keys = np.unique(_pair_keys(compact))
        pos = np.searchsorted(self._keys, keys)
        pos[pos == len(self._keys)] = 0
        return self._from_rows(self._rows[pos[self._keys[pos] == keys]])

    def _from_rows(self, ids: np.ndarray) -> np.ndarray | None:
        if not len(ids):
            return None
        scores = self.weights[ids].sum(axis=0) / TEMPERATURE
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()
