"""A realistic synthetic card stream, deterministic by seed: genuine spending with daily and
weekly rhythm, five fraud scenarios, late and missing labels, and drift switched on at a
chosen time.

>>> result = simulate(SimulationConfig(seed=1, days=3, customers=50, terminals=40))
>>> list(result.transactions.columns[:5])
['transaction_id', 'event_time', 'card_id', 'terminal_id', 'amount']
>>> bool(result.transactions.event_time.is_monotonic_increasing)
True
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from scoring.features.definitions import MERCHANT_CATEGORIES
from simulator.population import Population, make_population

DAY = 86_400.0
DRIFT_KINDS = frozenset({"amount", "category", "pattern"})
_CATEGORY = {name: index for index, name in enumerate(MERCHANT_CATEGORIES)}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    seed: int = 42
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    days: int = 60
    customers: int = 2_000
    terminals: int = 1_000
    # fraud scenarios, per day per 1,000 customers unless said otherwise
    large_amount_share: float = 0.001  # of all transactions
    compromised_terminals: float = 0.5
    compromised_cards: float = 1.0
    card_testing_bursts: float = 0.5
    impossible_travel: float = 1.0
    new_pattern_cards: float = 2.0  # only after drift_at, when "pattern" drift is on
    # labels
    chargeback_median_days: float = 7.0
    never_reported_share: float = 0.1
    analyst_share: float = 0.25  # of frauds, found by analysts within days
    analyst_genuine_share: float = 0.005  # genuine transactions an analyst confirms
    # drift
    drift_at: datetime | None = None
    drift: frozenset[str] = DRIFT_KINDS

    def __post_init__(self) -> None:
        if unknown := set(self.drift) - DRIFT_KINDS:
            raise ValueError(
                f"unknown drift kind(s) {sorted(unknown)}; choose from {sorted(DRIFT_KINDS)}"
            )
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")

    def per_day(self, rate_per_thousand: float) -> float:
        return rate_per_thousand * self.customers / 1000


@dataclasses.dataclass(frozen=True)
class Simulation:
    transactions: pd.DataFrame  # the Transaction fields, in event-time order
    labels: pd.DataFrame  # transaction_id, is_fraud, source, labelled_at; labelled_at order
    truth: pd.DataFrame  # transaction_id, is_fraud, scenario: what really happened


def simulate(config: SimulationConfig) -> Simulation:
    rng = np.random.default_rng(config.seed)
    people = make_population(rng, config.customers, config.terminals)
    start = config.start.timestamp()
    drift_ts = config.drift_at.timestamp() if config.drift_at else np.inf
    frame = pd.concat(
        [_genuine_day(rng, people, config, start + d * DAY, drift_ts) for d in range(config.days)],
        ignore_index=True,
    )
    frame["scenario"] = ""
    _large_amounts(rng, frame, config)
    _compromised_terminals(rng, frame, people, config, start)
    _compromised_cards(rng, frame, config, start)
    extra = [
        _card_testing(rng, people, config, start),
        _impossible_travel(rng, frame, people, config),
    ]
    if "pattern" in config.drift and config.drift_at is not None:
        extra.append(_new_pattern(rng, people, config, start, drift_ts))
    frame = pd.concat([frame, *(part for part in extra if len(part))], ignore_index=True)
    frame = frame[frame.ts < start + config.days * DAY].sort_values("ts", kind="stable")
    frame = frame.reset_index(drop=True)
    frame["transaction_id"] = [f"tx-{i:09d}" for i in range(len(frame))]
    return Simulation(
        transactions=_transactions_frame(frame, people),
        labels=_labels(rng, frame, config),
        truth=frame.assign(is_fraud=frame.scenario != "")[
            ["transaction_id", "is_fraud", "scenario"]
        ],
    )


def _genuine_day(
    rng: np.random.Generator,
    people: Population,
    config: SimulationConfig,
    day_start: float,
    drift_ts: float,
) -> pd.DataFrame:
    weekday = datetime.fromtimestamp(day_start, UTC).weekday()
    rhythm = 1.15 if weekday >= 5 else 0.95  # a little more spending at weekends
    counts = rng.poisson(people.tx_per_day * rhythm)
    customer = np.repeat(np.arange(people.customers), counts)
    n = len(customer)
    span = people.active_to[customer] - people.active_from[customer]
    hours = people.active_from[customer] + rng.beta(2.2, 2.2, n) * span  # busiest mid-day
    ts = day_start + np.minimum(hours, 23.99) * 3600
    drifted = ts >= drift_ts
    share = people.ecommerce_share[customer] + np.where(
        drifted & ("category" in config.drift), 0.35, 0.0
    )
    online = rng.random(n) < share
    terminal = people.nearby_terminals[
        customer, rng.integers(0, people.nearby_terminals.shape[1], n)
    ]
    ecommerce_terminals = np.flatnonzero(people.terminal_ecommerce)
    terminal[online] = rng.choice(ecommerce_terminals, size=int(online.sum()))
    if "category" in config.drift:
        # after the drift, online shopping leans to electronics and digital goods
        leaning = _terminals_of(people, ("electronics", "digital_goods"), ecommerce=True)
        moved = online & drifted & (rng.random(n) < 0.6)
        terminal[moved] = rng.choice(leaning, size=int(moved.sum()))
    amount = rng.gamma(2.0, people.mean_amount[customer] / 2.0)
    if "amount" in config.drift:
        amount = np.where(drifted, amount * 1.8, amount)
    return pd.DataFrame(
        {"ts": ts, "customer": customer, "terminal": terminal, "amount": np.maximum(amount, 0.5)}
    )


def _large_amounts(rng: np.random.Generator, frame: pd.DataFrame, config: SimulationConfig) -> None:
    hit = rng.random(len(frame)) < config.large_amount_share
    frame.loc[hit, "amount"] *= rng.uniform(6, 15, int(hit.sum()))
    frame.loc[hit, "scenario"] = "large_amount"


def _compromised_terminals(
    rng: np.random.Generator,
    frame: pd.DataFrame,
    people: Population,
    config: SimulationConfig,
    start: float,
) -> None:
    """A skimmed terminal: for one to two weeks, 30 % of its payments are fraudulent."""
    card_present = np.flatnonzero(~people.terminal_ecommerce)
    rows_of = frame.groupby("terminal").indices
    times, scenario = frame.ts.to_numpy(), frame.scenario.to_numpy()
    for day in range(config.days):
        for terminal in rng.choice(
            card_present, size=rng.poisson(config.per_day(config.compromised_terminals))
        ):
            begin = start + (day + 1) * DAY
            end = begin + rng.integers(7, 15) * DAY
            rows = rows_of.get(terminal, np.array([], dtype=int))
            rows = rows[
                (times[rows] >= begin) & (times[rows] < end) & (rng.random(len(rows)) < 0.3)
            ]
            rows = rows[scenario[rows] == ""]
            scenario[rows] = "compromised_terminal"
    frame["scenario"] = scenario


def _compromised_cards(
    rng: np.random.Generator, frame: pd.DataFrame, config: SimulationConfig, start: float
) -> None:
    """A stolen card: for two weeks, a third of its payments are inflated fivefold."""
    rows_of = frame.groupby("customer").indices
    times, scenario, amount = (
        frame.ts.to_numpy(),
        frame.scenario.to_numpy(),
        frame.amount.to_numpy(),
    )
    for day in range(config.days):
        for customer in rng.choice(
            config.customers, size=rng.poisson(config.per_day(config.compromised_cards))
        ):
            begin = start + (day + 1) * DAY
            rows = rows_of.get(customer, np.array([], dtype=int))
            rows = rows[
                (times[rows] >= begin)
                & (times[rows] < begin + 14 * DAY)
                & (rng.random(len(rows)) < 1 / 3)
            ]
            rows = rows[scenario[rows] == ""]
            amount[rows] *= 5
            scenario[rows] = "compromised_card"
    frame["scenario"], frame["amount"] = scenario, amount


def _card_testing(
    rng: np.random.Generator, people: Population, config: SimulationConfig, start: float
) -> pd.DataFrame:
    """Bursts of tiny online payments within minutes, often followed by a large one."""
    testing_sites = _terminals_of(people, ("digital_goods",), ecommerce=True)
    big_sites = _terminals_of(people, ("electronics",), ecommerce=True)
    rows = []
    for day in range(config.days):
        for _ in range(rng.poisson(config.per_day(config.card_testing_bursts))):
            customer = int(rng.integers(config.customers))
            t = start + day * DAY + rng.uniform(0, DAY)
            site = rng.choice(testing_sites)
            for _ in range(int(rng.integers(5, 13))):
                rows.append((t, customer, site, round(rng.uniform(0.5, 2.0), 2), "card_testing"))
                t += rng.uniform(20, 90)
            if rng.random() < 0.6:
                amount = people.mean_amount[customer] * rng.uniform(3, 6)
                rows.append(
                    (
                        t + rng.uniform(600, 3000),
                        customer,
                        rng.choice(big_sites),
                        amount,
                        "card_testing",
                    )
                )
    return pd.DataFrame(rows, columns=["ts", "customer", "terminal", "amount", "scenario"])


def _impossible_travel(
    rng: np.random.Generator, frame: pd.DataFrame, people: Population, config: SimulationConfig
) -> pd.DataFrame:
    """A card-present payment abroad within two hours of one at home."""
    at_home = np.flatnonzero(~people.terminal_ecommerce[frame.terminal.to_numpy()])
    picks = rng.choice(
        at_home, size=rng.poisson(config.per_day(config.impossible_travel) * config.days)
    )
    seeds = frame.iloc[picks]
    return pd.DataFrame(
        {
            "ts": seeds.ts.to_numpy() + rng.uniform(900, 7200, len(seeds)),
            "customer": seeds.customer.to_numpy(),
            "terminal": rng.choice(people.far_terminals, size=len(seeds)),
            "amount": people.mean_amount[seeds.customer.to_numpy()]
            * rng.uniform(1.5, 4, len(seeds)),
            "scenario": "impossible_travel",
        }
    )


def _new_pattern(
    rng: np.random.Generator,
    people: Population,
    config: SimulationConfig,
    start: float,
    drift_ts: float,
) -> pd.DataFrame:
    """After the drift: account takeovers buying travel and electronics online at night."""
    sites = _terminals_of(people, ("travel", "electronics"), ecommerce=True)
    rows = []
    first_day = max(0, int((drift_ts - start) // DAY))
    for day in range(first_day, config.days):
        for customer in rng.choice(
            config.customers, size=rng.poisson(config.per_day(config.new_pattern_cards))
        ):
            for _ in range(int(rng.integers(2, 5))):
                t = start + day * DAY + rng.uniform(1, 5) * 3600
                if t >= drift_ts:
                    amount = people.mean_amount[customer] * rng.uniform(2, 4)
                    rows.append((t, customer, rng.choice(sites), amount, "account_takeover"))
    return pd.DataFrame(rows, columns=["ts", "customer", "terminal", "amount", "scenario"])


def _labels(
    rng: np.random.Generator, frame: pd.DataFrame, config: SimulationConfig
) -> pd.DataFrame:
    fraud = frame.scenario.to_numpy() != ""
    draw = rng.random(len(frame))
    analyst = (
        fraud
        & (draw >= config.never_reported_share)
        & (draw < config.never_reported_share + config.analyst_share)
    )
    chargeback = fraud & (draw >= config.never_reported_share + config.analyst_share)
    confirmed_genuine = ~fraud & (draw < config.analyst_genuine_share)
    delay_days = np.where(
        chargeback,
        np.clip(rng.lognormal(np.log(config.chargeback_median_days), 0.6, len(frame)), 1, 90),
        rng.uniform(0.5, 3.0, len(frame)),
    )
    labelled = analyst | chargeback | confirmed_genuine
    labels = pd.DataFrame(
        {
            "transaction_id": frame.transaction_id[labelled].to_numpy(),
            "is_fraud": fraud[labelled],
            "source": np.where(chargeback[labelled], "chargeback", "analyst"),
            "labelled_at": _to_utc(frame.ts.to_numpy()[labelled] + delay_days[labelled] * DAY),
        }
    )
    return labels.sort_values(["labelled_at", "transaction_id"], kind="stable").reset_index(
        drop=True
    )


def _transactions_frame(frame: pd.DataFrame, people: Population) -> pd.DataFrame:
    customer = frame.customer.to_numpy().astype(int)
    terminal = frame.terminal.to_numpy().astype(int)
    ecommerce = people.terminal_ecommerce[terminal]
    return pd.DataFrame(
        {
            "transaction_id": frame.transaction_id.to_numpy(),
            "event_time": _to_utc(frame.ts.to_numpy()),
            "card_id": people.card_id(customer),
            "terminal_id": people.terminal_id(terminal),
            "amount": np.round(frame.amount.to_numpy(), 2),
            "currency": "EUR",
            "customer_id": people.customer_id(customer),
            "merchant_category": np.array(MERCHANT_CATEGORIES)[people.terminal_category[terminal]],
            "channel": np.where(ecommerce, "ecommerce", "card_present"),
            "country": people.terminal_country[terminal],
            "latitude": np.round(people.terminal_lat[terminal], 4),
            "longitude": np.round(people.terminal_lon[terminal], 4),
        }
    )


def _terminals_of(people: Population, categories: tuple[str, ...], ecommerce: bool) -> np.ndarray:
    wanted = np.isin(people.terminal_category, [_CATEGORY[c] for c in categories])
    found = np.flatnonzero(wanted & (people.terminal_ecommerce == ecommerce))
    return found if len(found) else np.flatnonzero(people.terminal_ecommerce == ecommerce)


def _to_utc(epoch_seconds: np.ndarray) -> pd.DatetimeIndex:
    """Millisecond-precise UTC times (no float noise in the nanoseconds)."""
    return pd.to_datetime(np.round(epoch_seconds * 1000).astype("int64"), unit="ms", utc=True)
