"""`make test` on a fresh machine, without TEST_DATABASE_URL / TEST_REDIS_URL: every backend is
tested against a throwaway server, or its tests skip saying why; the run passes either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A test that takes `database_url` as "postgresql" only, and one that needs Redis.
BACKEND_TESTS = [
    "tests/test_db_resilience.py::test_postgresql_sessions_plan_each_statement_without_jit",
    "tests/test_abuse.py::test_redis_counters_are_shared_by_every_process",
]
RUN_PYTEST = "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"
# As on a machine where neither server package nor server is installed.
WITHOUT_SERVERS = """
import tests.private_postgres, tests.private_redis
tests.private_postgres.pg_bin = lambda: None
tests.private_redis.redis_server_bin = lambda: None
"""


def fresh_run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "TEST_REDIS_URL")}
    command = [sys.executable, "-c", code, "-p", "no:cacheprovider", "-rs", *BACKEND_TESTS]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_without_urls_each_backend_runs_on_a_throwaway_server() -> None:
    run = fresh_run(RUN_PYTEST)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PostgreSQL: throwaway server (TEST_DATABASE_URL is unset)" in run.stdout
    assert "Redis: throwaway server (TEST_REDIS_URL is unset)" in run.stdout
    assert "2 passed" in run.stdout


def test_without_urls_or_servers_backend_tests_skip_saying_why() -> None:
    run = fresh_run(WITHOUT_SERVERS + RUN_PYTEST)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 skipped" in run.stdout
    assert "PostgreSQL: not tested: TEST_DATABASE_URL is unset" in run.stdout
    assert "no PostgreSQL server binaries" in run.stdout
    assert "Redis: not tested: TEST_REDIS_URL is unset" in run.stdout
    assert "no redis-server" in run.stdout
