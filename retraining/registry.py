"""The model registry as the domain sees it: a ``ModelRegistry`` protocol, the values it
deals in, and ``InMemoryRegistry`` for tests. ``retraining.adapters.mlflow_registry`` is the
real one (MLflow); ``tests/registry_contract.py`` runs the same contract on both.

Versions are strings counted from "1" per model name; ``champion`` is the alias scorers
follow (``schemas.events.CHAMPION``); a promotion remembers the champion it replaced
(``previous_champion``), where a rollback goes.
"""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from schemas.events import CHAMPION
from scoring.features import FEATURE_NAMES
from scoring.features.definitions import feature_columns
from scoring.model import TrainedModel
from scoring.serving import ModelScorer


@dataclasses.dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str
    champion: bool  # whether this version got the champion alias


@dataclasses.dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    metrics: dict[str, float]  # the version's test-window metrics, from its tags
    thresholds: dict[str, float] | None = None  # review and decline, from its tags


@dataclasses.dataclass(frozen=True)
class ModelRef:
    """A registered model by alias or by version, as a user names it."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.name}/{self.version}" if self.version else f"{self.name}@{self.alias}"


def parse_model_ref(text: str) -> ModelRef:
    """``name@alias``, ``name/VERSION`` or the ``models:/...`` URI MLflow prints for either.

    >>> [str(parse_model_ref(t)) for t in ("fd@champion", "fd/3", "models:/fd/3",
    ...     "models:/fd@challenger", "fd")]
    ['fd@champion', 'fd/3', 'fd/3', 'fd@challenger', 'fd@champion']
    >>> parse_model_ref("fd/latest")
    Traceback (most recent call last):
    ...
    ValueError: model 'fd/latest': use name@alias, name/VERSION (a number) or models:/...
    """
    body = text.strip().removeprefix("models:/")
    name, at, alias = body.partition("@")
    if at:
        if name and alias and "/" not in name:
            return ModelRef(name, alias=alias)
    else:
        name, slash, version = body.partition("/")
        if not slash and name:
            return ModelRef(name, alias=CHAMPION)
        if name and version.isdigit():
            return ModelRef(name, version=version)
    raise ValueError(f"model {text!r}: use name@alias, name/VERSION (a number) or models:/...")


def champion_uri(model_name: str) -> str:
    """The registry URI scorers load.

    >>> champion_uri("fraud-detector")
    'models:/fraud-detector@champion'
    """
    return f"models:/{model_name}@{CHAMPION}"


class ModelRegistry(Protocol):
    def champion_version(self, model_name: str) -> str | None: ...

    def log_training(
        self, artifact_root: Path, model_name: str, params: dict[str, Any],
        summary: dict[str, float], results: list[Any], best: Any, reference_rows: np.ndarray,
        report: Any = None,
    ) -> Registered: ...  # fmt: skip

    def load_version(self, model_name: str, version: str) -> TrainedModel: ...
    def load_scorer(self, model_name: str, alias: str = CHAMPION) -> ModelScorer: ...
    def load_scorer_version(self, model_name: str, version: str) -> ModelScorer: ...
    def load_model_ref(self, ref: ModelRef) -> ModelScorer: ...
    def version_tags(self, model_name: str, version: str) -> dict[str, str]: ...

    def promote(
        self, model_name: str, version: str, reason: str, by: str, *, rollback: bool = False
    ) -> Promotion: ...

    def rollback(self, model_name: str, by: str) -> Promotion: ...

    def record_gate(
        self, model_name: str, version: str, run_id: str, gate: Any, context: dict[str, str]
    ) -> None: ...

    def load_reference(self, model_name: str, version: str) -> pd.DataFrame: ...

    def store_report(self, model_name: str, version: str, path: Path) -> str:
        """Keep a drift report with the training run of the version it judged; its URI."""
        ...

    def read_report(self, uri: str) -> bytes: ...


def version_tags_of(best: Any) -> dict[str, str]:
    """The tags a registered version carries from its training: candidate, metrics, the
    thresholds of its review budget."""
    tags = {"candidate": best.kind}
    for name, value in best.metrics.items():
        tags[name] = f"{value:.6f}"
    if best.budget is not None:
        for name, value in best.budget.as_metrics().items():
            tags[name] = f"{value:.6f}"
    return tags


def promotion_tags(
    by: str, reason: str, previous: str | None, version: str, rollback: bool
) -> dict[str, str]:
    tags = {
        "promoted_at": datetime.now(UTC).isoformat(),
        "promoted_by": by,
        "promotion_reason": reason,
    }
    if previous is not None and previous != version and not rollback:
        tags["previous_champion"] = previous
    return tags


def gate_tags(gate: Any) -> dict[str, str]:
    low, high = gate.interval
    return {
        "gate": "passed" if gate.promote else "failed",
        "gate_reason": gate.reason,
        "gate_interval": f"[{low:.6f}, {high:.6f}]",
    }


def reference_frame(best: Any, reference_rows: np.ndarray) -> pd.DataFrame:
    """The drift reference: feature rows and the model's probability for each."""
    reference = pd.DataFrame(reference_rows, columns=list(FEATURE_NAMES))
    reference["fraud_probability"] = best.model.predict_proba(
        feature_columns(reference_rows, best.model.feature_names)
    )
    return reference


@dataclasses.dataclass
class _Version:
    model: TrainedModel
    run_id: str
    tags: dict[str, str]
    metrics: dict[str, float]
    reference: pd.DataFrame


