"""The ``fraudstream`` command line: the one place the environment is read."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from streams.settings import Settings, SettingsError

logger = logging.getLogger("fraudstream")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for chatty in ("faust", "mode", "aiokafka", "alembic", "mlflow"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(os.environ)
        return int(args.handler(settings, args))
    except (SettingsError, RuntimeError) as error:
        # ServiceError, TopicMismatch and friends say what to do; a traceback would hide it
        print(f"fraudstream: {error}", file=sys.stderr)  # noqa: T201
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraudstream", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    services = commands.add_parser(
        "services", help="local Kafka (KRaft), Redis and MLflow without Docker"
    )
    services.add_argument("action", choices=["up", "down", "status"])
    services.add_argument(
        "--only", default="kafka,redis,mlflow", help="comma-separated subset (default: all three)"
    )
    services.add_argument(
        "--mlflow-server",
        action="store_true",
        help="with up: also serve the MLflow UI on FRAUD_MLFLOW_PORT",
    )
    services.set_defaults(handler=_services)

    smoke = commands.add_parser(
        "smoke", help="records through Kafka and a Faust agent, counted back"
    )
    smoke.add_argument("--count", type=int, default=10_000)
    smoke.set_defaults(handler=_smoke)

    demo = commands.add_parser("demo", help="services up, then the main flow on embedded defaults")
    demo.add_argument("--count", type=int, default=10_000)
    demo.add_argument(
        "--keep-services", action="store_true", help="leave the services running afterwards"
    )
    demo.set_defaults(handler=_demo)
    return parser


def _services(settings: Settings, args: argparse.Namespace) -> int:
    from streams.services import LocalServices

    services = LocalServices(settings)
    names = tuple(name.strip() for name in args.only.split(",") if name.strip())
    if args.action == "up":
        services.up(names, mlflow_server=args.mlflow_server)
    elif args.action == "down":
        stopped = services.down(names)
        logger.info("stopped: %s", ", ".join(stopped) or "nothing (fraudstream had started none)")
    statuses = services.status(names)
    for status in statuses:
        print(status.line())  # noqa: T201 - the command's output
    # status exits 3 when something is not running, as service managers do
    return 0 if args.action != "status" or all(s.running for s in statuses) else 3


def _smoke(settings: Settings, args: argparse.Namespace) -> int:
    from streams.smoke import smoke

    result = smoke(settings, args.count)
    print(  # noqa: T201 - the command's output
        f"smoke: sent {result.sent}, received {result.received}, missing {result.missing}, "
        f"duplicates {result.duplicates}, not echoed {result.not_echoed} "
        f"in {result.seconds:.1f}s -> {'OK' if result.ok else 'FAILED'}"
    )
    return 0 if result.ok else 1


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.services import LocalServices

    services = LocalServices(settings)
    already_running = {status.name for status in services.status() if status.running}
    try:
        services.up()
        for status in services.status():
            print(status.line())  # noqa: T201 - the command's output
        return _smoke(settings, args)
    finally:
        if not args.keep_services:
            started_here = tuple(n for n in ("kafka", "redis") if n not in already_running)
            logger.info("stopped: %s", ", ".join(services.down(started_here)) or "nothing")


if __name__ == "__main__":
    sys.exit(main())
