"""Transaction and label files (CSV or Parquet) in the documented minimal format.

Transactions need ``transaction_id, event_time, card_id, terminal_id, amount``; every other
``Transaction`` field is optional. Labels need ``transaction_id, is_fraud`` and optionally
``labelled_at``; without it a label is taken as known ``label_delay_days`` after its
transaction, never at once (that would leak the future into terminal risk).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.pan import looks_like_pan, redact_pans

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


MAX_PANDAS_YEAR = pd.Timestamp.max.year  # 2262
MAX_FUTURE_SKEW_S = 300.0  # FRAUD_MAX_FUTURE_SKEW's default
SHOWN_PROBLEMS = 5  # rows named in the error; every one is in the rejected file
MAX_ID_LENGTH = 64
MAX_AMOUNT = 1e9
REJECTED_COLUMNS = ("row", "reason")


@dataclasses.dataclass(frozen=True)
class Checked:
    """A file's rows, split: ``valid`` ready to use, ``rejected`` as read with their 1-based
    ``row`` number (the first row under the header is 1) and ``reason``."""

    path: Path
    total: int
    valid: pd.DataFrame
    rejected: pd.DataFrame

    def or_raise(self) -> pd.DataFrame:
        """``valid`` when every row passed; else ``InvalidRows`` naming the first few."""
        if len(self.rejected):
            raise InvalidRows(self)
        return self.valid


class InvalidRows(DataFileError):
    """Rows of a file that cannot be used: how many, and the first few with their reasons."""

    def __init__(self, checked: Checked) -> None:
        rejected = checked.rejected
        first = rejected.head(SHOWN_PROBLEMS)
        shown = "\n".join(f"  row {r.row}: {r.reason}" for r in first.itertuples())
        more = len(rejected) - SHOWN_PROBLEMS
        super().__init__(
            f"{checked.path}: {len(rejected):,} of {checked.total:,} rows are invalid\n{shown}"
            + (f"\n  ... and {more:,} more" if more > 0 else "")
            + "\nfix them, or run again with --skip-invalid to leave them out (they are then "
            "written with their reasons to a .rejected.csv file)"
        )
        self.checked = checked


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


def rejected_file(beside: Path) -> Path:
    """Where the rows left out by ``--skip-invalid`` go: beside ``beside``.

    >>> rejected_file(Path("out/scored.parquet"))
    PosixPath('out/scored.rejected.csv')
    """
    return beside.with_name(f"{beside.stem}.rejected.csv")


def read_transactions(path: Path) -> pd.DataFrame:
    """Transactions in event-time order, with the optional columns present (None if absent);
    ``InvalidRows`` if any row is invalid."""
    return check_transactions(path).or_raise()


def check_transactions(
    path: Path, now: pd.Timestamp | None = None, max_future_skew_s: float = MAX_FUTURE_SKEW_S
) -> Checked:
    """Every row of a transaction file checked (event times no further ahead of ``now``,
    the time the file is read, than ``max_future_skew_s``); the valid ones in event-time
    order."""
    frame = read_table(path)
    _require(frame, REQUIRED_TRANSACTION_COLUMNS, path)
    frame = frame.reset_index(drop=True)
    latest = (now or pd.Timestamp.now(tz="UTC")) + pd.Timedelta(seconds=max_future_skew_s)
    parsed = _parsed(frame)
    problems = transaction_problems(frame, latest, parsed)
    bad = problems != ""
    valid = frame[~bad].copy()
    for column, values in parsed.items():  # each column parsed once, for checks and rows
        valid[column] = values[~bad]
    valid["amount"] = valid["amount"].astype(float)
    for column in OPTIONAL_TRANSACTION_COLUMNS:
        if column not in valid:
            valid[column] = None
    ordered = valid.sort_values(["event_time", "transaction_id"], kind="stable")
    return Checked(path, len(frame), ordered.reset_index(drop=True), _rejected(frame, problems))


_ID_COLUMNS = ("transaction_id", "card_id", "terminal_id")


def _parsed(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """The columns checks and rows read, parsed (unreadable values NaN/NaT)."""
    parsed = {column: _ids(frame[column]) for column in _ID_COLUMNS}
    parsed["event_time"] = _times(frame["event_time"])
    parsed["amount"] = pd.to_numeric(frame["amount"], errors="coerce")
    return parsed


def transaction_problems(
    frame: pd.DataFrame,
    latest: pd.Timestamp | None = None,
    parsed: dict[str, pd.Series] | None = None,
) -> pd.Series:
    """Each row's reasons (``"; "``-joined; empty when valid); an event time after
    ``latest`` is one (a clock ahead of the skew limit). No value is repeated in a reason: a
    rejected card_id may be a card number.

    >>> rows = pd.DataFrame({"transaction_id": ["a", "b", "a", "c"],
    ...     "event_time": ["2026-01-01", "soon", "2026-01-02", "2026-01-03T10:00:00+02:00"],
    ...     "card_id": ["c1", "c2", "4111111111111111", "c4"], "terminal_id": ["t"] * 4,
    ...     "amount": [0.0, -1, 5, "ten"]})
    >>> transaction_problems(rows).tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['', 'event_time is not an ISO 8601 time; amount is negative',
     'transaction_id repeats an earlier row; card_id looks like a full card number (send a token)',
     'amount is not a number']
    """
    parsed = parsed or _parsed(frame)
    reasons: list[pd.Series] = []
    ids = {column: parsed[column] for column in _ID_COLUMNS}
    for column, values in ids.items():
        reasons.append(_where(values == "", f"{column} is empty"))
        reasons.append(
            _where(values.str.len() > MAX_ID_LENGTH, f"{column} is longer than {MAX_ID_LENGTH}")
        )
    named = ids["transaction_id"] != ""
    reasons.append(
        _where(named & ids["transaction_id"].duplicated(), "transaction_id repeats an earlier row")
    )
    times = parsed["event_time"]
    beyond = _beyond_pandas(frame["event_time"], times)  # a valid date pandas cannot hold
    reasons.append(_where(times.isna() & ~beyond, "event_time is not an ISO 8601 time"))
    if latest is not None:
        ahead = (times > latest) | (beyond & (latest.year < MAX_PANDAS_YEAR))
        reasons.append(_where(ahead, "event_time is in the future (beyond FRAUD_MAX_FUTURE_SKEW)"))
    pans = ids["card_id"].isin([card for card in ids["card_id"].unique() if looks_like_pan(card)])
    reasons.append(_where(pans, "card_id looks like a full card number (send a token)"))
    amount = parsed["amount"]
    reasons.append(_where(amount.isna() | np.isinf(amount), "amount is not a number"))
    reasons.append(_where(amount < 0, "amount is negative"))
    reasons.append(_where(amount >= MAX_AMOUNT, f"amount is {MAX_AMOUNT:.0e} or more"))
    return _joined(reasons, len(frame))


def read_labels(path: Path, transactions: pd.DataFrame, label_delay_days: float) -> pd.DataFrame:
    """Labels in ``labelled_at`` order, each with the time it became known; ``InvalidRows``
    if any row is invalid."""
    return check_labels(path, transactions, label_delay_days).or_raise()


def check_labels(path: Path, transactions: pd.DataFrame, label_delay_days: float) -> Checked:
    """Every row of a label file checked. A label without ``labelled_at`` is known
    ``label_delay_days`` after its transaction; labels of transactions not in ``transactions``
    are left out (they cannot be joined), not rejected."""
    frame = read_table(path)
    _require(frame, REQUIRED_LABEL_COLUMNS, path)
    frame = frame.reset_index(drop=True)
    ids, is_fraud = _ids(frame["transaction_id"]), frame["is_fraud"].map(_as_bool)
    reasons = [
        _where(ids == "", "transaction_id is empty"),
        _where(is_fraud.isna(), "is_fraud is not true/false or 1/0"),
    ]
    if "labelled_at" in frame:
        labelled_at = _times(frame["labelled_at"])
        given = frame["labelled_at"].notna() & (frame["labelled_at"].astype(str).str.strip() != "")
        reasons.append(_where(given & labelled_at.isna(), "labelled_at is not an ISO 8601 time"))
    problems = _joined(reasons, len(frame))
    valid = frame[problems == ""].copy()
    valid["transaction_id"], valid["is_fraud"] = ids[problems == ""], is_fraud
    valid["is_fraud"] = valid["is_fraud"].astype(bool)
    event_time = transactions.set_index("transaction_id")["event_time"]
    assumed = valid["transaction_id"].map(event_time) + pd.Timedelta(days=label_delay_days)
    if "labelled_at" in valid:
        valid["labelled_at"] = labelled_at[problems == ""].fillna(assumed)
    else:
        valid["labelled_at"] = assumed
    valid = valid[valid["labelled_at"].notna()]  # labels of transactions not in the file
    if "source" not in valid:
        valid["source"] = "chargeback"
    columns = ["transaction_id", "is_fraud", "source", "labelled_at"]
    ordered = valid[columns].sort_values(["labelled_at", "transaction_id"], kind="stable")
    return Checked(path, len(frame), ordered.reset_index(drop=True), _rejected(frame, problems))


def _require(frame: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [column for column in columns if column not in frame]
    if missing:
        raise DataFileError(f"{path}: missing required column(s) {', '.join(missing)}")


def _ids(values: pd.Series) -> pd.Series:
    """Identifiers as stripped strings; a missing one is empty (not the text "nan")."""
    return values.astype("string").str.strip().fillna("").astype(str)


def _times(values: pd.Series) -> pd.Series:
    """ISO 8601 times in UTC (no offset: UTC); NaT where a value is not one."""
    text = values.astype("string").str.strip()
    return pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")


def _beyond_pandas(values: pd.Series, parsed: pd.Series) -> pd.Series:
    """Where a value is a valid ISO 8601 time after pandas' last (year 2262), such as
    9999-12-31T23:59:59Z: future, not unreadable."""

    def after_pandas(text: object) -> bool:
        try:
            moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            return False
        return moment.year >= MAX_PANDAS_YEAR

    unread = (parsed.isna() & values.notna()).to_numpy()
    beyond = np.zeros(len(values), dtype=bool)
    beyond[unread] = [after_pandas(value) for value in values[unread]]
    return pd.Series(beyond, index=values.index)


def _where(condition: pd.Series, reason: str) -> pd.Series:
    return pd.Series(np.where(condition.to_numpy(dtype=bool), reason, ""), index=condition.index)


def _joined(reasons: list[pd.Series], rows: int) -> pd.Series:
    if not reasons:
        return pd.Series([""] * rows)
    table = pd.concat(reasons, axis=1)
    joined = pd.Series("", index=table.index, dtype=object)
    bad = (table != "").any(axis=1)  # joined row by row only where there is something to say
    if bad.any():
        joined[bad] = ["; ".join(r for r in row if r) for row in table[bad].itertuples(False)]
    return joined.astype(str)


def _rejected(frame: pd.DataFrame, problems: pd.Series) -> pd.DataFrame:
    """The rejected rows as read, their row number and reason first; card ids masked."""
    bad = frame[problems != ""].copy()
    if "card_id" in bad:
        bad["card_id"] = [
            redact_pans(str(card).encode()).decode() if isinstance(card, str) else card
            for card in bad["card_id"]
        ]
    bad.insert(0, "reason", problems[problems != ""])
    bad.insert(0, "row", bad.index + 1)
    return bad.reset_index(drop=True)


def _as_bool(value: object) -> bool | float:
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes", "1.0"}:
        return True
    if text in {"0", "false", "f", "no", "0.0"}:
        return False
    return np.nan
