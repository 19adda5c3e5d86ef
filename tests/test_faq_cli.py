"""`huqi faq`: one question, or JSON lines in and one result a line out, in order;
bad lines become error objects and the run goes on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.faq_cli import answer, answer_line
from knowledge import knowledge
from knowledge.faq import FaqIndex

ROOT = Path(__file__).resolve().parent.parent
KEYS = {"id", "faq_id", "question", "answer", "sources", "score", "related"}


def _command(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "huqi"
    if script.exists():
        return [str(script), "faq", *args]
    return [sys.executable, "-m", "bot.cli", "faq", *args]


def run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG", "LC_ALL", "LC_CTYPE")}
    env.update(LC_ALL="C")
    return subprocess.run(_command(*args), input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=60)


@pytest.fixture(scope="module")
def index():
    return FaqIndex(knowledge())


def test_one_question_prints_the_answer_with_its_sources():
    p = run(["删帖要交钱不"])
    assert p.returncode == 0, p.stderr
    obj = json.loads(p.stdout.decode("utf-8"))
    assert KEYS <= set(obj)
    assert obj["faq_id"] == "platform_charges"
    assert "WS Art. 26" in obj["sources"]
    assert obj["answer"] and 0 < obj["score"] <= 1
    assert all({"faq_id", "question"} <= set(r) for r in obj["related"])


def test_no_question_is_a_usage_error():
    p = run([])
    assert p.returncode == 2
    assert "huqi faq" in p.stderr.decode("utf-8")


def test_jsonl_keeps_order_and_survives_bad_lines():
    lines = [
        json.dumps({"id": "a", "text": "举报要带啥材料"}, ensure_ascii=False).encode(),
        b"not json",
        json.dumps({"id": "b"}).encode(),
        b"\xff\xfe",
        b"",
        json.dumps({"id": 7, "text": "今天天气怎么样"}, ensure_ascii=False).encode(),
        b"[1, 2]",
        json.dumps({"id": "c", "text": "網上有人造謠我們公司"}, ensure_ascii=False).encode(),
    ]
    p = run(["--jsonl"], b"\n".join(lines) + b"\n")
    assert p.returncode == 0, p.stderr
    out = [json.loads(l) for l in p.stdout.decode("utf-8").splitlines()]
    assert len(out) == 7                      # the empty line gives nothing
    assert out[0]["id"] == "a" and out[0]["faq_id"] == "materials_needed" and KEYS <= set(out[0])
    assert out[1]["line"] == 2 and "JSON" in out[1]["error"]
    assert out[2]["id"] == "b" and "text" in out[2]["error"]
    assert out[3]["line"] == 4 and "UTF-8" in out[3]["error"]
    assert out[4]["id"] == 7 and out[4]["faq_id"] is None and out[4]["answer"] is None
    assert out[5]["line"] == 7 and "error" in out[5]
    assert out[6]["id"] == "c" and out[6]["faq_id"] == "type_rumor"


def test_nothing_fits_gives_null_and_the_nearest_topics(index):
    r = answer(index, "公司年底发奖金要交税吗", id_=1)
    assert r["faq_id"] is None and r["sources"] == []
    assert KEYS <= set(r)
    assert r["related"] and all(x["faq_id"] in index.entries for x in r["related"])
    assert [x["score"] for x in r["related"]] == sorted((x["score"] for x in r["related"]), reverse=True)


def test_huge_and_odd_input_gets_an_answer_object(index):
    assert answer(index, "删帖" * 50000)["id"] is None
    r = answer_line(index, json.dumps({"id": "x", "text": "\ud800"}), 1)
    assert r["id"] == "x"
    assert answer_line(index, b'{"id": 1, "text": 5}', 3)["error"]


def test_a_traditional_question_gets_a_traditional_answer(index):
    r = answer(index, "平台收費刪帖合法嗎")
    assert r["faq_id"] == "platform_charges"
    assert "條" in r["answer"] and "条" not in r["answer"]
    assert r["sources"] == list(index.entries["platform_charges"]["source"])   # ids stay as in the data


def test_an_id_json_cannot_write_back_is_kept_as_its_text(index):
    r = answer_line(index, b'{"id": 1e999, "text": "\xe5\x88\xa0\xe5\xb8\x96\xe8\xa6\x81\xe6\x94\xb6\xe8\xb4\xb9\xe5\x90\x97"}', 1)
    assert r["id"] == "1e999" and r["faq_id"]
    json.loads(json.dumps(r, allow_nan=False))
