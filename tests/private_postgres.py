"""A PostgreSQL server of the test's own, so a test may stop and start it.

The shared server (TEST_DATABASE_URL) serves every other test of the run and of the machine;
restarting it would break them. This one is a fresh cluster (initdb) in a temporary
directory, on a free port, run by the `postgres` user when the tests run as root (PostgreSQL
refuses root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.test_webhook import free_port


def pg_bin() -> Path | None:
    """The newest installed server's binaries (Debian's layout), or those on PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def unavailable() -> str | None:
    """Why a private server cannot be run here, or None."""
    if pg_bin() is None:
        return "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run the server"
    return None


class PrivatePostgres:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    async def _run(self, tool: str, *args: str) -> None:
        bin_dir = pg_bin()
        assert bin_dir is not None
        command = [str(bin_dir / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{out.decode()}")

    async def init(self) -> None:
        await self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        await self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    async def stop(self) -> None:
        """Fast shutdown: open connections are terminated, as in a restart or failover."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as
    # `postgres`.
    root = Path(tempfile.mkdtemp(prefix="suipai-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
    server = PrivatePostgres(root, free_port())
    try:
        await server.init()
        await server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):  # already stopped
            await server.stop()
        shutil.rmtree(root, ignore_errors=True)
