"""The agents beside the scorer, with no broker: seeded messages in, exact state, rows,
metrics and dead letters out (``streams.labels_agent``, ``streams.sink_agents``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from schemas.codec import decode
from schemas.events import DeadLetter, Label
from scoring.decision import Thresholds
from scoring.features import FeatureEngine, InMemoryFeatureStore
from scoring.pipeline import InboundMessage, ScoringPipeline
from scoring.quality import RollingQuality
from scoring.serving import RulesFallback
from simulator.generator import SimulationConfig, simulate
from simulator.records import transaction_records
from streams.labels_agent import LabelsAgent, by_partition
from streams.metrics import WorkerMetrics
from streams.training_store import TrainingStore
from tests.unit.agent_doubles import NOW, Message, Sent

RECORDS = transaction_records(
    simulate(SimulationConfig(seed=5, days=2, customers=30, terminals=15)).transactions.head(20)
)


def scored_engine() -> FeatureEngine:
    """An engine whose store holds the scores (and marks) of ``RECORDS``, as the scorer
    leaves them."""
    engine = FeatureEngine(InMemoryFeatureStore())
    pipeline = ScoringPipeline(engine, RulesFallback, Thresholds(0.3, 0.9), lambda: NOW)
    inbound = [InboundMessage(r.model_dump_json().encode(), "transactions", 0, i, NOW)
               for i, r in enumerate(RECORDS)]  # fmt: skip
    pipeline.save(pipeline.score_batch(inbound))
    return engine


def label_message(label: Label, partition: int, offset: int) -> Message:
    return Message(label.model_dump_json().encode(), "labels", partition, offset)


def test_labels_reach_state_quality_and_store_and_a_bad_one_goes_to_the_dead_letters(
    tmp_path: Path,
) -> None:
    engine, store, metrics, letters = (
        scored_engine(),
        TrainingStore(str(tmp_path)),
        WorkerMetrics(),
        Sent(),
    )
    agent = LabelsAgent(
        engine, store, RollingQuality(threshold=0.3), metrics, lambda: "fallback", letters
    )
    labels = [Label(transaction_id=r.transaction_id, is_fraud=i % 4 == 0, labelled_at=NOW)
              for i, r in enumerate(RECORDS[:8])]  # fmt: skip
    batch = [label_message(label, i % 2, 10 + i) for i, label in enumerate(labels)]
    batch.insert(3, Message(b'{"transaction_id": 5}', "labels", 1, 99))

    asyncio.run(agent.handle(batch))

    (letter,) = [decode(DeadLetter, value) for value in letters.items]
    assert (letter.origin_topic, letter.origin_partition, letter.origin_offset) == ("labels", 1, 99)
    assert metrics.labels._value.get() == 8
    assert metrics.training_rows.labels("labels")._value.get() == 8
    written = store.read_labels()
    assert sorted(written["transaction_id"]) == sorted(label.transaction_id for label in labels)
    files = sorted(p.name for p in (tmp_path / "labels").rglob("*.parquet"))
    assert files == ["labels-0-10-16.parquet", "labels-1-11-17.parquet"]  # 99 is not a label's
    quality = {s.labels["measure"]: s.value for m in metrics.quality.collect() for s in m.samples}
    assert quality["labelled"] == 8  # every label joined the fallback's own scores
    counted = {
        s.labels["outcome"]: s.value
        for m in metrics.outcomes.collect() for s in m.samples if s.name.endswith("_total")
    }  # fmt: skip
    assert sum(counted.values()) == 8 and counted["true_positive"] + counted["false_negative"] == 2


def test_labels_of_another_version_s_scores_leave_the_quality_gauges_alone(tmp_path: Path) -> None:
    metrics = WorkerMetrics()
    agent = LabelsAgent(
        scored_engine(), TrainingStore(str(tmp_path)), RollingQuality(threshold=0.3), metrics,
        lambda: "7", Sent(),
    )  # fmt: skip
    label = Label(transaction_id=RECORDS[0].transaction_id, is_fraud=True, labelled_at=NOW)

    asyncio.run(agent.handle([label_message(label, 0, 0)]))

    assert list(metrics.quality.collect()[0].samples) == []
    assert metrics.labels._value.get() == 1


def test_by_partition_names_each_part_by_its_first_and_last_offsets() -> None:
    pairs = [(Message(b"", "t", p, o), o) for p, o in [(0, 5), (1, 6), (0, 7), (0, 9)]]
    assert by_partition(pairs) == [("t-0-5-9", [5, 7, 9]), ("t-1-6-6", [6])]


def test_the_newest_champion_update_of_our_model_wins_and_a_bad_one_is_a_dead_letter() -> None:
    from schemas.events import CHAMPION, ModelUpdate
    from streams.model_updates import newest_champion

    def update(name: str, version: str, alias: str = CHAMPION) -> bytes:
        value = ModelUpdate(model_name=name, version=version, alias=alias, metrics={},
                            updated_at=NOW)  # fmt: skip
        return value.model_dump_json().encode()

    values = [update("fd", "3"), update("other", "9"), b"{not json", update("fd", "4"),
              update("fd", "5", alias="challenger")]  # fmt: skip
    messages = [Message(value, "model.updates", 0, offset) for offset, value in enumerate(values)]
    letters = Sent()

    assert asyncio.run(newest_champion(messages, "fd", letters)) == "4"
    (letter,) = [decode(DeadLetter, value) for value in letters.items]
    assert (letter.origin_topic, letter.origin_offset) == ("model.updates", 2)
    assert asyncio.run(newest_champion(messages[1:3], "fd")) is None


def test_scored_sinks_feed_the_store_by_partition_the_learner_and_the_drift_agent(
    tmp_path: Path,
) -> None:
    import numpy as np
    import orjson

    from retraining.drift_monitor import DriftConfig, Reference
    from schemas.events import DriftReport
    from scoring.features import FEATURE_NAMES
    from streams.challenger import ChallengerLearner
    from streams.drift_agent import DriftAgent
    from streams.sink_agents import ScoredSinks

    class NoHtml(DriftAgent):
        def wants_html(self, result: object) -> bool:
            return False  # the Evidently report is the drift agent's own test's business

    pipeline = ScoringPipeline(
        FeatureEngine(InMemoryFeatureStore()), RulesFallback, Thresholds(0.3, 0.9), lambda: NOW
    )
    inbound = [InboundMessage(r.model_dump_json().encode(), "transactions", 0, i, NOW)
               for i, r in enumerate(RECORDS)]  # fmt: skip
    values = []
    for _, value in pipeline.score_batch(inbound).encoded():  # as a model "fd" version 1 scored
        event = {**orjson.loads(value), "fallback": False, "model_name": "fd", "model_version": "1"}
        values.append(orjson.dumps(event))
    messages = [Message(v, "transactions.scored", i % 2, 100 + i) for i, v in enumerate(values)]
    reference = Reference(np.zeros((200, len(FEATURE_NAMES))), np.zeros(200))
    metrics, reports, requests = WorkerMetrics(), Sent(), Sent()
    windows_of_15 = DriftConfig(window_events=15, min_events=15)
    drift = NoHtml(
        "fd", lambda version: reference, Thresholds(0.3, 0.9), windows_of_15, tmp_path, metrics
    )
    learner = ChallengerLearner(delay_days=1, metrics=metrics, threshold=0.3)

    async def send_report(key: bytes, value: bytes) -> None:
        await reports((key, value))

    sinks = ScoredSinks(metrics, send_report, requests, learner=learner,
                        store=TrainingStore(str(tmp_path / "store")), drift=drift)  # fmt: skip
    asyncio.run(sinks.handle(messages))

    files = sorted(p.name for p in (tmp_path / "store" / "scored").rglob("*.parquet"))
    assert set(files) == {"transactions.scored-0-100-118.parquet",
                          "transactions.scored-1-101-119.parquet"}  # fmt: skip
    assert metrics.training_rows.labels("scored")._value.get() == 20
    assert len(learner.waiting) == 20
    windows = [decode(DriftReport, value) for _, value in reports.items]
    assert [
        (key, w.model_version, w.events) for (key, _), w in zip(reports.items, windows, strict=True)
    ] == [(b"1", "1", 15)]
