"""User-facing Chinese lives in YAML (dialogs/data, knowledge/data), not in Python string literals."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HAN = re.compile(r"[\u3400-\u9fff]")
# The PostgreSQL tools' messages, not moved to YAML yet.
NOT_YET = {"bot/db_cli.py", "bot/store/migrations/__init__.py", "bot/store/postgres.py"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (documentation, not something a user reads)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def han_literals(source: str) -> list[tuple[int, str]]:
    """(line, start of text) of every string literal holding Han characters, docstrings left out."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [(node.lineno, node.value[:30]) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
            and HAN.search(node.value)]


def test_no_han_characters_in_string_literals_under_dialogs_and_bot():
    found = []
    for folder in ("dialogs", "bot"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            found += [f"{name}:{line}: {text!r}" for line, text in han_literals(path.read_text(encoding="utf-8"))]
    assert not found, "move these to YAML texts:\n" + "\n".join(found)


def test_the_check_finds_a_literal_and_leaves_docstrings_alone():
    source = '"""文档可以写中文。"""\n\n\ndef f():\n    """也可以。"""\n    return "您好"\n'
    assert han_literals(source) == [(6, "您好")]
