"""Who transacts where: customers with a home, habits and a card; terminals with a place."""

from __future__ import annotations

import dataclasses

import numpy as np

from scoring.features.definitions import MERCHANT_CATEGORIES

# Home countries and their rough centres; customers live here.
HOME_COUNTRIES = {
    "FR": (46.6, 2.4),
    "DE": (51.1, 10.4),
    "ES": (40.4, -3.7),
    "IT": (42.8, 12.5),
    "NL": (52.2, 5.3),
    "BE": (50.6, 4.6),
}
HOME_WEIGHTS = np.array([0.3, 0.3, 0.15, 0.15, 0.05, 0.05])
# Far away: where a card that was just used at home cannot be an hour later.
FAR_COUNTRIES = {"US": (39.8, -98.6), "BR": (-14.2, -51.9), "TH": (15.9, 100.9)}
NEAREST_TERMINALS = 12
ECOMMERCE_SHARE_OF_TERMINALS = 0.1


@dataclasses.dataclass(frozen=True)
class Population:
    # customers (one card each), as arrays indexed by customer number
    home_country: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    mean_amount: np.ndarray
    tx_per_day: np.ndarray
    active_from: np.ndarray  # hour
    active_to: np.ndarray
    ecommerce_share: np.ndarray
    nearby_terminals: np.ndarray  # (customers, NEAREST_TERMINALS) card-present terminal numbers
    # terminals, indexed by terminal number
    terminal_country: np.ndarray
    terminal_lat: np.ndarray  # NaN for e-commerce terminals
    terminal_lon: np.ndarray
    terminal_category: np.ndarray  # index into MERCHANT_CATEGORIES
    terminal_ecommerce: np.ndarray  # bool
    far_terminals: np.ndarray  # card-present terminals abroad, for impossible travel

    @property
    def customers(self) -> int:
        return len(self.home_country)

    def card_id(self, customer: np.ndarray) -> np.ndarray:
        return np.char.add("card-", np.char.zfill(customer.astype(str), 6))

    def customer_id(self, customer: np.ndarray) -> np.ndarray:
        return np.char.add("cust-", np.char.zfill(customer.astype(str), 6))

    def terminal_id(self, terminal: np.ndarray) -> np.ndarray:
        return np.char.add("term-", np.char.zfill(terminal.astype(str), 5))


def make_population(rng: np.random.Generator, customers: int, terminals: int) -> Population:
    countries = np.array(list(HOME_COUNTRIES))
    home_country = rng.choice(countries, size=customers, p=HOME_WEIGHTS)
    centres = np.array([HOME_COUNTRIES[c] for c in home_country])
    home = centres + rng.normal(0, 1.2, size=(customers, 2))

    far = np.array(list(FAR_COUNTRIES))
    n_far = max(3, terminals // 50)
    n_ecommerce = max(5, int(terminals * ECOMMERCE_SHARE_OF_TERMINALS))
    n_local = terminals - n_far - n_ecommerce
    local_country = rng.choice(countries, size=n_local, p=HOME_WEIGHTS)
    local_place = np.array([HOME_COUNTRIES[c] for c in local_country]) + rng.normal(
        0, 1.2, (n_local, 2)
    )
    far_country = rng.choice(far, size=n_far)
    far_place = np.array([FAR_COUNTRIES[c] for c in far_country]) + rng.normal(0, 2.0, (n_far, 2))
    ecommerce_country = rng.choice(countries, size=n_ecommerce, p=HOME_WEIGHTS)

    terminal_country = np.concatenate([local_country, far_country, ecommerce_country])
    place = np.vstack([local_place, far_place, np.full((n_ecommerce, 2), np.nan)])
    ecommerce = np.arange(terminals) >= n_local + n_far
    category = rng.choice(len(MERCHANT_CATEGORIES), size=terminals, p=_CATEGORY_MIX)

    # each customer shops at the card-present terminals nearest home
    squared = ((home[:, None, :] - local_place[None, :, :]) ** 2).sum(axis=2)
    nearby = np.argsort(squared, axis=1)[:, :NEAREST_TERMINALS]

    active_from = rng.integers(6, 11, size=customers)
    return Population(
        home_country=home_country,
        home_lat=home[:, 0],
        home_lon=home[:, 1],
        mean_amount=rng.uniform(8, 110, size=customers),
        tx_per_day=rng.uniform(0.3, 3.5, size=customers),
        active_from=active_from,
        active_to=active_from + rng.integers(9, 15, size=customers),
        ecommerce_share=rng.uniform(0.0, 0.35, size=customers),
        nearby_terminals=nearby,
        terminal_country=terminal_country,
        terminal_lat=place[:, 0],
        terminal_lon=place[:, 1],
        terminal_category=category,
        terminal_ecommerce=ecommerce,
        far_terminals=np.arange(n_local, n_local + n_far),
    )


# grocery, restaurant, fuel, fashion, electronics, travel, entertainment, digital_goods,
# health, gambling
_CATEGORY_MIX = np.array([0.25, 0.18, 0.12, 0.1, 0.07, 0.05, 0.08, 0.07, 0.06, 0.02])
