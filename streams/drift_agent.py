"""The drift agent's work between Faust and the pure monitor: decode scored events, keep one
``DriftMonitor`` per serving model version (its reference loaded from the registry), write
the Evidently report when drift first shows and every ``report_every`` windows, and set
the drift gauges."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from retraining.adapters.evidently_report import frame_of, write_drift_html
from retraining.drift_monitor import DriftConfig, DriftMonitor, Reference, WindowResult
from schemas.events import DriftReport, Severity
from schemas.scored import ScoredEvent
from scoring.decision import Thresholds
from scoring.features.definitions import FEATURE_NAMES
from streams.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

ReferenceLoader = Callable[[str], Reference]  # model version -> its reference sample
ReportStore = Callable[[str, Path], str]  # model version, HTML file -> its URI in the registry
RETRY_REFERENCE_S = 60.0
KEPT_MONITORS = 3


class DriftAgent:
    def __init__(
        self,
        model_name: str,
        load_reference: ReferenceLoader,
        thresholds: Thresholds,
        config: DriftConfig,
        reports_dir: Path,
        metrics: WorkerMetrics,
        report_every: int = 10,
        store_report: ReportStore | None = None,
    ) -> None:
        self.model_name = model_name
        self.load_reference = load_reference
        self.thresholds, self.config = thresholds, config
        self.reports_dir, self.metrics = reports_dir, metrics
        self.report_every = report_every
        self.store_report = store_report
        self.monitors: dict[str, DriftMonitor] = {}
        self.references: dict[str, Reference] = {}
        self.failed: dict[str, float] = {}  # version -> when its reference failed to load
        self.last_severity: dict[str, Severity] = {}

    def handle(self, parsed: list[ScoredEvent], event_times: np.ndarray) -> list[WindowResult]:
        """Scored events (parsed JSON, their event times in epoch seconds) in arrival order ->
        the windows they closed (blocking: run it in a thread)."""
        by_version: dict[str, list[int]] = {}
        for index, event in enumerate(parsed):
            if event.fallback or event.model_name != self.model_name:
                continue  # the rules have no reference; other models are not ours to watch
            by_version.setdefault(event.model_version, []).append(index)
        results = []
        for version, indices in by_version.items():
            monitor = self._monitor(version)
            if monitor is None:
                continue
            events = [parsed[i] for i in indices]
            rows = np.array([[event.features[name] for name in FEATURE_NAMES] for event in events])
            probabilities = np.array([event.fraud_probability for event in events])
            decisions = [event.decision for event in events]
            results += monitor.add(rows, probabilities, decisions, event_times[indices])
        for result in results:
            self._observe(result.report, result.request is not None)
        return results

    def wants_html(self, result: WindowResult) -> bool:
        """Drift newly found in this version's windows, or the regular cadence."""
        report = result.report
        before = self.last_severity.get(report.model_version, Severity.NONE)
        self.last_severity[report.model_version] = report.severity
        monitor = self.monitors.get(report.model_version)
        regular = monitor is not None and monitor.windows % self.report_every == 1
        return regular or (report.severity != Severity.NONE and before == Severity.NONE)

    def write_html(self, result: WindowResult) -> DriftReport:
        """The report with the path of its Evidently HTML (blocking: run it in a thread)."""
        report = result.report
        reference = self.references[report.model_version]
        stamp = report.window_end.strftime("%Y%m%dT%H%M%S")
        path = self.reports_dir / f"drift-{report.model_name}-{report.model_version}-{stamp}.html"
        started = time.perf_counter()
        write_drift_html(
            frame_of(reference.rows, reference.probabilities, FEATURE_NAMES),
            frame_of(result.rows, result.probabilities, FEATURE_NAMES),
            self.config.features,
            path,
        )
        logger.info("drift report %s in %.1fs", path, time.perf_counter() - started)
        uri = None
        if self.store_report is not None:
            try:
                uri = self.store_report(report.model_version, path)
            except Exception as error:  # the registry being down must not stop the stream
                logger.warning("drift report %s kept only on this disk: %s", path.name, error)
        return report.model_copy(update={"report_path": str(path), "report_uri": uri})

    def _monitor(self, version: str) -> DriftMonitor | None:
        if version in self.monitors:
            return self.monitors[version]
        if time.monotonic() - self.failed.get(version, -RETRY_REFERENCE_S) < RETRY_REFERENCE_S:
            return None
        try:
            reference = self.load_reference(version)
        except Exception as error:  # the registry being down must not stop the stream
            logger.warning("no drift reference for version %s yet: %s", version, error)
            self.failed[version] = time.monotonic()
            return None
        self.references[version] = reference
        monitor = DriftMonitor(reference, self.model_name, version, self.thresholds, self.config)
        if self.monitors:  # a new champion continues the drift episode of the one it replaced
            monitor.continue_episode(list(self.monitors.values())[-1])
        self.monitors[version] = monitor
        for old in list(self.monitors)[:-KEPT_MONITORS]:
            del self.monitors[old], self.references[old]
        logger.info("drift monitor for %s/%s: %d reference rows", self.model_name, version,
                    len(reference.rows))  # fmt: skip
        return self.monitors[version]

    def _observe(self, report: DriftReport, requested: bool) -> None:
        metrics = self.metrics
        metrics.drift_windows.labels(report.severity.value).inc()
        metrics.drift_share.set(report.drift_share)
        for feature in report.features:
            metrics.feature_psi.labels(feature.feature).set(feature.psi)
            metrics.feature_drifted.labels(feature.feature).set(int(feature.drifted))
        if report.prediction_drift is not None:
            metrics.feature_psi.labels("fraud_probability").set(report.prediction_drift.psi)
        if requested:
            metrics.retrain_requests.inc()
