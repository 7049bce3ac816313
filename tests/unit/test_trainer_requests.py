"""The trainer's requests, with no broker: which run now, which wait for post-drift labels,
which are answered already, and that the waiting ones survive a restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from schemas.codec import decode
from schemas.events import DriftEvidence, RetrainReason, RetrainRequest
from streams.trainer import PendingRequests, Triage
from streams.training_store import TrainingStore

AT = datetime(2026, 3, 1, tzinfo=UTC)


def drift_request(version: str, hours: int) -> RetrainRequest:
    return RetrainRequest(
        request_id=f"drift-{version}-{hours}",
        reason=RetrainReason.DRIFT,
        drift=DriftEvidence(
            model_version=version, window_start=AT, window_end=AT + timedelta(hours=hours),
            drift_share=0.4, drifted_features=("amount",),
        ),
        requested_at=AT + timedelta(hours=hours),
    )  # fmt: skip


def test_one_retrain_per_drifted_version_and_the_waiting_ones_survive_a_restart(
    tmp_path: Path,
) -> None:
    store = TrainingStore(str(tmp_path))
    pending = PendingRequests(store)
    manual = RetrainRequest(
        request_id="manual-1", reason=RetrainReason.MANUAL, evidence={"by": "a person"},
        requested_at=AT,
    )  # fmt: skip

    triage = [pending.triage(r) for r in (manual, drift_request("3", 1), drift_request("3", 2),
                                          drift_request("4", 3))]  # fmt: skip
    restarted = PendingRequests(store)

    assert triage == [Triage.RUN, Triage.WAIT, Triage.IGNORED, Triage.WAIT]
    assert [r.request_id for r in restarted.waiting] == ["drift-3-1", "drift-4-3"]
    assert restarted.answered == {"3", "4"}
    assert restarted.triage(drift_request("3", 9)) is Triage.IGNORED

    due = restarted.take_due(lambda r: r.drift is not None and r.drift.model_version == "4")
    assert [r.request_id for r in due] == ["drift-4-3"]
    assert [r.request_id for r in PendingRequests(store).waiting] == ["drift-3-1"]


def test_a_version_1_drift_request_reads_as_typed_evidence() -> None:
    old = {
        "request_id": "drift-fd-3-1772323200",
        "reason": "drift",
        "evidence": {
            "model_version": "3", "window_start": "2026-03-01T00:00:00+00:00",
            "window_end": "2026-03-01T01:00:00+00:00", "drift_share": 0.5,
            "drifted_features": "amount,hour_of_day",
        },
        "requested_at": "2026-03-01T01:00:00+00:00",
        "schema_version": 1,
    }  # fmt: skip

    request = decode(RetrainRequest, orjson.dumps(old))

    assert request.schema_version == 2 and request.evidence == {}
    assert request.drift == DriftEvidence(
        model_version="3", window_start=AT, window_end=AT + timedelta(hours=1), drift_share=0.5,
        drifted_features=("amount", "hour_of_day"),
    )  # fmt: skip
