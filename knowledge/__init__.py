"""What the rules say: the knowledge base and the pure functions that query it."""
from __future__ import annotations

from functools import lru_cache

from .loader import KnowledgeBase, KnowledgeError, Problem, load

__all__ = ["KnowledgeBase", "KnowledgeError", "Problem", "load", "knowledge", "get_classifier", "classify"]


@lru_cache(maxsize=1)
def knowledge() -> KnowledgeBase:
    """The validated knowledge base shipped with the package (loaded once)."""
    return load()


@lru_cache(maxsize=1)
def get_classifier():
    from .classifier import Classifier
    return Classifier(knowledge())


def classify(text: str):
    """Ranked sub-types with scores, the type, the platform and the flags of a description."""
    return get_classifier().classify(text)
