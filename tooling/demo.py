"""``make demo``: the closed loop, live, on the embedded defaults.

History is simulated and replayed through the online feature code into Redis (warming the
stream's state) while the first champion trains on it; a worker (scoring, labels, training
store, drift), the trainer and the API start; the rest of the simulation streams in with
drift switched on midway; the drift agent asks for a retrain, the trainer waits for labelled
post-drift data, trains, gates and promotes, and the worker swaps. Each run has its own
topics, consumer groups, Redis keys and training store, so a second run starts clean.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import redis
from sklearn.metrics import average_precision_score

from retraining.metrics import per_card_day
from schemas.events import Severity
from simulator.generator import SimulationConfig, simulate
from simulator.publish import publish
from streams.app import create_topics, group_id
from streams.kafka_admin import until_consuming
from streams.settings import Settings, to_env
from streams.wiring import feature_store
from tooling.loop import LoopState, LoopWatcher
from tooling.processes import spawn_worker

logger = logging.getLogger(__name__)

HISTORY_DAYS = 45
DRIFT_DAY = 52
DAYS = 100
RATE = 700.0  # transactions a second: about a third of a simulated day a second
# the demo's bank (1,000 cards, ~15 defrauded a day) reviews this many cards a day
REVIEW_BUDGET = 20
# scoring in one process, the consumers of the scored stream in another: two cores, two
# Python processes, neither starved by the other's per-event work
SCORING_AGENTS = ("score", "model-updates", "labels")
SINK_AGENTS = ("training-store", "drift", "challenger")
TRAINER_NICENESS = 10
STALL_S = 60.0  # the worker is given up on after this long without a scored event
AFTER_SWAP = 5_000  # events scored by the new champion before the demo stops streaming


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    config: SimulationConfig
    history_end: datetime

    @classmethod
    def default(cls, seed: int = 42) -> DemoPlan:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        config = SimulationConfig(
            seed=seed,
            start=start,
            days=DAYS,
            customers=1_000,
            terminals=500,
            drift_at=start + timedelta(days=DRIFT_DAY),
        )
        return cls(config, start + timedelta(days=HISTORY_DAYS))


def demo_settings(settings: Settings, run: str) -> Settings:
    return settings.replace(
        app_id=f"fraudstream-demo-{run}",
        topic_prefix=f"demo-{run}.",
        training_store=str((run_dir(settings, run) / "training-store").absolute()),
        api_keys=f"demo:{secrets.token_urlsafe(24)}",
        review_budget_per_day=REVIEW_BUDGET,
    )


def spawn_trainer(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``fraudstream trainer`` at a lower CPU priority: on a small machine a retrain must
    not starve the scorers (training is background work; scoring is not)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tooling.cli", "trainer"],
            env={**os.environ, **to_env(settings)},
            stdout=out,
            stderr=out,
            preexec_fn=lambda: os.nice(TRAINER_NICENESS),
        )


@dataclasses.dataclass(frozen=True)
class LoopRun:
    state: LoopState
    truth: pd.DataFrame
    answer: dict  # what REST /predict said at the end
    stream: pd.DataFrame  # the streamed transactions (card, event time)


def new_run() -> str:
    """A demo run's name: its start time (UTC), which names its topics, groups and folder.
    Not 14 digits in a row: one in ten such numbers passes Luhn, and the logs that print the
    name would then hold what the card-number scan must call a card number.

    >>> len(new_run()), new_run()[8]
    (15, 'T')
    """
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def run_dir(settings: Settings, run: str) -> Path:
    return settings.home / "demo" / run


def run_demo(base: Settings, run: str, data: Path, say: Callable[[str], None]) -> int:
    settings = demo_settings(base, run)
    plan = DemoPlan.default()
    began = time.monotonic()
    result = run_loop(settings, plan, data, run_dir(base, run) / "logs", say, began)
    _summary(settings, plan, result, began, say)
    return 0 if result.state.updates else 1


def run_loop(
    settings: Settings,
    plan: DemoPlan,
    data: Path,
    logs: Path,
    say: Callable[[str], None],
    began: float,
) -> LoopRun:
    """History, first champion, workers, trainer and API, then the stream until it ends or
    the loop has closed (``AFTER_SWAP`` events scored by a promoted version)."""
    from tooling.jobs import train
    from tooling.processes import spawn_api

    simulation = simulate(plan.config)
    tx, labels = simulation.transactions, simulation.labels
    cut = pd.Timestamp(plan.history_end)
    history, stream = tx[tx.event_time < cut], tx[tx.event_time >= cut]
    data.mkdir(parents=True, exist_ok=True)
    history.to_parquet(data / "transactions.parquet", index=False)
    labels[labels.labelled_at < cut].to_parquet(data / "labels.parquet", index=False)
    drift = f"{plan.config.drift_at:%Y-%m-%d}" if plan.config.drift_at else "never"
    say(
        f"[{_clock(began)}] simulated {len(tx)} transactions over {plan.config.days} days: "
        f"{len(history)} history (to {cut:%Y-%m-%d}), {len(stream)} to stream; drift: {drift}"
    )

    asyncio.run(create_topics(settings, (group_id(settings, SCORING_AGENTS),
                                         group_id(settings, SINK_AGENTS))))  # fmt: skip
    client = redis.Redis.from_url(settings.redis_url)
    # the replay that warms the stream's state must not go on without Redis
    online = feature_store(settings, client, degrade=False)
    report = train(
        settings, data / "transactions.parquet", data / "labels.parquet", {}, store=online
    )
    _promote_first(settings, report.version)
    say(
        f"[{_clock(began)}] trained on the history (its replay warmed the online features): "
        f"best {report.best} -> {settings.model_name} version {report.version}, champion; "
        + "  ".join(f"{n}={v:.3f}" for n, v in report.metrics[report.best].items())
    )
    if (budget := report.budget) is not None:
        say(
            f"[{_clock(began)}] its thresholds for {settings.review_budget_per_day} reviews a "
            f"day: review >= {budget.thresholds.review:.3f}, decline >= "
            f"{budget.thresholds.decline:.3f} (on validation {budget.reviews_per_day:.1f} "
            f"cards a day, {budget.review_precision:.0%} of them fraud)"
        )

    port = settings.metrics_port
    sinks = settings.replace(metrics_port=port + 1 if port else 0)
    processes = {
        "worker": spawn_worker(settings, logs / "worker.log", SCORING_AGENTS),
        "sinks": spawn_worker(sinks, logs / "sinks.log", SINK_AGENTS),
        "trainer": spawn_trainer(
            settings.replace(metrics_port=port + 2 if port else 0),
            logs / "trainer.log",
        ),
    }
    try:
        processes["api"] = spawn_api(settings, logs / "api.log")
        # the stream starts once both workers hold their partitions, not during their start
        # (seconds here); the first seconds still score slower, while the worker's card
        # cache fills from Redis
        asyncio.run(until_consuming(settings.kafka_bootstrap, [
            group_id(settings, SCORING_AGENTS), group_id(settings, SINK_AGENTS)]))  # fmt: skip
        say(
            f"[{_clock(began)}] started: a scoring worker ({', '.join(SCORING_AGENTS)}), "
            f"a sink worker ({', '.join(SINK_AGENTS)}), the trainer and the API; logs in {logs}"
        )
        state = asyncio.run(_stream_and_watch(settings, stream, labels[labels.labelled_at >= cut],
                                              began, say))  # fmt: skip
        return LoopRun(state, simulation.truth, _ask_api(settings, stream.iloc[-1]), stream)
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _promote_first(settings: Settings, version: str) -> None:
    from retraining.adapters.mlflow_registry import MlflowRegistry

    registry = MlflowRegistry(settings.mlflow_tracking_uri)
    registry.promote(settings.model_name, version, "the demo's first model", "make demo")


async def _stream_and_watch(
    settings: Settings,
    stream: pd.DataFrame,
    labels: pd.DataFrame,
    began: float,
    say: Callable[[str], None],
) -> LoopState:
    watcher = LoopWatcher(settings)
    await watcher.start()
    state = watcher.state
    publishing = publish(
        settings.kafka_bootstrap,
        stream,
        labels,
        RATE,
        progress=False,
        transactions_topic=settings.topic("transactions"),
        labels_topic=settings.topic("labels"),
        stop=lambda: any(state.versions[u.version] >= AFTER_SWAP for _, u in state.updates),
    )
    sending = asyncio.create_task(publishing)
    seen_reports = seen_requests = seen_updates = 0
    severity_of: dict[str, Severity] = {}
    sent_at = 0.0  # when the last transaction had been sent
    last_line = 0.0
    try:
        while True:
            await asyncio.sleep(0.5)
            for report in state.reports[seen_reports:]:
                # a line when the drift picture changes or an HTML report was written
                before = severity_of.get(report.model_version, Severity.NONE)
                severity_of[report.model_version] = report.severity
                if report.severity != before or report.report_path:
                    drifted = [f.feature for f in report.features if f.drifted]
                    say(
                        f"[{_clock(began)}] drift window {report.window_start:%m-%d %H:%M}.."
                        f"{report.window_end:%m-%d %H:%M} of version {report.model_version}: "
                        f"{report.severity}, {report.drift_share:.0%} of features "
                        f"({', '.join(drifted[:6])}{', ...' if len(drifted) > 6 else ''})"
                        + (f"; report {report.report_path}" if report.report_path else "")
                        + (f" (in MLflow: {report.report_uri})" if report.report_uri else "")
                    )
            seen_reports = len(state.reports)
            for request in state.requests[seen_requests:]:
                say(f"[{_clock(began)}] retrain requested: {request.request_id}")
            seen_requests = len(state.requests)
            for _, update in state.updates[seen_updates:]:
                say(
                    f"[{_clock(began)}] promoted: {update.model_name} version {update.version} "
                    f"replaces {update.previous_version} "
                    + "  ".join(f"{n}={v:.3f}" for n, v in update.metrics.items())
                )
            seen_updates = len(state.updates)
            if time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                at = f"{state.latest_event_time:%Y-%m-%d %H:%M}" if state.latest_event_time else "-"
                say(
                    f"[{_clock(began)}] scored {state.scored} (stream time {at}); by version: "
                    + ", ".join(f"{v}: {n}" for v, n in sorted(state.versions.items()))
                )
            if sending.done():
                if sending.result().transactions <= len(state.version_of):
                    break
                sent_at = sent_at or time.time()
                if time.time() - max(state.last_wall, sent_at) > STALL_S:
                    say(f"[{_clock(began)}] no scored event for {STALL_S:.0f}s: stopping")
                    break
    finally:
        if not sending.done():
            sending.cancel()
        await watcher.stop()
    return state


def _ask_api(settings: Settings, row: pd.Series) -> dict:
    assert settings.api_keys is not None  # demo_settings made one
    key = settings.api_keys.get_secret_value().split(",")[0].split(":")[1]
    body = {
        "transaction_id": "demo-rest-call",
        "event_time": datetime.now(UTC).isoformat(),
        "card_id": row.card_id,
        "terminal_id": row.terminal_id,
        "amount": float(row.amount),
    }
    url = f"http://{settings.api_host}:{settings.api_port}/predict"
    response = httpx.post(url, json=body, headers={"X-API-Key": key}, timeout=10)
    response.raise_for_status()
    return response.json()


def _summary(
    settings: Settings, plan: DemoPlan, result: LoopRun, began: float, say: Callable[[str], None]
) -> None:
    state, truth, answer = result.state, result.truth, result.answer
    p50, p95, p99 = state.latency_percentiles()
    first, last = min(f.wall for f in state.first_seen.values()), state.last_wall
    say("")
    say("summary")
    say(
        f"  scored {len(state.version_of)} streamed transactions in {last - first:.0f}s "
        f"({len(state.version_of) / max(last - first, 1e-9):.0f} tx/s, offered {RATE:.0f}/s); "
        f"ingest->scored p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    frauds = set(truth.loc[truth.is_fraud, "transaction_id"])
    streamed = result.stream.set_index("transaction_id")
    for version in sorted(state.versions, key=lambda v: (len(v), v)):
        ids = [i for i, v in state.version_of.items() if v == version]
        flagged = {i for i in ids if state.decisions[i] != "approve"}
        fraud_ids = frauds.intersection(ids)
        caught = len(flagged & fraud_ids)
        per_day, precision = cards_to_review(streamed.loc[ids], flagged, frauds)
        say(
            f"  version {version}: {len(ids)} scored, frauds caught {caught}/{len(fraud_ids)} "
            f"(recall {caught / max(len(fraud_ids), 1):.1%}), precision of review+decline "
            f"{caught / max(len(flagged), 1):.1%}; {per_day:.1f} cards a day to review or "
            f"declined (budget {settings.review_budget_per_day}), {precision:.1%} of them "
            "defrauded that day"
        )
    shadow = list(state.challenger_score)
    if shadow:
        truth_of = np.array([i in frauds for i in shadow])
        challenger_ap = average_precision_score(
            truth_of, [state.challenger_score[i] for i in shadow]
        )
        champion_ap = average_precision_score(truth_of, [state.champion_score[i] for i in shadow])
        say(
            f"  online challenger (river, learning from the labels, in shadow): scored "
            f"{len(shadow)}; average precision {challenger_ap:.3f} against the champions' "
            f"{champion_ap:.3f} on the same transactions"
        )
    severe = state.first_severe()
    if severe is None:
        say("  drift: not detected")
    else:
        say(
            f"  drift: switched on at {plan.config.drift_at:%Y-%m-%d %H:%M}, detected in the "
            f"window {severe.window_start:%Y-%m-%d %H:%M}..{severe.window_end:%Y-%m-%d %H:%M} "
            f"({severe.drift_share:.0%} of features); {len(state.requests)} retrain request(s)"
        )
    for wall, update in state.updates:
        seen = state.first_seen.get(update.version)
        swap = f"{seen.wall - wall:.1f}s" if seen else "not yet"
        say(
            f"  promoted: version {update.version} replaced {update.previous_version}; "
            f"first event scored by it {swap} after the update was published"
        )
    if not state.updates:
        say("  promoted: nothing (see the trainer's log for the gate's reasons)")
    say(
        f"  REST /predict now answers with version {answer['model_version']}: "
        f"probability {answer['fraud_probability']:.3f}, {answer['decision']}"
    )
    say(f"  whole demo: {_clock(began)}; MLflow runs in {settings.mlflow_tracking_uri}")


def cards_to_review(
    scored: pd.DataFrame, flagged: set[str], frauds: set[str]
) -> tuple[float, float]:
    """Cards a simulated day with a transaction sent to review or declined, and the share
    of those cards with a fraud that day (what the review budget is about).

    >>> at = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 09:00"],
    ...                     utc=True)
    >>> scored = pd.DataFrame({"card_id": ["a", "a", "b"], "event_time": at},
    ...                       index=["t1", "t2", "t3"])
    >>> cards_to_review(scored, {"t1", "t2", "t3"}, {"t2"})
    (1.0, 0.5)
    """
    if scored.empty:
        return 0.0, 0.0
    days = scored["event_time"].dt.floor("D").to_numpy()
    per_card = per_card_day(
        days, scored["card_id"].to_numpy(), scored.index.isin(list(flagged)),
        scored.index.isin(list(frauds)),
    )  # fmt: skip
    reviewed = per_card[per_card["score"]]  # here the score is "flagged"
    precision = float(reviewed["fraud"].mean()) if len(reviewed) else 0.0
    return len(reviewed) / len(np.unique(days)), precision


def _clock(began: float) -> str:
    seconds = int(time.monotonic() - began)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
