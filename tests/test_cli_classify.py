"""`huqi classify --jsonl` as a batch job runs it: JSON lines in, one result
per non-empty line out, in order, in the shape of shared/spec/taxonomy.md;
bad lines become error objects and the run goes on."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge import knowledge, taxonomy

ROOT = Path(__file__).resolve().parent.parent


def _command() -> list[str]:
    script = Path(sys.executable).parent / "huqi"
    if script.exists():                      # the installed console script
        return [str(script), "classify", "--jsonl"]
    return [sys.executable, "-m", "bot.cli", "classify", "--jsonl"]


def run(lines: list[bytes | str], timeout: float = 60) -> tuple[list[dict], subprocess.CompletedProcess]:
    data = b"".join((l.encode("utf-8") if isinstance(l, str) else l) + b"\n" for l in lines)
    # a CI box: C locale, no PYTHONIOENCODING; output must still be UTF-8
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG", "LC_ALL", "LC_CTYPE")}
    env.update(LC_ALL="C")
    p = subprocess.run(_command(), input=data, capture_output=True, cwd=ROOT, env=env, timeout=timeout)
    out = p.stdout.decode("utf-8")
    return [json.loads(l) for l in out.splitlines()], p


def case(id_, text) -> str:
    return json.dumps({"id": id_, "text": text}, ensure_ascii=False)


def assert_result(obj: dict) -> None:
    """The fields of the classify contract (extra keys allowed)."""
    assert "error" not in obj, obj
    for key in ("id", "type", "subtype", "candidates", "platform", "flags"):
        assert key in obj, (key, obj)
    assert obj["type"] in taxonomy.TYPES
    assert obj["subtype"] in taxonomy.SUBTYPE_IDS
    assert taxonomy.type_of(obj["subtype"]) == obj["type"]
    c = obj["candidates"]
    assert isinstance(c, list) and len(c) >= 3
    assert c[0]["subtype"] == obj["subtype"]
    for x in c:
        assert x["subtype"] in taxonomy.SUBTYPE_IDS
        assert isinstance(x["score"], (int, float)) and 0 <= x["score"] <= 1
    assert [x["score"] for x in c] == sorted((x["score"] for x in c), reverse=True)
    assert obj["platform"] is None or obj["platform"] in knowledge().platforms
    # extra field: every platform seen, the case's own first
    assert isinstance(obj["platforms"], list) and set(obj["platforms"]) <= set(knowledge().platforms)
    assert obj["platform"] == (obj["platforms"][0] if obj["platforms"] else None)
    assert isinstance(obj["flags"], list) and set(obj["flags"]) <= set(taxonomy.FLAGS)


def assert_error(obj: dict, id_) -> None:
    assert obj.get("id", "MISSING") == id_, obj
    assert isinstance(obj.get("error"), str) and obj["error"], obj
    assert "type" not in obj and "candidates" not in obj


GOOD = [
    ("c1", "有人在微博造谣说我们公司资金链断裂,马上要破产 https://m.weibo.cn/status/5012345678"),
    ("c2", "对方要我们交三万块删帖费,不然就继续发我们的负面"),
    ("c3", "淘宝上有很多店铺在卖我们品牌的假货"),
    ("c4", "我们老板的私人手机号和家庭住址被人公布在网上"),
]


def test_one_line_per_input_in_order_with_ids_echoed():
    lines = [case(i, t) for i, t in GOOD]
    lines.insert(2, "")                 # blank lines are skipped
    lines.insert(4, "   \t")
    out, p = run(lines)
    assert p.returncode == 0, p.stderr.decode()
    assert [o["id"] for o in out] == [i for i, _ in GOOD]
    for o in out:
        assert_result(o)
    assert out[0]["platform"] == "weibo" and out[0]["type"] == "rumor"
    assert out[1]["subtype"] == "interference.extortion" and "extortion" in out[1]["flags"]
    assert out[2]["type"] == "out_of_scope"


def test_ids_of_any_json_kind_are_echoed_unchanged():
    ids = ["文-01", 7, 3.5, {"batch": 2, "row": 9}, ["a", 1], True]
    out, p = run([case(i, "有人冒充我们公司的官方账号") for i in ids]
                 + ['{"text": "有人冒充我们公司的官方账号"}'])
    assert p.returncode == 0
    assert [o["id"] for o in out] == ids + [None]   # no id in, "id": null out
    for o in out:
        assert_result(o)


def test_an_id_json_cannot_write_back_is_kept_as_written():
    """1e999 parses to infinity, which json would write as the non-JSON `Infinity`:
    the id is echoed as the string it was written as, and the line is classified."""
    raw = ['{"id": 1e999, "text": "有人冒充我们公司的官方账号"}',
           '{"id": -1e999, "text": "有人冒充我们公司的官方账号"}',
           '{"id": {"row": 1E400}, "text": "有人冒充我们公司的官方账号"}',
           '{"id": NaN, "text": "有人冒充我们公司的官方账号"}',
           '{"id": 2.5e3, "text": "有人冒充我们公司的官方账号"}']
    data = b"".join(l.encode() + b"\n" for l in raw)
    p = subprocess.run(_command(), input=data, capture_output=True, cwd=ROOT, timeout=60)
    lines = p.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(raw)
    out = [json.loads(l, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) for l in lines]
    assert [o["id"] for o in out] == ["1e999", "-1e999", {"row": "1E400"}, "NaN", 2500.0]
    for o in out:
        assert_result(o)


def test_matches_the_library():
    from knowledge import classify
    out, _ = run([case(i, t) for i, t in GOOD])
    for o, (_, text) in zip(out, GOOD):
        r = classify(text)
        assert (o["type"], o["subtype"], o["candidates"], o["platform"], o["flags"]) == \
               (r.type, r.subtype, r.candidates, r.platform, r.flags)


def test_bad_lines_give_errors_and_the_run_goes_on():
    lines = [
        case("ok1", "有人造谣说我们董事长有婚外情"),
        b'{"id": "broken", "text": "no closing brace"',        # not JSON
        b"[1, 2, 3]",                                           # a JSON array
        b'"just a string"',                                     # a JSON scalar
        b'{"id": "no-text"}',                                   # missing text
        b'{"id": "num", "text": 123}',                          # text not a string
        b'{"id": "null", "text": null}',
        b'{"id": "list", "text": ["a", "b"]}',
        b'{"id": "bytes", "text": "\xff\xfe\xfd"}',             # invalid UTF-8
        b"{}",                                                  # an empty object
        b"[" * 100_000,                                         # absurdly nested
        case("ok2", "有人在应用商店上架了山寨我们的APP"),
    ]
    out, p = run(lines)
    assert p.returncode == 0, p.stderr.decode()
    assert b"Traceback" not in p.stderr
    assert len(out) == len(lines)
    assert out[0]["id"] == "ok1"
    assert_result(out[0])
    assert_error(out[1], None)              # no id can be read from a broken line
    assert_error(out[2], None)
    assert_error(out[3], None)
    assert_error(out[4], "no-text")
    assert_error(out[5], "num")
    assert_error(out[6], "null")
    assert_error(out[7], "list")
    assert_error(out[8], None)
    assert_error(out[9], None)
    assert_error(out[10], None)
    assert out[11]["id"] == "ok2"
    assert_result(out[11])


def test_lone_surrogate_escape_does_not_kill_the_run():
    r"""JSON allows "\ud800" (half a surrogate pair); a batch must survive it."""
    lines = [
        b'{"id": "s1", "text": "\\ud800 \xe6\x9c\x89\xe4\xba\xba\xe9\x80\xa0\xe8\xb0\xa3"}',
        b'{"id": "\\udfff", "text": "\xe6\x9c\x89\xe4\xba\xba\xe9\x80\xa0\xe8\xb0\xa3"}',
        case("after", "有人冒充我们公司的客服电话"),
    ]
    out, p = run(lines)
    assert b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")[-800:]
    assert p.returncode == 0
    assert [o["id"] for o in out] == ["s1", "\udfff", "after"]
    assert_result(out[2])


def test_utf8_bom_at_the_start_of_the_file_is_ignored():
    """Files saved by Windows tools start with a byte-order mark."""
    out, p = run([b"\xef\xbb\xbf" + case("first", "有人造谣说我们公司偷税漏税").encode("utf-8"),
                  case("second", "有人造谣说我们公司偷税漏税")])
    assert p.returncode == 0
    assert out[0]["id"] == "first"
    assert_result(out[0])


def test_crlf_line_endings():
    data = [case("w1", "有人冒充我们的官方账号") + "\r", case("w2", "网上有人骂我们老板是骗子") + "\r"]
    out, p = run(data)
    assert [o["id"] for o in out] == ["w1", "w2"]
    for o in out:
        assert_result(o)


def test_100kb_text_line():
    text = "有人在微博上造谣说我们公司资金链断裂,马上要倒闭了。" * 4000
    assert len(text) >= 100_000
    out, p = run([case("big", text), case("next", "有人把我们董事长的身份证照片发到网上")])
    assert p.returncode == 0
    assert [o["id"] for o in out] == ["big", "next"]
    assert_result(out[0])
    assert out[0]["subtype"] == "rumor.exaggerated_difficulty"
    assert out[0]["platform"] == "weibo"


def test_empty_input():
    out, p = run([])
    assert p.returncode == 0 and out == []


def test_each_output_is_one_line_of_utf8_json():
    out, p = run([case("zh", "有人在網上造謠說我們的奶粉有毒,喝了會中毒"), case("emoji", "😡😡")])
    raw = p.stdout.decode("utf-8")
    assert raw.endswith("\n") and raw.count("\n") == 2
    assert out[0]["subtype"] == "rumor.product_quality"      # Traditional input
    assert_result(out[1])
