"""The benchmark's CPU meter: who it reports, and what it leaves out."""

import os
import subprocess
import time

from tooling.bench import CpuMeter


class _ForkCounter:
    """Answers ``INFO stats`` as Redis does, with one more fork at each call."""

    def __init__(self) -> None:
        self.forks = 40
        self.closed = False

    def info(self, section: str) -> dict[str, int]:
        assert section == "stats"
        self.forks += 1
        return {"total_forks": self.forks}

    def close(self) -> None:
        self.closed = True


def test_a_process_that_ends_during_the_measurement_is_left_out() -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with CpuMeter({"this process": os.getpid(), "sleeper": sleeper.pid}) as meter:
            sleeper.kill()
            sleeper.wait()
    finally:
        sleeper.kill()
    rows = {row.name: row for row in meter.results("during the test")}
    assert set(rows) == {"CPU during the test: this process", "machine busy during the test"}
    assert rows["CPU during the test: this process"].unit == "% of a core"
    assert rows["machine busy during the test"].unit == f"% of {os.cpu_count()} cores"
    assert 0.0 <= rows["machine busy during the test"].value <= 100.0


def test_redis_forks_are_counted_between_start_and_end() -> None:
    client = _ForkCounter()
    with CpuMeter({}, client) as meter:
        pass
    forks = [row for row in meter.results("then") if row.name.startswith("Redis")]
    assert [(row.name, row.value) for row in forks] == [("Redis forks (log rewrites) then", 1)]
    assert client.closed


def test_the_probe_runs_beside_the_measurement_and_stops_with_it() -> None:
    with CpuMeter({}, probe=True) as meter:
        time.sleep(0.5)
    assert meter.prober is not None and meter.prober.returncode is not None
    assert meter.probe_units >= 20  # a unit every ~5 ms
    [row] = [row for row in meter.results("then") if row.name.startswith("probe units")]
    assert row.unit == "%" and 0.0 <= row.value <= 100.0
