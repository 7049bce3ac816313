from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streams.settings import Settings, SettingsError, to_env
from tooling.settings_doc import with_table


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
    with pytest.raises(SettingsError, match="FRAUD_KAFKA_PORT: Input should be a valid integer"):
        Settings.from_env({"FRAUD_KAFKA_PORT": "x"})


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(ValidationError, match="frozen"):
        settings.kafka_port = 1  # type: ignore[misc]


def test_mlflow_tracking_uri_is_honoured_and_fraud_mlflow_tracking_uri_wins() -> None:
    mlflow_only = Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    both = Settings.from_env(
        {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "FRAUD_MLFLOW_TRACKING_URI": "sqlite:///x"}
    )

    assert mlflow_only.mlflow_tracking_uri == "http://mlflow:5000"
    assert both.mlflow_tracking_uri == "sqlite:///x"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FRAUD_KAFKA_PORT", "70000",
         "FRAUD_KAFKA_PORT: Input should be less than or equal to 65535, got '70000'"),
        ("FRAUD_PARTITIONS", "0",
         "FRAUD_PARTITIONS: Input should be greater than or equal to 1, got '0'"),
        ("FRAUD_DRIFT_ALPHA", "1.5", "FRAUD_DRIFT_ALPHA: Input should be less than 1, got '1.5'"),
        ("FRAUD_API_RECORD", "maybe", "FRAUD_API_RECORD: Input should be a valid boolean"),
        ("FRAUD_RETRAIN_CRON", "every monday", "FRAUD_RETRAIN_CRON: must be a cron expression"),
        ("FRAUD_KAFKA_BOOTSTRAP", "", None),  # empty: unset, the default
    ],
)  # fmt: skip
def test_each_value_is_checked_against_its_range(
    variable: str, value: str, expected: str | None
) -> None:
    if expected is None:
        assert Settings.from_env({variable: value}) == Settings()
        return
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert str(error.value).startswith(expected)


def test_review_must_not_exceed_decline() -> None:
    with pytest.raises(SettingsError, match="must not exceed FRAUD_DECLINE_THRESHOLD"):
        Settings.from_env({"FRAUD_REVIEW_THRESHOLD": "0.95", "FRAUD_DECLINE_THRESHOLD": "0.9"})


def test_api_keys_are_secret_in_repr_and_errors_yet_reach_other_processes() -> None:
    settings = Settings.from_env({"FRAUD_API_KEYS": "ops:0123456789abcdef0123456789abcdef"})

    assert isinstance(settings.api_keys, SecretStr)
    assert "0123456789abcdef" not in repr(settings)
    assert to_env(settings)["FRAUD_API_KEYS"] == "ops:0123456789abcdef0123456789abcdef"
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"FRAUD_API_KEYS": "ops:0123456789abcdef", "FRAUD_PARTITIONS": "x"})
    assert "0123456789abcdef" not in str(error.value)


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# compose reads this file too\nPOSTGRES_PASSWORD=x\n"
        "FRAUD_PARTITIONS=3\nFRAUD_BATCH_SIZE=50\n"
    )

    settings = Settings.from_env({"FRAUD_BATCH_SIZE": "70"}, env_file=dotenv)

    assert (settings.partitions, settings.batch_size) == (3, 70)
    assert Settings.from_env({}, env_file=tmp_path / "missing.env") == Settings()


def test_a_typo_in_the_dotenv_file_is_refused_too(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("FRAUD_PARTITONS=3\n")

    with pytest.raises(SettingsError, match="FRAUD_PARTITONS is not a fraudstream setting"):
        Settings.from_env({}, env_file=dotenv)


def test_replace_checks_like_the_constructor() -> None:
    settings = Settings()

    assert settings.replace(partitions=2).partitions == 2
    with pytest.raises(ValidationError, match="partitions"):
        settings.replace(partitions=-1)


def test_the_readme_table_is_made_from_the_settings_class() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()

    assert with_table(readme) == readme, "run: .venv/bin/fraudstream settings --readme README.md"
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} has no description for the README"
        assert f"`FRAUD_{name.removesuffix('_override').upper()}`" in readme
