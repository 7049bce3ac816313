"""The online challenger: a river model that learns from the labels as they arrive and
scores every transaction in shadow, next to the champion.

Test-then-train, with the real label delay: an example is learnt when its truth is known
-- at its fraud label, or, with no fraud label, once ``label_delay_days`` of event time have
passed (then it is genuine, as the training set treats it) -- and each example is scored
just before it is learnt, which is the challenger's honest, rolling quality.

>>> rows = np.array([[0.0, 1.0], [5.0, 1.0]] * 50)
>>> challenger = OnlineChallenger(("amount", "count"))
>>> scores = challenger.learn(rows, np.array([False, True] * 50))
>>> challenger.learned, bool(challenger.score(rows[:2])[1] > challenger.score(rows[:2])[0])
(100, True)
"""

from __future__ import annotations

import dataclasses
import pickle
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import pandas as pd
from river import linear_model, optim, preprocessing
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


class OnlineChallenger:
    name = "river-logistic-regression"

    def __init__(self, features: Sequence[str], learning_rate: float = 0.01) -> None:
        self.features = list(features)
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(learning_rate)
        )
        self.learned = 0

    @property
    def version(self) -> str:
        """Which state of the model scored: the examples it had learnt."""
        return f"{self.name}@{self.learned}"

    def score(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        frame = pd.DataFrame(rows, columns=self.features)
        return self.model.predict_proba_many(frame)[True].to_numpy(dtype=float)

    def learn(self, rows: np.ndarray, is_fraud: np.ndarray) -> np.ndarray:
        """Score ``rows``, then learn them; returns the scores given before learning."""
        if not len(rows):
            return np.zeros(0)
        scores = self.score(rows)
        frame = pd.DataFrame(rows, columns=self.features)
        self.model.learn_many(frame, pd.Series(is_fraud.astype(bool)))
        self.learned += len(rows)
        return scores

    def to_sklearn(self) -> Pipeline:
        """The same model as a fitted scikit-learn ``StandardScaler | LogisticRegression``,
        the registry's logistic-regression form: promoted, it serves with the same reason
        codes (coefficient x standardised value) as a batch-trained one."""
        scaler_state, regression_state = (
            self.model["StandardScaler"],
            self.model["LogisticRegression"],
        )
        means = np.array([scaler_state.means.get(f, 0.0) for f in self.features])
        variances = np.array([scaler_state.vars.get(f, 0.0) for f in self.features])
        weights = np.array([regression_state.weights.get(f, 0.0) for f in self.features])
        constant = variances <= 0  # river maps a constant feature to 0: weight it 0 here too
        scaler = StandardScaler()
        scaler.mean_, scaler.var_ = means, variances
        scaler.scale_ = np.where(constant, 1.0, np.sqrt(np.where(constant, 1.0, variances)))
        scaler.n_features_in_, scaler.n_samples_seen_ = len(self.features), self.learned
        regression = LogisticRegression()
        regression.coef_ = np.where(constant, 0.0, weights)[np.newaxis, :]
        regression.intercept_ = np.array([float(regression_state.intercept)])
        regression.classes_ = np.array([0, 1])
        regression.n_features_in_ = len(self.features)
        return Pipeline([("scale", scaler), ("model", regression)])

    def dumps(self) -> bytes:
        return pickle.dumps(self)

    @staticmethod
    def loads(data: bytes) -> OnlineChallenger:
        challenger = pickle.loads(data)  # our own bytes, from our own Redis
        if not isinstance(challenger, OnlineChallenger):
            raise TypeError("not an OnlineChallenger")
        return challenger


@dataclasses.dataclass
class Pending:
    event_time: float
    row: np.ndarray


class LabelDelay:
    """Scored examples wait here until their truth is known.

    >>> waiting = LabelDelay(delay_seconds=10, capacity=100)
    >>> waiting.add(["a", "b", "c"], np.array([0.0, 1.0, 2.0]), np.eye(3))
    >>> [len(part) for part in waiting.labelled(["b"], [True])]  # b: fraud, known now
    [1, 1]
    >>> rows, labels = waiting.matured(now=11.5)  # a is 11.5 s old: genuine
    >>> rows.tolist(), labels.tolist(), len(waiting)
    ([[1.0, 0.0, 0.0]], [False], 1)
    """

    def __init__(self, delay_seconds: float, capacity: int = 1_000_000) -> None:
        self.delay_seconds = delay_seconds
        self.capacity = capacity
        self.waiting: OrderedDict[str, Pending] = OrderedDict()
        self.dropped = 0  # examples pushed out unlearnt by the capacity

    def __len__(self) -> int:
        return len(self.waiting)

    def add(self, ids: Sequence[str], event_times: np.ndarray, rows: np.ndarray) -> None:
        for transaction_id, event_time, row in zip(ids, event_times.tolist(), rows, strict=True):
            self.waiting[transaction_id] = Pending(event_time, row)
        while len(self.waiting) > self.capacity:
            self.waiting.popitem(last=False)
            self.dropped += 1

    def labelled(
        self, ids: Sequence[str], is_fraud: Sequence[bool]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Examples whose label just arrived (those still waiting), with that label."""
        rows, labels = [], []
        for transaction_id, fraud in zip(ids, is_fraud, strict=True):
            pending = self.waiting.pop(transaction_id, None)
            if pending is not None:
                rows.append(pending.row)
                labels.append(fraud)
        return _stack(rows), np.array(labels, dtype=bool)

    def matured(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """Examples older than the delay with no fraud label: genuine. Arrival order is
        close to event-time order, so the scan stops at the first one still too young."""
        rows = []
        while self.waiting:
            transaction_id, pending = next(iter(self.waiting.items()))
            if pending.event_time + self.delay_seconds > now:
                break
            del self.waiting[transaction_id]
            rows.append(pending.row)
        return _stack(rows), np.zeros(len(rows), dtype=bool)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.vstack(rows) if rows else np.zeros((0, 0))
