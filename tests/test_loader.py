"""The knowledge-base loader: policy staff edit YAML by hand, and every mistake
must come back as a KnowledgeError naming file, entry and field — all of them
at once, never a traceback or a silently wrong knowledge base."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from knowledge import KnowledgeError, load, taxonomy
from knowledge.loader import DATA_DIR, FILES

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ helpers

@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A private copy of the shipped knowledge/data to break."""
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    return d


def edit(data: Path, file: str, old: str, new: str) -> None:
    """Replace the first `old` in `file` by `new`; `old` must be there."""
    p = data / file
    text = p.read_text(encoding="utf-8")
    assert old in text, f"test data drifted: {old!r} not in {file}"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")


def edit_re(data: Path, file: str, pattern: str, repl: str) -> re.Match:
    p = data / file
    text = p.read_text(encoding="utf-8")
    m = re.search(pattern, text, flags=re.M | re.S)
    assert m, f"test data drifted: /{pattern}/ not in {file}"
    p.write_text(text[:m.start()] + m.expand(repl) + text[m.end():], encoding="utf-8")
    return m


def problems_of(data: Path) -> list:
    with pytest.raises(KnowledgeError) as exc:
        load(data)
    err = exc.value
    assert err.problems, "KnowledgeError without problems"
    # the message lists the problems, so `huqi kb check` can just print it
    assert str(err.problems[0]) in str(err)
    return err.problems


def find(problems, file: str, entry: str | None = None, field: str | None = None, *words: str):
    """The one problem of file/entry/field whose message mentions all words."""
    hits = [p for p in problems
            if p.file == file
            and (entry is None or p.entry == entry)
            and (field is None or p.field == field)
            and all(w in p.message for w in words)]
    assert hits, (f"no problem {file}/{entry}/{field} {words}; got:\n"
                  + "\n".join(map(str, problems)))
    return hits[0]


# ------------------------------------------------------------------ the shipped KB

def test_shipped_knowledge_base_loads_clean():
    kb = load()
    assert set(kb.types) == set(taxonomy.TYPES)
    assert set(kb.subtypes) == set(taxonomy.SUBTYPE_IDS)
    assert set(kb.flags) == set(taxonomy.FLAGS)
    assert set(taxonomy.PLATFORMS) <= set(kb.platforms)
    assert len(kb.provinces) == 32
    counts = kb.counts()
    assert all(v > 0 for v in counts.values()), counts


def test_copy_of_shipped_data_loads_clean(data):
    """The fixture itself is sound: every failure below comes from the edit."""
    kb = load(data)
    assert kb.data_dir == data


# ------------------------------------------------------------------ YAML typos

def test_missing_closing_bracket_names_file_and_line(data):
    # drop the "]" of the first flow list in platforms.yaml (an alias list)
    m = edit_re(data, "platforms.yaml", r"^(    aliases: \[[^\]\n]*)\]", r"\1")
    typo_line = (data / "platforms.yaml").read_text(encoding="utf-8")[:m.start()].count("\n") + 1
    problems = problems_of(data)
    p = find(problems, "platforms.yaml", None, None, "YAML")
    line = int(re.search(r"line (\d+)", p.entry).group(1))
    assert typo_line <= line <= typo_line + 2, (typo_line, str(p))
    # the syntax error comes first, before its consequences
    assert problems[0] == p


def test_bad_indentation_is_a_syntax_error_with_its_line(data):
    m = edit_re(data, "faq.yaml", r"^    (related: \[)", r"      \1")
    bad_line = (data / "faq.yaml").read_text(encoding="utf-8")[:m.start()].count("\n") + 1
    problems = problems_of(data)
    p = find(problems, "faq.yaml", None, None, "YAML")
    line = int(re.search(r"line (\d+)", p.entry).group(1))
    assert abs(line - bad_line) <= 1, (bad_line, str(p))


def test_tab_in_indentation_is_reported_not_raised(data):
    edit(data, "flags.yaml", "\n    title:", "\n\ttitle:")
    find(problems_of(data), "flags.yaml", None, None, "YAML")


def test_syntax_error_in_documents_yaml_is_shown_first(data):
    """Every `source` depends on documents.yaml; its typo must lead the message."""
    edit(data, "documents.yaml", "documents:", "documents: [")
    with pytest.raises(KnowledgeError) as exc:
        load(data)
    first = str(exc.value).splitlines()[1]
    assert first.startswith("documents.yaml") and "YAML" in first, first


