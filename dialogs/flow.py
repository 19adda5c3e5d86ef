"""Load the conversation data (texts, step graph, buttons) and check it is complete and consistent."""
from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DATA_DIR = Path(__file__).parent / "data"
STEP_KINDS = ("text", "choice", "multi")
SKIP_PREDICATES = ("platform_known", "no_facts", "enterprise_known")
# Every placeholder the code fills in a text of texts.yaml; anything else is a typo.
PLACEHOLDERS = frozenset("""
    links type_title subtype_title subtype_titles cite explanation where platform question province text
    titles n total chosen enterprise limit name case_id contact path condition channel what flags
    title when hint note question answer topic region year summary outcome lesson label items why
    status age type next_action missing from to days message ref reason count outcome_label
""".split())


class FlowError(Exception):
    pass


@dataclass(frozen=True)
class Flow:
    texts: dict[str, str]
    channels: dict[str, str]
    conditions: dict[str, str]
    topics: dict[str, str]
    steps: dict[str, dict]
    buttons: dict
    none_of_these: dict
    facts: list[dict]
    answers: dict[str, list[str]]
    commands: dict[str, list[str]]
    limits: dict[str, int]
    tracking: dict[str, str]
    about_us: list[str]
    tracking_buttons: dict[str, str]
    not_enterprise: list[str]
    progress_total: int
    enterprise_name: dict
    simplified_only: str

    def after(self, step: str, answer: str | None = None) -> str:
        """Where the graph leads from `step`: its `next`, or its `branch[answer]`."""
        spec = self.steps[step]
        return spec["branch"][answer] if answer else spec["next"]

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


def check_placeholders(file: str, section: str, table: dict) -> list[str]:
    """Problems with the {fields} of each text: malformed, or a name the code never fills."""
    problems = []
    for key, template in table.items():
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(str(template)) if f is not None}
        except ValueError as e:
            problems.append(f"{file}: {section}.{key}: {e}")
            continue
        for field in sorted(fields):
            if field not in PLACEHOLDERS:
                problems.append(f"{file}: {section}.{key}: unknown placeholder {{{field}}}")
    return problems


@lru_cache(maxsize=4)
def load_flow(data_dir: Path = DATA_DIR) -> Flow:
    texts = _read("texts", data_dir)
    flow = _read("flow", data_dir)
    try:
        steps = {s["id"]: s for s in flow["steps"]}
        f = Flow(
            texts={k: str(v) for k, v in texts["texts"].items()},
            channels=texts["channels"], conditions=texts["conditions"],
            topics=texts["topics"],
            steps=steps,
            buttons=flow["buttons"], none_of_these=flow["buttons"]["none_of_these"],
            facts=flow["facts"], answers={k: [str(w) for w in v] for k, v in flow["answers"].items()},
            commands=flow["commands"],
            limits=flow["limits"],
            tracking={k: str(v) for k, v in texts["tracking"].items()},
            about_us=[str(w) for w in flow.get("about_us") or []],
            tracking_buttons=texts["tracking_buttons"],
            not_enterprise=[str(w) for w in flow.get("not_enterprise") or []],
            progress_total=max((int(s.get("progress") or 0) for s in steps.values()), default=0),
            enterprise_name=dict(flow["enterprise_name"]),
            simplified_only=str(flow["simplified_only"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise FlowError(f"flow.yaml/texts.yaml: missing or malformed {e}") from e
    problems = []
    for sid, s in f.steps.items():
        if s.get("kind") not in STEP_KINDS:
            problems.append(f"flow.yaml: step {sid}: kind must be one of {STEP_KINDS}")
        if s.get("prompt") and s["prompt"] not in f.texts:
            problems.append(f"flow.yaml: step {sid}: prompt {s['prompt']!r} is not in texts.yaml")
        b = s.get("buttons")
        if b and b != "dynamic" and b not in f.buttons:
            problems.append(f"flow.yaml: step {sid}: buttons {b!r} not defined")
        if s.get("next") and s["next"] not in f.steps:
            problems.append(f"flow.yaml: step {sid}: next {s['next']!r} is not a step")
        if s.get("skip_if") and s["skip_if"] not in SKIP_PREDICATES:
            problems.append(f"flow.yaml: step {sid}: skip_if {s['skip_if']!r} is not one of {SKIP_PREDICATES}")
        for answer, target in (s.get("branch") or {}).items():
            if target not in f.steps:
                problems.append(f"flow.yaml: step {sid}: branch {answer}: {target!r} is not a step")
    for spec in f.buttons.values():
        group = spec if isinstance(spec, list) else [spec] if "value" in spec else list(spec.values())
        for b in group:
            target = str(b.get("value", ""))
            kind, _, step = target.partition(":")
            if kind == "go" and step not in f.steps:
                problems.append(f"flow.yaml: button {b.get('label')!r}: {target!r} is not a step")
    problems += check_placeholders("texts.yaml", "texts", f.texts)
    problems += check_placeholders("texts.yaml", "tracking", f.tracking)
    problems += check_placeholders("texts.yaml", "tracking_buttons", f.tracking_buttons)
    if problems:
        raise FlowError("\n".join(problems))
    return f
