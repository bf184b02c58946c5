"""Quality suites as plain specs: derived from the .avsc annotations and quality.yaml, no GX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from churnwatch import schemas
from churnwatch.quality import results
from churnwatch.quality.results import Outcome
from churnwatch.quality.rules import QualityRules, QualityRulesError
from churnwatch.quality.suites import MAX_EVENT_TIME, build_suite, build_suites
from churnwatch.routing import RoutingPolicy

ROOT = Path(__file__).resolve().parents[1]
RULES = QualityRules.load()
OWNERS = tuple(RoutingPolicy.load().owners)


def suite(table: str):
    return build_suite(schemas.table(table), RULES, OWNERS)


def test_ranges_patterns_and_enums_come_from_the_avsc_annotations():
    raw = json.loads((ROOT / "schemas" / "feedback_event.avsc").read_text())
    fields = {f["name"]: f for f in raw["fields"]}
    s = suite("feedback_events")
    nps = s.expectation("nps_score.between")
    assert nps.type == "expect_column_values_to_be_between"
    assert (nps.kwargs["min_value"], nps.kwargs["max_value"]) == (
        fields["nps_score"]["churnwatch.min"],
        fields["nps_score"]["churnwatch.max"],
    )
    csat = s.expectation("csat_score.between").kwargs
    assert (csat["min_value"], csat["max_value"]) == (1, 5)
    pattern = s.expectation("customer_id.pattern")
    assert pattern.kwargs["regex"] == fields["customer_id"]["churnwatch.pattern"]
    channel = s.expectation("channel.in_set")
    assert channel.kwargs["value_set"] == fields["channel"]["type"]["symbols"]
    assert s.expectation("event_id.unique").kwargs == {"column": "event_id"}
    event_time = s.expectation("occurred_at.event_time").kwargs
    assert event_time["max_value"] == {"$PARAMETER": MAX_EVENT_TIME}
    assert s.expectation("table.columns").kwargs["column_set"] == list(
        schemas.table("feedback_events").column_names
    )


@pytest.mark.parametrize("table", sorted(schemas.tables()))
def test_every_annotation_of_every_table_has_its_expectation(table):
    """No field list by hand: walk the schema and require the derived expectation."""
    spec = schemas.table(table)
    ids = set(build_suite(spec, RULES, OWNERS).ids)
    for c in spec.columns:
        if c.required:
            assert f"{c.name}.not_null" in ids
        if c.symbols:
            assert f"{c.name}.in_set" in ids
        if c.minimum is not None or c.maximum is not None:
            assert f"{c.name}.between" in ids
        if c.pattern:
            assert f"{c.name}.pattern" in ids
        if c.non_empty:
            assert f"{c.name}.non_empty" in ids
        if c.event_time:
            assert f"{c.name}.event_time" in ids
    unique = "primary_key.unique" if len(spec.primary_key) > 1 else f"{spec.primary_key[0]}.unique"
    assert unique in ids


def test_business_rules_from_quality_yaml():
    customer = suite("customer_events")
    assert customer.expectation("segment.null_rate").kwargs == {"column": "segment", "mostly": 0.95}
    not_null = customer.expectation("cancellation_revenue.not_null")
    between = customer.expectation("cancellation_revenue.between")
    assert not_null.condition == between.condition == ("type", ("CANCELLATION", "ACCOUNT_CLOSED"))
    assert between.kwargs == {"column": "monthly_revenue", "min_value": 0}
    feedback = suite("feedback_events")
    assert {i for i in feedback.ids if i.endswith(".null_rate")} == {
        "segment.null_rate",
        "team.null_rate",
    }
    owner = suite("churn_alerts").expectation("owner.routing_owner")
    assert owner.kwargs["value_set"] == sorted(OWNERS)
    assert "data_engineer_on_call" in owner.kwargs["value_set"]
    aggregates = suite("feedback_aggregates").expectation("primary_key.unique")
    assert aggregates.type == "expect_compound_columns_to_be_unique"


def test_a_new_annotation_changes_the_suite_without_touching_quality_code():
    raw = json.loads((ROOT / "schemas" / "feedback_event.avsc").read_text())
    for f in raw["fields"]:
        if f["name"] == "topic":
            f["churnwatch.pattern"] = "^[a-z_]+$"
    record = schemas.record_schema(raw)
    spec = schemas.TableSpec("feedback_events", record, record.fields)
    assert "topic.pattern" in build_suite(spec, RULES, OWNERS).ids
    assert "topic.pattern" not in suite("feedback_events").ids


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"null_rate": {"nope": {"segment": 0.1}}}, "null_rate.nope.segment: unknown table 'nope'"),
        (
            {"null_rate": {"feedback_events": {"colour": 0.1}}},
            "table 'feedback_events' has no column 'colour'",
        ),
        (
            {"null_rate": {"feedback_events": {"event_id": 0.1}}},
            "null_rate.feedback_events.event_id: column is required",
        ),
        (
            {"null_rate": {"feedback_events": {"segment": 1.5}}},
            "null_rate.feedback_events.segment: max null fraction",
        ),
        (
            {
                "conditional": [
                    {
                        "name": "churn",
                        "table": "customer_events",
                        "when": {"column": "type", "in": ["CANCELED"]},
                        "column": "monthly_revenue",
                        "min": 0,
                    }
                ]
            },
            "conditional 'churn'.when: ['CANCELED'] are not symbols of type",
        ),
        (
            {
                "conditional": [
                    {
                        "name": "churn",
                        "table": "customer_events",
                        "when": {"column": "type", "in": ["CANCELLATION"]},
                        "column": "reason",
                        "min": 0,
                    }
                ]
            },
            "min/max need a numeric column, reason is not",
        ),
        ({"routing_owner": {"churn_alerts": ["boss"]}}, "'churn_alerts' has no column 'boss'"),
        ({"future_tolerance_seconds": -1}, "future_tolerance_seconds must be"),
        ({"nul_rate": {}}, "unknown top-level keys ['nul_rate']"),
    ],
)
def test_bad_rules_fail_on_load_naming_table_and_column(doc, message):
    with pytest.raises(QualityRulesError) as info:
        QualityRules.from_dict(doc, "rules.yaml")
    assert str(info.value).startswith("rules.yaml: ")
    assert message in str(info.value)


def test_packaged_rules_load_and_every_table_gets_a_suite():
    assert RULES.future_tolerance_seconds == 300
    assert set(build_suites(schemas.tables(), RULES, OWNERS)) == set(schemas.tables())


def outcome(expectation_id: str, success: bool) -> Outcome:
    return Outcome("feedback_events", expectation_id, "t", None, "{}", success, None, 0, 100)


def test_quality_alert_routes_to_the_data_engineer_with_a_deterministic_id():
    policy = RoutingPolicy.load()
    good = [outcome("nps_score.between", True)]
    assert results.quality_alert("feedback_events", (0, 10), good, policy, 5) is None
    bad = [*good, outcome("segment.null_rate", False)]
    alert = results.quality_alert("feedback_events", (0, 10), bad, policy, 5)
    assert alert["alert_type"] == "DATA_QUALITY" and alert["owner"] == "data_engineer_on_call"
    assert alert["reason_codes"] == ["failed:segment.null_rate", "rows=100"]
    assert alert["alert_id"] == results.quality_alert_id("feedback_events", 0, 10)
    assert alert["alert_id"] != results.quality_alert_id("feedback_events", 10, 20)
    assert alert["alert_id"] != results.quality_alert_id("customer_events", 0, 10)
    assert alert["severity"] == "MEDIUM"
    hard = [outcome("event_id.unique", False)]
    assert results.quality_alert("f", (0, 10), hard, policy, 5)["severity"] == "HIGH"


def test_observed_values_are_valid_json_even_with_nan():
    assert results.to_json({"partial_unexpected_list": [float("nan"), 11]}) == (
        '{"partial_unexpected_list": [null, 11]}'
    )


def test_pipeline_code_does_not_import_great_expectations():
    code = (
        "import sys; import pipelines.streaming, pipelines.backfill, transforms.quality, "
        "churnwatch.cli, churnwatch.commands.quality; "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
