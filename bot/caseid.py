"""Case numbers: short, readable aloud, typeable, not guessable.

Format: ``HQ-YYMM-XXXX`` (e.g. ``HQ-2611-7K3Q``): prefix ``HQ``, year and month
of creation (UTC), then 4 characters drawn with :mod:`secrets` from an alphabet
without the characters people confuse when reading or typing (no 0/O, no
1/I/L, no U, which is misread as V).  30^4 = 810,000 numbers per month;
when a month gets crowded and draws keep colliding the random part widens to
5, then 6 characters, so creation never fails in practice.  A number is
never issued twice: the store's ``exists`` check also counts the numbers of
purged cases (it keeps them, see :mod:`bot.store`).

Case numbers are shown to users and typed back by them, so
:func:`normalize_case_id` accepts the usual variations (lower case, spaces,
missing or odd dashes, full-width characters) and returns ``None`` for
anything that cannot be a case number.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime, timezone
from typing import Callable, Optional

__all__ = ["ALPHABET", "PREFIX", "new_case_id", "normalize_case_id", "is_case_id"]

PREFIX = "HQ"
# Digits 2-9 and A-Z without O, I, L, U (0/1 are not used either).
ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
assert len(ALPHABET) == 30 and not set(ALPHABET) & set("01OILU")

# How many draws at each width before widening.
_TRIES_PER_WIDTH = ((4, 8), (5, 8), (6, 64))

_CANONICAL = re.compile(
    r"^HQ-(\d{2})(0[1-9]|1[0-2])-([%s]{4,6})$" % ALPHABET
)
# After removing separators: HQ + YYMM + 4-6 alphabet characters.
_COMPACT = re.compile(r"^HQ(\d{2})(0[1-9]|1[0-2])([%s]{4,6})$" % ALPHABET)
# Characters people type between the groups: ASCII and Unicode dashes,
# underscores, dots, middle dots, slashes and any whitespace.
_SEPARATORS = re.compile(r"[\s\-_.·/\u2010-\u2015\u2212\u30fb]+")


def _random_part(width: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(width))


def new_case_id(
    now: Optional[datetime] = None,
    exists: Optional[Callable[[str], bool]] = None,
) -> str:
    """Draw a fresh case number for a case created at ``now`` (UTC).

    ``exists(case_id) -> bool`` tells whether a number is taken; a taken
    number is redrawn, and after repeated collisions the random part widens.
    Raises ``RuntimeError`` only if every draw collided (practically never).
    """
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is not None:
        now = now.astimezone(timezone.utc)
    month = now.strftime("%y%m")
    for width, tries in _TRIES_PER_WIDTH:
        for _ in range(tries):
            candidate = f"{PREFIX}-{month}-{_random_part(width)}"
            if exists is None or not exists(candidate):
                return candidate
    raise RuntimeError("no free case number found (month %s is full)" % month)


def normalize_case_id(text: object) -> Optional[str]:
    """Return the canonical form of a typed case number, or ``None``.

    ``"hq 2611 7k3q"``, ``"HQ26117K3Q"``, ``"ＨＱ－２６１１－７Ｋ３Ｑ"`` all give
    ``"HQ-2611-7K3Q"``.  Anything else (wrong prefix, impossible month,
    characters outside the alphabet, wrong length, surrounding words) gives
    ``None``.
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    # NFKC folds full-width letters, digits, dashes and spaces to ASCII.
    compact = _SEPARATORS.sub("", unicodedata.normalize("NFKC", text)).upper()
    m = _COMPACT.match(compact)
    if not m:
        return None
    yy, mm, rest = m.groups()
    return f"{PREFIX}-{yy}{mm}-{rest}"


def is_case_id(text: object) -> bool:
    """True if ``text`` is a case number in canonical form."""
    return isinstance(text, str) and _CANONICAL.match(text) is not None
