"""What the modelling choices are worth, measured under the protocol on one dataset: the
former champion beside the new one, and what each feature group adds (the tables of
``docs/MODELS.md``, from ``fraudstream evaluate``)."""

from __future__ import annotations

import dataclasses

from retraining.candidates import make_estimator
from retraining.metrics import evaluate
from retraining.training import Dataset, TrainingOptions, best_of, train_candidates
from scoring.features import FEATURE_INDEX, FEATURE_NAMES
from scoring.features.definitions import FEATURE_GROUPS
from scoring.model import TrainedModel

NEW_FEATURES = frozenset(name for group in FEATURE_GROUPS.values() for name in group)
BASE_FEATURES = tuple(name for name in FEATURE_NAMES if name not in NEW_FEATURES)


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    validation: dict[str, float]  # mean over folds (empty: not chosen on validation)
    test: dict[str, float]


def former_champion(dataset: Dataset, seed: int = 7, k: int = 100) -> Row:
    """The champion as ``train`` made it before the protocol: LightGBM with the former
    fixed parameters, the former features, every genuine row, raw scores; fitted on the
    same training window and tested on the same test window."""
    columns = [FEATURE_INDEX[name] for name in BASE_FEATURES]
    rows, labels = dataset.features[dataset.train][:, columns], dataset.train_labels
    estimator = make_estimator("lightgbm", seed, (len(labels) - labels.sum()) / labels.sum())
    estimator.fit(rows, labels, feature_name=list(BASE_FEATURES))
    model = TrainedModel.fit_summary("lightgbm", estimator, BASE_FEATURES, rows)
    test = dataset.test_split()
    scores = model.predict_proba(test.rows[:, columns])
    metrics = evaluate(scores, test.labels, test.days, test.cards, k, dataset.compromised_since)
    return Row("former champion (LightGBM, fixed parameters, former features)", {}, metrics)


def new_champion(dataset: Dataset, options: TrainingOptions) -> Row:
    best = best_of(train_candidates(dataset, options=options))
    return Row(
        f"new champion ({best.kind}, searched, calibrated, all features)",
        best.validation,
        best.metrics,
    )


def ablation(dataset: Dataset, options: TrainingOptions) -> list[Row]:
    """LightGBM with its default parameters (no search: the features alone differ), on
    the former features, then with each group added, then with all."""
    plain = dataclasses.replace(options, search_budget_seconds=0)
    sets = [("former features", BASE_FEATURES)]
    sets += [(f"+ {group}", BASE_FEATURES + names) for group, names in FEATURE_GROUPS.items()]
    sets.append(("all features", FEATURE_NAMES))
    found = []
    for name, features in sets:
        (result,) = train_candidates(
            dataset,
            kinds=("lightgbm",),
            options=dataclasses.replace(plain, feature_names=features),
        )
        found.append(Row(name, result.validation, result.metrics))
    return found


def markdown(rows: list[Row], k: int = 100) -> str:
    """The rows as a Markdown table: validation and test AP, test AUC, CP@k and Brier."""
    cp = f"card_precision_at_{k}"
    lines = [
        f"| | validation AP | test AUC ROC | test AP | test CP@{k} | test Brier |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        validation = row.validation.get("average_precision")
        lines.append(
            f"| {row.name} | {f'{validation:.3f}' if validation is not None else '-'} | "
            f"{row.test['auc_roc']:.3f} | {row.test['average_precision']:.3f} | "
            f"{row.test[cp]:.3f} | {row.test['brier']:.4f} |"
        )
    return "\n".join(lines)
