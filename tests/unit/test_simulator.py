from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from simulator.generator import SimulationConfig, simulate

SMALL = SimulationConfig(seed=11, days=20, customers=400, terminals=200)


def test_same_seed_same_stream_other_seed_another() -> None:
    first, again = simulate(SMALL), simulate(SMALL)
    other = simulate(SimulationConfig(seed=12, days=20, customers=400, terminals=200))

    pd.testing.assert_frame_equal(first.transactions, again.transactions)
    pd.testing.assert_frame_equal(first.labels, again.labels)
    assert not first.transactions["amount"].equals(other.transactions["amount"])


def test_every_fraud_scenario_occurs_and_labels_come_late_or_never() -> None:
    simulation = simulate(SMALL)
    truth = simulation.truth.set_index("transaction_id")
    labels = simulation.labels.set_index("transaction_id")
    times = simulation.transactions.set_index("transaction_id")["event_time"]

    assert set(truth["scenario"]) == {
        "",
        "large_amount",
        "compromised_terminal",
        "compromised_card",
        "card_testing",
        "impossible_travel",
    }
    assert 0.003 < truth["is_fraud"].mean() < 0.03
    assert (labels["labelled_at"] > times[labels.index]).all()  # nothing is known at once
    fraud_ids = truth.index[truth["is_fraud"]]
    reported = fraud_ids.isin(labels.index[labels["is_fraud"]])
    assert 0.8 < reported.mean() < 0.98  # about one fraud in ten is never reported
    assert (labels.loc[labels["is_fraud"], "source"].isin(["chargeback", "analyst"])).all()


def test_transactions_are_valid_and_in_event_time_order() -> None:
    from simulator.records import transaction_records

    transactions = simulate(SMALL).transactions

    assert transactions["event_time"].is_monotonic_increasing
    assert transactions["transaction_id"].is_unique
    assert len(transaction_records(transactions.head(500))) == 500  # each one passes the schema


def test_drift_switches_on_at_the_chosen_time() -> None:
    drift_at = datetime(2026, 1, 11, tzinfo=UTC)
    config = SimulationConfig(seed=11, days=20, customers=400, terminals=200, drift_at=drift_at)
    drifted = simulate(config)
    tx, truth = drifted.transactions, drifted.truth
    before, after = tx[tx["event_time"] < drift_at], tx[tx["event_time"] >= drift_at]

    assert after["amount"].median() > 1.5 * before["amount"].median()
    assert (after["channel"] == "ecommerce").mean() > (
        before["channel"] == "ecommerce"
    ).mean() + 0.2
    takeovers = tx.loc[truth["scenario"] == "account_takeover", "event_time"]
    assert len(takeovers) > 0 and (takeovers >= drift_at).all()
