"""Fixtures shared by the test modules.

``backend`` runs a test once per storage backend: a vault in a folder, and
a vault in PostgreSQL (a throwaway PostgreSQL 15 cluster started once per
session, tests/pg_support.py). The PostgreSQL half never skips: without the
server binaries or the driver the tests fail, saying what to install.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import FolderKind, Kind, PostgresKind
from hardening_support import trial_seed
from hypothesis import settings
from office import Office, make_office
from pg_support import INSTALL_HINT, Cluster, find_bindir

_STATE_DIRS: list[str] = []

# Speed is measured in benchmarks/, never asserted by a test: no property
# fails because a machine (or a busy CI worker) ran one example slowly.
settings.register_profile("vault", deadline=None)
settings.load_profile("vault")


def pytest_configure(config: pytest.Config) -> None:
    # Where each vault's verified replay of its audit log is kept
    # (docs/DESIGN.md §8): one throwaway folder for the whole run, never the
    # home of whoever runs the tests. Child processes inherit it.
    if not os.environ.get("VAULT_STATE_DIR"):
        os.environ["VAULT_STATE_DIR"] = tempfile.mkdtemp(prefix="vault-test-state-")
        _STATE_DIRS.append(os.environ["VAULT_STATE_DIR"])


def pytest_unconfigure(config: pytest.Config) -> None:
    # The run's own folder goes with it (one the caller chose stays).
    import shutil

    for folder in _STATE_DIRS:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("VAULT_STATE_DIR") == folder:
            del os.environ["VAULT_STATE_DIR"]


def pytest_report_header() -> str:
    return f"random trials: VAULT_TRIAL_SEED={trial_seed()} replays them"


@pytest.fixture(autouse=True)
def _close_idle_database_sessions() -> Iterator[None]:
    """Every test database gets a pool of idle sessions in this process;
    give them back after each test, or a long run exhausts the server's
    connection slots."""
    yield
    import sys

    conn = sys.modules.get("vault.store._pg_conn")
    if conn is not None:
        conn._close_all()


@pytest.fixture(autouse=True)
def _forget_database_passwords() -> Iterator[None]:
    """A driver's message holding a piece of a password the process was
    given is not shown (vault/store/_pg_location.py): each test starts with
    none, so that one test's password hides no message of another."""
    yield
    import sys

    location = sys.modules.get("vault.store._pg_location")
    if location is not None:
        with location._known_lock:
            location._known.clear()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("the psycopg driver is required: pip install -e '.[test]'")
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT)
    cluster = Cluster(bindir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session", params=["folder", "postgres"])
def backend(request: pytest.FixtureRequest) -> Kind:
    """Where the vaults of a test live: ``backend.new_location(root)``."""
    if request.param == "folder":
        return FolderKind()
    return PostgresKind(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def office(tmp_path: Path, backend: Kind) -> Office:
    """A fresh office (tests/office.py) in each backend. Modules that need
    files beside it, or one office for all their tests, define their own."""
    return make_office(tmp_path, backend)
