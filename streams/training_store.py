"""The training store: scored transactions and labels as Parquet, partitioned by date.

``root`` is a local directory or any fsspec URL (``s3://bucket/fraud``, ``gs://…``). A file is
named after the topic partition and the offsets it holds, so writing the same batch again
after a crash replaces it instead of adding a copy; readers drop any duplicate that a
differently-cut batch could still leave, by transaction id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retraining.store_columns import TIME_COLUMNS, scored_row
from schemas.events import Label
from schemas.scored import ScoredTransaction

logger = logging.getLogger(__name__)

SCORED_DIR, LABELS_DIR, STATE_DIR = "scored", "labels", "state"


class TrainingStore:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, self.path = fsspec.core.url_to_fs(self.root)

    def write_scored(self, scored: Sequence[ScoredTransaction], origin: str) -> int:
        return self.write_scored_events([s.model_dump(mode="json") for s in scored], origin)

    def write_scored_events(self, events: Sequence[dict], origin: str) -> int:
        """Scored events as parsed from the topic's JSON (the scorer validated them)."""
        frame = pd.DataFrame([scored_row(event) for event in events])
        for column in TIME_COLUMNS:
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return self._write(SCORED_DIR, frame, "event_time", origin)

    def write_labels(self, labels: Sequence[Label], origin: str) -> int:
        frame = pd.DataFrame([label.model_dump(mode="python") for label in labels])
        return self._write(LABELS_DIR, frame, "labelled_at", origin)

    def read_scored(self) -> pd.DataFrame:
        frame = self._read(SCORED_DIR)
        if frame.empty:
            return frame
        return frame.drop_duplicates("transaction_id", keep="last").sort_values(
            ["event_time", "transaction_id"], kind="stable", ignore_index=True
        )

    def read_labels(self) -> pd.DataFrame:
        frame = self._read(LABELS_DIR)
        if frame.empty:
            return frame
        return frame.drop_duplicates(["transaction_id", "is_fraud", "labelled_at"]).sort_values(
            ["labelled_at", "transaction_id"], kind="stable", ignore_index=True
        )

    def latest_event_time(self) -> pd.Timestamp | None:
        """The newest scored event time, read from the newest date's files only."""
        days = sorted(self.fs.glob(f"{self.path}/{SCORED_DIR}/date=*"))
        for day in reversed(days):
            files = self.fs.glob(f"{day}/*.parquet")
            if files:
                latest = []
                for name in files:
                    with self.fs.open(name, "rb") as handle:
                        latest.append(pd.read_parquet(handle, columns=["event_time"]).max())
                return pd.Timestamp(max(t["event_time"] for t in latest))
        return None

    def read_state(self, name: str) -> bytes | None:
        """A small state file kept beside the data (the trainer's pending requests)."""
        path = f"{self.path}/{STATE_DIR}/{name}"
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "rb") as handle:
            return bytes(handle.read())

    def write_state(self, name: str, data: bytes) -> None:
        """Replace state file ``name`` whole: readers see the old or the new, never half."""
        folder = f"{self.path}/{STATE_DIR}"
        self.fs.makedirs(folder, exist_ok=True)
        partial = f"{folder}/.{name}.partial"
        with self.fs.open(partial, "wb") as handle:
            handle.write(data)
        self.fs.mv(partial, f"{folder}/{name}")

    def _write(self, kind: str, frame: pd.DataFrame, time_column: str, origin: str) -> int:
        """One file per date in ``frame``; ``origin`` names the batch, e.g. ``topic-3-100-599``."""
        if frame.empty:
            return 0
        for day, part in frame.groupby(frame[time_column].dt.strftime("%Y-%m-%d")):
            folder = f"{self.path}/{kind}/date={day}"
            self.fs.makedirs(folder, exist_ok=True)
            final, partial = f"{folder}/{origin}.parquet", f"{folder}/.{origin}.partial"
            with self.fs.open(partial, "wb") as handle:
                part.to_parquet(handle, index=False)
            self.fs.mv(partial, final)  # readers never see half a file
        return len(frame)

    def _read(self, kind: str) -> pd.DataFrame:
        files = sorted(self.fs.glob(f"{self.path}/{kind}/date=*/*.parquet"))
        if not files:
            return pd.DataFrame()
        # one Arrow table a file, joined once: a store holds a file per batch and date
        # (hundreds to thousands), and pandas per file cost ~5 ms each; a column that is all
        # null in one file takes its type from the others
        tables = [pq.read_table(name, filesystem=self.fs) for name in files]
        return pa.concat_tables(tables, promote_options="default").to_pandas()
