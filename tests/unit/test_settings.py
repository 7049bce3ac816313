from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import Settings, SettingsError


def test_defaults_point_at_the_local_services() -> None:
    settings = Settings.from_env({})

    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.redis_url == "redis://127.0.0.1:16379/0"
    assert settings.mlflow_tracking_uri.startswith("sqlite:///")
    assert settings.mlflow_tracking_uri.endswith(".fraudstream/mlflow/mlflow.db")


def test_overrides_replace_derived_addresses_and_paths() -> None:
    settings = Settings.from_env(
        {
            "FRAUD_KAFKA_BOOTSTRAP": "broker:9092",
            "FRAUD_REDIS_URL": "redis://cache:6379/2",
            "FRAUD_KAFKA_DATA_DIR": "/data/kafka",
            "FRAUD_REDIS_PORT": "7000",
            "UNRELATED": "ignored",
        }
    )

    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.kafka_data_dir == Path("/data/kafka")
    assert settings.redis_port == 7000


def test_unknown_fraud_variable_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="FRAUD_KAFKA_PROT is not a fraudstream setting"):
        Settings.from_env({"FRAUD_KAFKA_PROT": "1"})


def test_a_port_must_be_a_number() -> None:
    with pytest.raises(SettingsError, match="FRAUD_KAFKA_PORT must be a whole number, got 'x'"):
        Settings.from_env({"FRAUD_KAFKA_PORT": "x"})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.kafka_port = 1  # type: ignore[misc]


def test_mlflow_tracking_uri_is_honoured_and_fraud_mlflow_tracking_uri_wins() -> None:
    mlflow_only = Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    both = Settings.from_env(
        {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "FRAUD_MLFLOW_TRACKING_URI": "sqlite:///x"}
    )

    assert mlflow_only.mlflow_tracking_uri == "http://mlflow:5000"
    assert both.mlflow_tracking_uri == "sqlite:///x"
