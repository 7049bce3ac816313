"""Start, find and stop one background process that we own, through a pid file.

``down`` must stop only what ``up`` started: a process counts as ours only while its pid
file names a live process whose command line still carries the marker we started it with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A local service could not be started; the message says what to do."""


class ManagedProcess:
    def __init__(
        self, name: str, run_dir: Path, *markers: str, log_file: Path | None = None
    ) -> None:
        """``markers``: any one of them in the command line marks the process as ours."""
        self.name = name
        self.pid_file = run_dir / f"{name}.pid"
        self.log_file = log_file or run_dir / f"{name}.log"
        self.markers = markers
        self._child: subprocess.Popen[bytes] | None = None  # set when this process started it

    def pid(self) -> int | None:
        """The pid of our live process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if self._child is not None and self._child.pid == pid:
            # our own child: ask it directly (its /proc cmdline can read empty while it execs)
            return pid if self._child.poll() is None else None
        cmdline = _cmdline(pid)
        if cmdline and any(marker in cmdline for marker in self.markers):
            return pid
        if cmdline == "" and _alive(pid):
            return pid  # between fork and exec the command line reads empty: not proof it is gone
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, command: Sequence[str], env: dict[str, str] | None = None) -> int:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # survives the CLI and does not get its Ctrl-C
            )
        self._child = process
        self.pid_file.write_text(str(process.pid))
        logger.info("started %s pid=%d log=%s", self.name, process.pid, self.log_file)
        return process.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop our process: SIGTERM, then SIGKILL after ``timeout``. False if none ran."""
        pid = self.pid()
        if pid is None:
            return False
        # start() made the process a session leader: signal its whole group, helpers included.
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._alive(pid):
            logger.warning("%s pid=%d ignored SIGTERM for %.0fs; killing", self.name, pid, timeout)
            _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _alive(self, pid: int) -> bool:
        if self._child is not None and self._child.pid == pid:
            return self._child.poll() is None  # also reaps it, so no zombie is left
        return _alive(pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, process: ManagedProcess
) -> None:
    """Poll ``check`` until it holds; fail with the log tail if the process dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process.pid() is None:
            raise ServiceError(f"{process.name} exited while starting:\n{process.log_tail()}")
        time.sleep(0.25)
    raise ServiceError(f"{what} not ready after {timeout:.0f}s:\n{process.log_tail()}")


def run_or_fail(command: Sequence[str], failure: str) -> None:
    """Run a set-up command to completion; on failure raise ``failure`` with its output's end."""
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr)[-2000:]
        raise ServiceError(f"{failure}:\n{output}")


def require_debian_tool(binary: str, package: str) -> str:
    """The path of ``binary``; when it is missing and we are root on Debian, ``apt-get
    install package`` first (CI machines start bare: the project installs what it runs)."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        logger.info("%s is missing: installing %s from the Debian packages", binary, package)
        quiet = ["env", "DEBIAN_FRONTEND=noninteractive"]
        run_or_fail([*quiet, "apt-get", "update", "-qq"], "apt-get update failed")
        run_or_fail(
            [*quiet, "apt-get", "install", "-y", "-qq", package],
            f"apt-get install {package} failed",
        )
        found = shutil.which(binary)
    if found is None:
        raise ServiceError(f"{binary} is missing: install it (apt-get install {package})")
    return found


def answers_200(url: str, timeout: float = 2.0) -> bool:
    """Whether ``url`` answers 200 (a readiness endpoint: Prometheus's, Alertmanager's)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def refuse_taken_port(host: str, port: int, variable: str) -> None:
    """Before a service starts: its port must be free, or say which setting moves it."""
    if port_open(host, port):
        raise ServiceError(
            f"port {port} is taken by a process fraudstream did not start; stop it or set "
            f"{variable}"
        )


def free_port() -> int:
    """A TCP port nothing listens on now (for a service started on a port of its own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        return
    except PermissionError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _alive(pid: int) -> bool:
    cmdline = _cmdline(pid)
    if cmdline is None:
        return False
    with contextlib.suppress(FileNotFoundError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"  # a zombie of an exited child is not running
    return False


def _cmdline(pid: int) -> str | None:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    """What ``services status`` prints for one service; ``running`` drives its exit code."""

    name: str
    running: bool
    address: str
    detail: str
    up_word: str = "running"  # a store with no process (sqlite MLflow) is "ready"
    down_word: str = "stopped"

    def line(self) -> str:
        state = self.up_word if self.running else self.down_word
        return f"{self.name:<15} {state:<8} {self.address}  ({self.detail})"
