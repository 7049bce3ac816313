from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from schemas.events import Label
from scoring.decision import Thresholds
from scoring.features import FeatureEngine, InMemoryFeatureStore
from scoring.pipeline import InboundMessage, ScoringPipeline
from scoring.serving import RulesFallback
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.training_store import TrainingStore

NOW = datetime(2026, 1, 5, tzinfo=UTC)


def scored_batch(count: int) -> list:
    records = transaction_records(
        simulate(SimulationConfig(seed=8, days=3, customers=60, terminals=30)).transactions.head(
            count
        )
    )
    pipeline = ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), RulesFallback, Thresholds(), lambda: NOW
    )
    messages = [
        InboundMessage(r.model_dump_json().encode(), "transactions", 0, i, NOW)
        for i, r in enumerate(records)
    ]
    return pipeline.score_batch(messages).scored


def test_scored_transactions_land_by_date_and_a_rewritten_batch_is_not_duplicated(
    tmp_path: Path,
) -> None:
    store = TrainingStore(str(tmp_path))
    scored = scored_batch(300)

    store.write_scored(scored[:200], "transactions.scored-0-0-199")
    store.write_scored(scored[:200], "transactions.scored-0-0-199")  # a replay after a crash
    store.write_scored(scored[150:], "transactions.scored-0-150-299")  # cut differently
    frame = store.read_scored()

    days = sorted(p.name for p in (tmp_path / "scored").iterdir())
    assert days == sorted({f"date={s.transaction.event_time:%Y-%m-%d}" for s in scored})
    assert frame["transaction_id"].tolist() == [s.transaction.transaction_id for s in scored]
    assert frame.loc[0, "decision"] == "approve" and frame.loc[0, "model_version"] == "fallback"
    assert frame.loc[0, "f_amount"] == scored[0].transaction.amount


def test_labels_round_trip(tmp_path: Path) -> None:
    store = TrainingStore(f"file://{tmp_path}")
    labels = [
        Label(transaction_id=f"tx-{i}", is_fraud=i % 2 == 0, labelled_at=NOW) for i in range(4)
    ]

    store.write_labels(labels, "labels-0-0-3")
    store.write_labels(labels, "labels-0-0-3")

    frame = store.read_labels()
    assert frame["transaction_id"].tolist() == ["tx-0", "tx-1", "tx-2", "tx-3"]
    assert frame["is_fraud"].tolist() == [True, False, True, False]


def test_a_batch_without_the_optional_fields_reads_together_with_one_that_has_them(
    tmp_path: Path,
) -> None:
    store = TrainingStore(str(tmp_path))
    scored = scored_batch(20)
    bare = [
        s.model_copy(update={"transaction": s.transaction.model_copy(update={
            "customer_id": None, "country": None, "latitude": None, "longitude": None})})
        for s in scored[:10]
    ]  # fmt: skip

    store.write_scored(bare, "transactions.scored-0-0-9")  # these columns all null in a file
    store.write_scored(scored[10:], "transactions.scored-0-10-19")
    frame = store.read_scored()

    assert len(frame) == 20 and frame["country"].isna().sum() == 10
    by_id = frame.set_index("transaction_id")
    for s in scored[10:]:
        assert by_id.loc[s.transaction.transaction_id, "country"] == s.transaction.country
        assert by_id.loc[s.transaction.transaction_id, "customer_id"] == s.transaction.customer_id


def test_a_stored_scored_row_has_exactly_the_declared_columns(tmp_path: Path) -> None:
    from retraining.store_columns import FEATURE_COLUMNS, SCORE_COLUMNS
    from schemas.transaction import Transaction

    store = TrainingStore(str(tmp_path))
    store.write_scored(scored_batch(5), "transactions.scored-0-0-4")
    transaction_fields = [f for f in Transaction.model_fields if f != "schema_version"]

    columns = set(store.read_scored().columns)
    assert columns == {*transaction_fields, *SCORE_COLUMNS, *FEATURE_COLUMNS}
