"""Load the conversation data (texts, steps, buttons) and check it is complete."""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).parent / "data"


class FlowError(Exception):
    pass


@dataclass(frozen=True)
class Flow:
    texts: dict[str, str]
    channels: dict[str, str]
    conditions: dict[str, str]
    topics: dict[str, str]
    steps: dict[str, dict]
    buttons: dict[str, list[dict]]
    none_of_these: dict
    facts: list[dict]
    answers: dict[str, list[str]]
    commands: dict[str, list[str]]
    limits: dict[str, int]
    tracking: dict[str, str]
    about_us: list[str]
    tracking_buttons: dict[str, str]

    def text(self, key: str, **values) -> str:
        template = self.texts[key]
        return template.format(**values).strip() if values else template.strip()


def _read(name: str, data_dir: Path) -> dict:
    path = data_dir / f"{name}.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise FlowError(f"{path.name}: {e}") from e
    if not isinstance(data, dict):
        raise FlowError(f"{path.name}: top level must be a mapping")
    return data


@lru_cache(maxsize=4)
def load_flow(data_dir: Path = DATA_DIR) -> Flow:
    texts = _read("texts", data_dir)
    flow = _read("flow", data_dir)
    try:
        f = Flow(
            texts={k: str(v) for k, v in texts["texts"].items()},
            channels=texts["channels"], conditions=texts["conditions"],
            topics=texts["topics"],
            steps={s["id"]: s for s in flow["steps"]},
            buttons=flow["buttons"], none_of_these=flow["buttons"]["none_of_these"],
            facts=flow["facts"], answers=flow["answers"], commands=flow["commands"],
            limits=flow["limits"],
            tracking={k: str(v) for k, v in texts["tracking"].items()},
            about_us=[str(w) for w in flow.get("about_us") or []],
            tracking_buttons=texts["tracking_buttons"],
        )
    except (KeyError, TypeError) as e:
        raise FlowError(f"flow.yaml/texts.yaml: missing {e}") from e
    problems = []
    for sid, s in f.steps.items():
        if s.get("prompt") and s["prompt"] not in f.texts:
            problems.append(f"flow.yaml: step {sid}: prompt {s['prompt']!r} is not in texts.yaml")
        b = s.get("buttons")
        if b and b != "dynamic" and b not in f.buttons:
            problems.append(f"flow.yaml: step {sid}: buttons {b!r} not defined")
    for key, template in f.texts.items():
        try:
            list(string.Formatter().parse(template))
        except ValueError as e:
            problems.append(f"texts.yaml: {key}: {e}")
    if problems:
        raise FlowError("\n".join(problems))
    return f
