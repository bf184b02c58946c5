"""infra/flex-template/metadata.json, generated from the pipeline's own flags.

Every ``ChurnwatchOptions`` flag becomes one template parameter: its help text is the
flag's, its validation regex follows the flag's type or choices. What a flag cannot say is
listed here once: labels that the flag name does not spell well, the stricter values a
Dataflow job accepts (a BigQuery warehouse, the native Pub/Sub read) and Pub/Sub
parameter types for the console's pickers. ``churnwatch template-metadata`` writes the
file, ``--check`` (and tests/test_flex_template.py) fails when it is stale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipelines.options import SUBSCRIPTION_RE, TOPIC_RE, ChurnwatchOptions

METADATA_PATH = Path(__file__).resolve().parents[1] / "infra" / "flex-template" / "metadata.json"

TEMPLATE = {
    "name": "Churnwatch streaming",
    "description": (
        "Reads feedback and customer events (Avro) from Pub/Sub, validates and dedupes them, "
        "detects silent churn and issue spikes, writes events, dead letters, alerts and "
        "aggregates to BigQuery and publishes churn alerts to Pub/Sub."
    ),
    "streaming": True,
    "supportsAtLeastOnce": False,
    "supportsExactlyOnce": True,
}

#: Required on Dataflow: the subscriptions (validate_churnwatch) and the warehouse, whose
#: default is a local DuckDB file.
REQUIRED = ("feedback_subscription", "customer_subscription", "warehouse")

INT_RE = "^[0-9]+$"
FLOAT_RE = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"
PATH_RE = r"^\S+$"

LABELS = {
    "feedback_subscription": "Feedback events subscription",
    "customer_subscription": "Customer events subscription",
    "warehouse": "Warehouse (bigquery://PROJECT/DATASET)",
    "bigquery_write_method": "BigQuery write method",
    "bigquery_triggering_frequency_seconds": "BigQuery commit interval seconds (Storage Write API)",
    "idle_stop_seconds": "Idle stop seconds (local runs only)",
    "pubsub_read": "Pub/Sub read binding",
    "pull_max_messages": "Pull max messages (local read only)",
    "pull_timeout_seconds": "Pull timeout seconds (local read only)",
    "watermark_lag_seconds": "Watermark lag seconds (local read only)",
    "dedupe_ttl_seconds": "Dedupe TTL seconds",
    "writer_schemas_dir": "Extra writer schemas folder",
    "alerts_topic": "Churn alerts topic",
    "model_params": "Risk model (JSON path)",
    "routing_policy": "Routing policy (YAML path)",
    "spike_p_value": "Spike p-value",
    "stream_quality": "Stream data quality",
    "quality_rules": "Quality rules (YAML path)",
    "min_quality_window_seconds": "Minimum quality window seconds",
}

#: Where a Dataflow job accepts less than the flag's type says.
REGEXES = {
    "feedback_subscription": [SUBSCRIPTION_RE.pattern],
    "customer_subscription": [SUBSCRIPTION_RE.pattern],
    "alerts_topic": [TOPIC_RE.pattern],
    "warehouse": ["^bigquery://[a-z][-a-z0-9]{4,28}[a-z0-9]/[A-Za-z_][A-Za-z0-9_]{0,1023}$"],
    "pubsub_read": ["^(auto|native)$"],
    "model_params": [r"^\S+\.json$"],
    "routing_policy": [r"^\S+\.ya?ml$"],
    "quality_rules": [r"^\S+\.ya?ml$"],
}

HELP_SUFFIX = {"pubsub_read": " On Dataflow: auto or native."}

PARAM_TYPES = {
    "feedback_subscription": "PUBSUB_SUBSCRIPTION",
    "customer_subscription": "PUBSUB_SUBSCRIPTION",
    "alerts_topic": "PUBSUB_TOPIC",
}


def pipeline_flags() -> list[argparse.Action]:
    """ChurnwatchOptions' flags, in the order they are declared."""
    parser = argparse.ArgumentParser(add_help=False)
    ChurnwatchOptions._add_argparse_args(parser)
    return list(parser._actions)


def regexes(action: argparse.Action) -> list[str]:
    if action.dest in REGEXES:
        return REGEXES[action.dest]
    if action.choices:
        return [f"^({'|'.join(action.choices)})$"]
    if action.type is int:
        return [INT_RE]
    if action.type is float:
        return [FLOAT_RE]
    return [PATH_RE]


def parameter(action: argparse.Action) -> dict[str, Any]:
    name = action.dest
    param = {
        "name": name,
        "label": LABELS.get(name, name.replace("_", " ").capitalize()),
        "helpText": action.help + HELP_SUFFIX.get(name, ""),
        "isOptional": name not in REQUIRED,
        "regexes": regexes(action),
    }
    if name in PARAM_TYPES:
        param["paramType"] = PARAM_TYPES[name]
    return param


def metadata() -> dict[str, Any]:
    return {**TEMPLATE, "parameters": [parameter(a) for a in pipeline_flags()]}


def metadata_json() -> str:
    return json.dumps(metadata(), indent=2) + "\n"
