"""Transaction and label files (CSV or Parquet) in the documented minimal format.

Transactions need ``transaction_id, event_time, card_id, terminal_id, amount``; every other
``Transaction`` field is optional. Labels need ``transaction_id, is_fraud`` and optionally
``labelled_at``; without it a label is taken as known ``label_delay_days`` after its
transaction, never at once (that would leak the future into terminal risk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from schemas.pan import looks_like_pan

REQUIRED_TRANSACTION_COLUMNS = ("transaction_id", "event_time", "card_id", "terminal_id", "amount")
OPTIONAL_TRANSACTION_COLUMNS = (
    "currency",
    "customer_id",
    "merchant_category",
    "channel",
    "country",
    "latitude",
    "longitude",
)
REQUIRED_LABEL_COLUMNS = ("transaction_id", "is_fraud")


class DataFileError(ValueError):
    """A data file that cannot be used; the message names the file and what is wrong."""


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"transaction_id": str, "card_id": str, "terminal_id": str})
    raise DataFileError(f"{path}: use a .csv or .parquet file")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        raise DataFileError(f"{path}: use a .csv or .parquet file")


def read_transactions(path: Path) -> pd.DataFrame:
    """Transactions in event-time order, with the optional columns present (None if absent)."""
    frame = read_table(path)
    _require(frame, REQUIRED_TRANSACTION_COLUMNS, path)
    frame = frame.copy()
    for column in ("transaction_id", "card_id", "terminal_id"):
        frame[column] = frame[column].astype(str)
    frame["event_time"] = _utc(frame["event_time"], path, "event_time")
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce")
    if frame["amount"].isna().any() or (frame["amount"] <= 0).any():
        raise DataFileError(f"{path}: amount must be a positive number in every row")
    if frame["transaction_id"].duplicated().any():
        raise DataFileError(f"{path}: transaction_id must be unique")
    pans = [card for card in frame["card_id"].unique() if looks_like_pan(card)]
    if pans:
        raise DataFileError(
            f"{path}: {len(pans)} card_id value(s) look like full card numbers; "
            "replace them with tokens before training"
        )
    for column in OPTIONAL_TRANSACTION_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame.sort_values(["event_time", "transaction_id"], kind="stable").reset_index(drop=True)


def read_labels(path: Path, transactions: pd.DataFrame, label_delay_days: float) -> pd.DataFrame:
    """Labels in ``labelled_at`` order, each with the time it became known."""
    frame = read_table(path)
    _require(frame, REQUIRED_LABEL_COLUMNS, path)
    frame = frame.copy()
    frame["transaction_id"] = frame["transaction_id"].astype(str)
    frame["is_fraud"] = frame["is_fraud"].map(_as_bool)
    if frame["is_fraud"].isna().any():
        raise DataFileError(f"{path}: is_fraud must be true/false or 1/0 in every row")
    event_time = transactions.set_index("transaction_id")["event_time"]
    assumed = frame["transaction_id"].map(event_time) + pd.Timedelta(days=label_delay_days)
    if "labelled_at" in frame:
        frame["labelled_at"] = _utc(frame["labelled_at"], path, "labelled_at").fillna(assumed)
    else:
        frame["labelled_at"] = assumed
    frame = frame[frame["labelled_at"].notna()]  # labels of transactions not in the file
    if "source" not in frame:
        frame["source"] = "chargeback"
    columns = ["transaction_id", "is_fraud", "source", "labelled_at"]
    ordered = frame[columns].sort_values(["labelled_at", "transaction_id"], kind="stable")
    return ordered.reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [column for column in columns if column not in frame]
    if missing:
        raise DataFileError(f"{path}: missing required column(s) {', '.join(missing)}")


def _utc(values: pd.Series, path: Path, column: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as error:
        raise DataFileError(f"{path}: {column} must be ISO 8601 times ({error})") from None
    return parsed


def _as_bool(value: object) -> bool | float:
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "1.0"}:
        return True
    if text in {"0", "false", "f", "no", "0.0"}:
        return False
    return np.nan