def test_not_utf8_is_reported(data):
    (data / "cases.yaml").write_bytes("cases: []\n# 说明\n".encode("gbk"))
    find(problems_of(data), "cases.yaml", None, None, "UTF-8")


def test_missing_file_is_reported(data):
    (data / "measures.yaml").unlink()
    find(problems_of(data), "measures.yaml", None, None, "missing")


def test_entry_that_is_not_a_mapping(data):
    # a list item written as a bare string ("- weibo" instead of "- id: weibo")
    edit(data, "platforms.yaml", "platforms:\n", "platforms:\n  - weibo_typo\n")
    find(problems_of(data), "platforms.yaml", "#1", None, "mapping")


# ------------------------------------------------------------------ taxonomy

def test_unknown_subtype_id(data):
    edit(data, "types.yaml", "id: rumor.innovation\n", "id: rumor.innovations\n")
    problems = problems_of(data)
    find(problems, "types.yaml", "rumor.innovations", "id", "taxonomy")
    # ... and the real id is now missing: both are reported together
    find(problems, "types.yaml", "rumor.innovation", None, "missing")


def test_subtype_listed_under_the_wrong_type(data):
    # move rumor.product_quality's id under "misleading" by renaming a misleading sub-type
    edit(data, "types.yaml", "id: misleading.other\n", "id: rumor.product_quality\n")
    problems = problems_of(data)
    find(problems, "types.yaml", "rumor.product_quality", "id", "misleading")


def test_subtype_of_the_taxonomy_removed(data):
    edit_re(data, "types.yaml", r"^      - id: rumor\.innovation\n.*?(?=^      - id: )", "")
    problems = problems_of(data)
    p = find(problems, "types.yaml", "rumor.innovation", None, "missing")
    assert "taxonomy" in p.message


def test_type_of_the_taxonomy_removed(data):
    edit_re(data, "types.yaml", r"^  - id: insult\n.*?(?=^  - id: )", "")
    problems = problems_of(data)
    find(problems, "types.yaml", "insult", None, "missing")
    find(problems, "types.yaml", "insult.abuse", None, "missing")
    # evidence.yaml still has a block for the type that vanished
    find(problems, "evidence.yaml", "insult", None, "unknown type")


def test_type_of_the_taxonomy_removed_from_evidence(data):
    edit_re(data, "evidence.yaml", r"^  insult:\n.*?(?=^  \w+:\n)", "")
    find(problems_of(data), "evidence.yaml", "insult", "by_type")


def test_unknown_flag_id(data):
    edit(data, "flags.yaml", "id: repeat_offender", "id: repeat_offenders")
    problems = problems_of(data)
    find(problems, "flags.yaml", "repeat_offenders", "id", "unknown flag")
    find(problems, "flags.yaml", "repeat_offender", None, "missing")


# ------------------------------------------------------------------ sources

def test_missing_source(data):
    edit_re(data, "types.yaml",
            r"(- id: rumor\.exaggerated_difficulty\n(?:(?!      - id:).)*?)^        source: [^\n]*\n", r"\1")
    find(problems_of(data), "types.yaml", "rumor.exaggerated_difficulty", "source", "missing")


def test_missing_source_on_faq_answer(data):
    edit_re(data, "faq.yaml", r"(- id: what_counts\n(?:(?!  - id:).)*?)^    source: [^\n]*\n", r"\1")
    find(problems_of(data), "faq.yaml", "what_counts", "source", "missing")


def test_source_with_unknown_document_key(data):
    edit_re(data, "types.yaml",
            r"(- id: rumor\.exaggerated_difficulty\n(?:(?!      - id:).)*?^        source: )WS", r"\1WSS")
    p = find(problems_of(data), "types.yaml", "rumor.exaggerated_difficulty", "source", "unknown document key")
    assert "WSS" in p.message


def test_unknown_document_key_deep_in_a_nested_entry(data):
    """The sweep finds `source` anywhere, e.g. a channel's nested notes."""
    edit(data, "channels.yaml", "source: research", "source: reserch")
    find(problems_of(data), "channels.yaml", None, "source", "reserch")


