"""A registered version's model card, in Markdown."""

from __future__ import annotations

import json
from typing import Any


def model_card(
    model_name: str,
    params: dict[str, Any],
    summary: dict[str, float],
    results: list[Any],
    best: Any,
) -> str:
    """The version's card in Markdown: data windows, protocol, metrics with their folds,
    thresholds and known limits."""

    def row(name: str, metrics: dict[str, float]) -> str:
        return f"| {name} | " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |"

    candidates = "\n".join(
        f"| {r.kind} | {len(r.trials)} | "
        + " | ".join(f"{v:.4f}" for v in r.validation.values())
        + " | "
        + " | ".join(f"{v:.4f}" for v in r.metrics.values())
        + f" | {r.fit_seconds:.1f} |"
        for r in results
    )
    names = list(best.metrics)
    columns = " | ".join([*(f"validation {n}" for n in names), *(f"test {n}" for n in names)])
    folds = "\n".join(row(fold, metrics) for fold, metrics in best.fold_metrics.items())
    window = "\n".join(f"- {key}: {value}" for key, value in params.items())
    budget = best.budget
    thresholds = (
        f"""- review at or above **{budget.thresholds.review:.4f}**: on validation
  {budget.reviews_per_day:.1f} cards a day (budget {params.get("review_budget_per_day")}),
  {budget.review_precision:.1%} of them with a fraud that day;
- decline at or above **{budget.thresholds.decline:.4f}**: {budget.declines_per_day:.1f}
  transactions a day, precision {budget.decline_precision:.1%} (target
  {params.get("decline_precision_target")}; 1.0 means no automatic declines: no threshold
  met the target on validation)."""
        if budget is not None
        else "- none: the configured thresholds decide"
    )
    calibration = (
        f"Platt scaling fitted on the pooled validation folds (slope "
        f"{best.model.calibration.slope:.3f}, intercept {best.model.calibration.intercept:.3f})"
        if best.model.calibration is not None
        else "none (raw model scores)"
    )
    return f"""# {model_name}: model card

Chosen candidate: **{best.kind}**, the highest mean average precision over the validation
folds. The test window was scored once, after the choice.

## Data and protocol
{window}
- rows: {json.dumps(summary)}

Validation folds end before the final training window does and leave the label delay
between their training and validation days; each fold's training rows are fraud if the
label was known when its validation began. Training rows of the final model are fraud if
the label was known at the start of the test window; test rows are judged by every label.
Card precision@k leaves out, each day, cards with a fraud label known before that day and
cards already caught on an earlier day. Genuine training rows are down-sampled
(`train_genuine_per_fraud`); validation and test rows never are.

## Candidates (validation: mean of folds; test: once)

| candidate | trials | {columns} | fit s |
|---{"|---" * (2 * len(names) + 2)}|
{candidates}

## {best.kind} per validation fold (calibrated)

| fold | {" | ".join(names)} |
|---{"|---" * len(names)}|
{folds}

## Probabilities and decisions
Calibration: {calibration}.
Thresholds (from the review budget, on the calibrated validation scores; they travel with
this version):
{thresholds}

## Features
{", ".join(best.model.feature_names)}

## Reason codes
LightGBM: exact per-feature contributions (path attribution, in raw log-odds, before
calibration); logistic regression: coefficient x standardised value; random forest:
importance x standardised distance from the training mean (a heuristic).

## Known limits
Simulated or supplied history only; calendar features are in UTC; a label without
`labelled_at` is taken as known `label_delay_days` after its transaction; the hyper-parameter
search is bounded by time, so two runs on machines of different speed may choose
differently; validation labels are those known at training time, so frauds reported later
count as genuine there.
"""
