"""What the features are: names, windows, vocabularies and the small pure helpers they use.

Every model, the stream and the offline replay read ``FEATURE_NAMES`` from here, so the
column order is the same everywhere.
"""

from __future__ import annotations

import math

import numpy as np

SECONDS_PER_DAY = 86_400

CARD_WINDOWS = {
    "10m": 600,
    "1h": 3_600,
    "1d": SECONDS_PER_DAY,
    "7d": 7 * SECONDS_PER_DAY,
    "30d": 30 * SECONDS_PER_DAY,
}
CARD_MEAN_WINDOWS = ("1d", "7d", "30d")
CARD_HISTORY_SECONDS = CARD_WINDOWS["30d"]
TERMINAL_WINDOW_DAYS = (1, 7, 30)
NO_PREVIOUS_SECONDS = float(CARD_HISTORY_SECONDS)  # "time since last" when there is none

CHANNELS = ("card_present", "ecommerce")  # code 0 means unknown
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "fashion",
    "electronics",
    "travel",
    "entertainment",
    "digital_goods",
    "health",
    "gambling",
)

FEATURE_NAMES: tuple[str, ...] = (
    "amount",
    *(f"card_tx_count_{w}" for w in CARD_WINDOWS),
    *(f"card_amount_sum_{w}" for w in CARD_WINDOWS),
    *(f"card_amount_mean_{w}" for w in CARD_MEAN_WINDOWS),
    *(f"amount_to_card_mean_{w}" for w in CARD_MEAN_WINDOWS),
    *(f"amount_zscore_card_{w}" for w in CARD_MEAN_WINDOWS),
    "seconds_since_last_card_tx",
    "seconds_since_last_card_tx_at_terminal",
    "card_first_time_at_terminal",
    "card_first_time_in_country",
    "card_first_time_in_category",
    *(f"card_distinct_terminals_{w}" for w in CARD_MEAN_WINDOWS),
    *(f"card_distinct_countries_{w}" for w in CARD_MEAN_WINDOWS),
    "card_country_changed",
    "card_travel_speed_kmh",
    "card_hour_unusual",
    *(f"terminal_tx_count_{d}d" for d in TERMINAL_WINDOW_DAYS),
    *(f"terminal_risk_{d}d" for d in TERMINAL_WINDOW_DAYS),
    *(f"terminal_known_fraud_rate_{d}d" for d in TERMINAL_WINDOW_DAYS),
    "hour_of_day",
    "day_of_week",
    "is_weekend",
    "is_night",
    "channel_code",
    "merchant_category_code",
)
# the groups of the ablation table in docs/MODELS.md: each adds its features to the base
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "amount_against_history": (
        *(f"amount_to_card_mean_{w}" for w in CARD_MEAN_WINDOWS[:2]),
        *(f"amount_zscore_card_{w}" for w in CARD_MEAN_WINDOWS),
    ),
    "time_since": ("seconds_since_last_card_tx_at_terminal",),
    "first_time": (
        "card_first_time_at_terminal",
        "card_first_time_in_country",
        "card_first_time_in_category",
    ),
    "distinct_over_windows": (
        *(f"card_distinct_terminals_{w}" for w in CARD_MEAN_WINDOWS[1:]),
        *(f"card_distinct_countries_{w}" for w in CARD_MEAN_WINDOWS[1:]),
    ),
    "usual_hours": ("card_hour_unusual",),
    "terminal_known_fraud_rate": tuple(
        f"terminal_known_fraud_rate_{d}d" for d in TERMINAL_WINDOW_DAYS
    ),
}
UNUSUAL_HOUR_DISTANCE = 2  # hours of day further than this from a payment's are unusual
CATEGORICAL_FEATURES = ("channel_code", "merchant_category_code", "day_of_week")
FEATURE_INDEX = {name: index for index, name in enumerate(FEATURE_NAMES)}


def feature_columns(rows: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """The columns ``names`` of rows in ``FEATURE_NAMES`` order (the rows themselves when
    they are all of them): what a model trained on fewer features reads.

    >>> rows = np.arange(len(FEATURE_NAMES))[None, :]  # each value its own column number
    >>> feature_columns(rows, ("hour_of_day", "amount")).tolist() == [
    ...     [FEATURE_INDEX["hour_of_day"], 0]]
    True
    """
    if names == FEATURE_NAMES:
        return rows
    return rows[:, [FEATURE_INDEX[name] for name in names]]


def code_of(value: str | None, vocabulary: tuple[str, ...]) -> int:
    """1-based position in ``vocabulary``; 0 for missing or unknown values.

    >>> code_of("ecommerce", CHANNELS), code_of(None, CHANNELS), code_of("barter", CHANNELS)
    (2, 0, 0)
    """
    if value is None:
        return 0
    try:
        return vocabulary.index(value) + 1
    except ValueError:
        return 0


def vocabulary_codes(vocabulary: tuple[str, ...]) -> dict[str | None, int]:
    """``code_of`` for every known value, as a dict (unknown and missing values: ``.get(v, 0)``).

    >>> codes = vocabulary_codes(CHANNELS)
    >>> [codes.get(v, 0) for v in ("ecommerce", None, "barter")] == [
    ...     code_of(v, CHANNELS) for v in ("ecommerce", None, "barter")]
    True
    """
    return {value: code_of(value, vocabulary) for value in vocabulary}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km.

    >>> round(haversine_km(48.8566, 2.3522, 51.5074, -0.1278))  # Paris -> London
    344
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def hour_distance(hour_a: float, hour_b: float) -> float:
    """Hours between two hours of day, round the clock.

    >>> hour_distance(23, 1), hour_distance(6, 18), hour_distance(10, 7)
    (2, 12, 3)
    """
    apart = abs(hour_a - hour_b) % 24
    return min(apart, 24 - apart)


def calendar_features(epoch_seconds: float) -> tuple[float, float, float, float]:
    """Hour of day, day of week (Monday 0), weekend flag and night flag (00:00-05:59), in UTC.

    >>> calendar_features(1_772_366_400.0)  # Sunday 2026-03-01 12:00 UTC
    (12.0, 6.0, 1.0, 0.0)
    """
    days, seconds_of_day = divmod(epoch_seconds, SECONDS_PER_DAY)
    hour = seconds_of_day // 3600
    day_of_week = (days + 3) % 7  # 1970-01-01 was a Thursday
    return hour, day_of_week, float(day_of_week >= 5), float(hour < 6)
