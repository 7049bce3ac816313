"""Simulated rows as validated ``Transaction`` records."""

from __future__ import annotations

import pandas as pd

from retraining.io import OPTIONAL_TRANSACTION_COLUMNS
from schemas.transaction import Transaction


def transaction_records(transactions: pd.DataFrame) -> list[Transaction]:
    columns = ["transaction_id", "event_time", "card_id", "terminal_id", "amount"]
    columns += [c for c in OPTIONAL_TRANSACTION_COLUMNS if c in transactions]
    frame = transactions[columns].astype(object).where(transactions[columns].notna(), None)
    return [
        Transaction.model_validate(dict(zip(columns, row, strict=True)))
        for row in frame.itertuples(index=False, name=None)
    ]
