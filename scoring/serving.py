"""What scores a batch of feature rows: a registered model, or the rules when there is none.

Both answer the same protocol, so the stream, the REST facade and the backtest never ask
which one they hold; the output's ``fallback`` flag says it.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np

from scoring.decision import TOP_REASONS, ReasonCode, Thresholds, reason_codes
from scoring.features.definitions import FEATURE_INDEX, feature_columns
from scoring.model import TrainedModel


@dataclasses.dataclass(frozen=True)
class ScoreBatch:
    probabilities: np.ndarray
    reasons: list[list[ReasonCode]]  # per row, at most three, strongest first


class Scorer(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def fallback(self) -> bool: ...
    @property
    def thresholds(self) -> Thresholds | None:
        """The decision thresholds that came with the model (None: the configured ones)."""
        ...

    def score(self, rows: np.ndarray) -> ScoreBatch: ...


@dataclasses.dataclass(frozen=True)
class ModelScorer:
    model: TrainedModel
    name: str
    version: str
    fallback: bool = False
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # from its training

    def __post_init__(self) -> None:
        if self.model.kind == "lightgbm" and self.model.estimator is not None:
            self.model.paths()  # built at load (~0.1 s), not by the first batch it scores
        if self.model.kind == "random_forest" and self.model.estimator is not None:
            self.model.importances()

    @property
    def thresholds(self) -> Thresholds | None:
        return self.model.thresholds

    def score(self, rows: np.ndarray) -> ScoreBatch:
        rows = feature_columns(rows, self.model.feature_names)
        probabilities, contributions = self.model.predict_explained(rows)
        return ScoreBatch(
            probabilities, reason_codes(contributions, rows, self.model.feature_names)
        )


@dataclasses.dataclass(frozen=True)
class Rule:
    feature: str
    at_least: float
    weight: float  # added to the score when the rule fires

    @property
    def code(self) -> str:
        return f"RULE_{self.feature.upper()}"


DEFAULT_RULES = (
    Rule("amount_to_card_mean_30d", 5.0, 0.45),  # five times the card's usual spend
    Rule("card_tx_count_10m", 5.0, 0.45),  # a burst: card testing
    Rule("card_travel_speed_kmh", 900.0, 0.5),  # faster than a plane
    Rule("terminal_risk_7d", 0.2, 0.35),  # a terminal with confirmed frauds
    Rule("card_distinct_countries_1d", 3.0, 0.25),
)


@dataclasses.dataclass(frozen=True)
class RulesFallback:
    """Documented rules that decide when no model can be loaded: each rule that fires adds its
    weight to a base score, capped at 0.99, and is a reason code.

    >>> from scoring.features.definitions import FEATURE_NAMES
    >>> rows = np.zeros((2, len(FEATURE_NAMES)))
    >>> rows[1, FEATURE_INDEX["card_tx_count_10m"]] = 8
    >>> batch = RulesFallback().score(rows)
    >>> batch.probabilities.tolist(), [r["code"] for r in batch.reasons[1]]
    ([0.01, 0.46], ['RULE_CARD_TX_COUNT_10M'])
    """

    rules: tuple[Rule, ...] = DEFAULT_RULES
    base: float = 0.01
    name: str = "rules"
    version: str = "fallback"
    fallback: bool = True
    thresholds: Thresholds | None = None  # the configured ones

    def score(self, rows: np.ndarray) -> ScoreBatch:
        fired = np.column_stack(
            [rows[:, FEATURE_INDEX[r.feature]] >= r.at_least for r in self.rules]
        )
        weights = np.array([rule.weight for rule in self.rules])
        probabilities = np.minimum(self.base + (fired * weights).sum(axis=1), 0.99)
        by_weight = sorted(range(len(self.rules)), key=lambda i: -self.rules[i].weight)
        reasons = [
            [
                ReasonCode(
                    {
                        "code": self.rules[i].code,
                        "feature": self.rules[i].feature,
                        "value": float(row[FEATURE_INDEX[self.rules[i].feature]]),
                        "contribution": self.rules[i].weight,
                    }
                )
                for i in by_weight
                if flags[i]
            ][:TOP_REASONS]
            for row, flags in zip(rows, fired, strict=True)
        ]
        return ScoreBatch(np.round(probabilities, 6), reasons)


def version_number(version: str) -> int:
    """A registry version as a number a dashboard can draw; anything else (the rules) is 0.

    >>> version_number("12"), version_number("rules")
    (12, 0)
    """
    return int(version) if version.isdigit() else 0
