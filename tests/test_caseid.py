import re
from datetime import datetime, timedelta, timezone

import pytest

from bot.caseid import ALPHABET, is_case_id, new_case_id, normalize_case_id

NOW = datetime(2026, 11, 5, 8, 30, tzinfo=timezone.utc)


def test_format_and_month():
    cid = new_case_id(NOW)
    assert re.fullmatch(r"HQ-2611-[%s]{4}" % ALPHABET, cid), cid
    assert is_case_id(cid)


def test_month_is_taken_in_utc():
    # 2026-12-01 01:00 in Beijing is still November in UTC.
    beijing = timezone(timedelta(hours=8))
    cid = new_case_id(datetime(2026, 12, 1, 1, 0, tzinfo=beijing))
    assert cid.startswith("HQ-2611-")


def test_alphabet_has_no_ambiguous_characters():
    for bad in "0O1ILU":
        assert bad not in ALPHABET
    assert len(set(ALPHABET)) == len(ALPHABET) == 30
    drawn = set()
    for _ in range(2000):
        drawn.update(new_case_id(NOW).split("-")[2])
    assert drawn <= set(ALPHABET)
    # Draws cover the alphabet (2000*4 draws from 30 symbols).
    assert drawn == set(ALPHABET)


def test_not_sequential():
    ids = [new_case_id(NOW) for _ in range(50)]
    assert len(set(ids)) == 50
    assert ids != sorted(ids)


@pytest.mark.parametrize(
    "typed",
    [
        "HQ-2611-7K3Q",
        "hq-2611-7k3q",
        "hq 2611 7k3q",
        "HQ26117K3Q",
        "  Hq2611 7K3Q ",
        "ＨＱ－２６１１－７Ｋ３Ｑ",  # full-width
        "ｈｑ　２６１１　７ｋ３ｑ",  # full-width with ideographic spaces
        "HQ—2611—7K3Q",  # em dashes from a Chinese IME
        "HQ_2611_7K3Q",
    ],
)
def test_normalize_accepts_typed_variants(typed):
    assert normalize_case_id(typed) == "HQ-2611-7K3Q"


def test_normalize_keeps_wider_ids():
    assert normalize_case_id("hq-2611-7k3qa") == "HQ-2611-7K3QA"
    assert normalize_case_id("HQ 2611 7K3QAB") == "HQ-2611-7K3QAB"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        None,
        12345,
        "HQ-2611-7K3",  # too short
        "HQ-2611-7K3QABC",  # too long
        "HQ-2613-7K3Q",  # no month 13
        "HQ-2600-7K3Q",  # no month 00
        "HQ-2611-7K3O",  # O is not in the alphabet
        "HQ-2611-0K3Q",  # 0 is not in the alphabet
        "HQ-2611-7K1Q",
        "HQ-2611-7KIQ",
        "HQ-2611-7KLQ",
        "HQ-2611-7KUQ",
        "HX-2611-7K3Q",  # wrong prefix
        "2611-7K3Q",  # no prefix
        "我的案件号是 HQ-2611-7K3Q",  # surrounding words
        "HQ-2611-7K3Q!",
        "HQ-26a1-7K3Q",
        "HQ-2611-7K3Q" * 10,
    ],
)
def test_normalize_rejects_malformed(typed):
    assert normalize_case_id(typed) is None


def test_normalized_ids_round_trip():
    for _ in range(200):
        cid = new_case_id(NOW)
        assert normalize_case_id(cid) == cid
        assert normalize_case_id(cid.lower().replace("-", " ")) == cid


def test_no_collisions_in_10k_draws_with_exists():
    taken: set[str] = set()
    calls = 0

    def exists(cid: str) -> bool:
        nonlocal calls
        calls += 1
        return cid in taken

    for _ in range(10_000):
        cid = new_case_id(NOW, exists)
        assert cid not in taken
        taken.add(cid)
    assert len(taken) == 10_000
    assert calls >= 10_000


def test_retries_on_collision():
    seen = []

    def exists(cid):
        seen.append(cid)
        return len(seen) <= 3  # the first three draws are "taken"

    cid = new_case_id(NOW, exists)
    assert cid == seen[3]
    assert len(seen) == 4


def test_widens_when_month_is_crowded():
    # Every 4-character number is taken: the draw must widen, not fail.
    cid = new_case_id(NOW, lambda c: len(c.split("-")[2]) == 4)
    assert len(cid.split("-")[2]) == 5
    cid = new_case_id(NOW, lambda c: len(c.split("-")[2]) < 6)
    assert len(cid.split("-")[2]) == 6
    assert normalize_case_id(cid) == cid


def test_gives_up_only_when_everything_is_taken():
    with pytest.raises(RuntimeError):
        new_case_id(NOW, lambda c: True)
