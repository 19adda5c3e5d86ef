"""The service's own texts (bot/data/service.yaml), in the user's script."""
from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import yaml

from knowledge.text import to_traditional

PATH = Path(__file__).with_name("data") / "service.yaml"


@lru_cache(maxsize=1)
def _texts() -> dict:
    with open(PATH, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{PATH}: expected a mapping of text keys")
    return data


def raw(key: str):
    return _texts()[key]


def text(key: str, lang: str | None = None, **values) -> str:
    """The text under ``key`` with its placeholders filled; Traditional when ``lang == "hant"``."""
    out = string.Formatter().vformat(_texts()[key], (), values)
    return to_traditional(out) if lang == "hant" else out


def labels(key: str, lang: str | None = None) -> list[str]:
    items = [str(x) for x in _texts()[key]]
    return [to_traditional(x) for x in items] if lang == "hant" else items


def placeholders(key: str) -> set[str]:
    value = _texts()[key]
    return {f for _, f, _, _ in string.Formatter().parse(value) if f} if isinstance(value, str) else set()