def test_unknown_document_key_in_a_list_of_sources(data):
    edit(data, "faq.yaml", "source: [WS Art. 4, guidance (十七)]", "source: [WS Art. 4, guidence (十七)]")
    p = find(problems_of(data), "faq.yaml", "what_counts", "source", "guidence")
    assert "documents.yaml" in p.message


# ------------------------------------------------------------------ platforms

def test_duplicate_alias_across_two_platforms(data):
    # 头条 is toutiao's; add it to douyin as well
    edit_re(data, "platforms.yaml", r"(- id: douyin\n(?:(?!  - id:).)*?aliases: \[)", r"\1头条, ")
    problems = problems_of(data)
    p = find(problems, "platforms.yaml", None, "aliases", "头条")
    assert p.entry in ("douyin", "toutiao")
    assert ({"douyin", "toutiao"} - {p.entry}).pop() in p.message


def test_duplicate_alias_differing_only_in_case(data):
    edit_re(data, "platforms.yaml", r"(- id: douyin\n(?:(?!  - id:).)*?aliases: \[)", r"\1WB, ")
    p = find(problems_of(data), "platforms.yaml", "douyin", "aliases", "WB")
    assert "weibo" in p.message


def test_duplicate_domain(data):
    edit_re(data, "platforms.yaml", r"(- id: xiaohongshu\n(?:(?!  - id:).)*?domains: \[)", r"\1t.cn, ")
    p = find(problems_of(data), "platforms.yaml", "xiaohongshu", "domains", "t.cn")
    assert "weibo" in p.message


def test_domain_written_as_url(data):
    edit_re(data, "platforms.yaml", r"(- id: zhihu\n(?:(?!  - id:).)*?domains: \[)", r"\1https://zhihu.com/, ")
    find(problems_of(data), "platforms.yaml", "zhihu", "domains", "no scheme")


def test_url_in_platform_complaint_without_source(data):
    edit_re(data, "platforms.yaml",
            r"(- id: weibo\n(?:(?!  - id:).)*?complaint:\n(?:(?!  - id:).)*?)"
            r"url: \"\"\n((?:(?!  - id:).)*?)^      source: [^\n]*\n",
            r'\1url: "https://kefu.weibo.com/"\n\2')
    problems = problems_of(data)
    find(problems, "platforms.yaml", "weibo complaint", "url", "source")
    find(problems, "platforms.yaml", "weibo complaint", "source", "missing")


def test_platform_of_the_taxonomy_removed(data):
    edit_re(data, "platforms.yaml", r"^  - id: maimai\n.*", "")
    find(problems_of(data), "platforms.yaml", "maimai", None, "missing")


# ------------------------------------------------------------------ cross references

def test_related_faq_id_that_does_not_exist(data):
    edit_re(data, "faq.yaml", r"(- id: what_counts\n(?:(?!  - id:).)*?related: \[)", r"\1no_such_question, ")
    p = find(problems_of(data), "faq.yaml", "what_counts", "related", "no_such_question")
    assert p.message


def test_unknown_flag_in_routing_when(data):
    edit(data, "routing.yaml", "when: flag:key_moment", "when: flag:key_moments")
    find(problems_of(data), "routing.yaml", "platform_key_moment", "when", "key_moments")


def test_unknown_condition_in_routing_when(data):
    edit(data, "routing.yaml", "when: [no_response, refused]", "when: [no_respons, refused]")
    find(problems_of(data), "routing.yaml", "province", "when", "no_respons")


def test_unknown_condition_in_routing_unless(data):
    """`unless` and `and_when` use the same vocabulary as `when`: a typo there
    silently changes the channel plan (the step is never dropped)."""
    edit(data, "routing.yaml", "when: [no_response, refused]", "when: [no_response, refused]\n    unless: [province_unknow]")
    find(problems_of(data), "routing.yaml", "province", "unless", "province_unknow")


def test_unknown_flag_in_routing_and_when(data):
    edit(data, "routing.yaml", "and_when: [no_response, refused]", "and_when: [no_response, flag:refusd]")
    find(problems_of(data), "routing.yaml", "central_escalation", "and_when", "refusd")


def test_unknown_subtype_in_a_case(data):
    edit_re(data, "cases.yaml", r"(types: \[)", r"\1rumor.made_up, ")
    find(problems_of(data), "cases.yaml", None, "types", "rumor.made_up")


