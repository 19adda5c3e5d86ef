"""A character naive Bayes over example descriptions: how likely each sub-type is, from the wording."""
from __future__ import annotations

import numpy as np

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

    def posterior(self, pairs: set[str]) -> np.ndarray | None:
        """Probability of each label (uniform prior) given the text's character pairs;
        None when no pair is known."""
        ids = [i for i in map(self.vocab.get, pairs) if i is not None]
        if not ids:
            return None
        scores = self.weights[ids].sum(axis=0) / TEMPERATURE
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()
