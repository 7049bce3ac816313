"""The training store's scored rows, declared once: the stream writes them
(``streams.training_store``), retraining reads them (``retraining.retrain``)."""

from __future__ import annotations

from typing import Any

from scoring.features import FEATURE_NAMES

FEATURE_PREFIX = "f_"
TIME_COLUMNS = ("event_time", "ingest_time", "scored_time")
# beside the transaction's own fields and a column per feature
SCORE_COLUMNS = (
    "fraud_probability", "decision", "reasons", "model_name", "model_version", "fallback",
    "ingest_time", "scored_time",
)  # fmt: skip


def feature_column(name: str) -> str:
    """The column a feature's value is stored in.

    >>> feature_column("amount")
    'f_amount'
    """
    return f"{FEATURE_PREFIX}{name}"


FEATURE_COLUMNS = tuple(feature_column(name) for name in FEATURE_NAMES)


def scored_row(event: dict[str, Any]) -> dict[str, Any]:
    """One stored row of a scored event (its parsed ``ScoredTransaction`` JSON)."""
    transaction = {k: v for k, v in event["transaction"].items() if k != "schema_version"}
    row = {
        **transaction,
        "fraud_probability": event["fraud_probability"],
        "decision": event["decision"],
        "reasons": ";".join(reason["code"] for reason in event["reasons"]),
        "model_name": event["model_name"],
        "model_version": event["model_version"],
        "fallback": event["fallback"],
        "ingest_time": event["ingest_time"],
        "scored_time": event["scored_time"],
    }
    row.update((feature_column(name), value) for name, value in event["features"].items())
    return row
