"""The online challenger and its label delay, on seeded data, without a network."""

from __future__ import annotations

import numpy as np

from schemas.scored import ScoredEvent
from scoring.challenger import LabelDelay, OnlineChallenger
from scoring.pipeline import shadow_scores
from streams.challenger import ChallengerLearner
from streams.metrics import WorkerMetrics

DAY = 86_400.0


def events(ids: list[str], amounts: list[float]) -> list[ScoredEvent]:
    names = ("amount", "other")
    return [
        ScoredEvent(
            {"transaction": {"transaction_id": i}, "features": {names[0]: a, names[1]: 1.0}}
        )
        for i, a in zip(ids, amounts, strict=True)
    ]


def test_an_example_is_learnt_at_its_label_or_after_the_delay_never_before() -> None:
    waiting = LabelDelay(delay_seconds=7 * DAY, capacity=3)
    waiting.add(["a", "b", "c"], np.array([0.0, DAY, 2 * DAY]), np.arange(6.0).reshape(3, 2))
    rows, labels = waiting.matured(now=7.5 * DAY)  # only a is a week old
    assert rows.tolist() == [[0.0, 1.0]] and labels.tolist() == [False]
    rows, labels = waiting.labelled(["c", "zzz"], [True, True])  # zzz was never scored
    assert rows.tolist() == [[4.0, 5.0]] and labels.tolist() == [True]
    waiting.add(["d", "e", "f"], np.array([3 * DAY] * 3), np.zeros((3, 2)))
    assert len(waiting) == 3 and waiting.dropped == 1  # b fell out unlearnt


def test_the_learner_tests_then_trains_and_tells_frauds_apart() -> None:
    rng = np.random.default_rng(7)
    learner = ChallengerLearner(delay_days=1, metrics=WorkerMetrics(), threshold=0.5)
    learner.challenger = OnlineChallenger(("amount", "other"), learning_rate=0.05)
    fraud = rng.random(4_000) < 0.1
    amounts = np.where(fraud, rng.normal(3, 1, 4_000), rng.normal(0, 1, 4_000))
    ids = [f"tx{i}" for i in range(4_000)]
    times = np.arange(4_000) * 60.0  # a minute apart: ~2.8 days
    matured = learner.learn_scored(events(ids, amounts.tolist()), times)
    young = times > times[-1] - DAY  # still waiting for their truth
    assert matured == (~young).sum()
    fraud_ids = [i for i, f in zip(ids, fraud, strict=True) if f]
    labelled = learner.learn_labels(fraud_ids, [True] * len(fraud_ids))
    assert labelled == (fraud & young).sum()  # the older frauds were learnt as genuine
    learnt = matured + labelled
    assert learner.challenger.learned == learnt
    frauds, genuine = learner.challenger.score(np.array([[3.0, 1.0], [0.0, 1.0]]))
    assert frauds > 0.5 > genuine
    assert learner.quality.snapshot()["labelled"] == learnt


def test_a_challenger_that_fails_costs_no_decision() -> None:
    class Broken(OnlineChallenger):
        def score(self, rows: np.ndarray) -> np.ndarray:
            raise ValueError("river broke")

    assert shadow_scores(Broken(("amount",)), np.zeros((2, 1))) is None
    assert shadow_scores(None, np.zeros((2, 1))) is None


def test_the_challenger_exported_to_sklearn_gives_the_same_probabilities() -> None:
    rng = np.random.default_rng(11)
    challenger = OnlineChallenger(("amount", "count", "constant"), learning_rate=0.05)
    rows = np.column_stack([rng.normal(size=600), rng.integers(0, 5, 600), np.ones(600)])
    challenger.learn(rows, rows[:, 0] + rng.normal(0, 0.5, 600) > 1.0)
    exported = challenger.to_sklearn().predict_proba(rows[:50])[:, 1]
    assert np.allclose(exported, challenger.score(rows[:50]), atol=1e-9)


def test_a_restarted_learner_goes_on_from_the_published_model() -> None:
    published = OnlineChallenger(("amount", "other"))
    published.learn(np.array([[1.0, 1.0], [5.0, 1.0]]), np.array([False, True]))
    learner = ChallengerLearner(delay_days=1, metrics=WorkerMetrics(), threshold=0.5)
    learner.resume(published)
    assert learner.challenger.learned == 2
    learner.resume(OnlineChallenger(("amount", "other")))  # only once, before it learns
    assert learner.challenger is published
