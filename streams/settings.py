"""One frozen settings object per process, built from ``FRAUD_*`` variables at the entry point.

Library code never reads ``os.environ``: the CLI calls :meth:`Settings.from_env` once (the
process environment over a ``.env`` file) and passes the result down. pydantic-settings reads
the variables; every field's type and range is checked, and ``Settings(...)`` in code takes
only what it is given (no environment).

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

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from croniter import croniter
from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.json_schema import JsonDict
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import PydanticBaseSettingsSource

from scoring.event_time import EventTimeRules
from streams.settings_source import EnvMapping, explain

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
PORT: dict[str, Any] = {"ge": 1, "le": 65_535}  # Field limits
SHARE: dict[str, Any] = {"ge": 0.0, "le": 1.0}


class SettingsError(ValueError):
    """A ``FRAUD_*`` variable holds a value that cannot be used."""


def _f(default: Any, doc: str, *, shown: str | None = None, **limits: Any) -> Any:
    """A setting: its default, what it means (the README's table), and its range; ``shown``
    is the default as the README gives it, where it is computed."""
    extra: JsonDict | None = {"shown": shown} if shown is not None else None
    return Field(default, description=doc, json_schema_extra=extra, **limits)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, frozen=True, extra="forbid", case_sensitive=False
    )

    home: Path = _f(Path(".fraudstream"), "where the local services and workers keep state")
    cache_dir: Path = _f(
        Path.home() / ".cache" / "fraudstream", "downloaded jars and tools",
        shown="~/.cache/fraudstream",
    )  # fmt: skip

    kafka_version: str = _f("4.1.1", "the Kafka the local services download and run")
    kafka_host: str = _f("127.0.0.1", "the local broker's address")
    kafka_port: int = _f(19092, "the local broker's port", **PORT)
    kafka_controller_port: int = _f(19093, "the local broker's KRaft controller port", **PORT)
    kafka_heap: str = _f("768m", "the local broker's Java heap")
    kafka_bootstrap_override: str | None = _f(
        None, "the brokers every process talks to (set it to use another cluster)",
        shown="127.0.0.1:$FRAUD_KAFKA_PORT",
    )  # fmt: skip
    kafka_data_dir_override: Path | None = _f(
        None, "the local broker's data", shown="$FRAUD_HOME/kafka/data"
    )
    kafka_log_dir_override: Path | None = _f(
        None, "the local broker's logs", shown="$FRAUD_HOME/kafka/logs"
    )

    redis_port: int = _f(16379, "the local Redis's port", **PORT)
    redis_url_override: str | None = _f(
        None,
        "the feature store every process talks to",
        shown="redis://127.0.0.1:$FRAUD_REDIS_PORT/0",
    )

    mlflow_port: int = _f(15000, "the local MLflow server's port (chaos runs, compose)", **PORT)
    mlflow_tracking_uri_override: str | None = _f(
        None, "the model registry; `MLFLOW_TRACKING_URI` is read when this is not set",
        shown="sqlite:///$FRAUD_HOME/mlflow/mlflow.db",
    )  # fmt: skip
    mlflow_artifact_dir_override: Path | None = _f(
        None, "where a local MLflow keeps model files", shown="$FRAUD_HOME/mlflow/artifacts"
    )

    prometheus_port: int = _f(
        19090, "`services up --only prometheus`: the local Prometheus's port", **PORT
    )
    alertmanager_port: int = _f(
        19094, "`services up --only alertmanager`: the local Alertmanager's port", **PORT
    )

    schema_registry_port: int = _f(
        18081, "`services up --schema-registry`: the local schema registry's port", **PORT
    )
    schema_registry_url_override: str | None = _f(
        None, "the Confluent-compatible registry `schemas register` publishes to",
        shown="http://127.0.0.1:$FRAUD_SCHEMA_REGISTRY_PORT/apis/ccompat/v7",
    )  # fmt: skip

    app_id: str = _f("fraudstream", "the Faust app and its consumer group: workers share it")
    topic_prefix: str = _f("", "prepended to every topic name (isolates tests, tenants)")
    partitions: int = _f(6, "partitions of each topic: the most workers that do work", ge=1)
    batch_size: int = _f(500, "transactions scored together", ge=1, le=100_000)
    batch_within: float = _f(
        0.005, "seconds a batch waits to fill (under load it fills first)", ge=0.0, le=10.0
    )
    startup_timeout: float = _f(
        120.0, "seconds a starting process waits for Kafka, Redis, MLflow", gt=0.0
    )
    broker_session_timeout: float = _f(10.0, "the consumer group's session timeout, s", gt=0.0)
    broker_heartbeat_interval: float = _f(1.0, "the consumer's heartbeat interval, s", gt=0.0)
    broker_rebalance_timeout: float = _f(10.0, "the consumer group's rebalance timeout, s", gt=0.0)

    metrics_port: int = _f(
        9464, "a worker's or trainer's metrics, /health and /ready (0: off)", ge=0, le=65_535
    )
    metrics_host: str = _f("127.0.0.1", "where they listen (0.0.0.0 in a container)")
    training_store: str | None = _f(
        None, "a directory or fsspec URL for the training rows",
        shown="$FRAUD_HOME/training-store",
    )  # fmt: skip

    api_host: str = _f("127.0.0.1", "where the REST API listens")
    api_port: int = _f(8000, "the REST API's port", **PORT)
    api_keys: SecretStr | None = _f(
        None, "name:secret[:scope+scope], comma-separated; the API refuses to start without one"
    )
    api_keys_file: Path | None = _f(None, "the same, one per line: keeps secrets out of the env")
    api_record: bool = _f(False, "/predict also publishes the transaction to `transactions`")
    api_max_body_bytes: int = _f(1_048_576, "a larger request body is a 413", ge=1)
    api_max_batch: int = _f(100, "transactions in one /predict/batch", ge=1, le=10_000)
    api_rate_per_key: float = _f(5_000.0, "requests a second per key, then 429", gt=0.0)
    api_cors_origins: str = _f("", "comma-separated origins; empty: no cross-origin calls")
    log_format: Literal["text", "json"] = _f(
        "text", "text (a line a record) or json (an object a record: timestamp, level, "
        "logger, message, transaction id and model version where known)",
    )  # fmt: skip
    liveness_timeout: float = _f(
        30.0, "seconds without an event-loop heartbeat before /health is 503", gt=0.0
    )
    ready_on_fallback: bool = _f(False, "whether the rules fallback alone counts as ready")
    api_access_log: bool = _f(True, "one line per request: method, path, status (never a body)")

    max_future_skew: float = _f(
        300.0, "seconds an event time may be ahead of its ingest time", ge=0.0
    )
    max_lateness: float = _f(
        86_400.0, "seconds past the longest feature window a late event still counts", ge=0.0
    )
    max_event_age_days: float = _f(
        120.0, "older than the stream's newest event by this many days: refused", gt=0.0
    )
    max_partition_lead: float = _f(
        60.0, "event-time seconds a partition may lead the others (0: off)", ge=0.0
    )
    partition_idle_timeout: float = _f(
        2.0, "seconds a silent partition takes to stop holding the others back", ge=0.0
    )

    model_name: str = _f("fraud-detector", "the registered model the scorers serve")
    label_delay_days: int = _f(
        7, "how long labels take: terminal risk looks this far back", ge=0, le=365
    )
    review_threshold: float = _f(
        0.5, "review above this: the rules, and versions without thresholds", **SHARE
    )
    decline_threshold: float = _f(0.9, "decline above this (same)", **SHARE)
    review_budget_per_day: int = _f(
        100, "cards a day an analyst team checks: a version's review threshold", ge=1
    )
    decline_precision: float = _f(
        0.9, "how often declines without review must be fraud", gt=0.0, le=1.0
    )
    search_budget_seconds: float = _f(30.0, "hyper-parameter search per training run", ge=0.0)
    validation_days: int = _f(7, "each validation fold's length, days", ge=1)
    validation_folds: int = _f(3, "prequential validation folds", ge=1)
    validation_fold_shift_days: int = _f(7, "days between the folds", ge=1)
    train_genuine_per_fraud: float = _f(
        20.0, "genuine training rows kept per fraud (0: all)", ge=0.0
    )
    training_threads: int = _f(2, "cores a training fit may use (scorers use one)", ge=1)

    drift_window_events: int = _f(5_000, "scored events per drift window", ge=1)
    drift_window_seconds: float = _f(
        0.0, "event-time span that also closes a window (0: off)", ge=0.0
    )
    drift_min_events: int = _f(500, "a smaller (time-closed) window is not tested", ge=1)
    drift_alpha: float = _f(0.01, "a test's p-value below this is significant", gt=0.0, lt=1.0)
    drift_min_psi: float = _f(0.1, "and a PSI at least this is material", ge=0.0)
    drift_severe_share: float = _f(0.2, "more drifted features than this: retrain", **SHARE)
    drift_rearm_windows: int = _f(
        3, "calm windows after a request before another may be sent", ge=0
    )
    drift_report_every: int = _f(10, "an Evidently HTML report every this many windows", ge=1)

    challenger_delay_days: int = _f(
        14, "no fraud label this long after a transaction: the challenger learns genuine", ge=1
    )

    retrain_cron: str = _f("0 3 * * 1", "the trainer's schedule (cron, UTC): Mondays 03:00")
    retrain_train_days: int = _f(30, "days a retrain trains on", ge=1)
    retrain_test_days: int = _f(3, "the gate's window, the latest with mature labels", ge=1)
    retrain_after_drift_days: int = _f(3, "post-drift days the training rows must hold", ge=0)
    promotion_margin: float = _f(
        0.01, "average precision the challenger must gain to be promoted", ge=0.0
    )
    trainer_poll_seconds: float = _f(
        5.0, "how often a waiting drift request is checked again", gt=0.0
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Settings(...) takes only its arguments: the environment is read in from_env
        return (init_settings,)

    @field_validator("home", "cache_dir", "kafka_data_dir_override", "kafka_log_dir_override",
                     "mlflow_artifact_dir_override", "api_keys_file")  # fmt: skip
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("retrain_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError("must be a cron expression such as '0 3 * * 1'")
        return value

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Settings:
        if self.review_threshold > self.decline_threshold:
            raise ValueError(
                "FRAUD_REVIEW_THRESHOLD must not exceed FRAUD_DECLINE_THRESHOLD, got "
                f"{self.review_threshold} > {self.decline_threshold}"
            )
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, checked like the original."""
        return type(self)(**{**dict(self), **changes})

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
    def schema_registry_url(self) -> str:
        return self.schema_registry_url_override or (
            f"http://127.0.0.1:{self.schema_registry_port}/apis/ccompat/v7"
        )

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env_file: Path | None = None) -> Settings:
        """Read every ``FRAUD_<FIELD>`` that is set, in ``environ`` or else in ``env_file``
        (a ``.env`` file, if it exists); unknown ``FRAUD_*`` names are an error."""
        variables = {
            **(dotenv_values(env_file) if env_file and env_file.is_file() else {}), **environ,
        }  # fmt: skip
        # FRAUD_KAFKA_BOOTSTRAP sets kafka_bootstrap_override, and so on: the property reads it
        fields = {name.removesuffix("_override"): name for name in cls.model_fields}
        named: dict[str, str] = {}
        for key, raw in variables.items():
            name = key.removeprefix(PREFIX).lower()
            if not key.startswith(PREFIX) or raw in ("", None) or name in _NOT_SETTINGS:
                continue
            if name not in fields:
                raise SettingsError(f"{key} is not a fraudstream setting")
            named[f"{PREFIX}{fields[name]}"] = str(raw)
        # MLflow's own variable, what an MLflow user sets first; FRAUD_* wins when both are
        # set. (MLFLOW_REGISTRY_URI needs nothing here: MLflow's client reads it itself.)
        if variables.get("MLFLOW_TRACKING_URI") and "FRAUD_MLFLOW_TRACKING_URI" not in variables:
            named[f"{PREFIX}mlflow_tracking_uri_override"] = str(variables["MLFLOW_TRACKING_URI"])
        try:
            return cls(**EnvMapping(cls, named)())
        except ValidationError as error:
            raise SettingsError(explain(error, named, PREFIX)) from None


def to_env(settings: Settings) -> dict[str, str]:
    """``FRAUD_*`` variables that rebuild ``settings`` in another process.

    >>> s = Settings(home=Path("/srv/fs"), partitions=3, redis_url_override="redis://r:1/0")
    >>> Settings.from_env(to_env(s)) == s
    True
    """
    env = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            key = f"{PREFIX}{name.removesuffix('_override').upper()}"
            env[key] = str(value.absolute() if isinstance(value, Path) else value)
    return env


# FRAUD_* variables read by other tools (tests, CI), not by the settings object.
_NOT_SETTINGS = frozenset({"services", "keep_services"})