def test_unknown_flag_in_measures(data):
    edit(data, "measures.yaml", "flags: [key_moment]", "flags: [keymoment]")
    find(problems_of(data), "measures.yaml", None, "flags", "keymoment")


# ------------------------------------------------------------------ all at once

def test_several_problems_in_several_files_are_all_reported(data):
    edit(data, "routing.yaml", "when: flag:key_moment", "when: flag:key_moments")
    edit_re(data, "faq.yaml", r"(- id: what_counts\n(?:(?!  - id:).)*?related: \[)", r"\1no_such_question, ")
    edit_re(data, "platforms.yaml", r"(- id: xiaohongshu\n(?:(?!  - id:).)*?domains: \[)", r"\1t.cn, ")
    edit(data, "types.yaml", "id: rumor.innovation\n", "id: rumor.innovations\n")
    edit(data, "cases.yaml", "cases:", "cases: [")   # a syntax error does not stop the others
    problems = problems_of(data)
    find(problems, "routing.yaml", "platform_key_moment", "when")
    find(problems, "faq.yaml", "what_counts", "related")
    find(problems, "platforms.yaml", "xiaohongshu", "domains")
    find(problems, "types.yaml", "rumor.innovations", "id")
    find(problems, "cases.yaml", None, None, "YAML")
    assert len(problems) == len(set(problems)), "the same problem reported twice"


def test_every_problem_names_its_file(tmp_path):
    """Problem.file is always one of the data files (never a path or empty)."""
    for f in FILES:   # a broad breakage: every file emptied
        (tmp_path / f"{f}.yaml").write_text("{}\n", encoding="utf-8")
    with pytest.raises(KnowledgeError) as exc:
        load(tmp_path)
    files = {p.file for p in exc.value.problems}
    assert files == {f"{f}.yaml" for f in FILES}   # every file complains, by its name


# ------------------------------------------------------------------ huqi kb check

def _huqi(*args: str, code: str | None = None, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "bot.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8",
                          cwd=ROOT, env=env, timeout=60, stdin=subprocess.DEVNULL, **kw)


def test_kb_check_exits_0_and_prints_counts():
    r = _huqi("kb", "check")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout
    counts = load().counts()
    for key, value in counts.items():
        assert re.search(rf"^\s*{key}\s+{value}\s*$", r.stdout, re.M), (key, value, r.stdout)


# `huqi kb check` has no way to point at another data dir (no --data option, no
# environment variable), so the broken-KB path is driven by swapping the loader
# the CLI calls, in a fresh interpreter.
_CHECK_DIR = (
    "import sys, knowledge\n"
    "knowledge.knowledge = lambda: knowledge.load(sys.argv[1])\n"
    "from bot.cli import main\n"
    "raise SystemExit(main(['kb', 'check']))\n"
)


