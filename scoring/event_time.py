"""Whether a transaction's event time can be trusted, and whether it may change the state.

A card's history is cut back from its newest event, so one event dated far in the future
would push every real event out of the windows. Three rules keep event time honest:

- **future**: an event more than ``max_future_skew_s`` ahead of the time the broker (or the
  API) took it is refused: a dead letter in the stream, a 422 at the REST edge, an invalid
  row in a file. So no accepted event is ever far ahead of the ingest clock, and pruning
  from the newest accepted event cannot evict real history.
- **too old**: an event more than ``max_age_s`` behind the newest event time its channel
  (a topic partition, or the API) has accepted is refused the same way (a 1970 default).
- **late**: an event behind that newest time by more than ``state_horizon_s`` (the longest
  feature window plus a margin) is scored and flagged ``late``, but does not change the
  state: no window it could still land in is read any more.

The newest accepted time (the watermark) is kept per channel, and an event is judged
against the watermark as it was before it, so a replay of the same partition judges the
same way. Out-of-order events within the horizon are ordinary: they are counted where they
belong in event time.

>>> rules = EventTimeRules(max_future_skew_s=300, state_horizon_s=38 * DAY, max_age_s=120 * DAY)
>>> clock = Timeliness(rules)
>>> now = 1_800_000_000.0
>>> [clock.judge(("transactions", 0), ts, now).kind.value for ts in
...  (now - 60, now + 10 * DAY, now - 2 * DAY, now - 40 * DAY, 0.0, now - 30)]
['on_time', 'future', 'on_time', 'late', 'too_old', 'on_time']
>>> clock.watermark(("transactions", 0)) == now - 30
True
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Hashable

from scoring.features.definitions import CARD_HISTORY_SECONDS, TERMINAL_WINDOW_DAYS

DAY = 86_400.0


class Verdict(enum.StrEnum):
    ON_TIME = "on_time"  # scored and counted in the state
    LATE = "late"  # scored and flagged; the state is not changed
    FUTURE = "future"  # refused: ahead of its ingest time beyond the skew limit
    TOO_OLD = "too_old"  # refused: older than the channel's newest event by more than the age

    @property
    def refused(self) -> bool:
        return self in (Verdict.FUTURE, Verdict.TOO_OLD)


@dataclasses.dataclass(frozen=True)
class Judgement:
    kind: Verdict
    problem: str = ""  # why it was refused, for the dead letter or the 422


@dataclasses.dataclass(frozen=True)
class EventTimeRules:
    max_future_skew_s: float = 300.0
    state_horizon_s: float = 38 * DAY
    max_age_s: float = 120 * DAY

    @classmethod
    def of(
        cls,
        max_future_skew_s: float,
        max_lateness_s: float,
        max_age_days: float,
        label_delay_days: float,
    ) -> EventTimeRules:
        """The rules for our features: the state horizon is the longest window any feature
        reads (a card's 30 days; a terminal's risk, 30 days ending ``label_delay_days``
        back) plus ``max_lateness_s``.

        >>> EventTimeRules.of(300, DAY, 120, label_delay_days=7).state_horizon_s / DAY
        38.0
        """
        terminal_days = max(TERMINAL_WINDOW_DAYS) + label_delay_days
        longest = max(float(CARD_HISTORY_SECONDS), terminal_days * DAY)
        return cls(max_future_skew_s, longest + max_lateness_s, max_age_days * DAY)

    def future_problem(self, event_ts: float, ingest_ts: float) -> str:
        """Why ``event_ts`` is refused as too far ahead of ``ingest_ts`` ("" if it is not).

        >>> EventTimeRules().future_problem(1_000.0 + 301, 1_000.0)[:49]
        'event_time is 301 s ahead of the time it was rece'
        >>> EventTimeRules().future_problem(1_000.0 + 299, 1_000.0)
        ''
        """
        ahead = event_ts - ingest_ts
        if ahead <= self.max_future_skew_s:
            return ""
        return (
            f"event_time is {ahead:.0f} s ahead of the time it was received (more than "
            f"FRAUD_MAX_FUTURE_SKEW, {self.max_future_skew_s:.0f} s): is the sender's clock wrong?"
        )


class Timeliness:
    """The rules, and the newest accepted event time of each channel."""

    def __init__(self, rules: EventTimeRules) -> None:
        self.rules = rules
        self._watermarks: dict[Hashable, float] = {}

    def watermark(self, channel: Hashable) -> float | None:
        return self._watermarks.get(channel)

    def judge(self, channel: Hashable, event_ts: float, ingest_ts: float) -> Judgement:
        """Judge one event of ``channel`` and, if it is accepted, advance the watermark."""
        rules = self.rules
        if problem := rules.future_problem(event_ts, ingest_ts):
            return Judgement(Verdict.FUTURE, problem)
        newest = self._watermarks.get(channel, event_ts)
        behind = newest - event_ts
        if behind > rules.max_age_s:
            return Judgement(
                Verdict.TOO_OLD,
                f"event_time is {behind / DAY:.0f} days before the newest event time of "
                f"its stream (more than FRAUD_MAX_EVENT_AGE_DAYS, {rules.max_age_s / DAY:.0f})",
            )
        self._watermarks[channel] = max(newest, event_ts)
        return Judgement(Verdict.LATE if behind > rules.state_horizon_s else Verdict.ON_TIME)
