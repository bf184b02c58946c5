"""Terraform in infra/terraform, checked without terraform or a cloud account.

Every .tf file is parsed with python-hcl2 (tools venv) and cross-referenced with the code it
deploys: topic and subscription names with churnwatch/topology.py, Pub/Sub schemas with
schemas/*.avsc, BigQuery tables with churnwatch.schemas.tables(), the Dataflow job's
parameters with the Flex Template metadata. checkov then scans the directory.

``for_each`` over ``local.streams`` / ``local.pipeline_streams`` / ``local.bigquery_tables`` is
expanded here with a deliberately small evaluator (``each.key`` / ``each.value.X``
substitution); an expression it does not know fails the test instead of being guessed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from churnwatch import schemas, topology
from churnwatch.notify.channels import SMTP_ENV
from churnwatch.routing import RoutingPolicy
from pipelines.options import ChurnwatchOptions
from pipelines.streaming import make_options
from tests.infra_tools import (
    FLEX_DIR,
    MIN_REASON_WORDS,
    REPO,
    TERRAFORM_DIR,
    checkov,
    failed_summary,
    parse_hcl,
    skip_comments,
)

EXPECTED_FILES = {
    "versions.tf",
    "variables.tf",
    "pubsub.tf",
    "bigquery.tf",
    "iam.tf",
    "storage.tf",
    "dataflow.tf",
    "outputs.tf",
    "secrets.tf",
    "monitoring.tf",
}
TABLES_JSON = TERRAFORM_DIR / "generated" / "bigquery_tables.json"
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PIPELINE_FILTER = re.compile(
    r"^\$\{\{for (\w+), (\w+) in local\.streams : \1 => \2 if \2\.reader == \"(\w+)\"\}\}$"
)


# --- a small model of the configuration ----------------------------------------------------


class Config:
    """Blocks of every .tf file merged: resources by (type, name), locals, variables, outputs."""

    def __init__(self, trees: dict[str, dict[str, Any]]):
        self.trees = trees
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.terraform: list[dict[str, Any]] = []
        for tree in trees.values():
            for block in tree.get("resource", []):
                for rtype, by_name in block.items():
                    for name, body in by_name.items():
                        assert (rtype, name) not in self.resources, f"duplicate {rtype}.{name}"
                        self.resources[(rtype, name)] = body
            for block in tree.get("locals", []):
                self.locals.update(block)
            for block in tree.get("variable", []):
                self.variables.update(block)
            for block in tree.get("output", []):
                self.outputs.update(block)
            self.terraform.extend(tree.get("terraform", []))

    def of_type(self, rtype: str) -> dict[str, dict[str, Any]]:
        return {name: body for (t, name), body in self.resources.items() if t == rtype}

    def for_each_map(self, expression: str | dict) -> dict[str, Any]:
        """Evaluate the for_each expressions this configuration uses (and only those)."""
        if isinstance(expression, dict):  # a literal map
            return expression
        if expression == "${local.notifier_secrets}":
            return notifier_secrets(self)
        if expression == "${local.streams}":
            return self.locals["streams"]
        if expression == "${local.pipeline_streams}":
            match = PIPELINE_FILTER.match(self.locals["pipeline_streams"])
            assert match, f"unknown pipeline_streams expression: {self.locals['pipeline_streams']}"
            reader = match.group(3)
            return {k: s for k, s in self.locals["streams"].items() if s["reader"] == reader}
        if expression == "${local.bigquery_tables}":
            assert self.locals["bigquery_tables"] == (
                '${jsondecode(file("${path.module}/generated/bigquery_tables.json"))}'
            )
            return json.loads(TABLES_JSON.read_text())
        if expression == "${local.current_views}":
            assert "table.current_view.name => table.current_view" in self.locals["current_views"]
            assert "if table.current_view != null" in self.locals["current_views"]
            tables = json.loads(TABLES_JSON.read_text()).values()
            return {
                t["current_view"]["name"]: t["current_view"] for t in tables if t["current_view"]
            }
        raise AssertionError(f"for_each expression the test cannot evaluate: {expression}")

    def instances(self, rtype: str, name: str) -> dict[str, dict[str, Any]]:
        """for_each instances of a resource with each.key / each.value.X substituted."""
        body = self.resources[(rtype, name)]
        if "for_each" not in body:
            return {"": body}
        out = {}
        for key, value in self.for_each_map(body["for_each"]).items():
            out[key] = _substitute(body, key, value)
        return out


def notifier_secrets(config: Config) -> dict[str, str]:
    """local.notifier_secrets evaluated in Python: webhook variables of the routing policy
    (the same YAML file Terraform reads) plus the SMTP password."""
    assert config.locals["routing_policy"] == (
        '${yamldecode(file("${path.module}/../../churnwatch/policy/routing.yaml"))}'
    )
    expression = config.locals["notifier_secrets"]
    assert "for owner in values(local.routing_policy.owners)" in expression
    assert 'lower(replace(owner.channel.webhook_env, "_", "-"))' in expression
    webhooks = {
        o.channel["webhook_env"] for o in RoutingPolicy.load().owners.values()
        if "webhook_env" in o.channel
    }  # fmt: skip
    out = {env: env.lower().replace("_", "-") for env in webhooks}
    assert f'{SMTP_ENV["password"]} = "churnwatch-smtp-password"' in expression
    out[SMTP_ENV["password"]] = "churnwatch-smtp-password"
    return out


def _substitute(node: Any, key: str, value: Any) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, key, value) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, key, value) for v in node]
    if not isinstance(node, str):
        return node

    def attr(match: re.Match) -> str:
        return str(value[match.group(1)])

    if not isinstance(value, dict):  # a map of strings: each.value is the string itself
        node = node.replace("${each.value}", str(value))
        return node.replace("${each.key}", key).replace("[each.key]", f'["{key}"]')
    node = re.sub(r"\$\{each\.value\.(\w+)\}", attr, node)
    node = re.sub(r"(?<=\$\{)each\.value\.(\w+)(?=\})", attr, node)
    node = node.replace("${each.key}", key).replace("[each.key]", f'["{key}"]')
    return node


def reference(expression: str) -> tuple[str, str, str | None, str]:
    """``${TYPE.NAME["key"].ATTR}`` -> (TYPE, NAME, key or None, ATTR)."""
    match = re.fullmatch(r'\$\{(\w+)\.(\w+)(?:\["([^"]+)"\])?\.(\w+)\}', expression)
    assert match, f"not a plain resource reference: {expression}"
    return match.group(1), match.group(2), match.group(3), match.group(4)


@pytest.fixture(scope="module")
def config() -> Config:
    paths = sorted(TERRAFORM_DIR.glob("*.tf"))
    return Config(parse_hcl(paths))


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return json.loads((FLEX_DIR / "metadata.json").read_text())


# --- structure --------------------------------------------------------------------------------


def test_every_terraform_file_parses(config):
    assert set(config.trees) == EXPECTED_FILES
    # 8 files, and each one declares something (an empty parse would hide a broken file).
    assert all(tree for tree in config.trees.values())


def test_providers_are_pinned(config):
    (block,) = config.terraform
    providers = block["required_providers"][0]
    assert providers["google"]["source"] == "hashicorp/google"
    assert providers["google-beta"]["source"] == "hashicorp/google-beta"
    for name in ("google", "google-beta"):
        assert re.fullmatch(r"~> \d+\.\d+", providers[name]["version"]), providers[name]
    assert block["required_version"].startswith(">=")


def test_variables_and_outputs_are_described(config):
    assert len(config.variables) >= 10
    for name, body in config.variables.items():
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
    for name, body in config.outputs.items():
        assert body.get("description", "").strip(), f"output {name} has no description"
    # Names and sizes that the API would reject are caught at plan time, not apply time.
    validated = {n for n, b in config.variables.items() if b.get("validation")}
    assert {"project", "region", "dataset", "max_workers", "template_gcs_path"} <= validated


# --- Pub/Sub ----------------------------------------------------------------------------------


def test_topics_and_subscriptions_are_the_topology_names(config):
    streams = config.locals["streams"]
    assert {k: (s["topic"], s["subscription"]) for k, s in streams.items()} == topology.TOPICS
    topics = config.instances("google_pubsub_topic", "stream")
    subscriptions = config.instances("google_pubsub_subscription", "stream")
    assert {k: t["name"] for k, t in topics.items()} == {
        k: v[0] for k, v in topology.TOPICS.items()
    }
    for key, sub in subscriptions.items():
        assert sub["name"] == topology.TOPICS[key][1]
        assert reference(sub["topic"]) == ("google_pubsub_topic", "stream", key, "id")


def test_every_subscription_has_a_dead_letter_topic_that_is_kept(config):
    subscriptions = config.instances("google_pubsub_subscription", "stream")
    dead_topics = config.instances("google_pubsub_topic", "dead_letter")
    dead_subs = config.instances("google_pubsub_subscription", "dead_letter")
    # The pipeline's two subscriptions (and the notifier's) are all among them.
    pipeline_subs = {topology.TOPICS[s][1] for s in ("feedback", "customer")}
    assert pipeline_subs <= {s["name"] for s in subscriptions.values()}
    for key, sub in subscriptions.items():
        (policy,) = sub["dead_letter_policy"]
        rtype, name, ref_key, attr = reference(policy["dead_letter_topic"])
        assert (rtype, name, attr) == ("google_pubsub_topic", "dead_letter", "id")
        assert ref_key == key, f"{sub['name']} dead-letters into another stream's topic"
        assert ref_key in dead_topics, f"{sub['name']}: dead-letter topic {ref_key} missing"
        assert policy["max_delivery_attempts"] == "${var.max_delivery_attempts}"
        assert dead_topics[ref_key]["name"] != sub["name"]
        # Messages on a topic without subscriptions are lost: each dead-letter topic has one.
        keepers = [
            s
            for s in dead_subs.values()
            if reference(s["topic"]) == ("google_pubsub_topic", "dead_letter", ref_key, "id")
        ]
        assert len(keepers) == 1, f"{dead_topics[ref_key]['name']} needs one subscription"
        # Redelivery and retention are set, not left to defaults.
        (retry,) = sub["retry_policy"]
        assert retry["minimum_backoff"] and retry["maximum_backoff"]
        assert sub["message_retention_duration"] == "${var.message_retention_duration}"
        assert 10 <= sub["ack_deadline_seconds"] <= 600
    # The Pub/Sub service agent may publish to each dead-letter topic and ack the source.
    publishers = config.instances("google_pubsub_topic_iam_member", "dead_letter_publisher")
    acks = config.instances(
        "google_pubsub_subscription_iam_member", "dead_letter_source_subscriber"
    )
    agent = "${local.pubsub_service_agent}"
    assert "gcp-sa-pubsub.iam.gserviceaccount.com" in config.locals["pubsub_service_agent"]
    for key in subscriptions:
        assert reference(publishers[key]["topic"])[:3] == (
            "google_pubsub_topic",
            "dead_letter",
            key,
        )
        assert (publishers[key]["role"], publishers[key]["member"]) == (
            "roles/pubsub.publisher",
            agent,
        )
        assert reference(acks[key]["subscription"])[:3] == (
            "google_pubsub_subscription",
            "stream",
            key,
        )
        assert (acks[key]["role"], acks[key]["member"]) == ("roles/pubsub.subscriber", agent)


def test_topic_schemas_are_the_avsc_files_not_copies(config):
    pubsub_schemas = config.instances("google_pubsub_schema", "stream")
    topics = config.instances("google_pubsub_topic", "stream")
    assert set(pubsub_schemas) == set(topology.TOPICS)
    for key, schema in pubsub_schemas.items():
        assert schema["type"] == "AVRO"
        match = re.fullmatch(
            r'\$\{file\("\$\{path\.module\}/\.\./\.\./(schemas/[\w.]+\.avsc)"\)\}',
            schema["definition"],
        )
        assert match, f"{key}: definition must be file() of schemas/*.avsc: {schema['definition']}"
        avsc = REPO / match.group(1)
        assert avsc.is_file(), f"{avsc} does not exist"
        record = json.loads(avsc.read_text())
        # The schema resource is named after the record, and the loader knows that record.
        assert record["name"] == schema["name"] == config.locals["streams"][key]["record"]
        assert schemas.avsc_path(record["name"]).name == avsc.name
        (settings,) = topics[key]["schema_settings"]
        assert reference(settings["schema"]) == ("google_pubsub_schema", "stream", key, "id")
        assert settings["encoding"] == "BINARY"  # churnwatch/wire.py publishes Avro binary
    assert not list((REPO / "infra").rglob("*.avsc")), "no copies of schemas under infra/"


# --- BigQuery ---------------------------------------------------------------------------------


def test_bigquery_tables_json_has_every_table_in_the_agreed_format():
    tables = json.loads(TABLES_JSON.read_text())
    specs = schemas.tables()
    assert set(tables) == set(specs)
    for name, table in tables.items():
        spec = specs[name]
        # The agreed keys must be there; extra keys (e.g. version_field) are ignored by Terraform.
        assert {
            "description",
            "schema",
            "time_partitioning",
            "clustering",
            "primary_key",
        } <= set(table)
        assert isinstance(table["description"], str)
        names = [field["name"] for field in table["schema"]]
        assert names == list(spec.column_names), name  # columns come from the schema loader
        for field in table["schema"]:
            assert {"name", "type", "mode", "description"} <= set(field), field
            assert field["mode"] in {"NULLABLE", "REQUIRED", "REPEATED"}, field
        partition = table["time_partitioning"]
        if partition is not None:
            assert partition == {"type": "DAY", "field": spec.partition_field}
            assert partition["field"] in names
        assert table["clustering"] == list(spec.cluster_fields)
        assert len(table["clustering"]) <= 4 and set(table["clustering"]) <= set(names)
        assert table["primary_key"] == list(spec.primary_key)
        assert set(table["primary_key"]) <= set(names)


def test_bigquery_tables_are_created_from_the_generated_file(config):
    (dataset_name,) = config.of_type("google_bigquery_dataset")
    body = config.resources[("google_bigquery_table", "table")]
    assert body["for_each"] == "${local.bigquery_tables}"
    tables = config.instances("google_bigquery_table", "table")
    assert set(tables) == set(schemas.tables())
    for key, table in tables.items():
        assert table["table_id"] == key
        assert table["schema"] == "${jsonencode(each.value.schema)}"
        assert table["deletion_protection"] is True
        assert reference(table["dataset_id"])[:2] == ("google_bigquery_dataset", dataset_name)
    dynamic = {name for block in body["dynamic"] for name in block}
    assert dynamic == {"time_partitioning", "table_constraints"}
    assert "each.value.clustering" in body["clustering"]


def test_every_keyed_table_gets_its_current_view(config):
    """BI reads current_<table> (one row per key): Terraform creates the same views as
    BigQueryWarehouse.ensure_tables, from the SQL generated with the tables."""
    from churnwatch.warehouse.bigquery import current_view_name, current_view_sql

    views = config.instances("google_bigquery_table", "current_view")
    keyed = {name: spec for name, spec in schemas.tables().items() if spec.primary_key}
    # current_<table>, except where a schema names its view (alert_events: current_alerts)
    assert set(views) == {current_view_name(name) for name in keyed}
    assert "current_alerts" in views
    for name, spec in keyed.items():
        view = views[current_view_name(name)]
        (block,) = view["view"]
        assert block["use_legacy_sql"] is False
        assert "each.value.query" in block["query"] and "var.project" in block["query"]
        generated = json.loads(TABLES_JSON.read_text())[name]["current_view"]["query"]
        assert generated == current_view_sql(spec, "{project}", "{dataset}")
        assert f"`{{project}}.{{dataset}}.{name}`" in generated


# --- Dataflow and the Flex Template ----------------------------------------------------------


def test_flex_template_job_parameters_are_template_parameters(config, metadata):
    (job,) = config.of_type("google_dataflow_flex_template_job").values()
    declared = {p["name"] for p in metadata["parameters"]}
    required = {p["name"] for p in metadata["parameters"] if not p["isOptional"]}
    params = job["parameters"]
    assert set(params) <= declared, f"undeclared: {set(params) - declared}"
    assert required <= set(params), f"required but not passed: {required - set(params)}"
    # Inputs and the alert topic are the resources defined here, by topology key.
    assert reference(params["feedback_subscription"]) == (
        "google_pubsub_subscription",
        "stream",
        "feedback",
        "id",
    )
    assert reference(params["customer_subscription"])[:3] == (
        "google_pubsub_subscription",
        "stream",
        "customer",
    )
    assert reference(params["alerts_topic"])[:3] == ("google_pubsub_topic", "stream", "alerts")
    assert params["warehouse"].startswith("bigquery://${var.project}/")
    assert params["pubsub_read"] == "native"
    assert job["provider"] == "google-beta"
    assert job["enable_streaming_engine"] is True
    assert job["ip_configuration"] == "WORKER_IP_PRIVATE"
    assert job["service_account_email"] == "${google_service_account.dataflow.email}"
    for attr in ("machine_type", "max_workers", "region", "container_spec_gcs_path"):
        assert job[attr].startswith("${var."), attr


def resolve_parameter(config: Config, expression: str, project: str) -> str:
    """The value Terraform would pass, for the expression kinds dataflow.tf uses."""
    defaults = {name: body.get("default") for name, body in config.variables.items()}
    defaults["project"] = project
    ref = re.fullmatch(r'\$\{(google_pubsub_\w+)\.(\w+)\["(\w+)"\]\.id\}', expression)
    if ref:
        rtype, name, key = ref.groups()
        kind = "subscriptions" if rtype == "google_pubsub_subscription" else "topics"
        return f"projects/{project}/{kind}/{config.instances(rtype, name)[key]['name']}"
    dataset = config.resources[("google_bigquery_dataset", "warehouse")]["dataset_id"]
    text = expression.replace("${google_bigquery_dataset.warehouse.dataset_id}", dataset)
    text = re.sub(r"\$\{tostring\(var\.(\w+)\)\}", lambda m: str(defaults[m.group(1)]), text)
    text = re.sub(r"\$\{var\.(\w+)\}", lambda m: str(defaults[m.group(1)]), text)
    assert "${" not in text, f"cannot resolve {expression}"
    return text


def test_the_job_terraform_starts_passes_the_pipelines_dataflow_checks(config):
    # What the launcher runs: the job's parameters as flags, plus the environment Dataflow
    # passes (project, region, temp location, service account) and the setup file from the
    # Dockerfile. make_options() runs validate_churnwatch() and validate_dataflow().
    (job,) = config.of_type("google_dataflow_flex_template_job").values()
    project = "churnwatch-example"
    argv = [
        f"--{name}={resolve_parameter(config, value, project)}"
        for name, value in job["parameters"].items()
    ]
    account = config.variables["service_account_name"]["default"]
    argv += [
        "--runner=DataflowRunner",
        f"--project={project}",
        f"--region={config.variables['region']['default']}",
        f"--temp_location=gs://{project}-churnwatch-temp/temp",
        f"--service_account_email={account}@{project}.iam.gserviceaccount.com",
        f"--setup_file={REPO / 'setup.py'}",
    ]
    options = make_options(argv)  # raises ValueError naming every problem
    churn = options.view_as(ChurnwatchOptions)
    assert churn.feedback_subscription == (
        f"projects/{project}/subscriptions/{topology.TOPICS['feedback'][1]}"
    )
    assert churn.warehouse == f"bigquery://{project}/churnwatch"
    assert churn.read_binding() == "native"


# --- IAM --------------------------------------------------------------------------------------


def iam_grants(config: Config) -> list[tuple[str, str, dict[str, Any]]]:
    grants = []
    for (rtype, name), _ in config.resources.items():
        if "_iam_" in rtype and rtype != "google_project_iam_custom_role":
            for key, body in config.instances(rtype, name).items():
                grants.append((rtype, f"{name}[{key}]" if key else name, body))
    return grants


#: What the warehouse writer role must never hold: delete or alter tables, datasets or data
#: outside an append, or run jobs (DML).
FORBIDDEN_WAREHOUSE_PERMISSIONS = re.compile(
    r"^bigquery\.(tables\.(delete|update|create|setIamPolicy)|datasets\.(delete|update|create)"
    r"|jobs\.create|routines\..*|models\..*)$"
)


def test_iam_is_least_privilege(config):
    grants = iam_grants(config)
    assert len(grants) >= 10
    for rtype, name, body in grants:
        # Additive members only: bindings/policies would take over grants made elsewhere.
        assert rtype.endswith("_iam_member"), f"{rtype}.{name} is authoritative"
        assert body["role"] not in PRIMITIVE_ROLES, f"{rtype}.{name}: {body['role']}"
        if rtype.startswith("google_project_"):
            role = body["role"]
            assert not role.startswith(("roles/pubsub.", "roles/bigquery.")), f"{name}: {role}"
            assert "admin" not in role.lower(), f"{name}: project-level {role}"
    project_roles = {b["role"] for t, _, b in grants if t == "google_project_iam_member"}
    assert project_roles == {"roles/dataflow.worker"}

    worker = "${local.dataflow_member}"
    assert config.locals["dataflow_member"] == (
        "serviceAccount:${google_service_account.dataflow.email}"
    )
    worker_grants = [(t, b) for t, _, b in grants if b["member"] == worker]
    pipeline_subs = {topology.TOPICS[s][1] for s in ("feedback", "customer")}
    subscriptions = config.instances("google_pubsub_subscription", "stream")
    bucket_roles: dict[str, set[str]] = {}
    for rtype, body in worker_grants:
        if rtype == "google_pubsub_subscription_iam_member":
            _, _, key, _ = reference(body["subscription"])
            assert subscriptions[key]["name"] in pipeline_subs, body
            assert body["role"] in {"roles/pubsub.subscriber", "roles/pubsub.viewer"}
        elif rtype == "google_pubsub_topic_iam_member":
            assert reference(body["topic"])[:3] == ("google_pubsub_topic", "stream", "alerts")
            assert body["role"] == "roles/pubsub.publisher"
        elif rtype == "google_bigquery_dataset_iam_member":
            assert reference(body["dataset_id"])[:2] == ("google_bigquery_dataset", "warehouse")
            # Not roles/bigquery.dataEditor (tables.delete, tables.update): the custom role.
            assert body["role"] == "${google_project_iam_custom_role.warehouse_writer.id}"
        elif rtype == "google_storage_bucket_iam_member":
            bucket = reference(body["bucket"])[1]
            bucket_roles.setdefault(bucket, set()).add(body["role"])
        elif rtype == "google_artifact_registry_repository_iam_member":
            assert body["role"] == "roles/artifactregistry.reader"
        else:
            assert (rtype, body["role"]) == ("google_project_iam_member", "roles/dataflow.worker")
    # The template bucket (spec + staged code): read and add, never overwrite or delete.
    assert bucket_roles == {
        "dataflow": {"roles/storage.objectViewer", "roles/storage.objectCreator",
                     "roles/storage.legacyBucketReader"},
        "temp": {"roles/storage.objectAdmin", "roles/storage.legacyBucketReader"},
    }  # fmt: skip
    # Both pipeline subscriptions are readable, and the worker may publish alerts.
    read = {
        subscriptions[reference(b["subscription"])[2]]["name"]
        for t, b in worker_grants
        if t == "google_pubsub_subscription_iam_member" and b["role"] == "roles/pubsub.subscriber"
    }
    assert read == pipeline_subs
    assert any(t == "google_pubsub_topic_iam_member" for t, _ in worker_grants)


def test_the_warehouse_writer_role_can_append_but_not_delete_or_alter(config):
    role = config.resources[("google_project_iam_custom_role", "warehouse_writer")]
    permissions = set(role["permissions"])
    assert "bigquery.tables.updateData" in permissions  # append rows (both write methods)
    assert "bigquery.tables.get" in permissions  # read the schema
    assert "bigquery.tables.getData" in permissions  # warm start: list the stored rows
    assert not {p for p in permissions if FORBIDDEN_WAREHOUSE_PERMISSIONS.match(p)}
    assert "roles/bigquery.dataEditor" not in json.dumps(config.trees)


def test_temp_files_and_the_template_spec_live_in_separate_buckets(config):
    job = config.resources[("google_dataflow_flex_template_job", "streaming")]
    assert job["temp_location"] == "${google_storage_bucket.temp.url}/temp"
    assert job["staging_location"] == "${google_storage_bucket.dataflow.url}/staging"
    assert config.outputs["dataflow_bucket"]["value"] == "${google_storage_bucket.dataflow.url}"


def test_the_notifier_reads_its_secrets_and_the_alerts_subscription_only(config):
    secrets = config.instances("google_secret_manager_secret", "notifier")
    webhooks = {
        o.channel["webhook_env"] for o in RoutingPolicy.load().owners.values()
        if "webhook_env" in o.channel
    }  # fmt: skip
    assert set(secrets) == webhooks | {SMTP_ENV["password"]}
    for env, body in secrets.items():
        assert body["secret_id"] == env.lower().replace("_", "-")
        assert "secret_data" not in body  # values never sit in Terraform state
    notifier = "${local.notifier_member}"
    grants = [(t, b) for t, _, b in iam_grants(config) if b["member"] == notifier]
    accessors = [b for t, b in grants if t == "google_secret_manager_secret_iam_member"]
    assert {reference(b["secret_id"])[2] for b in accessors} == set(secrets)
    assert {b["role"] for b in accessors} == {"roles/secretmanager.secretAccessor"}
    others = [(t, b["role"]) for t, b in grants if t != "google_secret_manager_secret_iam_member"]
    assert others == [("google_pubsub_subscription_iam_member", "roles/pubsub.subscriber")]
    (sub,) = [b for t, b in grants if t == "google_pubsub_subscription_iam_member"]
    assert reference(sub["subscription"])[:3] == ("google_pubsub_subscription", "stream", "alerts")


# --- monitoring -------------------------------------------------------------------------------


def alert_policies(config: Config) -> dict[str, dict[str, Any]]:
    return config.of_type("google_monitoring_alert_policy")


def policy_text(body: dict[str, Any]) -> str:
    return json.dumps(body["conditions"])


def test_alert_policies_cover_lag_freshness_backlog_dead_letters_and_failure(config):
    policies = alert_policies(config)
    wanted = {
        "dataflow.googleapis.com/job/system_lag": "system_lag",
        "dataflow.googleapis.com/job/data_watermark_age": "data_freshness",
        "dataflow.googleapis.com/job/is_failed": "job_failed",
        "pubsub.googleapis.com/subscription/num_undelivered_messages": "subscription",
        "pubsub.googleapis.com/subscription/oldest_unacked_message_age": "subscription",
        "dataflow.googleapis.com/job/user_counter": "dead_letters",
    }
    for metric, name in wanted.items():
        assert metric in policy_text(policies[name]), f"{name} does not watch {metric}"
    for name, body in policies.items():
        assert body["notification_channels"] == "${var.notification_channels}", name
        assert body["documentation"][0]["content"], f"{name}: say what to do"
    # Dataflow conditions are for this job; one backlog policy per subscription of pubsub.tf.
    assert config.locals["dataflow_job_filter"].endswith('job_name = "${var.job_name}"')
    for name in ("system_lag", "data_freshness", "job_failed"):
        assert "${local.dataflow_job_filter}" in policy_text(policies[name])
    per_subscription = config.instances("google_monitoring_alert_policy", "subscription")
    assert {
        re.search(r'subscription_id = \\"([^\\]+)\\"', policy_text(b)).group(1)
        for b in per_subscription.values()
    } == {sub for _, sub in topology.TOPICS.values()}
    assert config.variables["notification_channels"]["type"] == "${list(string)}"


def test_the_dead_letter_rate_watches_every_dead_letter_counter_of_the_pipeline(config):
    pattern = re.compile(config.locals["dead_letter_counters"])
    query = policy_text(alert_policies(config)["dead_letters"])
    assert "${local.dead_letter_counters}" in query and "${var.job_name}" in query
    # The counter names the code builds (transforms/decode.py, warehouse_io.py, bigquery_io.py).
    source = {p.name: p.read_text() for p in (REPO / "transforms").glob("*.py")}
    assert 'f"{self.source}_dead_{stage.lower()}"' in source["decode.py"]
    assert 'f"{self.table}_dead_sink"' in source["warehouse_io.py"]
    assert '"dead_letters_refused_by_bigquery"' in source["bigquery_io.py"]
    stages = schemas.load(schemas.DEAD_LETTER).field("stage").symbols
    dead = [f"{s}_dead_{st.lower()}" for s in ("feedback", "customer") for st in stages]
    dead += [f"{t}_dead_sink" for t in schemas.tables()] + ["dead_letters_refused_by_bigquery"]
    for name in dead:
        assert pattern.fullmatch(name), name
    # ... and no counter of rows that were written or dropped on purpose.
    for name in ("feedback_valid", "dead_letters_rows", "churn_alerts_rows", "duplicates_dropped",
                 "alerts", "feedback_events_failed_windows"):  # fmt: skip
        assert not pattern.fullmatch(name), name


def test_the_dashboard_charts_what_the_alerts_watch(config):
    dashboard = config.resources[("google_monitoring_dashboard", "churnwatch")]["dashboard_json"]
    for metric in ("job/system_lag", "job/data_watermark_age", "num_undelivered_messages",
                   "oldest_unacked_message_age", "job/user_counter"):  # fmt: skip
        assert metric in dashboard, metric


# --- checkov ----------------------------------------------------------------------------------


def test_checkov_finds_no_failed_checks_and_every_skip_is_justified():
    report = checkov("-d", "infra/terraform", "--framework", "terraform")
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, failed_summary(report)
    assert summary["passed"] >= 15  # the scan really ran over the resources
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason.split()) >= MIN_REASON_WORDS, skipped["check_id"]
    print(f"\ncheckov terraform: {summary}")


@pytest.mark.parametrize("path", sorted(TERRAFORM_DIR.glob("*.tf")), ids=lambda p: p.name)
def test_skip_comments_name_a_check_and_give_a_reason(path: Path):
    for line, check_id, reason in skip_comments(path):
        assert check_id, f"{path.name}:{line}: malformed checkov skip"
        assert len(reason.split()) >= MIN_REASON_WORDS, f"{path.name}:{line}: say why"
