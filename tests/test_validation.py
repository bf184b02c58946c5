"""Semantic rules derived from the schema annotations."""

from __future__ import annotations

import pytest

from churnwatch import schemas
from churnwatch.validation import RecordRules
from tests.helpers import customer, feedback

NOW = 1_700_000_000_000
FEEDBACK_RULES = RecordRules(schemas.load(schemas.FEEDBACK_EVENT), future_tolerance_s=300)
CUSTOMER_RULES = RecordRules(schemas.load(schemas.CUSTOMER_EVENT), future_tolerance_s=300)


def test_a_good_record_has_no_errors():
    assert FEEDBACK_RULES.errors(feedback(occurred_at=NOW), NOW) == []
    assert CUSTOMER_RULES.errors(customer(occurred_at=NOW), NOW) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"nps_score": 11}, "nps_score=11 above maximum 10"),
        ({"nps_score": -1}, "nps_score=-1 below minimum 0"),
        ({"csat_score": 0}, "csat_score=0 below minimum 1"),
        ({"csat_score": 6}, "csat_score=6 above maximum 5"),
        ({"event_id": "  "}, "event_id is empty"),
        ({"customer_id": "bad id!"}, "customer_id='bad id!' does not match"),
        ({"occurred_at": NOW + 3_600_000}, "occurred_at is 3600s in the future"),
        ({"occurred_at": 1_700_000_000}, "before 2000-01-01: seconds instead of milliseconds?"),
    ],
)
def test_each_broken_rule_is_named(overrides, expected):
    errors = FEEDBACK_RULES.errors(feedback(**{"occurred_at": NOW, **overrides}), NOW)
    assert len(errors) == 1
    assert expected in errors[0]


def test_null_optional_scores_are_fine_and_tolerance_is_respected():
    record = feedback(occurred_at=NOW + 299_000, nps_score=None, csat_score=None)
    assert FEEDBACK_RULES.errors(record, NOW) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"amount": -5.0}, "amount=-5.0 below minimum 0"),
        ({"monthly_revenue": -1.0}, "monthly_revenue=-1.0 below minimum 0"),
        ({"currency": "euro"}, "currency='euro' does not match"),
        ({"amount": float("nan")}, "amount=nan is not a finite number"),
    ],
)
def test_customer_amounts_and_currency(overrides, expected):
    errors = CUSTOMER_RULES.errors(customer(occurred_at=NOW, **overrides), NOW)
    assert errors and expected in errors[0]


def test_all_problems_are_reported_together():
    errors = FEEDBACK_RULES.errors(feedback(occurred_at=NOW, nps_score=12, csat_score=9), NOW)
    assert len(errors) == 2
