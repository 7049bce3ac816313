"""FRAUD_LOG_FORMAT: structured logs for machines, safe text either way."""

from __future__ import annotations

import io
import json
import logging

import pytest

from streams.logs import configure_logging
from streams.settings import Settings, SettingsError


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_a_record_with_the_fields_named_and_no_card_number(
    restore_root: object,
) -> None:
    out = io.StringIO()
    configure_logging(logging.INFO, "json", stream=out)

    logging.getLogger("streams.scorer").warning(
        "dead letter from card %s \x1b[31m", "4111 1111 1111 1111",
        extra={"transaction_id": "tx-1", "model_version": "3"},
    )  # fmt: skip

    (line,) = out.getvalue().splitlines()
    record = json.loads(line)
    assert {k: record[k] for k in ("level", "logger", "transaction_id", "model_version")} == {
        "level": "WARNING", "logger": "streams.scorer", "transaction_id": "tx-1",
        "model_version": "3",
    }  # fmt: skip
    assert record["message"] == "dead letter from card ************1111 "
    assert record["timestamp"].startswith("20")
    assert "4111" not in line.replace("************1111", "") and "\x1b" not in line


def test_text_logs_mask_too(restore_root: object) -> None:
    out = io.StringIO()
    configure_logging(logging.INFO, "text", stream=out)

    logging.getLogger("x").info("pan 4111111111111111")

    assert out.getvalue().rstrip().endswith("INFO x: pan ************1111")


def test_an_unknown_log_format_is_refused_by_its_variable() -> None:
    assert Settings.from_env({"FRAUD_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SettingsError, match="FRAUD_LOG_FORMAT: Input should be 'text' or 'json'"):
        Settings.from_env({"FRAUD_LOG_FORMAT": "xml"})
