"""Tumbling drift windows over the scored stream, each compared with the serving model's
reference sample; severe drift asks for retraining once per shift.

Pure: the drift agent (``streams/drift_agent.py``) feeds it decoded batches and sends what
it returns. A window closes after ``window_events`` events, or once its events span
``window_seconds`` of event time (when set); a time-closed window with fewer than
``min_events`` is dropped, too small to test.

Debounce: after a retrain request the monitor stays quiet until ``rearm_windows``
consecutive windows without severe drift have passed, so one shift asks once. A new serving
model brings a new reference and a new monitor that continues the old one's episode: the
model retrained for a shift is often promoted while its slowest features (30-day sums) are
still settling, and that is the same shift, not a new one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from retraining.drift import (
    DriftThresholds,
    categorical_drift,
    drift_share,
    feature_drift,
    numeric_drift,
    severity,
)
from schemas.events import DriftEvidence, DriftReport, RetrainReason, RetrainRequest, Severity
from scoring.decision import Thresholds
from scoring.features.definitions import CATEGORICAL_FEATURES, FEATURE_INDEX, FEATURE_NAMES

# A window shorter than a week cannot match a reference on the day of the week.
UNMONITORED = ("day_of_week", "is_weekend")
DECISION_CODES = {"approve": 0, "review": 1, "decline": 2}


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    window_events: int = 5_000
    window_seconds: float = 0.0  # event-time span that also closes a window; 0: by count only
    min_events: int = 500
    thresholds: DriftThresholds = dataclasses.field(default_factory=DriftThresholds)
    rearm_windows: int = 3
    features: tuple[str, ...] = tuple(n for n in FEATURE_NAMES if n not in UNMONITORED)

    def __post_init__(self) -> None:
        if unknown := set(self.features) - set(FEATURE_NAMES):
            raise ValueError(f"unknown drift feature(s) {sorted(unknown)}")
        if self.window_events < self.min_events:
            raise ValueError("window_events must be at least min_events")


@dataclasses.dataclass(frozen=True)
class Reference:
    """What the serving model was checked on: feature rows (``FEATURE_NAMES`` order) and the
    probabilities it gave them."""

    rows: np.ndarray
    probabilities: np.ndarray

    def decisions(self, thresholds: Thresholds) -> np.ndarray:
        return _decision_codes(thresholds.decide(self.probabilities))


@dataclasses.dataclass(frozen=True)
class WindowResult:
    report: DriftReport
    request: RetrainRequest | None
    rows: np.ndarray  # the window's feature rows (``FEATURE_NAMES`` order), for the HTML report
    probabilities: np.ndarray


class DriftMonitor:
    def __init__(
        self,
        reference: Reference,
        model_name: str,
        model_version: str,
        decision_thresholds: Thresholds,
        config: DriftConfig = DriftConfig(),
    ) -> None:
        self.model_name, self.model_version = model_name, model_version
        self.config = config
        self.columns = [FEATURE_INDEX[name] for name in config.features]
        self.reference = reference.rows[:, self.columns]
        self.reference_scores = reference.probabilities
        self.reference_decisions = reference.decisions(decision_thresholds)
        self.windows = 0
        self.requests = 0
        self._armed = True
        self._quiet = 0
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._count = 0

    def continue_episode(self, previous: DriftMonitor) -> None:
        """Take over ``previous``'s debounce: a request it sent still holds until calm."""
        self._armed, self._quiet = previous._armed, previous._quiet

    def add(
        self,
        rows: np.ndarray,
        probabilities: np.ndarray,
        decisions: Sequence[str],
        event_times: np.ndarray,
    ) -> list[WindowResult]:
        """Take a batch (event times in epoch seconds); return the windows it closed."""
        codes = _decision_codes(decisions)
        results = []
        start = 0
        while start < len(rows):
            end = self._cut(event_times, start)
            if end > start:
                part = slice(start, end)
                self._parts.append(
                    (rows[part], probabilities[part], codes[part], event_times[part])
                )
                self._count += end - start
            start = end
            if start < len(rows) or self._count >= self.config.window_events:
                # full: by count, or the next event lies beyond the window's time span
                result = self._close()
                if result is not None:
                    results.append(result)
        return results

    def _cut(self, event_times: np.ndarray, start: int) -> int:
        """Where the open window ends in this batch: at its count, or at the first event (in
        arrival order) at or beyond its time span."""
        end = min(len(event_times), start + self.config.window_events - self._count)
        if self.config.window_seconds:
            first = self._parts[0][3][0] if self._parts else event_times[start]
            beyond = event_times[start:end] >= first + self.config.window_seconds
            if beyond.any():
                end = start + int(np.argmax(beyond))
        return end

    def _close(self) -> WindowResult | None:
        if not self._parts:
            return None
        rows, scores, codes, times = (
            np.concatenate(part) for part in zip(*self._parts, strict=True)
        )
        self._parts, self._count = [], 0
        if len(rows) < self.config.min_events:
            return None
        self.windows += 1
        report = self.evaluate(rows, scores, codes, times)
        return WindowResult(report, self._debounced(report), rows, scores)

    def evaluate(
        self, rows: np.ndarray, scores: np.ndarray, codes: np.ndarray, times: np.ndarray
    ) -> DriftReport:
        thresholds = self.config.thresholds
        features = feature_drift(
            self.reference,
            rows[:, self.columns],
            self.config.features,
            CATEGORICAL_FEATURES,
            thresholds,
        )
        return DriftReport(
            model_name=self.model_name,
            model_version=self.model_version,
            window_start=datetime.fromtimestamp(float(times.min()), UTC),
            window_end=datetime.fromtimestamp(float(times.max()), UTC),
            events=len(rows),
            features=tuple(features),
            drift_share=drift_share(features),
            prediction_drift=numeric_drift(
                "fraud_probability", self.reference_scores, scores, thresholds
            ),
            decision_mix_drift=categorical_drift(
                "decision", self.reference_decisions, codes, thresholds
            ),
            severity=severity(features, thresholds),
        )

    def _debounced(self, report: DriftReport) -> RetrainRequest | None:
        if report.severity != Severity.SEVERE:
            self._quiet += 1
            if self._quiet >= self.config.rearm_windows:
                self._armed = True
            return None
        self._quiet = 0
        if not self._armed:
            return None
        self._armed = False
        self.requests += 1
        drifted = [f.feature for f in report.features if f.drifted]
        return RetrainRequest(
            request_id=f"drift-{report.model_name}-{report.model_version}-"
            f"{int(report.window_end.timestamp())}",
            reason=RetrainReason.DRIFT,
            drift=DriftEvidence(
                model_version=report.model_version,
                window_start=report.window_start,
                window_end=report.window_end,
                drift_share=report.drift_share,
                drifted_features=tuple(drifted),
            ),
            requested_at=report.window_end,
        )


def _decision_codes(decisions: Sequence[str] | np.ndarray) -> np.ndarray:
    return np.array([DECISION_CODES[str(d)] for d in decisions], dtype=np.int8)
