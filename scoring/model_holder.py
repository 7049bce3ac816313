"""The model a scorer serves right now, swapped atomically, cached locally.

Loading is injected (the registry adapter lives in ``retraining``), so this module knows no
MLflow. A loaded model is also written to a local file: if the registry is down when a
worker starts, the last model it served keeps scoring; with neither, the rules do.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from scoring.serving import RulesFallback, Scorer

logger = logging.getLogger(__name__)

Loader = Callable[[str | None], Scorer]  # a version, or None for the champion


class ModelHolder:
    def __init__(self, load: Loader, cache_file: Path) -> None:
        self._load = load
        self.cache_file = cache_file
        self._current: Scorer = RulesFallback()
        self.since = datetime.now(UTC)  # when the served model was swapped in
        self._lock = threading.Lock()  # one load at a time; reading needs no lock
        self.outdated = False  # the last load failed: what is served may not be what was asked

    def current(self) -> Scorer:
        return self._current

    def refresh(self, version: str | None = None) -> Scorer:
        """Load ``version`` (default: the champion) and swap to it. On failure keep serving
        what is served, or the cached model if that is only the rules."""
        with self._lock:
            try:
                scorer = self._load(version)
            except Exception as error:  # any registry failure: keep scoring with what we have
                logger.warning("model load failed (%s); keeping %s", error, _label(self._current))
                self.outdated = True
                if self._current.fallback and (cached := self._cached()) is not None:
                    self._current, self.since = cached, datetime.now(UTC)
                return self._current
            self._save(scorer)
            self.outdated = False
            previous, self._current = self._current, scorer
            self.since = datetime.now(UTC)
            logger.info(
                "serving %s (was %s)", _label(scorer), _label(previous),
                extra={"model_name": scorer.name, "model_version": scorer.version},
            )  # fmt: skip
            return scorer

    def _save(self, scorer: Scorer) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        # one partial file per process and thread: workers started together share the cache
        # file, and a shared partial was renamed away under the other's feet
        partial = self.cache_file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.partial")
        partial.write_bytes(pickle.dumps(scorer))
        partial.replace(self.cache_file)  # atomic: a crash never leaves half a model

    def _cached(self) -> Scorer | None:
        try:
            scorer: Scorer = pickle.loads(self.cache_file.read_bytes())  # our own file
        except (FileNotFoundError, pickle.UnpicklingError, EOFError):
            return None
        logger.warning("serving the locally cached %s", _label(scorer))
        return scorer


def _label(scorer: Scorer) -> str:
    return f"{scorer.name}/{scorer.version}"
