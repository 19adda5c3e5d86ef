"""What the platform is expected to do, read from measures.yaml (WS Art. 20-26)."""
from __future__ import annotations

import pytest

from knowledge import knowledge
from knowledge.measures import expected_measures


@pytest.fixture(scope="module")
def kb():
    return knowledge()


def ids(ms):
    return [m["id"] for m in ms]


def test_plain_rumor_is_deleted(kb):
    ms = expected_measures(kb, "rumor", [])
    assert ids(ms) == ["delete"]
    m = ms[0]
    assert {"id", "title", "article", "when", "cite", "source"} <= set(m)
    assert m["article"] == "第二十条" and "第二十条" in m["cite"]


def test_extortion_brings_account_action_and_no_paid_deletion(kb):
    ms = expected_measures(kb, "interference", ["extortion"])
    assert ids(ms) == ["delete", "account_action", "no_paid_deletion"]
    account = ms[1]
    assert "第二十三条(四)" in account["cite"]
    assert "第二十六条" in ms[2]["cite"]
    # also for another type: the flag decides, not the type
    assert "no_paid_deletion" in ids(expected_measures(kb, "rumor", ["extortion"]))


def test_key_moment_asks_for_temporary_private(kb):
    ms = expected_measures(kb, "rumor", ["key_moment"])
    assert ids(ms) == ["delete", "private_temporarily"]
    assert "第二十一条" in ms[1]["cite"]


def test_only_dispute_gives_a_label_instead_of_deletion(kb):
    assert ids(expected_measures(kb, "rumor", ["dispute"])) == ["dispute_label"]
    # with another fact the deletion stays expected
    assert ids(expected_measures(kb, "rumor", ["dispute", "repeat_offender"])) == \
        ["delete", "dispute_label", "account_action"]


def test_impersonation_account_action_by_type(kb):
    ms = expected_measures(kb, "impersonation", [])
    assert ids(ms) == ["delete", "account_action"]
    assert ms[1]["items"] == ["第二十三条(一)"]
    # a dispute label is not a remedy for impersonation (measures.yaml types)
    assert ids(expected_measures(kb, "impersonation", ["dispute"])) == ["delete", "account_action"]


def test_repeat_offender_and_cross_platform_act_on_the_account(kb):
    for flag in ("repeat_offender", "cross_platform"):
        assert "account_action" in ids(expected_measures(kb, "insult", [flag])), flag


def test_stakeholder_referral(kb):
    ms = expected_measures(kb, "rumor", ["stakeholder"])
    assert "stakeholder_referral" in ids(ms)
    assert "第二十五条" in next(m for m in ms if m["id"] == "stakeholder_referral")["cite"]


def test_objection_and_general_rules_are_never_listed(kb):
    seen = set()
    for tid in kb.types:
        for flags in ([], list(kb.flags)):
            seen |= set(ids(expected_measures(kb, tid, flags)))
    assert not seen & {"objection", "grading", "ledger", "malicious_refused"}


def test_out_of_scope_expects_nothing(kb):
    assert expected_measures(kb, "out_of_scope", ["extortion"]) == []


def test_general_duties_are_described_but_never_listed(kb):
    """Art. 27 (internal rules) and the self-media notice's measures describe the platform's work."""
    assert kb.measures["internal_rules"]["source"] == "WS Art. 27"
    assert {"selfmedia 5", "selfmedia 9", "selfmedia 10", "selfmedia 11"} <= set(kb.measures["selfmedia_measures"]["source"])
    for tid in kb.types:
        for flags in ([], list(kb.flags)):
            listed = ids(expected_measures(kb, tid, flags))
            assert "internal_rules" not in listed and "selfmedia_measures" not in listed
