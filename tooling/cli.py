"""The ``fraudstream`` command line: the one place the environment is read."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from streams.logs import configure_logging
from streams.settings import Settings, SettingsError, to_env

logger = logging.getLogger("fraudstream")
# the fault-injection scenarios of `fraudstream chaos`, in the order they run
SCENARIOS = ("kill", "broker", "redis", "mlflow", "hostile", "clocks", "backlog")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ, env_file=Path(".env"))
    except SettingsError as error:
        print(f"fraudstream: {error}", file=sys.stderr)  # noqa: T201
        return 2
    configure_logging(logging.DEBUG if args.verbose else logging.INFO, settings.log_format)
    if not args.verbose:
        for chatty in ("faust", "mode", "aiokafka", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        # MLflow warns on every pyfunc it logs that pickled models run code when loaded:
        # ours are our own, loaded from our own registry. MLflow resets its logger's level
        # when imported, unless this variable says otherwise (worker processes inherit it).
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    try:
        return int(args.handler(settings, args))
    except (SettingsError, RuntimeError, ValueError) as error:
        # ServiceError, TopicMismatch and friends say what to do; a traceback would hide it
        print(f"fraudstream: {error}", file=sys.stderr)  # noqa: T201
        return 2


DESCRIPTION = """\
fraudstream scores card payments for fraud as they stream through Kafka: each transaction
gets a decision (approve, review, decline), a probability and the reasons, from the champion
model in the MLflow registry. It watches its own inputs for drift, retrains, and promotes a
better model without a restart. Kafka, Redis and MLflow run locally without Docker."""

EPILOG = """\
first steps:
  fraudstream demo                      the whole loop, live, on simulated payments
  fraudstream simulate --out data/sim   a history to try the commands on
  fraudstream train --transactions data/sim/transactions.parquet --labels data/sim/labels.parquet
  fraudstream services up && fraudstream worker      score the transactions topic

