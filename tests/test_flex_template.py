"""The Flex Template: metadata for every pipeline flag, the launcher Dockerfile, the spec.

No cloud and no docker daemon here: the metadata is checked against ChurnwatchOptions, the
Dockerfile with checkov and against the files it copies, the entry point by running it (it
must reach the pipeline's own option validation), and the spec with gcloud's offline
``--print-only`` build (`make template-spec`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
from apache_beam.io.gcp.bigquery import StorageWriteToBigQuery

from churnwatch.warehouse import WarehouseUrl
from pipelines.options import SUBSCRIPTION_RE, TOPIC_RE, ChurnwatchOptions
from tests.infra_tools import (
    FLEX_DIR,
    MIN_REASON_WORDS,
    REPO,
    checkov,
    failed_summary,
    skip_comments,
)
from transforms.bigquery_io import STORAGE_WRITE_API

METADATA = FLEX_DIR / "metadata.json"
DOCKERFILE = FLEX_DIR / "Dockerfile"

#: Values for flags whose default is None or not meant for Dataflow (the duckdb warehouse).
EXAMPLES = {
    "feedback_subscription": "projects/churnwatch-example/subscriptions/feedback-events-churnwatch",
    "customer_subscription": "projects/churnwatch-example/subscriptions/customer-events-churnwatch",
    "alerts_topic": "projects/churnwatch-example/topics/churn-alerts",
    "warehouse": "bigquery://churnwatch-example/churnwatch",
    "idle_stop_seconds": "30",
    "writer_schemas_dir": "/template/writer_schemas",
    "model_params": "/template/params/bgnbd.json",
    "risk_threshold": "0.8",
    "routing_policy": "/template/policy/routing.yaml",
    "quality_rules": "/template/policy/quality.yaml",
}
#: Wrong for every parameter: spaces, no digits, no path or URL shape.
BAD = "not a valid value"
#: Plausible but wrong, per kind of parameter.
BAD_BY_NAME = {
    "feedback_subscription": "projects/churnwatch-example/topics/feedback-events",
    "customer_subscription": "customer-events-churnwatch",
    "alerts_topic": "projects/churnwatch-example/subscriptions/churn-alerts",
    "warehouse": "duckdb:///churnwatch.duckdb",  # a local file means nothing on Dataflow
    "pubsub_read": "local",  # the DirectRunner binding; validate_dataflow rejects it
    "bigquery_write_method": "FILE_LOADS",
    "model_params": "/template/params/bgnbd.yaml",
    "routing_policy": "/template/policy/routing.json",
}


def pipeline_flags() -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser()
    ChurnwatchOptions._add_argparse_args(parser)
    return {a.dest: a for a in parser._actions if a.dest != "help"}


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return json.loads(METADATA.read_text())


@pytest.fixture(scope="module")
def parameters(metadata) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in metadata["parameters"]}


def example(name: str, action: argparse.Action) -> str:
    if name in EXAMPLES:
        return EXAMPLES[name]
    assert action.default is not None, f"add an example value for --{name}"
    return str(action.default)


# --- metadata.json ----------------------------------------------------------------------------


def test_metadata_is_generated_from_the_flags():
    """metadata.json is current (`churnwatch template-metadata`), and --check says so."""
    from churnwatch.cli import main
    from pipelines.template_metadata import metadata_json

    assert METADATA.read_text() == metadata_json(), (
        "stale: run `churnwatch template-metadata` and commit the result"
    )
    assert main(["template-metadata", "--check"]) == 0


def test_metadata_overrides_name_real_flags():
    from pipelines import template_metadata as tm

    flags = {a.dest for a in tm.pipeline_flags()}
    for table in (tm.LABELS, tm.REGEXES, tm.PARAM_TYPES, tm.HELP_SUFFIX, tm.REQUIRED):
        assert set(table) <= flags, f"no such flag: {sorted(set(table) - flags)}"


def test_metadata_check_fails_on_a_stale_file(tmp_path):
    from churnwatch.cli import main

    stale = tmp_path / "metadata.json"
    stale.write_text(METADATA.read_text().replace("Dedupe shards", "Dedupe buckets"))
    assert main(["template-metadata", "--check", "--out", str(stale)]) == 1
    assert main(["template-metadata", "--out", str(stale)]) == 0
    assert stale.read_text() == METADATA.read_text()


def test_metadata_describes_exactly_the_pipeline_flags(metadata, parameters):
    names = [p["name"] for p in metadata["parameters"]]
    assert len(names) == len(set(names)), "duplicate parameter"
    assert set(names) == set(pipeline_flags())
    assert metadata["name"] and metadata["description"]


def test_every_parameter_has_label_help_and_working_regexes(parameters):
    flags = pipeline_flags()
    for name, param in parameters.items():
        assert param["label"].strip() and param["helpText"].strip(), name
        assert isinstance(param["isOptional"], bool), name
        assert param["regexes"], f"{name}: no validation regex"
        good = example(name, flags[name])
        bad = [BAD] + ([BAD_BY_NAME[name]] if name in BAD_BY_NAME else [])
        for pattern in param["regexes"]:
            regex = re.compile(pattern)
            assert regex.fullmatch(good), f"{name}: {pattern!r} rejects {good!r}"
            for value in bad:
                assert not regex.fullmatch(value), f"{name}: {pattern!r} accepts {value!r}"


def test_number_regexes_follow_the_flag_types(parameters):
    # Dataflow passes parameters as strings; a regex that lets "1.5" through to an int flag
    # would fail at launch instead of at submission.
    for name, action in pipeline_flags().items():
        regex = re.compile(parameters[name]["regexes"][0])
        if action.type is int:
            assert not regex.fullmatch("1.5") and regex.fullmatch("12"), name
        elif action.type is float:
            assert regex.fullmatch("0.25") and regex.fullmatch("1e-3"), name
            assert not regex.fullmatch("-1"), name  # every float flag here is positive


def test_pubsub_regexes_are_the_pipelines_own(parameters):
    assert parameters["feedback_subscription"]["regexes"] == [SUBSCRIPTION_RE.pattern]
    assert parameters["customer_subscription"]["regexes"] == [SUBSCRIPTION_RE.pattern]
    assert parameters["alerts_topic"]["regexes"] == [TOPIC_RE.pattern]
    assert parameters["feedback_subscription"]["paramType"] == "PUBSUB_SUBSCRIPTION"
    assert parameters["alerts_topic"]["paramType"] == "PUBSUB_TOPIC"


def test_required_parameters_are_the_ones_the_pipeline_requires(parameters):
    # validate_churnwatch() requires both subscriptions; on Dataflow the warehouse must be set
    # too, because its default is a local DuckDB file.
    required = {n for n, p in parameters.items() if not p["isOptional"]}
    assert required == {"feedback_subscription", "customer_subscription", "warehouse"}


def test_values_the_regexes_accept_pass_the_pipelines_validation(parameters):
    argv = [
        f"--{name}={EXAMPLES[name]}" for name in ("feedback_subscription", "customer_subscription")
    ]
    argv += [f"--warehouse={EXAMPLES['warehouse']}", f"--alerts_topic={EXAMPLES['alerts_topic']}"]
    for value in argv:
        name, _, raw = value[2:].partition("=")
        assert re.fullmatch(parameters[name]["regexes"][0], raw)
    ChurnwatchOptions(argv).validate_churnwatch()  # raises if the pipeline disagrees
    assert WarehouseUrl.parse(EXAMPLES["warehouse"]).scheme == "bigquery"


# --- Dockerfile and entry point ---------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_follows_the_launcher_pattern():
    instructions = dockerfile_instructions()
    (base,) = [rest for word, rest in instructions if word == "FROM"]
    match = re.fullmatch(
        r"gcr\.io/dataflow-templates-base/python311-template-launcher-base"
        r":(\d{8})[-_](?:rc|RC)\d\d(@sha256:[0-9a-f]{64})?",
        base,
    )
    assert match, f"a dated tag (optionally @sha256:digest) of the 3.11 launcher: {base}"
    # Newer than the 2023 image the project started with (issue 14).
    assert match.group(1) > "20230622", base
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the image must not run as root"
    env = dict(
        re.fullmatch(r'(\w+)="?([^"]*)"?', rest).groups()
        for word, rest in instructions
        if word == "ENV"
    )
    assert {"FLEX_TEMPLATE_PYTHON_PY_FILE", "FLEX_TEMPLATE_PYTHON_SETUP_FILE"} <= set(env)


def test_dockerfile_env_files_exist_and_are_copied():
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    workdir = args["WORKDIR"]
    copied = set()
    for word, rest in instructions:
        if word == "COPY":
            *sources, dest = rest.split()
            copied.update(sources if dest in {"./", "."} else [dest])
    for word, rest in instructions:
        if word != "ENV" or not rest.startswith("FLEX_TEMPLATE_PYTHON_"):
            continue
        key, _, value = rest.partition("=")
        path = value.strip('"').replace("${WORKDIR}", workdir)
        assert path.startswith(workdir + "/"), f"{key} points outside the work dir: {path}"
        relative = path[len(workdir) + 1 :]
        assert (REPO / relative).is_file(), f"{key}={path}: {relative} is not in the repository"
        assert any(relative == c or relative.startswith(c.rstrip("/") + "/") for c in copied), (
            f"{key}={path}: {relative} is not copied into the image"
        )
    # Every package setup.py installs is copied (a missing one fails only at launch).
    assert {"churnwatch", "transforms", "pipelines", "schemas", "setup.py"} <= copied


def test_launcher_can_build_the_storage_write_api_graph_offline():
    # The default write method is a cross-language transform: building the graph runs Beam's
    # Java expansion service. The image needs a JRE and the very jar Beam will ask for.
    flags = pipeline_flags()
    assert flags["bigquery_write_method"].default == STORAGE_WRITE_API
    source = inspect.getsource(StorageWriteToBigQuery.__init__)
    (target,) = re.findall(r"BeamJarExpansionService\(\s*'([^']+)'", source)
    runs = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    assert re.search(r"apt-get install [^&]*openjdk-\d+-jre-headless", runs)
    assert f"J.path_to_beam_jar('{target}')" in runs, f"prefetch the jar of {target}"
    # Fetched as the user that launches (Beam caches under ~/.apache_beam), after USER.
    words = [word for word, _ in dockerfile_instructions()]
    prefetch = max(i for i, (w, r) in enumerate(dockerfile_instructions()) if target in r)
    assert words.index("USER") < prefetch


def test_checkov_dockerfile_has_no_failed_checks():
    report = checkov("-f", str(DOCKERFILE.relative_to(REPO)), "--framework", "dockerfile")
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, failed_summary(report)
    assert summary["passed"] >= 10
    for line, check_id, reason in skip_comments(DOCKERFILE):
        assert check_id and len(reason.split()) >= MIN_REASON_WORDS, f"Dockerfile:{line}"
    print(f"\ncheckov dockerfile: {summary}")


def test_entry_point_reaches_the_pipelines_option_validation():
    # What the launcher runs: python main.py --flag=value... A bad subscription must stop it
    # with the pipeline's own message before anything is submitted.
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            str(FLEX_DIR / "main.py"),
            "--feedback_subscription=feedback-events-churnwatch",
            f"--customer_subscription={EXAMPLES['customer_subscription']}",
            f"--warehouse={EXAMPLES['warehouse']}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "invalid options" in proc.stderr
    assert "--feedback_subscription='feedback-events-churnwatch'" in proc.stderr


# --- the spec ---------------------------------------------------------------------------------


def test_make_template_spec_writes_the_spec_gcloud_would_upload(tmp_path, metadata):
    if not shutil.which("gcloud") or not shutil.which("make"):
        pytest.fail("make template-spec needs gcloud and make on PATH", pytrace=False)
    spec_path = tmp_path / "churnwatch.json"
    image = "europe-west1-docker.pkg.dev/churnwatch-example/churnwatch/churnwatch-flex:test"
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "template-spec",
            f"TEMPLATE_SPEC={spec_path}",
            f"TEMPLATE_IMAGE={image}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    spec = json.loads(spec_path.read_text())
    assert spec["image"] == image
    assert spec["sdkInfo"] == {"language": "PYTHON"}
    assert spec["defaultEnvironment"]["enableStreamingEngine"] is True
    assert spec["metadata"]["name"] == metadata["name"]
    assert spec["metadata"]["parameters"] == metadata["parameters"]


def test_make_template_explains_what_is_missing():
    env = {k: v for k, v in os.environ.items() if k not in {"PROJECT", "TEMPLATE_BUCKET"}}
    proc = subprocess.run(
        ["make", "--no-print-directory", "template"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "set PROJECT and TEMPLATE_BUCKET" in proc.stdout
