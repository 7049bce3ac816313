"""Event time you can trust: a future-dated transaction is a dead letter and erases nothing,
an ancient one is refused, a late one within the windows counts where it belongs, one beyond
every window is scored, flagged and changes nothing (no broker: the pipeline on memory)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from scoring.event_time import EventTimeRules, Timeliness
from scoring.pipeline import BatchResult, InboundMessage, ScoringPipeline
from tests.unit.test_pipeline import pipeline

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Stream:
    """One partition of ``transactions`` whose broker clock is ``START`` plus a few seconds
    after each event's own time (a live stream)."""

    def __init__(self, scorer: ScoringPipeline) -> None:
        self.scorer, self.offset = scorer, 0

    def send(self, event_time: datetime | str, received: datetime | None = None) -> BatchResult:
        self.offset += 1
        stamp = event_time if isinstance(event_time, str) else event_time.isoformat()
        body = {"transaction_id": f"tx-{self.offset}", "event_time": stamp, "card_id": "cfut2",
                "terminal_id": "term-1", "amount": 20.0}  # fmt: skip
        at = received or (
            event_time + timedelta(seconds=2) if isinstance(event_time, datetime) else START
        )
        message = InboundMessage(json.dumps(body).encode(), "transactions", 0, self.offset, at)
        return self.scorer.score_batch([message])

    def count_30d(self, result: BatchResult) -> float:
        [scored] = result.scored
        return scored.features["card_tx_count_30d"]


def test_a_far_future_transaction_is_a_dead_letter_and_the_history_stays() -> None:
    stream = Stream(pipeline())
    counts = [stream.count_30d(stream.send(START + timedelta(minutes=m))) for m in range(3)]
    future = stream.send("9999-12-31T23:59:59Z", received=START + timedelta(minutes=3))
    after = [stream.count_30d(stream.send(START + timedelta(minutes=m))) for m in (4, 5)]

    assert counts == [1, 2, 3]
    assert not future.transactions
    [letter] = future.dead_letters
    assert letter.reason == "future" and "FRAUD_MAX_FUTURE_SKEW" in letter.error
    assert (letter.origin_topic, letter.origin_partition) == ("transactions", 0)
    assert after == [4, 5]


def test_a_transaction_dated_1970_is_refused_as_too_old() -> None:
    stream = Stream(pipeline())
    stream.send(START)
    ancient = stream.send("1970-01-01T00:00:00Z", received=START + timedelta(minutes=1))

    [letter] = ancient.dead_letters
    assert letter.reason == "too_old" and "FRAUD_MAX_EVENT_AGE_DAYS" in letter.error


def test_a_two_day_late_transaction_is_scored_and_counted_where_it_belongs() -> None:
    stream = Stream(pipeline())
    stream.send(START - timedelta(days=3))
    stream.send(START)
    late = stream.send(START - timedelta(days=2), received=START + timedelta(minutes=1))
    later = stream.send(START + timedelta(minutes=2))

    [scored] = late.scored
    # it sees the one event before it in event time; the ones after it count it
    assert (scored.late, scored.features["card_tx_count_30d"]) == (False, 2)
    assert stream.count_30d(later) == 4


def test_a_transaction_beyond_every_window_is_scored_flagged_and_changes_nothing() -> None:
    stream = Stream(pipeline())
    stream.send(START)
    very_late = stream.send(START - timedelta(days=40), received=START + timedelta(minutes=1))
    next_one = stream.send(START + timedelta(minutes=2))

    [scored] = very_late.scored
    assert scored.late and not very_late.writes.marks and not very_late.writes.card_events
    assert stream.count_30d(next_one) == 2  # the late one is not in the history


def test_the_skew_limit_is_a_setting() -> None:
    rules = EventTimeRules.of(60, 86_400, 120, label_delay_days=7)
    scorer = pipeline()
    scorer.timeliness = Timeliness(rules)
    stream = Stream(scorer)

    two_minutes_ahead = stream.send(START + timedelta(minutes=2), received=START)

    assert [d.reason for d in two_minutes_ahead.dead_letters] == ["future"]