settings come from FRAUD_* environment variables (see the README); `COMMAND --help` for more."""

# what each agent of `fraudstream worker` does (streams.app.AGENTS holds the same names)
AGENT_HELP = {
    "score": "score each transaction of `transactions` -> `transactions.scored` (bad ones -> "
    "`transactions.dlq`)",
    "model-updates": "follow `model.updates` and swap to a new champion between two batches",
    "labels": "join fraud labels from `labels` to terminal risk and live model quality",
    "training-store": "write scored transactions and labels to the training store (Parquet)",
    "drift": "compare windows of scored events with the model's reference; ask for a retrain",
    "challenger": "train the online challenger (river) on labels, scored in shadow",
}


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows every option's default and keeps the texts' line breaks (no
    "default: None" for required options, nor "default: False" for flags)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fraudstream {version('fraudstream')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "fraudstream (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudstream", description=DESCRIPTION, epilog=EPILOG, formatter_class=_Help
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, **options: Any) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=options.pop("description", summary),
            formatter_class=_Help, **options,
        )  # fmt: skip

    contracts = command(
        "schemas", "the topics' contracts for other languages: JSON Schema and AsyncAPI"
    )
    contracts.add_argument(
        "action", choices=["export", "check", "register"],
        help="export: write a JSON Schema per topic value and an AsyncAPI 3 document; check: "
        "exit 1 if the files differ from the code; register: publish them to the schema "
        "registry at FRAUD_SCHEMA_REGISTRY_URL (subjects <topic>-value)",
    )  # fmt: skip
    contracts.add_argument(
        "--out", type=Path, default=None, help="folder (default: the package's schemas/contracts)"
    )
    contracts.set_defaults(handler=_schemas)

    shown = command("settings", "the settings a process started here would use (secrets masked)")
    shown.add_argument(
        "--markdown", action="store_true", help="print the table of every setting instead"
    )
    shown.add_argument(
        "--readme", type=Path, default=None, metavar="README",
        help="rewrite the table of settings in this README (a test compares them)",
    )  # fmt: skip
    shown.set_defaults(handler=_settings)

    services = command(
        "services", "local Kafka (KRaft), Redis and MLflow without Docker; Prometheus and "
        "Alertmanager on request",
    )  # fmt: skip
    services.add_argument(
        "action", choices=["up", "down", "status"],
        help="up: start what is not running; down: stop what up started; status: exit 3 if "
        "one is not running",
    )  # fmt: skip
    services.add_argument(
        "--only", default="", metavar="NAMES",
        help="comma-separated, of kafka, redis, mlflow, schema-registry, alertmanager, "
        "prometheus (default: up starts the first three; down stops all that run; status "
        "shows those)",
    )  # fmt: skip
    services.add_argument(
        "--mlflow-server",
        action="store_true",
        help="with up: also serve the MLflow UI on FRAUD_MLFLOW_PORT",
    )
    services.add_argument(
        "--schema-registry", action="store_true",
        help="with up: also start a schema registry (Apicurio, Confluent-compatible API) on "
        "FRAUD_SCHEMA_REGISTRY_PORT; then `fraudstream schemas register`",
    )  # fmt: skip
    services.set_defaults(handler=_services)

    _add_data_commands(command)

    agents = "\n".join(f"  {name:<15} {text}" for name, text in AGENT_HELP.items())
    worker = command(
        "worker", "the stream agents: scoring, model updates, labels, training store, drift",
        description="Run stream agents on Kafka. Workers with the same agents share the "
        "partitions as one consumer group.", epilog=f"agents:\n{agents}",
    )  # fmt: skip
    worker.add_argument(
        "--agents", default=",".join(AGENT_HELP),
        help="which agents this process runs (comma-separated; see below)",
    )  # fmt: skip
    worker.set_defaults(handler=_worker)

    trainer = command(
        "trainer", "the training worker: retrain on requests and on FRAUD_RETRAIN_CRON"
    )
    trainer.set_defaults(handler=_trainer)
    retrain = command("retrain", "retrain now from the training store; promote if the gate passes")
    retrain.set_defaults(handler=_retrain)
    promote = command("promote", "make VERSION the champion; the scorers follow")
    promote.add_argument("version", help="the registered version to serve")
    promote.add_argument("--reason", default="promoted by hand", help="recorded in MLflow")
    promote.set_defaults(handler=_promote)
    promote_challenger = command(
        "promote-challenger",
        "register the online challenger; champion if it passes the gate (or --force)",
    )
    promote_challenger.add_argument(
        "--force", action="store_true", help="promote even if the gate says no (recorded)"
    )
    promote_challenger.set_defaults(handler=_promote_challenger)
    rollback = command("rollback", "give the champion back to the version the current one replaced")
    rollback.set_defaults(handler=_rollback)

    api = command("api", "the REST facade (FRAUD_API_HOST/PORT; keys from FRAUD_API_KEYS)")
    api.set_defaults(handler=_api)

    bench = command("bench", "scoring throughput and latency against the real broker")
    bench.add_argument(
        "--count", type=int, default=50_000, help="transactions for the throughput runs"
    )
    bench.add_argument(
        "--rate", type=float, default=2_000.0, help="steady rate for the latency run (tx/s)"
    )
    bench.add_argument(
        "--seconds", type=float, default=20.0, help="length of the latency run (seconds)"
    )
    bench.add_argument("--out", type=Path, default=None, help="also write the report here")
    bench.add_argument(
        "--steps", action="store_true", help="only time each step of the scoring path (no Kafka)"
    )
    bench.add_argument(
        "--rest",
        action="store_true",
        help="the REST facade instead: throughput and latency next to a trivial endpoint",
    )
    bench.add_argument(
        "--report", type=Path, nargs="?", const=Path("docs/BENCHMARKS.md"), default=None,
        help="everything (stream with 1 and 2 workers, REST, training, the loop's drift to "
        "champion), written between the markers of this file (docs/BENCHMARKS.md if no file "
        "is named)",
    )  # fmt: skip
    bench.add_argument(
        "--history", type=int, default=1_000_000, help="with --report: transactions to train on"
    )
    bench.set_defaults(handler=_bench)

    chaos = command("chaos", "fault injection on the real services: what was sent, scored, lost")
    chaos.add_argument("--count", type=int, default=100_000, help="transactions in the kill run")
    chaos.add_argument("--rate", type=float, default=2_000.0, help="transactions a second")
    chaos.add_argument(
        "--only", default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, of {', '.join(SCENARIOS)}",
    )  # fmt: skip
    chaos.add_argument(
        "--backlog", type=int, default=1_000_000, help="transactions in the backlog run"
    )
    chaos.add_argument("--out", type=Path, default=None, help="also write the table here")
    chaos.set_defaults(handler=_chaos)

    smoke = command("smoke", "records through Kafka and a Faust agent, counted back")
    smoke.add_argument("--count", type=int, default=10_000, help="records to send")
    smoke.set_defaults(handler=_smoke)

    demo = command("demo", "services up, then the whole loop live on simulated payments")
    demo.add_argument(
        "--keep-services", action="store_true", help="leave the services running afterwards"
    )
    demo.add_argument(
        "--data", type=Path, default=Path("data/demo"), help="where the demo's files go"
    )
    demo.set_defaults(handler=_demo)
    return parser


def _add_data_commands(command: Any) -> None:
    simulate = command("simulate", "synthetic transactions and late labels, to files or to Kafka")
    simulate.add_argument("--out", type=Path, default=Path("data/simulated"), help="output folder")
    simulate.add_argument(
        "--format", choices=["parquet", "csv"], default="parquet", help="file format"
    )
    simulate.add_argument("--days", type=int, default=60, help="simulated days")
    simulate.add_argument("--customers", type=int, default=2_000, help="simulated card holders")
    simulate.add_argument("--terminals", type=int, default=1_000, help="simulated terminals")
    simulate.add_argument("--seed", type=int, default=42, help="the same seed, the same data")
    simulate.add_argument(
        "--start", type=_utc_time, default=None, help="first day (ISO 8601; default 2026-01-01)"
    )
    simulate.add_argument(
        "--drift-at", type=_utc_time, default=None, help="switch drift on here (ISO 8601)"
    )
    simulate.add_argument(
        "--drift", default="amount,category,pattern", help="which drift kinds, comma-separated"
    )
    simulate.add_argument(
        "--kafka", action="store_true",
        help="publish to the transactions and labels topics instead of writing files",
    )  # fmt: skip
    simulate.add_argument(
        "--rate", type=float, default=2_000.0, help="with --kafka: transactions a second"
    )
    simulate.set_defaults(handler=_simulate)

    skip_help = (
        "leave invalid rows out instead of stopping; they are written with their row numbers "
        "and reasons to a .rejected.csv file"
    )
    train = command("train", "train candidates, log them to MLflow, register the best")
    train.add_argument(
        "--transactions", type=Path, required=True,
        help="CSV or Parquet: transaction_id, event_time, card_id, terminal_id, amount, ...",
    )  # fmt: skip
    train.add_argument(
        "--labels", type=Path, required=True,
        help="CSV or Parquet: transaction_id, is_fraud, optionally labelled_at",
    )  # fmt: skip
    for edge in ("train-start", "train-end", "test-start", "test-end"):
        train.add_argument(
            f"--{edge}", type=_utc_time, default=None,
            help=f"{edge.replace('-', ' ')} (ISO 8601 date or time; default: from the data)",
        )  # fmt: skip
    train.add_argument("--k", type=int, default=100, help="cards checked per day (precision@k)")
    train.add_argument("--seed", type=int, default=7, help="the candidates' random seed")
    train.add_argument(
        "--search-budget", type=float, default=None, metavar="SECONDS",
        help="hyper-parameter search time, shared by the searched kinds "
        "(default: FRAUD_SEARCH_BUDGET_SECONDS, 30; 0: each kind's default only)",
    )  # fmt: skip
    train.add_argument(
        "--review-budget", type=int, default=None, metavar="CARDS",
        help="cards a day the fraud team reviews: sets the review threshold "
        "(default: FRAUD_REVIEW_BUDGET_PER_DAY, 100)",
    )  # fmt: skip
    train.add_argument("--skip-invalid", action="store_true", help=skip_help + " beside each input")
    train.set_defaults(handler=_train)

    evaluate = command(
        "evaluate",
        "the former champion beside a new one under the protocol, and what each feature "
        "group adds (--ablation); registers nothing",
    )
    evaluate.add_argument("--transactions", type=Path, required=True, help="as for train")
    evaluate.add_argument("--labels", type=Path, required=True, help="as for train")
    evaluate.add_argument(
        "--ablation", action="store_true", help="also train LightGBM per feature group"
    )
    evaluate.add_argument(
        "--search-budget", type=float, default=None, metavar="SECONDS",
        help="as for train (default: FRAUD_SEARCH_BUDGET_SECONDS, 30)",
    )  # fmt: skip
    evaluate.add_argument("--seed", type=int, default=7, help="the candidates' random seed")
    evaluate.add_argument("--k", type=int, default=100, help="cards checked per day (precision@k)")
    evaluate.set_defaults(handler=_evaluate)

    score = command("score", "batch-score a transaction file with a registered model (backtest)")
    score.add_argument(
        "--transactions", type=Path, required=True, help="CSV or Parquet, as for train"
    )
    score.add_argument(
        "--labels", type=Path, default=None, help="with labels: AUC, average precision, CP@k"
    )
    score.add_argument("--out", type=Path, required=True, help="the scores: .csv or .parquet")
    score.add_argument(
        "--model", default=None,
        help="name@alias, name/VERSION or a models:/ URI; 'rules' for the rules fallback "
        "(default: FRAUD_MODEL_NAME@champion)",
    )  # fmt: skip
    score.add_argument("--k", type=int, default=100, help="cards checked per day (precision@k)")
    score.add_argument("--skip-invalid", action="store_true", help=skip_help + " beside --out")
    score.set_defaults(handler=_score)


def _utc_time(text: str) -> pd.Timestamp:
    moment = pd.Timestamp(text)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulator.generator import SimulationConfig, simulate
    from tooling.jobs import write_simulation

    config = SimulationConfig(
        seed=args.seed,
        days=args.days,
        customers=args.customers,
        terminals=args.terminals,
        drift_at=args.drift_at.to_pydatetime() if args.drift_at is not None else None,
        drift=frozenset(kind for kind in args.drift.split(",") if kind),
        **({"start": args.start.to_pydatetime()} if args.start is not None else {}),
    )
    if args.kafka:
        import asyncio

        from schemas.topics import LABELS, TRANSACTIONS
        from simulator.publish import publish
        from streams.app import create_topics

        asyncio.run(create_topics(settings))
        simulation = simulate(config)
        result = asyncio.run(
            publish(
                settings.kafka_bootstrap, simulation.transactions, simulation.labels, args.rate,
                progress=sys.stderr.isatty(),  # no carriage-return bar in a container's log
                transactions_topic=settings.topic(TRANSACTIONS.name),
                labels_topic=settings.topic(LABELS.name),
            )
        )  # fmt: skip
        _say(
            f"published {result.transactions} transactions and {result.labels} labels "
            f"in {result.seconds:.1f}s ({result.transactions / result.seconds:.0f} tx/s)"
        )
        return 0
    simulation = write_simulation(config, args.out, args.format)
    frauds = int(simulation.truth["is_fraud"].sum())
    share = frauds / max(len(simulation.transactions), 1)
    _say(
        f"wrote {len(simulation.transactions)} transactions ({frauds} frauds, {share:.2%}) "
        f"and {len(simulation.labels)} labels to {args.out}/"
    )
    return 0


def _train(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.jobs import train

    overrides = {
        "search_budget_seconds": args.search_budget,
        "review_budget_per_day": args.review_budget,
    }
    settings = settings.replace(
        **{name: value for name, value in overrides.items() if value is not None}
    )
    _wait_for_registry(settings)
    edges = ("train_start", "train_end", "test_start", "test_end")
    report = train(
        settings,
        args.transactions,
        args.labels,
        {edge: getattr(args, edge) for edge in edges},
        k=args.k,
        seed=args.seed,
        progress=sys.stderr.isatty(),
        skip_invalid=args.skip_invalid,
    )
    _say_skipped(report.skipped)
    window = report.window
    _say(
        f"window: train {window.train_start.date()}..{window.train_end.date()}, "
        f"test {window.test_start.date()}..{window.test_end.date()}; {report.summary}"
    )
    _say(f"validation (mean of folds; {report.trials} trials chose kind and parameters):")
    _say_metrics(report.validation)
    _say("test (once, with the choice made):")
    _say_metrics(report.metrics)
    if report.budget is not None:
        budget, thresholds = report.budget, report.budget.thresholds
        _say(
            f"thresholds for {settings.review_budget_per_day} reviews a day: review >= "
            f"{thresholds.review:.4f}, decline >= {thresholds.decline:.4f}; on validation "
            f"{budget.reviews_per_day:.1f} cards a day to review, {budget.review_precision:.1%} "
            f"of them fraud; {budget.declines_per_day:.1f} declines a day, precision "
            f"{budget.decline_precision:.1%} (target {settings.decline_precision:.0%})"
        )
    _say(f"trained in {report.seconds:.0f}s")
    role = "champion" if report.champion else "registered (champion unchanged)"
    _say(f"best: {report.best} -> {settings.model_name} version {report.version}, {role}")
    if report.champion:
        _announce_first_champion(settings, report)
    _say(
        f"backtest it: fraudstream score --model {settings.model_name}/{report.version} "
        f"--transactions FILE --labels FILE --out scored.csv"
    )
    return 0


def _evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.jobs import evaluate_models

    if args.search_budget is not None:
        settings = settings.replace(search_budget_seconds=args.search_budget)
    _say(
        evaluate_models(
            settings, args.transactions, args.labels, args.ablation, args.seed, args.k,
            progress=sys.stderr.isatty(),
        )
    )  # fmt: skip
    return 0


def _announce_first_champion(settings: Settings, report: Any) -> None:
    """Running scorers (on the rules until now) swap to a first champion without a restart;
    with no broker to tell, they load it when they start."""
    import asyncio
    from datetime import UTC, datetime

    from aiokafka.errors import KafkaError

    from schemas.events import DecisionThresholds, ModelUpdate
    from streams.app import create_topics
    from streams.lifecycle import publish_update

    version = report.version
    chosen = report.budget.thresholds if report.budget is not None else None
    update = ModelUpdate(
        model_name=settings.model_name, version=version, alias="champion",
        metrics=report.metrics.get(report.best, {}), previous_version=None,
        updated_at=datetime.now(UTC),
        thresholds=DecisionThresholds(review=chosen.review, decline=chosen.decline)
        if chosen else None,
    )  # fmt: skip

    async def announce() -> None:
        await create_topics(settings)
        await publish_update(settings, update)

    try:
        asyncio.run(asyncio.wait_for(announce(), timeout=20))
    except (OSError, TimeoutError, KafkaError) as error:
        _say(f"no broker at {settings.kafka_bootstrap} ({error!r}): scorers load it at start")
        return
    _say(f"published: {settings.model_name} version {version} is champion")


def _score(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.jobs import score_file

    _wait_for_registry(settings)
    model = args.model or f"{settings.model_name}@champion"
    report = score_file(
        settings,
        args.transactions,
        args.labels,
        args.out,
        model,
        k=args.k,
        progress=sys.stderr.isatty(),
        skip_invalid=args.skip_invalid,
    )
    _say_skipped(report.skipped)
    _say(f"scored {args.transactions} with {report.model} -> {args.out}")
    if report.metrics:
        _say("  " + "  ".join(f"{n}={v:.4f}" for n, v in report.metrics.items()))
    return 0


def _say_skipped(skipped: Sequence[Any]) -> None:
    for part in skipped:
        _say(
            f"skipped {part.rows:,} of {part.total:,} rows of {part.source} as invalid; "
            f"rows and reasons in {part.written}"
        )


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import uvloop

    from streams.app import build_app, create_topics, group_id
    from streams.gc_tuning import settle_collector
    from streams.wiring import make_parts

    # libuv's event loop: Faust spends most of a message's cost in asyncio machinery. Set
    # before anything asks for a loop: mode keeps the first loop a thread asked for, and
    # building the app asks, so a policy set later leaves the worker on asyncio's own loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _limit_registry_retries()
    agents = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    _wait_for_state_and_registry(settings)
    created = loop.run_until_complete(create_topics(settings, (group_id(settings, agents),)))
    if created:
        logger.info("created topics %s", ", ".join(created))
    parts = make_parts(settings)
    if settings.metrics_port:
        from streams.health import serve_health

        serve_health(
            parts.health, parts.metrics.registry, settings.metrics_host, settings.metrics_port
        )
    model = parts.models.current()
    logger.info(
        "serving %s/%s%s", model.name, model.version, " (rules fallback)" if model.fallback else ""
    )
    app = build_app(settings, parts, agents)
    settle_collector()
    logger.info("event loop: %s.%s", type(app.loop).__module__, type(app.loop).__name__)
    _run_faust_worker(app, args.verbose)
    return 0


def _run_faust_worker(app: Any, verbose: bool) -> None:
    import faust

    worker = faust.Worker(app, loglevel="INFO" if verbose else "WARNING", quiet=True)
    if not worker.stdout.isatty():
        # Faust's start-up spinner writes cursor codes (ESC[?25l) into a log file or pipe
        worker.spinner = None
    worker.execute_from_commandline()


def _trainer(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.app import create_topics
    from streams.health import Health, serve_health
    from streams.trainer import TrainerMetrics, build_trainer_app

    _wait_for_registry(settings)
    asyncio.run(create_topics(settings))
    health, metrics = Health(settings.liveness_timeout), TrainerMetrics()
    app = build_trainer_app(settings, health, metrics)
    if settings.metrics_port:
        serve_health(health, metrics.registry, settings.metrics_host, settings.metrics_port)
    logger.info("trainer: retrains on requests and on %r", settings.retrain_cron)
    _run_faust_worker(app, args.verbose)
    return 0


def _retrain(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from schemas.events import RetrainReason
    from streams.lifecycle import manual_request, publish_update, retrain

    _wait_for_registry(settings)
    outcome = retrain(settings, manual_request(RetrainReason.MANUAL, {"by": "fraudstream retrain"}))
    _say(f"retrain: {outcome.status}, version {outcome.version}: {outcome.reason}")
    if outcome.update is not None:
        asyncio.run(publish_update(settings, outcome.update))
        _say(f"published: {settings.model_name} version {outcome.update.version} is champion")
    return 0 if outcome.status != "skipped" else 1


def _promote(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.lifecycle import promote_version, publish_update

    _wait_for_registry(settings)
    update = promote_version(settings, args.version, args.reason)
    asyncio.run(publish_update(settings, update))
    _say(f"{update.model_name}: champion {update.previous_version} -> {update.version}")
    return 0


def _promote_challenger(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import redis

    from streams.challenger import ChallengerChannel
    from streams.lifecycle import challenger_through_the_gate, publish_update

    _wait_for_registry(settings)
    channel = ChallengerChannel(
        redis.Redis.from_url(settings.redis_url), f"{settings.topic_prefix}challenger"
    )
    challenger = channel.refresh()
    if challenger is None:
        _say("no online challenger has been published yet (is a worker running its agent?)")
        return 1
    outcome = challenger_through_the_gate(settings, challenger, force=args.force)
    _say(f"{challenger.version}: {outcome.status}, version {outcome.version}: {outcome.reason}")
    if outcome.update is not None:
        asyncio.run(publish_update(settings, outcome.update))
    return 0 if outcome.status != "skipped" else 1


def _rollback(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.lifecycle import publish_update, rollback_champion

    _wait_for_registry(settings)
    update = rollback_champion(settings)
    asyncio.run(publish_update(settings, update))
    _say(f"{update.model_name}: champion {update.previous_version} -> {update.version} (rollback)")
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from streams.app import create_topics
    from streams.rest import serve

    _limit_registry_retries()
    _wait_for_state_and_registry(settings)
    asyncio.run(create_topics(settings))
    serve(settings)
    return 0


def _wait_for_registry(settings: Settings) -> None:
    """Commands that need the registry wait for an MLflow server that is starting (a local
    store answers at once); past ``FRAUD_STARTUP_TIMEOUT`` they stop, naming it."""
    from streams.startup import wait_for_mlflow

    wait_for_mlflow(settings.mlflow_tracking_uri, settings.startup_timeout)


def _wait_for_state_and_registry(settings: Settings) -> None:
    """A scorer (worker or API) waits for Redis, which holds the feature state. It waits for
    MLflow only while it has no model of its own: with a locally cached one it starts at once
    (an MLflow outage must not stop scoring); with none, the rules decide after the wait, and
    the champion is loaded as soon as the registry answers."""
    from streams.startup import ServiceUnavailable, wait_for_mlflow, wait_for_redis

    wait_for_redis(settings.redis_url, settings.startup_timeout)
    if settings.model_cache_file.exists():
        return
    try:
        wait_for_mlflow(settings.mlflow_tracking_uri, settings.startup_timeout)
    except ServiceUnavailable as error:
        logger.warning("%s; the rules decide until it answers", error)


def _limit_registry_retries() -> None:
    """A scorer asks MLflow at start and on each update; it must give up within seconds so
    its cached model takes over (``MLFLOW_HTTP_*`` already set are kept)."""
    from streams.wiring import REGISTRY_HTTP_LIMITS

    for name, value in REGISTRY_HTTP_LIMITS.items():
        os.environ.setdefault(name, value)  # MLflow reads them at each request


def _chaos(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from tooling import chaos
    from tooling.bench import machine

    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(chosen) - set(SCENARIOS):
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    logs = settings.home / "chaos"
    logs.mkdir(parents=True, exist_ok=True)
    runs = {
        "kill": lambda: chaos.kill_nine(settings, logs, args.count, args.rate),
        "broker": lambda: chaos.broker_restart(settings, logs, rate=args.rate),
        "redis": lambda: chaos.redis_outage(settings, logs, rate=args.rate),
        "mlflow": lambda: chaos.mlflow_outage(settings, logs, rate=args.rate),
        "hostile": lambda: chaos.hostile(settings, logs, rate=args.rate),
        "clocks": lambda: chaos.bad_clocks(settings, logs, rate=args.rate),
        "backlog": lambda: chaos.backlog(settings, logs, args.backlog),
    }
    outcomes = []
    for name in chosen:
        outcomes.append(asyncio.run(runs[name]()))
        _say(f"{chaos.TABLE_HEAD}\n{outcomes[-1].row()}")
    text = "\n".join(
        [f"Machine: {machine()}", f"Command: `fraudstream chaos --count {args.count} "
         f"--rate {args.rate:.0f} --backlog {args.backlog} --only {','.join(chosen)}`", "",
         chaos.TABLE_HEAD, *(o.row() for o in outcomes)]
    )  # fmt: skip
    _say(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if all(o.lost == 0 for o in outcomes) else 1


def _bench(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from tooling.bench import report, run_bench
    from tooling.services.kafka_probe import probe

    if args.steps:
        from tooling.bench import machine, step_costs

        _say(f"Machine: {machine()}")
        for result in step_costs(settings, args.count):
            _say(f"  {result.name:<48} {result.value:8.1f} {result.unit}")
        return 0
    host, _, port = settings.kafka_bootstrap.rpartition(":")
    release = probe(host, int(port)).release
    kafka = f"{release.split('-')[0]} (metadata.version {release})"
    options = f"--rate {args.rate:.0f} --seconds {args.seconds:.0f}"
    if args.report:
        from tooling.bench_report import full_report, write_between_markers

        body = full_report(settings, kafka, _say, args.count, args.rate, args.seconds, args.history)
        write_between_markers(args.report, body)
        _say(body)
        _say(f"written to {args.report}")
        return 0
    if args.rest:
        from tooling.bench_rest import run_rest_bench

        results = asyncio.run(run_rest_bench(settings, args.seconds, args.rate))
        command = f"fraudstream bench --rest {options}"
    else:
        results = asyncio.run(run_bench(settings, args.count, args.rate, args.seconds))
        command = f"fraudstream bench --count {args.count} {options}"
    text = report(results, command, kafka)
    _say(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _log_to_file(path: Path, settings: Settings) -> None:
    """Send every log record of this process to ``path`` instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    configure_logging(logging.getLogger().level, settings.log_format, file=str(path))


