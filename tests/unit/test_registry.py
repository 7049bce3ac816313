from __future__ import annotations

from pathlib import Path

import pytest

from retraining.registry import InMemoryRegistry
from tests.registry_contract import check_registry


def test_the_in_memory_registry_keeps_the_registry_contract(tmp_path: Path) -> None:
    check_registry(InMemoryRegistry(), tmp_path, "fraud-detector")


def test_an_unknown_version_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="fraud-detector has no version 3"):
        InMemoryRegistry().load_version("fraud-detector", "3")
