"""Offline features by replaying history through the online feature code, in event-time order.

Labels reach the feature state at their ``labelled_at`` time, exactly as the labels agent
applies them online, so terminal risk never sees a label before it was known.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from schemas.events import Label, LabelSource
from scoring.features import FEATURE_NAMES, FeatureEngine, FeatureInput, InMemoryFeatureStore
from scoring.features.store import FeatureStore

REPLAY_BATCH = 2_000


def feature_inputs(transactions: pd.DataFrame) -> list[FeatureInput]:
    """The engine's inputs for a frame from ``retraining.io.read_transactions``."""
    ts = transactions["event_time"].to_numpy(dtype="datetime64[ms]").astype("int64") / 1000.0
    columns = [
        transactions["transaction_id"].tolist(),
        ts.tolist(),
        transactions["card_id"].tolist(),
        transactions["terminal_id"].tolist(),
        transactions["amount"].astype(float).tolist(),
        *(
            _optional(transactions[c])
            for c in ("country", "latitude", "longitude", "channel", "merchant_category")
        ),
    ]
    return [FeatureInput(*values) for values in zip(*columns, strict=True)]


def label_events(labels: pd.DataFrame) -> list[Label]:
    return [
        Label(
            transaction_id=row.transaction_id,
            is_fraud=bool(row.is_fraud),
            source=LabelSource(row.source),
            labelled_at=row.labelled_at.to_pydatetime(),
        )
        for row in labels.itertuples(index=False)
    ]


def replay_features(
    transactions: pd.DataFrame,
    labels: pd.DataFrame | None,
    label_delay_days: int,
    store: FeatureStore | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Feature rows for every transaction (same order), labels applied as they became known."""
    engine = FeatureEngine(store or InMemoryFeatureStore(), label_delay_days)
    inputs = feature_inputs(transactions)
    rows = np.empty((len(inputs), len(FEATURE_NAMES)), dtype=np.float64)
    with tqdm(total=len(inputs), unit="tx", desc="features", disable=not progress) as bar:
        for start, end, label_batch in replay_schedule(transactions, labels):
            if label_batch:
                engine.apply_labels(label_batch)
            if end > start:
                rows[start:end] = engine.process(inputs[start:end])
                bar.update(end - start)
    return rows


def replay_schedule(
    transactions: pd.DataFrame, labels: pd.DataFrame | None
) -> Iterator[tuple[int, int, list[Label]]]:
    """``(start, end, labels)`` steps: apply ``labels``, then process transactions
    ``start:end``. A label known at time L is applied before any transaction at L or later.

    >>> days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    >>> tx = pd.DataFrame({"event_time": pd.to_datetime(days, utc=True)})
    >>> lb = pd.DataFrame({"transaction_id": ["a"], "is_fraud": [True], "source": ["analyst"],
    ...                    "labelled_at": pd.to_datetime(["2026-01-02"], utc=True)})
    >>> [(s, e, len(l)) for s, e, l in replay_schedule(tx, lb)]
    [(0, 1, 0), (1, 3, 1)]
    """
    tx_times = transactions["event_time"].to_numpy(dtype="datetime64[ns]")
    label_times = (
        labels["labelled_at"].to_numpy(dtype="datetime64[ns]")
        if labels is not None
        else np.array([], dtype="datetime64[ns]")
    )
    all_labels = label_events(labels) if labels is not None else []
    start = applied = 0
    while start < len(tx_times):
        known = int(np.searchsorted(label_times, tx_times[start], side="right"))
        due = all_labels[applied:known]
        applied = known
        next_label = label_times[applied] if applied < len(label_times) else None
        end = (
            len(tx_times)
            if next_label is None
            else int(np.searchsorted(tx_times, next_label, side="left"))
        )
        end = min(max(end, start + 1), start + REPLAY_BATCH)
        yield start, end, due
        start = end
    if applied < len(all_labels):
        yield start, start, all_labels[applied:]


def _optional(column: pd.Series) -> list:
    """Column values with NaN/NaT/None all turned into None."""
    values = column.astype(object)
    return values.where(column.notna(), None).tolist()
