"""The topics' contracts for every language: a JSON Schema (draft 2020-12) per topic value and
an AsyncAPI 3 document of the topics, generated from the pydantic models in this package.
``fraudstream schemas export`` writes them to ``schemas/contracts/`` (checked in; a test
fails when the code and the files differ). A Java or Go producer generates its types from,
or validates against, these files.

The JSON Schemas say what the validator accepts at the edge, except what no schema can: the
checks that need the stream (event time against the broker's clock and the partition's
newest event) and the card-number refusal of identifier fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.topics import ALL_TOPICS, TopicSpec

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
CONTRACTS = Path(__file__).resolve().parent / "contracts"
ASYNCAPI_FILE = "asyncapi.json"
VERSION = "1"


def schema_file(spec: TopicSpec) -> str:
    """
    >>> from schemas.topics import SCORED
    >>> schema_file(SCORED)
    'transactions.scored.schema.json'
    """
    return f"{spec.name}.schema.json"


def json_schema(spec: TopicSpec) -> dict[str, Any]:
    schema = spec.schema.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA,
        "$id": schema_file(spec),
        **schema,
        "description": f"The value of a message on the `{spec.name}` topic"
        + (f", keyed by its `{spec.key}`." if spec.key else " (no key)."),
    }


def asyncapi() -> dict[str, Any]:
    """The topics as an AsyncAPI 3.0 document; message payloads reference the JSON Schemas."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in ALL_TOPICS:
        name = spec.schema.__name__
        message: dict[str, Any] = {
            "name": name,
            "contentType": "application/json",
            "payload": {"schemaFormat": "application/schema+json;version=draft-2020-12",
                        "schema": {"$ref": f"./{schema_file(spec)}"}},
        }  # fmt: skip
        if spec.key:
            message["bindings"] = {
                "kafka": {
                    "key": {"type": "string", "description": f"the value's `{spec.key}`"},
                    "bindingVersion": "0.5.0",
                }
            }
        messages[name] = message
        channels[spec.name.replace(".", "_")] = {
            "address": spec.name,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fraudstream topics",
            "version": VERSION,
            "description": "Topic names are prefixed by FRAUD_TOPIC_PREFIX when it is set. "
            "Values are JSON; each carries its schema_version.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages},
    }


def rendered() -> dict[str, str]:
    """Every contract file's name and its text, as ``export`` writes them."""
    files = {
        schema_file(spec): json.dumps(json_schema(spec), indent=2, sort_keys=True) + "\n"
        for spec in ALL_TOPICS
    }
    files[ASYNCAPI_FILE] = json.dumps(asyncapi(), indent=2) + "\n"
    return files


def export(folder: Path = CONTRACTS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
