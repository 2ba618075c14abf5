"""Shared fixtures: an isolated cgflow home, a job database server, stores and launchpads.

* ``cgflow_home`` (session, automatic): ``CGFLOW_HOME`` and ``CGFLOW_WORK_ROOT`` point to
  a temporary folder for the whole session (``CGFLOW_DB_FILE`` is unset), so tests never
  touch the user's ``~/.cgflow`` or database; the environment is restored at the end.
* ``mongo_uri`` (session): a MongoDB-protocol server. ``$CGFLOW_TEST_MONGODB_URI`` if set
  (a real MongoDB; each test gets its own database, all dropped at the end), else an
  embedded server (SecantusDB, with authentication as by default; the URI carries its
  user and password) started for the session on a free port in a temporary folder and
  stopped at the end. Tests are skipped when neither is available.
* ``store`` / ``launchpad`` (function): a :class:`cgflow.db.store.Store` / a FireWorks
  ``LaunchPad`` (reset) on a fresh database, dropped after the test.
* marker ``requires_real_mongodb`` (also ``mongodb``): skips the test unless
  ``$CGFLOW_TEST_MONGODB_URI`` is set (e.g. concurrent launchers).
"""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_MONGODB_ENV = "CGFLOW_TEST_MONGODB_URI"
REAL_MONGODB_REASON = (
    "needs a real MongoDB (set CGFLOW_TEST_MONGODB_URI): the embedded server serves one "
    "launcher at a time"
)
_SESSION_TAG = uuid.uuid4().hex[:8]
_DB_COUNTER = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"requires_real_mongodb: {REAL_MONGODB_REASON}; skipped otherwise")


def pytest_runtest_setup(item: pytest.Item) -> None:
    wants_mongodb = item.get_closest_marker("requires_real_mongodb") or item.get_closest_marker(
        "mongodb")
    if wants_mongodb and not os.environ.get(TEST_MONGODB_ENV):
        pytest.skip(REAL_MONGODB_REASON)


def has_real_mongodb() -> bool:
    """Whether the tests run against a real MongoDB (``$CGFLOW_TEST_MONGODB_URI``)."""
    return bool(os.environ.get(TEST_MONGODB_ENV))


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port the operating system reports free (race-prone, good enough for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def fresh_db_name(prefix: str = "t") -> str:
    """A database name unique to this session and call (at most 30 characters)."""
    return f"cgft_{_SESSION_TAG}_{prefix}{next(_DB_COUNTER)}"


@pytest.fixture(scope="session", autouse=True)
def cgflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary cgflow home for the whole session (``$CGFLOW_HOME``)."""
    home = tmp_path_factory.mktemp("cgflow_home")
    saved = {k: os.environ.get(k) for k in ("CGFLOW_HOME", "CGFLOW_WORK_ROOT", "CGFLOW_DB_FILE")}
    os.environ["CGFLOW_HOME"] = str(home)
    os.environ["CGFLOW_WORK_ROOT"] = str(home / "runs")
    os.environ.pop("CGFLOW_DB_FILE", None)
    try:
        yield home
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def mongo_uri(cgflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI of the session's MongoDB-protocol server (see the module docstring)."""
    uri = os.environ.get(TEST_MONGODB_ENV)
    if uri:
        from pymongo import MongoClient

        yield uri
        client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=10_000)
        try:
            for name in client.list_database_names():
                if name.startswith(f"cgft_{_SESSION_TAG}_"):
                    client.drop_database(name)
        finally:
            client.close()
        return
    from cgflow.db.server import EmbeddedServer, EmbeddedServerNotInstalledError

    server = EmbeddedServer(home=tmp_path_factory.mktemp("db_server_home"),
                            port=free_tcp_port(), log_level="WARNING")
    try:
        server.start(wait_s=60)
    except EmbeddedServerNotInstalledError as exc:
        pytest.skip(f"no job database for tests: {exc}")
    try:
        yield server.client_uri()  # with the user and password (authentication is on)
    finally:
        server.stop()


@pytest.fixture
def store(mongo_uri: str) -> Iterator:
    """A :class:`cgflow.db.store.Store` on a fresh database, dropped after the test."""
    from cgflow.db.store import Store

    st = Store.from_uri(mongo_uri, db_name=fresh_db_name("s"))
    try:
        yield st
    finally:
        st.client.drop_database(st.db_name)
        st.close()


@pytest.fixture
def launchpad(mongo_uri: str) -> Iterator:
    """A FireWorks ``LaunchPad`` on a fresh, reset database, dropped after the test."""
    from fireworks import LaunchPad

    lp = LaunchPad(host=mongo_uri, name=fresh_db_name("lp"), uri_mode=True, strm_lvl="ERROR",
                   mongoclient_kwargs={"serverSelectionTimeoutMS": 10_000})
    lp.reset("", require_password=False)
    try:
        yield lp
    finally:
        lp.connection.drop_database(lp.name)
        lp.connection.close()


@pytest.fixture
def launchpad_file(launchpad, tmp_path: Path) -> Path:
    """A launchpad YAML file for the ``launchpad`` fixture's database (for subprocesses
    such as ``rlaunch -l FILE``)."""
    import yaml

    path = tmp_path / "my_launchpad.yaml"
    path.write_text(yaml.safe_dump({
        "host": launchpad.host, "name": launchpad.name, "uri_mode": True,
        "strm_lvl": "ERROR", "mongoclient_kwargs": {"serverSelectionTimeoutMS": 10_000},
    }))
    return path
