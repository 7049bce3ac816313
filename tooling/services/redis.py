"""Redis: the system's ``redis-server`` on 127.0.0.1, installed from the OS packages if missing."""

from __future__ import annotations

from streams.settings import Settings
from tooling.services.process import (
    ManagedProcess,
    ServiceStatus,
    refuse_taken_port,
    require_debian_tool,
    wait_until,
)


class LocalRedis:
    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.home / "redis"
        # redis-server rewrites its process title to "redis-server 127.0.0.1:<port>" once it
        # runs; until then the title is the command line we gave it.
        port = settings.redis_port
        self.process = ManagedProcess(
            "redis", settings.home / "run", f"--port {port}", f"127.0.0.1:{port}"
        )

    def up(self) -> bool:
        """Start Redis unless ours runs; True if this call started it."""
        started = self.process.pid() is None
        if started:
            refuse_taken_port("127.0.0.1", self.settings.redis_port, "FRAUD_REDIS_PORT")
            server = require_debian_tool("redis-server", "redis-server")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.process.start(
                [
                    server,
                    "--bind", "127.0.0.1",
                    "--port", str(self.settings.redis_port),
                    "--dir", str(self.data_dir.absolute()),
                    "--appendonly", "yes",  # feature state survives a restart
                    "--save", "",
                    "--daemonize", "no",
                ]
            )  # fmt: skip
        wait_until(lambda: _ping(self.settings.redis_url), 30.0, "Redis", self.process)
        return started

    def down(self) -> bool:
        return self.process.stop()

    def status(self) -> ServiceStatus:
        pid = self.process.pid()
        url = self.settings.redis_url
        version = _server_version(url)
        if version is None:
            owner = f"pid {pid}, not answering" if pid else "not started"
            return ServiceStatus(self.name, False, url, owner)
        owner = f"pid {pid}" if pid else "not started by fraudstream"
        return ServiceStatus(self.name, True, url, f"{owner}; Redis {version}")


def _ping(url: str) -> bool:
    """Redis answers PING: up and done loading its append-only file (INFO answers earlier,
    while every other command still says LOADING)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _server_version(url: str) -> str | None:
    import redis  # a client library, loaded only when asked

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return str(client.info("server")["redis_version"])
    except redis.RedisError:
        return None
    finally:
        client.close()
