"""One frozen settings object per process, built from ``FRAUD_*`` variables at the entry point.

Library code never reads ``os.environ``: the CLI calls :meth:`Settings.from_env` once and
passes the result down.

>>> s = Settings.from_env({"FRAUD_HOME": "/srv/fs", "FRAUD_KAFKA_PORT": "29092"})
>>> s.kafka_bootstrap
'127.0.0.1:29092'
>>> str(s.kafka_data_dir)
'/srv/fs/kafka/data'
>>> s.mlflow_tracking_uri
'sqlite:////srv/fs/mlflow/mlflow.db'
>>> Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}).mlflow_tracking_uri
'http://mlflow:5000'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from scoring.event_time import EventTimeRules

if TYPE_CHECKING:  # training's imports (LightGBM, Optuna) load only where training runs
    from retraining.protocol import Protocol
    from retraining.training import TrainingOptions

PREFIX = "FRAUD_"

RedisKeyspace = Literal["features", "api", "challenger", "frontiers"]
# what each keyspace's keys start with after the topic prefix (the feature state's "fs" is
# in every Redis written before; renaming it would orphan that state)
REDIS_KEYSPACES: dict[str, str] = {
    "features": "fs", "api": "api", "challenger": "challenger", "frontiers": "frontiers:",
}  # fmt: skip


class SettingsError(ValueError):
    """A ``FRAUD_*`` variable holds a value that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path = Path(".fraudstream")
    cache_dir: Path = Path.home() / ".cache" / "fraudstream"

    kafka_version: str = "4.1.1"
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "768m"
    kafka_bootstrap_override: str | None = None
    kafka_data_dir_override: Path | None = None
    kafka_log_dir_override: Path | None = None

    redis_port: int = 16379
    redis_url_override: str | None = None

    mlflow_port: int = 15000
    mlflow_tracking_uri_override: str | None = None
    mlflow_artifact_dir_override: Path | None = None

    app_id: str = "fraudstream"  # the Faust app and its consumer group: workers share it
    topic_prefix: str = ""  # prepended to every topic name (isolates tests, tenants)
    partitions: int = 6
    batch_size: int = 500  # transactions scored together
    batch_within: float = 0.005  # seconds a batch waits to fill (under load it fills first)
    startup_timeout: float = 120.0  # seconds a starting process waits for Kafka, Redis, MLflow
    broker_session_timeout: float = 10.0
    broker_heartbeat_interval: float = 1.0
    broker_rebalance_timeout: float = 10.0

    metrics_port: int = 9464  # Prometheus metrics of a worker; 0 turns the endpoint off
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can scrape it
    training_store: str | None = (
        None  # a directory or fsspec URL; default $FRAUD_HOME/training-store
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: str | None = None  # name:secret[:scope+scope], comma-separated (see README)
    api_keys_file: Path | None = None  # the same, one per line: keep secrets out of the env
    api_record: bool = False  # /predict also publishes the transaction to `transactions`
    api_max_body_bytes: int = 1_048_576
    api_max_batch: int = 100
    api_rate_per_key: float = 5_000.0  # requests a second per key
    api_cors_origins: str = ""  # comma-separated; empty: no cross-origin calls
    log_format: str = "text"  # text (a line a record) or json (an object a record)
    liveness_timeout: float = 30.0  # seconds without an event-loop heartbeat: /health is 503
    ready_on_fallback: bool = False  # whether the rules fallback alone counts as ready
    api_access_log: bool = True  # one line per request: method, path, status (never a body)

    max_future_skew: float = 300.0  # seconds an event time may be ahead of its ingest time
    max_lateness: float = 86_400.0  # seconds past the longest feature window a late event counts
    max_event_age_days: float = 120.0  # older than the stream's newest event by this: refused
    max_partition_lead: float = 60.0  # event-time seconds a partition may lead the others; 0: off
    partition_idle_timeout: float = 2.0  # a partition silent this long holds no other back

    model_name: str = "fraud-detector"
    label_delay_days: int = 7  # how long labels take: terminal risk looks this far back
    review_threshold: float = 0.5  # for the rules, and models registered without thresholds
    decline_threshold: float = 0.9
    # what a fraud team can review: a model's own thresholds come from it (on validation)
    review_budget_per_day: int = 100  # cards a day an analyst team checks
    decline_precision: float = 0.9  # declines without review must be fraud this often
    search_budget_seconds: float = 30.0  # hyper-parameter search per training run
    validation_days: int = 7  # each validation fold's length
    validation_folds: int = 3  # prequential folds, each a week (fold_shift_days) earlier
    validation_fold_shift_days: int = 7
    train_genuine_per_fraud: float = 20.0  # genuine training rows kept per fraud; 0: all
    training_threads: int = 2  # cores a training fit may use (scorers always use one)

    drift_window_events: int = 5_000  # scored events per drift window
    drift_window_seconds: float = 0.0  # event-time span that also closes a window; 0: off
    drift_min_events: int = 500  # a smaller (time-closed) window is not tested
    drift_alpha: float = 0.01  # a test's p-value below this is significant
    drift_min_psi: float = 0.1  # and a PSI at least this is material
    drift_severe_share: float = 0.2  # more drifted features than this: retrain
    drift_rearm_windows: int = 3  # calm windows after a request before another may be sent
    drift_report_every: int = 10  # an Evidently HTML report every this many windows

    challenger_delay_days: int = 14  # no fraud label this long after a transaction: genuine

    retrain_cron: str = "0 3 * * 1"  # the trainer's schedule (cron, UTC): Mondays 03:00
    retrain_train_days: int = 30
    retrain_test_days: int = 3  # the gate's window, the latest with mature labels
    retrain_after_drift_days: int = 3  # post-drift days the training rows must hold
    promotion_margin: float = 0.01  # average precision the challenger must gain
    trainer_poll_seconds: float = 5.0  # how often a waiting drift request is re-checked

    def training_options(self, seed: int = 7, k: int = 100) -> TrainingOptions:
        from retraining.budget import ReviewBudget
        from retraining.training import TrainingOptions

        return TrainingOptions(
            search_budget_seconds=self.search_budget_seconds,
            genuine_per_fraud=self.train_genuine_per_fraud or None,
            review=ReviewBudget(self.review_budget_per_day, self.decline_precision),
            seed=seed,
            k=k,
            threads=self.training_threads,
        )

    def protocol(self) -> Protocol:
        from retraining.protocol import Protocol

        return Protocol(
            self.validation_days, self.validation_folds, self.validation_fold_shift_days
        )

    def event_time_rules(self) -> EventTimeRules:
        return EventTimeRules.of(
            self.max_future_skew, self.max_lateness, self.max_event_age_days,
            self.label_delay_days,
        )  # fmt: skip

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def redis_prefix(self, keyspace: RedisKeyspace) -> str:
        """Where a keyspace's Redis keys start: the one place their names are made.

        >>> Settings(topic_prefix="t1.").redis_prefix("features")
        't1.fs'
        """
        return f"{self.topic_prefix}{REDIS_KEYSPACES[keyspace]}"

    @property
    def training_store_url(self) -> str:
        return self.training_store or str((self.home / "training-store").absolute())

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def faust_datadir(self, app_id: str) -> str:
        """Where Faust keeps ``app_id``'s local files. Faust makes only the last folder, so
        the parent is made here (a fresh home has none)."""
        parent = self.home / "faust"
        parent.mkdir(parents=True, exist_ok=True)
        return str(parent / app_id)

    @property
    def model_cache_file(self) -> Path:
        return self.home / "models" / f"{self.app_id}-{self.model_name}.pkl"

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_override or f"{self.kafka_host}:{self.kafka_port}"

    @property
    def kafka_data_dir(self) -> Path:
        return self.kafka_data_dir_override or self.home / "kafka" / "data"

    @property
    def kafka_log_dir(self) -> Path:
        return self.kafka_log_dir_override or self.home / "kafka" / "logs"

    @property
    def redis_url(self) -> str:
        return self.redis_url_override or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri_override:
            return self.mlflow_tracking_uri_override
        return f"sqlite:///{(self.home / 'mlflow' / 'mlflow.db').absolute()}"

    @property
    def mlflow_artifact_dir(self) -> Path:
        return (self.mlflow_artifact_dir_override or self.home / "mlflow" / "artifacts").absolute()

    @property
    def mlflow_server_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"FRAUD_LOG_FORMAT must be text or json, got {self.log_format!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every ``FRAUD_<FIELD>`` that is set; unknown ``FRAUD_*`` names are an error."""
        # FRAUD_KAFKA_BOOTSTRAP sets kafka_bootstrap_override, and so on: the property reads it.
        fields = {f.name.removesuffix("_override"): f for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for key, raw in environ.items():
            name = key.removeprefix(PREFIX).lower()
            if not key.startswith(PREFIX) or raw == "" or name in _NOT_SETTINGS:
                continue
            if name not in fields:
                raise SettingsError(f"{key} is not a fraudstream setting")
            values[fields[name].name] = _convert(key, raw, fields[name].type)
        # MLflow's own variable, what an MLflow user sets first; FRAUD_* wins when both are
        # set. (MLFLOW_REGISTRY_URI needs nothing here: MLflow's client reads it itself.)
        if "mlflow_tracking_uri_override" not in values and environ.get("MLFLOW_TRACKING_URI"):
            values["mlflow_tracking_uri_override"] = environ["MLFLOW_TRACKING_URI"]
        return cls(**values)  # type: ignore[arg-type]


def to_env(settings: Settings) -> dict[str, str]:
    """``FRAUD_*`` variables that rebuild ``settings`` in another process.

    >>> s = Settings(home=Path("/srv/fs"), partitions=3, redis_url_override="redis://r:1/0")
    >>> Settings.from_env(to_env(s)) == s
    True
    """
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            name = field.name.removesuffix("_override").upper()
            env[f"{PREFIX}{name}"] = str(value.absolute() if isinstance(value, Path) else value)
    return env


# FRAUD_* variables read by other tools (tests, CI), not by the settings object.
_NOT_SETTINGS = frozenset({"services", "keep_services"})


def _convert(key: str, raw: str, annotation: object) -> object:
    text = str(annotation)
    if text == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{key} must be a whole number, got {raw!r}") from None
    if text == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{key} must be a number, got {raw!r}") from None
    if text == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{key} must be true or false, got {raw!r}")
    if "Path" in text:
        return Path(raw).expanduser()
    return raw
