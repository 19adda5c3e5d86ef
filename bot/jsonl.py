"""Reading ``{"id", "text"}`` request lines for the bulk commands (classify, faq): one line in, one
object out, a bad line an error object that names it."""
from __future__ import annotations

import json
import math


def _finite_or_text(literal: str) -> float | str:
    value = float(literal)
    return value if math.isfinite(value) else literal


def request(line: bytes | str, lineno: int) -> tuple[object, str] | dict:
    """``(id, text)`` from one line, or the error object to write for it.

    A number JSON cannot write back (1e999, NaN) is kept as the text it was written as.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return {"id": None, "line": lineno, "error": "line is not UTF-8 text"}
    line = line.lstrip("\ufeff")
    try:
        obj = json.loads(line, parse_float=_finite_or_text, parse_constant=str)
    except (json.JSONDecodeError, RecursionError) as e:
        return {"id": None, "line": lineno, "error": f"not valid JSON: {str(e)[:80]}"}
    if not isinstance(obj, dict):
        return {"id": None, "line": lineno, "error": "expected a JSON object with \"text\""}
    id_, text = obj.get("id"), obj.get("text")
    if not isinstance(text, str):
        return {"id": id_, "line": lineno, "error": "missing \"text\" (a string)"}
    return id_, text


def write(out, obj: dict) -> None:
    """One object a line; a lone surrogate in an id is escaped rather than stopping the run."""
    try:
        out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    except UnicodeEncodeError:
        out.write(json.dumps(obj) + "\n")
