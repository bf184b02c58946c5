"""Great Expectations behind one small class; the only module that imports GX.

GX takes seconds to import and draws tqdm progress bars for every metric computation,
so it is imported lazily (:func:`import_gx`, never at module import of pipeline code)
and every context is created with ``progress_bars`` disabled and analytics off.

:class:`SuiteRunner` builds, once per process, an ephemeral context with one pandas
data source, one DataFrame asset + whole-frame batch definition, one expectation suite
and one validation definition per table (suites from :mod:`churnwatch.quality.suites`).
Validating a batch is then one ``ValidationDefinition.run`` on a DataFrame; a checkpoint
per table adds the validation result to a local Data Docs site when ``docs_dir`` is given.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from churnwatch.quality.results import Outcome, to_json
from churnwatch.quality.suites import MAX_EVENT_TIME, ExpectationSpec, SuiteSpec

DOCS_SITE = "churnwatch_local"
_ID = "churnwatch_id"
_import_lock = threading.Lock()


def import_gx() -> ModuleType:
    """``great_expectations``, imported on first use with analytics off."""
    with _import_lock:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        try:
            import great_expectations as gx
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "data quality needs great-expectations: pip install great-expectations"
            ) from exc
        # GX pins this module's logger at INFO ("Created temporary directory ... for
        # ephemeral docs site" on every context); the package logger level does not reach it.
        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        return gx


def prefetch() -> threading.Thread:
    """Import GX in a background thread.

    For local runs: the import (~5 s of CPU) then overlaps the runner's start instead of
    stalling the pipeline when the first window fires (``setup()`` waits for it).
    """
    thread = threading.Thread(target=import_gx, name="gx-import", daemon=True)
    thread.start()
    return thread


def _expectation(gx: ModuleType, spec: ExpectationSpec):
    from great_expectations.expectations.row_conditions import Column

    cls = gx.expectations.registry.get_expectation_impl(spec.type)
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if spec.condition:
        column, values = spec.condition
        kwargs["row_condition"] = Column(column).is_in(list(values))
    return cls(**kwargs, meta={_ID: spec.id, "origin": spec.origin})


def _observed(result: dict[str, Any]) -> Any:
    if "observed_value" in result:
        return result["observed_value"]
    out = {}
    for key in ("unexpected_percent", "missing_count", "partial_unexpected_list"):
        if key in result:
            value = result[key]
            out[key] = value[:5] if isinstance(value, list) else value
    return out or None


def _outcome(suite: SuiteSpec, res) -> Outcome:
    config = res.expectation_config
    spec = suite.expectation(config.meta[_ID])
    result = res.result or {}
    exception = (res.exception_info or {}).get("exception_message")
    observed = {"exception": exception} if exception else _observed(result)
    unexpected = result.get("unexpected_count")
    element = result.get("element_count")
    return Outcome(
        suite=suite.name,
        expectation_id=spec.id,
        expectation_type=spec.type,
        column=spec.column,
        kwargs=spec.kwargs_json(),
        success=bool(res.success),
        observed_value=None if observed is None else to_json(observed),
        unexpected_count=None if unexpected is None else int(unexpected),
        element_count=None if element is None else int(element),
    )


class SuiteRunner:
    """GX context, suites and validation definitions for a set of suites; build once."""

    def __init__(self, suites: dict[str, SuiteSpec], docs_dir: str | Path | None = None) -> None:
        gx = import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.suites = suites
        self.docs_dir = Path(docs_dir).resolve() if docs_dir else None
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        if self.docs_dir is not None:
            context.add_data_docs_site(
                DOCS_SITE,
                {
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(self.docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        source = context.data_sources.add_pandas("churnwatch")
        self._definitions = {}
        self._checkpoints = {}
        for name, spec in suites.items():
            batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("frame")
            suite = context.suites.add(
                gx.ExpectationSuite(
                    name=name, expectations=[_expectation(gx, e) for e in spec.expectations]
                )
            )
            definition = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=batch, suite=suite)
            )
            self._definitions[name] = definition
        self.context = context
        self._gx = gx
        self._lock = threading.Lock()  # one context: validations run one at a time

    def validate(
        self, suite: str, frame, now_ms: int, tolerance_ms: int, keep: bool = False
    ) -> list[Outcome]:
        """Run one suite on one DataFrame (one batch) and flatten the results.

        GX stores every result in the context's (in-memory) results store; a stream would
        grow it forever, so unless ``keep`` (for Data Docs) the stored result is dropped.
        """
        with self._lock:
            result = self._definitions[suite].run(
                batch_parameters={"dataframe": frame},
                expectation_parameters={MAX_EVENT_TIME: now_ms + tolerance_ms},
                result_format="BASIC",
            )
            if not keep:
                self._forget_results()
        return [_outcome(self.suites[suite], r) for r in result.results]

    def stored_results(self) -> int:
        backend = self.context.validation_results_store.store_backend
        return sum(1 for k in backend.list_keys() if k != backend.STORE_BACKEND_ID_KEY)

    def _forget_results(self) -> None:
        backend = self.context.validation_results_store.store_backend
        for key in backend.list_keys():
            if key != backend.STORE_BACKEND_ID_KEY:
                backend.remove_key(key)

    def checkpoint(self, suite: str, frame, now_ms: int, tolerance_ms: int) -> list[Outcome]:
        """As :meth:`validate`, through a GX checkpoint that also updates Data Docs."""
        with self._lock:
            return self._checkpoint(suite, frame, now_ms, tolerance_ms)

    def _checkpoint(self, suite: str, frame, now_ms: int, tolerance_ms: int) -> list[Outcome]:
        checkpoint = self._checkpoints.get(suite)
        if checkpoint is None:
            from great_expectations.checkpoint import UpdateDataDocsAction

            actions = (
                [UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])]
                if self.docs_dir
                else []
            )
            checkpoint = self.context.checkpoints.add(
                self._gx.Checkpoint(
                    name=f"{suite}_checkpoint",
                    validation_definitions=[self._definitions[suite]],
                    actions=actions,
                    result_format="SUMMARY",
                )
            )
            self._checkpoints[suite] = checkpoint
        result = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters={MAX_EVENT_TIME: now_ms + tolerance_ms},
        )
        out = []
        for validation in result.run_results.values():
            out += [_outcome(self.suites[suite], r) for r in validation.results]
        return out

    def build_docs(self) -> Path | None:
        """Build the Data Docs site (index + suites); returns its index.html."""
        if self.docs_dir is None:
            return None
        with self._lock:
            self.context.build_data_docs(site_names=[DOCS_SITE])
        index = self.docs_dir / "index.html"
        return index if index.exists() else None


def describe(outcomes: list[Outcome]) -> str:
    """Compact text for logs: failed ids with their observed values."""
    failed = [o for o in outcomes if not o.success]
    return json.dumps({o.expectation_id: o.observed_value for o in failed}, sort_keys=True)
