"""How every process logs: ``FRAUD_LOG_FORMAT=text`` (a line a record, for people) or
``json`` (an object a record, for machines: ``timestamp``, ``level``, ``logger``,
``message``, and ``transaction_id`` / ``model_version`` / the origin of a dead letter where
the call names them). Either way a record's text has every card-number-like digit run masked
and no terminal control codes.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

from schemas.pan import redact_pans

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
HANDLER_NAME = "fraudstream"
CONTROL_CODES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]")


class SafeText(logging.Filter):
    """Masks card-number-like digit runs and drops terminal control codes from a record's
    message (its arguments merged in first), whatever logged it.

    >>> message = "card %s \\x1b[31mred"
    >>> record = logging.LogRecord("x", logging.INFO, "", 0, message, ("4111111111111111",), None)
    >>> SafeText().filter(record), record.getMessage()
    (True, 'card ************1111 red')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = CONTROL_CODES.sub("", redact_pans(message.encode()).decode(errors="replace"))
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(
    level: int, log_format: str = "text", stream: TextIO | None = None, file: str | None = None
) -> None:
    """The root logger of this process: one handler (``stream``, stderr, or ``file``), the
    chosen format, safe text."""
    handler: logging.Handler = (
        logging.FileHandler(file) if file else logging.StreamHandler(stream or sys.stderr)
    )
    handler.setFormatter(formatter(log_format))
    handler.addFilter(SafeText())
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for previous in list(root.handlers):  # ours from before (another's, e.g. pytest's, stays)
        if previous.get_name() == HANDLER_NAME:
            root.removeHandler(previous)
            previous.close()
    root.addHandler(handler)
    root.setLevel(level)
