"""``fraudstream bench --report``: every measurement of ``docs/BENCHMARKS.md`` in one run,
written between the report's markers (the text around them is the analysis, by hand).

Stream throughput and latency (one worker, then two sharing the partitions), REST
throughput and latency, the time to train on a 1,000,000-transaction history, and the time
from drift to a new champion in the demo's closed loop; each next to what bounds it on the
same machine in the same run (raw aiokafka, a no-op Faust agent, a trivial FastAPI endpoint),
latencies next to their floor (the same load through a relay or the trivial endpoint).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from streams.settings import Settings
from tooling.bench import (
    BenchResult,
    machine,
    result_rows,
    run_bench,
    state_deleted_after,
    workers_throughput,
)

logger = logging.getLogger(__name__)

BEGIN = "<!-- fraudstream bench --report: begin (generated; edit the text outside) -->"
END = "<!-- fraudstream bench --report: end -->"


def full_report(
    settings: Settings, kafka: str, say: Callable[[str], None], count: int = 30_000,
    rate: float = 2_000.0, seconds: float = 15.0, history: int = 1_000_000,
) -> str:  # fmt: skip
    """Run every measurement (about 15 minutes here) and return the report's markdown."""
    from tooling.bench_rest import run_rest_bench

    sections = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; Apache Kafka {kafka} "
        "(local KRaft node), Redis and MLflow as `fraudstream services up` starts them.",
        f"Command: `fraudstream bench --report --count {count} --rate {rate:.0f} --seconds "
        f"{seconds:.0f} --history {history}`",
    ]
    say("stream: ceilings, one worker, steady latency")
    stream = asyncio.run(run_bench(settings, count, rate, seconds))
    say("stream: two workers")
    stream += asyncio.run(workers_throughput(settings, count, 2))
    sections.append(_table("Stream", stream))
    say("REST")
    sections.append(_table("REST", asyncio.run(run_rest_bench(settings, seconds, 500.0))))
    say(f"training on {history:,} transactions")
    sections.append(_table("Training", training_time(settings, history)))
    say("the demo's closed loop: drift to a new champion")
    sections.append(_table("Drift to a new champion", drift_to_champion(settings, say)))
    return "\n\n".join(sections) + "\n"


def _table(title: str, results: list[BenchResult]) -> str:
    head = [f"### {title}", "", "| measure | value |", "|---|---|"]
    return "\n".join(head + result_rows(results))


def training_time(settings: Settings, transactions: int = 1_000_000) -> list[BenchResult]:
    """What ``fraudstream train`` does with a history of ``transactions`` (simulated, 70
    days - enough for three validation folds before the training window -, cut to the
    number): replay the features, search, fit and calibrate every candidate, log and
    register the best (under a model name of its own, so no champion changes)."""
    from retraining.adapters.mlflow_registry import MlflowRegistry
    from retraining.training import TrainingWindow, best_of, build_dataset, train_candidates
    from simulator.generator import SimulationConfig, simulate

    customers = max(1_000, int(transactions / (1.91 * 70) * 1.05))  # ~1.9 payments a day
    simulation = simulate(
        SimulationConfig(seed=11, days=70, customers=customers, terminals=customers // 2)
    )
    frame = simulation.transactions.sort_values("event_time", kind="stable")
    if len(frame) < transactions:
        raise ValueError(f"the simulation gave {len(frame)} transactions, {transactions} wanted")
    frame = frame.head(transactions).reset_index(drop=True)
    labels = simulation.labels[simulation.labels.transaction_id.isin(frame.transaction_id)]
    window = TrainingWindow.ending_at(
        frame["event_time"].max(), delay_days=settings.label_delay_days
    )
    started = time.perf_counter()
    dataset = build_dataset(
        frame, labels, window, settings.label_delay_days, protocol=settings.protocol()
    )
    replayed = time.perf_counter()
    results = train_candidates(dataset, options=settings.training_options())
    trained = time.perf_counter()
    MlflowRegistry(settings.mlflow_tracking_uri).log_training(
        settings.mlflow_artifact_dir,
        f"bench-training-{uuid.uuid4().hex[:8]}", {"bench": True}, dataset.summary(), results,
        best_of(results), dataset.features[dataset.test][:5_000], report=dataset,
    )  # fmt: skip
    logged = time.perf_counter()
    summary = dataset.summary()
    rows = f"{summary['train_rows']:,} train rows, {summary['test_rows']:,} test rows"
    return [
        BenchResult(
            f"features replayed over the {transactions:,}-transaction history",
            replayed - started, "s", f"{transactions / (replayed - started):,.0f} tx/s",
        ),
        *(
            BenchResult(
                f"final fit {r.kind} ({settings.training_threads} threads)", r.fit_seconds,
                "s", f"{rows}; {len(r.trials)} trials on {len(dataset.folds)} folds",
            )
            for r in results
        ),
        BenchResult(
            f"all candidates: search ({settings.search_budget_seconds:.0f} s budget), fit, "
            "calibrate, evaluate", trained - replayed, "s",
        ),
        BenchResult("log to MLflow and register the best", logged - trained, "s"),
        BenchResult("training job, end to end", logged - started, "s"),
    ]  # fmt: skip


def drift_to_champion(base: Settings, say: Callable[[str], None]) -> list[BenchResult]:
    """The demo's loop, timed: from the first drifted transaction scored to the promotion's
    announcement and to the first transaction the new champion scored."""
    from tooling.demo import DemoPlan, demo_settings, run_loop

    run = f"bench{datetime.now(UTC):%Y%m%d%H%M%S}"
    # a model name of its own: the loop promotes, and the next report's stream and REST
    # stages must score with the same champion as this one's, not with what this loop made
    settings = demo_settings(base, run).replace(model_name=f"{base.model_name}-{run}")
    plan = DemoPlan.default()
    home = settings.home / "demo" / run
    with state_deleted_after(settings, settings.topic_prefix):
        result = run_loop(settings, plan, home / "data", home / "logs", say, time.monotonic())
    state = result.state
    assert plan.config.drift_at is not None
    onset = state.first_wall_of_day.get(plan.config.drift_at.date())
    if onset is None or not state.updates:
        return [BenchResult("drift to a new champion", float("nan"), "s", "no promotion")]
    published, update = state.updates[0]
    served = state.first_seen.get(update.version)
    results = [
        BenchResult(
            "first drifted transaction scored -> new champion announced", published - onset,
            "s", f"version {update.version}; the trainer waits for labelled post-drift days",
        ),
    ]  # fmt: skip
    if served is not None:
        results += [
            BenchResult(
                "new champion announced -> first transaction it scored",
                served.wall - published,
                "s",
            ),
            BenchResult("drift -> new champion scoring, in all", served.wall - onset, "s"),
        ]
    return results


def write_between_markers(path: Path, body: str) -> None:
    """Put ``body`` between the markers of ``path`` (appended with them if absent)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{BEGIN}\n\n{body}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