def _say_metrics(per_candidate: dict[str, dict[str, float]]) -> None:
    for kind, metrics in per_candidate.items():
        _say(f"  {kind:<20} " + "  ".join(f"{n}={v:.4f}" for n, v in metrics.items()))


def _say(line: str) -> None:
    print(line)  # noqa: T201 - a command's output goes to stdout


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.contracts import CONTRACTS, export, rendered

    folder = args.out or CONTRACTS
    if args.action == "register":
        from tooling.services.schema_registry import register_contracts

        for subject, schema_id in register_contracts(settings, folder).items():
            _say(f"{subject}: id {schema_id} at {settings.schema_registry_url}")
        return 0
    if args.action == "export":
        for path in export(folder):
            _say(str(path))
        return 0
    stale = [
        name for name, text in rendered().items()
        if not (folder / name).exists() or (folder / name).read_text() != text
    ]  # fmt: skip
    for name in stale:
        _say(f"{folder / name}: differs from the code (run: fraudstream schemas export)")
    return 1 if stale else 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.settings_doc import markdown_table, rewrite

    if args.readme is not None:
        changed = rewrite(args.readme)
        _say(f"{args.readme}: {'table rewritten' if changed else 'table already current'}")
    elif args.markdown:
        print(markdown_table(), end="")  # noqa: T201
    else:
        for variable, value in to_env(settings).items():
            secret = variable == "FRAUD_API_KEYS"
            print(f"{variable}={'**********' if secret else value}")  # noqa: T201
    return 0


