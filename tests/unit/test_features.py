"""The feature engine on small hand-made histories, with exact expected values."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from schemas.events import Label
from scoring.features import FEATURE_INDEX, FeatureEngine, FeatureInput, InMemoryFeatureStore
from scoring.features.definitions import haversine_km

DAY = 86_400.0
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC
PARIS, BERLIN = (48.8566, 2.3522), (52.52, 13.405)


def payment(
    tx: str,
    ts: float,
    amount: float,
    terminal: str = "term-A",
    country: str = "FR",
    place: tuple[float, float] | None = PARIS,
    card: str = "card-1",
) -> FeatureInput:
    latitude, longitude = place if place else (None, None)
    return FeatureInput(
        tx, ts, card, terminal, amount, country, latitude, longitude, "card_present", "grocery"
    )


def features(row: object) -> dict[str, float]:
    return {name: float(row[index]) for name, index in FEATURE_INDEX.items()}  # type: ignore[index]


def test_card_windows_novelty_and_travel() -> None:
    engine = FeatureEngine(InMemoryFeatureStore())
    engine.process([payment("t1", T0, 10.0), payment("t2", T0 + 300, 20.0)])
    (row,) = engine.process([payment("t3", T0 + 7200, 30.0, "term-B", "DE", BERLIN)])
    f = features(row)

    assert (f["card_tx_count_10m"], f["card_tx_count_1h"], f["card_tx_count_1d"]) == (1, 1, 3)
    assert (f["card_amount_sum_10m"], f["card_amount_sum_1d"], f["card_amount_mean_1d"]) == (
        30,
        60,
        20,
    )
    assert f["amount_to_card_mean_30d"] == 2.0  # 30 against a mean of 15 before it
    assert f["seconds_since_last_card_tx"] == 6900
    assert (f["card_distinct_terminals_1d"], f["card_distinct_countries_1d"]) == (2, 2)
    assert f["card_country_changed"] == 1
    assert f["card_travel_speed_kmh"] == pytest.approx(
        haversine_km(*PARIS, *BERLIN) / (6900 / 3600)
    )
    assert (f["hour_of_day"], f["day_of_week"], f["is_weekend"], f["is_night"]) == (12, 0, 0, 0)


def test_amount_habits_and_novelty_against_the_card_history() -> None:
    engine = FeatureEngine(InMemoryFeatureStore())

    def at(tx: str, ts: float, amount: float, terminal: str, country: str, category: str):
        return FeatureInput(tx, ts, "card-1", terminal, amount, country, None, None, None, category)

    engine.process([at("t1", T0, 10.0, "term-A", "FR", "grocery")])  # Monday 10:00
    engine.process([at("t2", T0 + DAY, 20.0, "term-B", "FR", "grocery")])  # Tuesday 10:00
    # Wednesday 22:00: back at term-A, in another country and category, at an unusual hour
    (row,) = engine.process([at("t3", T0 + 2.5 * DAY, 100.0, "term-A", "DE", "electronics")])
    f = features(row)

    # nothing in the day before: neutral; the week before: mean 15, spread 5 (+1)
    assert [f[f"amount_to_card_mean_{w}"] for w in ("1d", "7d", "30d")] == [1, 100 / 15, 100 / 15]
    assert [f[f"amount_zscore_card_{w}"] for w in ("1d", "7d", "30d")] == [0.0, 85 / 6, 85 / 6]
    assert f["seconds_since_last_card_tx_at_terminal"] == 2.5 * DAY
    assert (
        f["card_first_time_at_terminal"],
        f["card_first_time_in_country"],
        f["card_first_time_in_category"],
    ) == (0, 1, 1)
    assert [f[f"card_distinct_terminals_{w}"] for w in ("1d", "7d", "30d")] == [1, 2, 2]
    assert [f[f"card_distinct_countries_{w}"] for w in ("1d", "7d", "30d")] == [1, 2, 2]
    assert f["card_hour_unusual"] == 1.0  # both earlier payments at 10:00, 12 hours away


def test_a_new_terminal_and_a_usual_hour() -> None:
    engine = FeatureEngine(InMemoryFeatureStore())
    engine.process([payment("t1", T0, 10.0), payment("t2", T0 + 5 * 3600, 10.0)])  # 10:00, 15:00
    (row,) = engine.process([payment("t3", T0 + DAY + 3600, 10.0, "term-B")])  # 11:00
    f = features(row)

    assert (f["card_first_time_at_terminal"], f["card_first_time_in_country"]) == (1, 0)
    assert f["seconds_since_last_card_tx_at_terminal"] == 30 * DAY  # never there: the history
    assert f["card_hour_unusual"] == 0.5  # 10:00 is an hour away, 15:00 four
    assert f["amount_zscore_card_30d"] == 0.0  # the same amount as always


def test_first_payment_of_a_card_has_neutral_history() -> None:
    (row,) = FeatureEngine(InMemoryFeatureStore()).process([payment("t1", T0, 50.0, place=None)])
    f = features(row)

    assert f["card_tx_count_30d"] == 1
    assert f["amount_to_card_mean_30d"] == 1.0
    assert f["amount_zscore_card_30d"] == 0.0
    assert f["seconds_since_last_card_tx"] == 30 * DAY
    assert f["card_first_time_at_terminal"] == f["card_first_time_in_category"] == 1
    assert f["card_hour_unusual"] == 0.0
    assert f["card_travel_speed_kmh"] == 0.0
    assert f["terminal_tx_count_30d"] == 0


def test_events_older_than_thirty_days_leave_the_windows_and_the_state() -> None:
    store = InMemoryFeatureStore()
    engine = FeatureEngine(store)
    engine.process([payment("old", T0, 100.0)])
    (row,) = engine.process([payment("new", T0 + 31 * DAY, 10.0)])

    assert features(row)["card_tx_count_30d"] == 1
    assert store.cards["card-1"]["id"] == ["new"]


def test_replaying_a_batch_gives_the_same_features_and_changes_no_state() -> None:
    store = InMemoryFeatureStore()
    engine = FeatureEngine(store)
    batch = [payment("t1", T0, 10.0), payment("t2", T0 + 60, 15.0), payment("t3", T0 + 120, 20.0)]
    first = engine.process(batch)
    state = copy.deepcopy((store.cards, store.terminals, store.marks))

    again = engine.process(batch)

    assert (again == first).all()
    assert (store.cards, store.terminals, store.marks) == state


def test_the_same_transaction_twice_in_one_batch_is_counted_once() -> None:
    store = InMemoryFeatureStore()
    rows = FeatureEngine(store).process([payment("t1", T0, 10.0), payment("t1", T0, 10.0)])

    assert (rows[0] == rows[1]).all()
    assert store.cards["card-1"]["id"] == ["t1"]
    assert store.terminals["term-A"] == {f"{int(T0 // DAY)}:n": 1}


def test_terminal_risk_uses_only_labels_known_and_days_delayed() -> None:
    store = InMemoryFeatureStore()
    engine = FeatureEngine(store, label_delay_days=7)
    day0 = T0 - T0 % DAY
    for day in range(11):  # one payment a day at term-T, each by another card
        engine.process([payment(f"d{day}", day0 + day * DAY + 3600, 5.0, "term-T", card=f"c{day}")])
    on_day_11 = payment("probe", day0 + 11 * DAY + 3600, 5.0, "term-T", card="c-probe")

    before_label = features(engine.process([on_day_11])[0])
    fraud_on_day_3 = Label(
        transaction_id="d3", is_fraud=True, labelled_at=datetime.fromtimestamp(day0 + 5 * DAY, UTC)
    )
    result = engine.apply_labels([fraud_on_day_3, fraud_on_day_3])
    after_label = features(engine.process([on_day_11])[0])

    assert (result.counted, result.repeated, result.unmatched) == (1, 1, 0)
    assert before_label["terminal_risk_1d"] == 0.0
    # days 11-7-1 = 3 (one payment, a fraud) and days -3..3 (four payments, one fraud)
    assert (after_label["terminal_risk_1d"], after_label["terminal_risk_7d"]) == (1.0, 0.25)
    assert after_label["terminal_tx_count_1d"] == 1
    assert after_label["terminal_tx_count_7d"] == 7
    assert after_label["terminal_tx_count_30d"] == 11
    # the last completed days, with the labels known now: day 10, days 4..10, days -19..10
    assert [after_label[f"terminal_known_fraud_rate_{d}d"] for d in (1, 7, 30)] == [0, 0, 1 / 11]
    assert before_label["terminal_known_fraud_rate_30d"] == 0.0


def test_labels_for_unknown_or_genuine_transactions_change_nothing() -> None:
    store = InMemoryFeatureStore()
    engine = FeatureEngine(store)
    engine.process([payment("t1", T0, 10.0)])
    at = datetime.fromtimestamp(T0 + DAY, UTC)

    result = engine.apply_labels(
        [Label(transaction_id="nope", is_fraud=True, labelled_at=at),
         Label(transaction_id="t1", is_fraud=False, labelled_at=at)]
    )  # fmt: skip

    assert (result.counted, result.repeated, result.unmatched) == (0, 0, 1)
    assert store.terminals["term-A"] == {f"{int(T0 // DAY)}:n": 1}
