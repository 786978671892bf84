"""A local Redis server for Tandem's read model: no persistence, output to `<data_dir>/logs`.

`redis-server` comes from the operating system; on Debian/Ubuntu, when running as root, it is
installed with apt-get on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

import redis

from streams.infra._process import InfraError, Progress, Service, tail
from streams.settings import Settings

BINARY = "redis-server"
APT_TIMEOUT_S = 10 * 60


def redis_answers(url: str, timeout: float) -> bool:
    """True if the Redis at `url` replies to PING."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class RedisService(Service):
    """The local Redis server of `tandem infra`."""

    name = "Redis"
    key = "redis"
    default_port = 6379
    default_timeout = 20.0
    stop_grace = 10.0  # no persistence: Redis exits at once on SIGTERM

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.data_dir, settings.redis_url)
        self.url = settings.redis_url
        self.home = settings.data_dir / "redis"
        self._binary: str | None = None

    def owns(self, cmdline: Sequence[str]) -> bool:
        # Redis rewrites its process title to "redis-server 127.0.0.1:6379", so the argv we
        # launched it with is gone; binary name plus port is what is left to recognise it by.
        joined = " ".join(cmdline)
        return BINARY in joined and (f":{self.port}" in joined or str(self.port) in cmdline)

    def speaks(self, timeout: float) -> bool:
        return redis_answers(self.url, timeout)

    def prepare(self, progress: Progress) -> None:
        self._binary = shutil.which(BINARY) or self.install(progress)
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        binary = self._binary or shutil.which(BINARY) or BINARY
        bind = "127.0.0.1" if self.host in ("localhost", "") else self.host
        return [
            binary,
            "--bind", bind,
            "--port", str(self.port),
            # In the foreground: we are its parent until `tandem infra up` exits, so its PID is
            # the PID we record, and an early exit is noticed while waiting for readiness.
            "--daemonize", "no",
            # A read model rebuilt from Kafka: no snapshots, no append-only file.
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.home),
            "--logfile", str(self.log_path),
        ]  # fmt: skip

    def install(self, progress: Progress) -> str:
        """Install redis-server with apt-get (root on Debian/Ubuntu only); return its path."""
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise InfraError(
                f"{BINARY} is not installed; install it (e.g. `sudo apt-get install redis-server`)"
                " or point TANDEM_REDIS_URL at a running Redis"
            )
        progress("installing redis-server with apt-get (first run)…")
        log = self.data_dir / "logs" / "apt.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = [apt, "install", "-y", "--no-install-recommends", BINARY]
        # The package lists may be missing or stale (fresh container): update once and retry.
        with log.open("ab") as out:
            for argv in (install, [apt, "update"], install):
                done = subprocess.run(
                    argv, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=APT_TIMEOUT_S,
                    check=False,
                )  # fmt: skip
                if argv is install and done.returncode == 0:
                    break
        binary = shutil.which(BINARY)
        if binary is None:
            raise InfraError(f"installing {BINARY} failed: {tail(log, 3)} — see {log}")
        return binary