class InMemoryRegistry:
    """The registry in a dict: for unit tests and a single process."""

    def __init__(self) -> None:
        self.versions: dict[str, list[_Version]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.gates: dict[str, dict[str, Any]] = {}  # run id -> gate.json
        self.reports: dict[str, bytes] = {}  # URI -> the report's bytes

    def champion_version(self, model_name: str) -> str | None:
        return self.aliases.get(model_name, {}).get(CHAMPION)

    def log_training(
        self, artifact_root: Path, model_name: str, params: dict[str, Any],
        summary: dict[str, float], results: list[Any], best: Any, reference_rows: np.ndarray,
        report: Any = None,
    ) -> Registered:  # fmt: skip
        versions = self.versions.setdefault(model_name, [])
        version, run_id = str(len(versions) + 1), f"run-{model_name}-{len(versions) + 1}"
        tags = {**version_tags_of(best), "training_run": run_id}
        metrics = {k: float(v) for k, v in best.metrics.items()}
        versions.append(
            _Version(
                copy.deepcopy(best.model),
                run_id,
                tags,
                metrics,
                reference_frame(best, reference_rows),
            )
        )
        champion = self.champion_version(model_name) is None
        if champion:
            self.aliases.setdefault(model_name, {})[CHAMPION] = version
        return Registered(model_name, version, run_id, champion)

    def _version(self, model_name: str, version: str) -> _Version:
        versions = self.versions.get(model_name, [])
        if not version.isdigit() or not 0 < int(version) <= len(versions):
            raise ValueError(f"{model_name} has no version {version}")
        return versions[int(version) - 1]

    def load_version(self, model_name: str, version: str) -> TrainedModel:
        return copy.deepcopy(self._version(model_name, version).model)

    def load_scorer(self, model_name: str, alias: str = CHAMPION) -> ModelScorer:
        version = self.aliases.get(model_name, {}).get(alias)
        if version is None:
            raise ValueError(f"{model_name} has no alias {alias}")
        return self.load_scorer_version(model_name, version)

    def load_scorer_version(self, model_name: str, version: str) -> ModelScorer:
        held = self._version(model_name, version)
        return ModelScorer(
            self.load_version(model_name, version), model_name, version, metrics=dict(held.metrics)
        )

    def load_model_ref(self, ref: ModelRef) -> ModelScorer:
        if ref.version is not None:
            return self.load_scorer_version(ref.name, ref.version)
        return self.load_scorer(ref.name, ref.alias or CHAMPION)

    def version_tags(self, model_name: str, version: str) -> dict[str, str]:
        return dict(self._version(model_name, version).tags)

    def promote(
        self, model_name: str, version: str, reason: str, by: str, *, rollback: bool = False
    ) -> Promotion:
        target = self._version(model_name, version)
        previous = self.champion_version(model_name)
        self.aliases.setdefault(model_name, {})[CHAMPION] = version
        target.tags.update(promotion_tags(by, reason, previous, version, rollback))
        return Promotion(
            model_name, version, previous, version_metrics(target.tags),
            version_thresholds(target.tags),
        )  # fmt: skip

    def rollback(self, model_name: str, by: str) -> Promotion:
        return rollback_champion(self, model_name, by)

    def record_gate(
        self, model_name: str, version: str, run_id: str, gate: Any, context: dict[str, str]
    ) -> None:
        self._version(model_name, version).tags.update(gate_tags(gate))
        self.gates[run_id] = gate_verdict(gate, context)

    def load_reference(self, model_name: str, version: str) -> pd.DataFrame:
        return self._version(model_name, version).reference.copy()

    def store_report(self, model_name: str, version: str, path: Path) -> str:
        run_id = self._version(model_name, version).run_id
        uri = f"memory:/{run_id}/drift/{path.name}"
        self.reports[uri] = path.read_bytes()
        return uri

    def read_report(self, uri: str) -> bytes:
        return self.reports[uri]


def rollback_champion(registry: ModelRegistry, model_name: str, by: str) -> Promotion:
    """Give the champion alias back to the version the current champion replaced (every
    registry's ``rollback``)."""
    current = registry.champion_version(model_name)
    if current is None:
        raise ValueError(f"{model_name} has no champion to roll back")
    earlier = registry.version_tags(model_name, current).get("previous_champion")
    if not earlier:
        raise ValueError(f"{model_name} version {current} replaced no earlier champion")
    return registry.promote(
        model_name, earlier, f"rollback from version {current}", by, rollback=True
    )


def gate_verdict(gate: Any, context: dict[str, str]) -> dict[str, Any]:
    return {
        "promote": gate.promote,
        "reason": gate.reason,
        "challenger": gate.challenger,
        "champion": gate.champion,
        "gain_interval_95": list(gate.interval),
        **context,
    }


def version_metrics(tags: dict[str, str]) -> dict[str, float]:
    """The metrics ``log_training`` kept as version tags.

    >>> version_metrics({"average_precision": "0.5", "candidate": "lightgbm"})
    {'average_precision': 0.5}
    """
    found = {}
    for key, value in tags.items():
        try:
            found[key] = float(value)
        except ValueError:
            continue
    return {
        k: v
        for k, v in found.items()
        if k in ("auc_roc", "average_precision") or k.startswith("card_precision_at_")
    }


def version_thresholds(tags: dict[str, str]) -> dict[str, float] | None:
    """The thresholds ``log_training`` kept as version tags (None: the version has none).

    >>> version_thresholds({"threshold_review": "0.2", "threshold_decline": "0.9"})
    {'review': 0.2, 'decline': 0.9}
    """
    try:
        return {
            "review": float(tags["threshold_review"]),
            "decline": float(tags["threshold_decline"]),
        }
    except (KeyError, ValueError):
        return None
