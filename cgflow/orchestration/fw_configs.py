"""FireWorks configuration files that cgflow writes for the embedded job database.

``cgflow db start`` writes, under ``<cgflow home>/fw_config/``, a ``my_launchpad.yaml``
pointing at the running embedded server, a ``my_fworker.yaml`` and an ``FW_config.yaml``
whose ``CONFIG_FILE_DIR`` is that folder. With ``FW_CONFIG_FILE`` set to that
``FW_config.yaml`` (``cgflow db env`` prints the line), plain ``lpad``, ``rlaunch`` and
``qlaunch`` use the embedded server without further flags.

For a real MongoDB, copy and edit ``launchpad_configs/`` instead (see the README).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from cgflow.settings import cgflow_home

#: Seconds between a running Rocket's pings; a run silent for RUN_EXPIRATION_SECS is lost.
PING_TIME_SECS = 60
RUN_EXPIRATION_SECS = 600
#: Name of the database (FireWorks collections and cgflow's result collections).
DB_NAME = "cgflow"


def fw_config_dir(home: Path | None = None) -> Path:
    """Folder of the generated FireWorks config files."""
    d = (home or cgflow_home()) / "fw_config"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _with_db(uri: str, db_name: str) -> str:
    """Insert a database name into a ``mongodb://host:port/?opts`` URI."""
    head, _, query = uri.partition("?")
    head = head.rstrip("/")
    if head.count("/") > 2:  # already has a path (database)
        head = head[: head.rindex("/")]
    return f"{head}/{db_name}" + (f"?{query}" if query else "")


def write_embedded_configs(uri: str, home: Path | None = None, db_name: str = DB_NAME) -> Path:
    """Write launchpad, fworker and FW_config files for the embedded server at ``uri``.

    Returns
    -------
    Path
        The launchpad file.
    """
    d = fw_config_dir(home)
    lp = d / "my_launchpad.yaml"
    lp.write_text(yaml.safe_dump({
        "host": _with_db(uri, db_name),
        "name": db_name,
        "uri_mode": True,
        "logdir": None,
        "strm_lvl": "INFO",
    }, sort_keys=False))
    (d / "my_fworker.yaml").write_text(yaml.safe_dump({
        "name": "cgflow-local",
        "category": "",
        "query": "{}",
        "env": {"cgflow_db_file": str(lp)},
    }, sort_keys=False))
    (d / "FW_config.yaml").write_text(yaml.safe_dump({
        "CONFIG_FILE_DIR": str(d),
        "PING_TIME_SECS": PING_TIME_SECS,
        "RUN_EXPIRATION_SECS": RUN_EXPIRATION_SECS,
        "EXCEPT_DETAILS_ON_RERUN": True,
    }, sort_keys=False))
    return lp
