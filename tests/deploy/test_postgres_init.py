"""deploy/postgres/init-databases.sh, run for real against PostgreSQL.

The compose stack's PostgreSQL runs this script at first start. Here it runs
against the test server with throwaway names: each service gets a login role
and a database it owns, and no other role may connect to that database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.deploy.support import DEPLOY
from tests.support import postgres

SCRIPT = DEPLOY / "postgres" / "init-databases.sh"
ADMIN = urlsplit(postgres.ADMIN_DSN)


@pytest.fixture
def names(postgres_reachable: bool) -> Iterator[list[str]]:
    if not postgres_reachable:
        pytest.skip(f"PostgreSQL not reachable at {postgres.ADMIN_DSN}")
    if shutil.which("psql") is None:
        pytest.skip("psql not installed")
    stem = f"ft_init_{uuid.uuid4().hex[:8]}"
    created = [f"{stem}_a", f"{stem}_b"]
    try:
        yield created
    finally:
        for name in created:
            postgres.drop_database(name)
            subprocess.run(
                [
                    "psql",
                    "--no-psqlrc",
                    "--dbname",
                    postgres.ADMIN_DSN,
                    "--command",
                    f'DROP ROLE IF EXISTS "{name}"',
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )


def run_script(databases: list[str], passwords: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ["PATH"],
        "PGHOST": ADMIN.hostname or "127.0.0.1",
        "PGPORT": str(ADMIN.port or 5432),
        "POSTGRES_USER": ADMIN.username or "postgres",
        "FOLLOWTHROUGH_DATABASES": " ".join(databases),
    }
    if ADMIN.password:
        environment["PGPASSWORD"] = ADMIN.password
    for name, password in passwords.items():
        environment[f"{name.upper()}_DB_PASSWORD"] = password
    return subprocess.run(
        ["sh", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60
    )


def dsn(user: str, database: str) -> str:
    host = ADMIN.hostname or "127.0.0.1"
    return f"postgresql://{user}@{host}:{ADMIN.port or 5432}/{database}"


async def test_each_service_gets_its_own_role_and_database(names: list[str]) -> None:
    first, second = names
    # A password with quotes must not break (or inject into) the SQL.
    result = run_script(names, {first: 'it\'s "quoted"; DROP ROLE x', second: "plain-secret"})
    assert result.returncode == 0, result.stderr

    admin = await asyncpg.connect(postgres.ADMIN_DSN, timeout=3)
    try:
        rows = await admin.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database"
            " WHERE datname = ANY($1::text[])",
            names,
        )
        assert {row["datname"]: row["owner"] for row in rows} == {first: first, second: second}
        for name in names:
            role = await admin.fetchrow(
                "SELECT rolcanlogin, rolsuper, rolpassword IS NOT NULL AS has_password"
                " FROM pg_authid WHERE rolname = $1",
                name,
            )
            assert role is not None
            assert (role["rolcanlogin"], role["rolsuper"], role["has_password"]) == (
                True,
                False,
                True,
            )
    finally:
        await admin.close()

    own = await asyncpg.connect(dsn(first, first), timeout=3)
    try:
        await own.execute("CREATE TABLE probe (id integer PRIMARY KEY)")
    finally:
        await own.close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(dsn(second, first), timeout=3)


def test_a_missing_password_stops_the_initialisation(names: list[str]) -> None:
    result = run_script(names[:1], {})
    assert result.returncode != 0
    assert f"{names[0].upper()}_DB_PASSWORD is not set" in result.stderr