def test_kb_check_on_broken_data_exits_nonzero_with_readable_message(data):
    edit(data, "routing.yaml", "when: flag:key_moment", "when: flag:key_moments")
    edit_re(data, "platforms.yaml", r"(- id: xiaohongshu\n(?:(?!  - id:).)*?domains: \[)", r"\1t.cn, ")
    r = subprocess.run([sys.executable, "-c", _CHECK_DIR, str(data)], capture_output=True, text=True,
                       encoding="utf-8", cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert "routing.yaml: platform_key_moment: when" in r.stderr, r.stderr
    assert "platforms.yaml: xiaohongshu: domains" in r.stderr, r.stderr
    assert "2 problem" in r.stderr


def test_kb_check_on_yaml_typo_exits_nonzero_without_traceback(data):
    edit(data, "faq.yaml", "faq:", "faq: [")
    r = subprocess.run([sys.executable, "-c", _CHECK_DIR, str(data)], capture_output=True, text=True,
                       encoding="utf-8", cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert re.search(r"faq\.yaml: line \d+, column \d+: YAML", r.stderr), r.stderr


# ------------------------------------------------------------------ issue 10: schema, duplicates, citations

def test_duplicate_key_in_an_entry_names_file_entry_and_key(data):
    """YAML keeps the second of two equal keys: the first list would be lost silently."""
    edit_re(data, "types.yaml", r"(- id: interference\.account_matrix\n(?:(?!      - id:).)*?\n)(        strong_cues:)",
            r"\1        strong_cues: [马甲]\n\2")
    find(problems_of(data), "types.yaml", "interference.account_matrix", "strong_cues", "duplicate key")


@pytest.mark.parametrize("file", [f + ".yaml" for f in FILES])
def test_duplicate_top_level_key_in_every_file(data, file):
    p = data / file
    text = p.read_text(encoding="utf-8")
    first = re.search(r"^([a-z_]+):", text, re.M).group(1)
    p.write_text(text + f"\n{first}: []\n", encoding="utf-8")
    find(problems_of(data), file, None, first, "duplicate key")


def test_alias_given_as_a_string_is_refused(data):
    """`aliases: 微博` would be read as 微 and 博."""
    edit_re(data, "platforms.yaml", r"(- id: weibo\n    name: 微博\n    aliases: )\[[^\]]*\]", r"\1微博")
    find(problems_of(data), "platforms.yaml", "weibo", "aliases", "must be a list")


def test_misspelt_field_is_refused_with_a_suggestion(data):
    edit(data, "types.yaml", "    cues: [谣言,", "    cuse: [谣言,")
    p = find(problems_of(data), "types.yaml", "rumor", "cuse", "unknown field")
    assert "'cues'" in p.message


def test_misspelt_field_in_a_nested_entry(data):
    edit(data, "faq.yaml", "    phrasings: [哪些情况可以举报", "    phrasing: [哪些情况可以举报")
    find(problems_of(data), "faq.yaml", "what_counts", "phrasing", "unknown field")


def test_wrong_field_types_are_refused(data):
    edit(data, "routing.yaml", "no_response_days: 7", "no_response_days: seven")
    edit(data, "measures.yaml", "    expected: false", "    expected: nope")
    edit(data, "faq.yaml", "    topic: scope", "    topic: scoop")
    problems = problems_of(data)
    find(problems, "routing.yaml", None, "no_response_days", "whole number")
    find(problems, "measures.yaml", "objection", "expected", "true or false")
    find(problems, "faq.yaml", "what_counts", "topic", "scoop")


@pytest.mark.parametrize("bad,words", [
    ("WS Art. 30", ("articles 1-29", "30")),
    ("WS Art. 10(9)", ("Art. 10", "(9)")),
    ("WS Art. 13(1)", ("Art. 13", "no numbered items")),
    ("guidance (二十六)", ("(二十六)",)),
    ("notice 二.11", ("part 二", "11")),
    ("notice 三(五)", ("part 三", "5")),
    ("selfmedia 14", ("1-13", "14")),
])
def test_citation_to_an_article_the_document_does_not_have(data, bad, words):
    edit(data, "faq.yaml", "source: [WS Art. 26, WS Art. 29]", f"source: [WS Art. 26, {bad}]")
    find(problems_of(data), "faq.yaml", "platform_charges", "source", *words)


def test_citations_the_documents_have_pass():
    from knowledge.loader import locator_problem
    kb = load()
    for src in ("Art. 29", "Art. 23(4)", "Art. 21(1)(2)", "Art. 5(2), Art. 7"):
        assert locator_problem(kb.documents["WS"], src) is None, src
    assert locator_problem(kb.documents["guidance"], "(二十五)") is None
    assert locator_problem(kb.documents["notice"], "二.10") is None
    assert locator_problem(kb.documents["notice"], "三(四)") is None
    assert locator_problem(kb.documents["selfmedia"], "13") is None
    assert locator_problem(kb.documents["civil_code"], "第1024条") is None


def test_verified_claim_resting_on_research_is_refused(data):
    edit_re(data, "channels.yaml", r"(portal:\n      name: 广东省互联网举报中心\n      url: \S+\n      verified: )false",
            r"\1true")
    find(problems_of(data), "channels.yaml", None, "verified", "research")


def test_kb_check_fails_on_schema_problems(data):
    edit(data, "types.yaml", "    cues: [谣言,", "    cuse: [谣言,")
    edit_re(data, "platforms.yaml", r"(- id: weibo\n    name: 微博\n    aliases: )\[[^\]]*\]", r"\1微博")
    r = subprocess.run([sys.executable, "-c", _CHECK_DIR, str(data)], capture_output=True, text=True,
                       encoding="utf-8", cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONIOENCODING="utf-8"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert "types.yaml: rumor: cuse" in r.stderr and "platforms.yaml: weibo: aliases" in r.stderr, r.stderr
