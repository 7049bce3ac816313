from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scoring.model import TrainedModel
from scoring.model_holder import ModelHolder
from scoring.serving import ModelScorer, RulesFallback, Scorer


class Registry:
    """A stand-in for the registry adapter: versions it can load, or down."""

    def __init__(self) -> None:
        self.up = True
        self.versions: dict[str, Scorer] = {}
        self.champion = "1"

    def load(self, version: str | None) -> Scorer:
        if not self.up:
            raise ConnectionError("registry unreachable")
        return self.versions[version or self.champion]


def scorer(version: str) -> ModelScorer:
    model = TrainedModel("lightgbm", None, ("amount",), np.zeros(1), np.ones(1))
    return ModelScorer(model, "fraud-detector", version)


def test_starts_on_the_rules_then_serves_and_swaps_models(tmp_path: Path) -> None:
    registry = Registry()
    registry.versions = {"1": scorer("1"), "2": scorer("2")}
    holder = ModelHolder(registry.load, tmp_path / "model.pkl")

    assert isinstance(holder.current(), RulesFallback)
    assert holder.refresh().version == "1"
    assert holder.refresh("2").version == "2"
    assert holder.current().version == "2"


def test_a_registry_outage_keeps_the_served_model(tmp_path: Path) -> None:
    registry = Registry()
    registry.versions = {"1": scorer("1")}
    holder = ModelHolder(registry.load, tmp_path / "model.pkl")
    holder.refresh()
    registry.up = False

    assert holder.refresh("2").version == "1"
    assert holder.outdated  # the follower of model.updates tries again while this holds
    registry.up, registry.versions["2"] = True, scorer("2")
    assert holder.refresh("2").version == "2" and not holder.outdated


def test_a_new_worker_in_an_outage_serves_the_cached_model(tmp_path: Path) -> None:
    registry = Registry()
    registry.versions = {"1": scorer("1")}
    ModelHolder(registry.load, tmp_path / "model.pkl").refresh()
    registry.up = False

    restarted = ModelHolder(registry.load, tmp_path / "model.pkl")
    served = restarted.refresh()

    assert (served.name, served.version, served.fallback) == ("fraud-detector", "1", False)


@pytest.mark.parametrize("cache", ["missing", "corrupt"])
def test_no_registry_and_no_usable_cache_means_the_rules(tmp_path: Path, cache: str) -> None:
    registry = Registry()
    registry.up = False
    if cache == "corrupt":
        (tmp_path / "model.pkl").write_bytes(b"not a pickle")

    assert ModelHolder(registry.load, tmp_path / "model.pkl").refresh().fallback is True