def _services(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.services import ALL, NAMES, LocalServices

    services = LocalServices(settings)
    names = tuple(name.strip() for name in args.only.split(",") if name.strip())
    if args.action == "up":
        chosen = names or NAMES + (("schema-registry",) if args.schema_registry else ())
        services.up(chosen, mlflow_server=args.mlflow_server)
    elif args.action == "down":
        stopped = services.down(names or ALL)
        logger.info("stopped: %s", ", ".join(stopped) or "nothing (fraudstream had started none)")
    statuses = services.status(names or None)
    for status in statuses:
        print(status.line())  # noqa: T201 - the command's output
    # status exits 3 when something is not running, as service managers do
    return 0 if args.action != "status" or all(s.running for s in statuses) else 3


def _smoke(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.smoke import smoke

    result = smoke(settings, args.count)
    print(  # noqa: T201 - the command's output
        f"smoke: sent {result.sent}, received {result.received}, missing {result.missing}, "
        f"duplicates {result.duplicates}, not echoed {result.not_echoed} "
        f"in {result.seconds:.1f}s -> {'OK' if result.ok else 'FAILED'}"
    )
    return 0 if result.ok else 1


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from tooling.demo import new_run, run_demo, run_dir
    from tooling.services import LocalServices

    run = new_run()
    log_file = run_dir(settings, run) / "logs" / "demo.log"
    if not args.verbose:  # the terminal shows the demo's own lines; the libraries' go here
        _log_to_file(log_file, settings)
    _say(f"fraudstream demo: the whole loop on real Kafka, Redis and MLflow; log: {log_file}")
    services = LocalServices(settings)
    try:
        _say("starting Kafka, Redis and MLflow (a first run also fetches Kafka's jars)")
        services.up()
        for status in services.status():
            _say(status.line())
        return run_demo(settings, run, args.data, _say)
    finally:
        if not args.keep_services:
            stopped = services.down(tuple(services.started))
            logger.info("stopped: %s", ", ".join(stopped) or "nothing")


if __name__ == "__main__":
    sys.exit(main())
