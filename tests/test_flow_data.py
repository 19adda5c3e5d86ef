"""The conversation's data files are checked when they are loaded: a typo fails at start, naming where."""
from __future__ import annotations

import shutil

import pytest
import yaml

from dialogs.flow import DATA_DIR, FlowError, load_flow
from dialogs.lifecycle import DATA_FILE, LifecycleError, load_lifecycle


@pytest.fixture
def data(tmp_path):
    for name in ("texts.yaml", "flow.yaml", "lifecycle.yaml"):
        shutil.copy(DATA_DIR / name, tmp_path / name)
    return tmp_path


def edit(path, change):
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def test_the_shipped_data_loads():
    flow = load_flow()
    assert flow.progress_total == 5
    assert flow.steps["describe"]["next"] == "confirm"
    load_lifecycle()


def test_a_misspelt_placeholder_fails_naming_file_entry_and_field(data):
    edit(data / "texts.yaml", lambda d: d["texts"].update(case_saved="已保存为案件 {case_idd}。"))
    with pytest.raises(FlowError) as e:
        load_flow(data)
    assert "texts.yaml" in str(e.value) and "case_saved" in str(e.value) and "case_idd" in str(e.value)


def test_a_misspelt_tracking_placeholder_fails_too(data):
    edit(data / "texts.yaml", lambda d: d["tracking"].update(recorded="{statuss}"))
    with pytest.raises(FlowError, match="tracking.recorded.*statuss"):
        load_flow(data)


@pytest.mark.parametrize("change,complaint", [
    (lambda d: d["steps"][1].update(next="nowhere"), "next 'nowhere'"),
    (lambda d: d["steps"][5].update(skip_if="moon_is_full"), "skip_if"),
    (lambda d: d["steps"][0].update(kind="dance"), "kind"),
    (lambda d: d["steps"][0].update(prompt="no_such_text"), "no_such_text"),
    (lambda d: d["steps"][0]["branch"].update(vague="limbo"), "branch vague: 'limbo'"),
    (lambda d: d["buttons"]["out_of_scope"].append({"label": "x", "value": "go:limbo"}), "go:limbo"),
])
def test_a_broken_step_graph_fails_at_load(data, change, complaint):
    edit(data / "flow.yaml", change)
    with pytest.raises(FlowError, match=complaint):
        load_flow(data)


def test_a_lifecycle_typo_fails_naming_the_file(data):
    edit(data / "lifecycle.yaml", lambda d: d["statuses"][0]["to"].append("submited"))
    with pytest.raises(LifecycleError) as e:
        load_lifecycle(data / "lifecycle.yaml")
    assert "lifecycle.yaml" in str(e.value) and "submited" in str(e.value)
    edit(data / "lifecycle.yaml", lambda d: d["statuses"][0]["to"].remove("submited"))
    edit(data / "lifecycle.yaml", lambda d: d["backstop"].append({"channel": "moon", "what": "x"}))
    with pytest.raises(LifecycleError, match="lifecycle.yaml.*backstop"):
        load_lifecycle(data / "lifecycle.yaml")
    assert DATA_FILE.name == "lifecycle.yaml"
