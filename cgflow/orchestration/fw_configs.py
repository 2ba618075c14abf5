"""FireWorks configuration files that cgflow writes for the embedded job database, and the
ping settings a launcher works with.

``cgflow db start`` writes, under ``<cgflow home>/fw_config/``, a ``my_launchpad.yaml``
pointing at the running embedded server (with its user and password: the folder is 0700
and the files 0600), a ``my_fworker.yaml`` and an ``FW_config.yaml`` whose
``CONFIG_FILE_DIR`` is that folder. With ``FW_CONFIG_FILE`` set to that ``FW_config.yaml``
(``cgflow db env`` prints the line), plain ``lpad``, ``rlaunch`` and ``qlaunch`` use the
embedded server without further flags.

Timing of the written files, one derived from the other:

* a running Firework pings the database every :data:`PING_TIME_SECS`;
* every client of the database (the launcher, rlaunch, its pings, the Firetasks' result
  writes) waits up to :data:`DB_OUTAGE_TOLERANCE_S` for an unreachable server to come
  back (pymongo's ``serverSelectionTimeoutMS``) before an operation fails;
* so a live run's last ping is at most ``PING_TIME_SECS + DB_OUTAGE_TOLERANCE_S`` old,
  and a run silent for :data:`RUN_EXPIRATION_SECS` (longer than that) is *lost*:
  ``cgflow launch`` reruns it (:mod:`cgflow.db.lostruns`).

For a real MongoDB, copy and edit ``launchpad_configs/`` instead (see the README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from cgflow.db.server import EmbeddedServer, make_private, write_private_file
from cgflow.errors import InvalidInputError
from cgflow.settings import cgflow_home
from cgflow.userfiles import read_yaml_mapping

#: Seconds between a running Rocket's pings.
PING_TIME_SECS = 60
#: How long a client waits for an unreachable job database before an operation fails, s.
DB_OUTAGE_TOLERANCE_S = 300
#: A RUNNING Firework whose last ping is older than this (s) is lost; above
#: PING_TIME_SECS + DB_OUTAGE_TOLERANCE_S, so a live run that waited out an outage is not.
RUN_EXPIRATION_SECS = 600
#: Name of the database (FireWorks collections and cgflow's result collections).
DB_NAME = "cgflow"
#: FireWorks' own defaults, in force where no FW_config.yaml sets them.
FIREWORKS_PING_TIME_SECS = 3600
FIREWORKS_RUN_EXPIRATION_SECS = 4 * 3600


def fw_config_dir(home: Path | None = None) -> Path:
    """Folder of the generated FireWorks config files (created owner-only)."""
    d = (home or cgflow_home()) / "fw_config"
    d.mkdir(parents=True, exist_ok=True)
    make_private(d)
    return d


def embedded_launchpad(uri: str, home: Path | None = None,
                       db_name: str = DB_NAME) -> dict[str, object]:
    """The launchpad settings of the embedded server at ``uri`` (a mapping for
    ``my_launchpad.yaml`` or ``LaunchPad.from_dict``).

    Host and port are separate keys (FireWorks' ``uri_mode: false``) so that the user
    and password of the home's server, when it requires them, are separate keys too
    and never part of a URI that could be printed. Every client waits up to
    :data:`DB_OUTAGE_TOLERANCE_S` for the server (``serverSelectionTimeoutMS``).
    """
    server = EmbeddedServer(home=home)
    state = server.read_state() or {}
    parts = urlsplit(uri)
    if parts.hostname is None or parts.port is None:
        raise InvalidInputError(f"field 'uri': value {uri!r}: expected mongodb://HOST:PORT/")
    lp: dict[str, object] = {
        "host": parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]",
        "port": parts.port, "name": db_name,
    }
    if state.get("auth") and state.get("port") == parts.port:
        creds = server.credentials()
        if creds is not None:
            lp.update(username=creds.username, password=creds.password,
                      authsource=creds.auth_source)
    lp.update({
        "uri_mode": False, "logdir": None, "strm_lvl": "INFO",
        "mongoclient_kwargs": {"directConnection": True,
                               "serverSelectionTimeoutMS": DB_OUTAGE_TOLERANCE_S * 1000},
    })
    return lp


def write_embedded_configs(uri: str, home: Path | None = None, db_name: str = DB_NAME) -> Path:
    """Write launchpad, fworker and FW_config files for the embedded server at ``uri``.

    The launchpad file carries the credentials of ``home``'s server when it requires
    authentication (:func:`embedded_launchpad`); the folder is 0700, the files 0600.

    Returns
    -------
    Path
        The launchpad file.
    """
    d = fw_config_dir(home)
    lp = d / "my_launchpad.yaml"
    write_private_file(lp, yaml.safe_dump(embedded_launchpad(uri, home, db_name),
                                          sort_keys=False))
    write_private_file(d / "my_fworker.yaml", yaml.safe_dump({
        "name": "cgflow-local",
        "category": "",
        "query": "{}",
        "env": {"cgflow_db_file": str(lp)},
    }, sort_keys=False))
    write_private_file(d / "FW_config.yaml", yaml.safe_dump({
        "CONFIG_FILE_DIR": str(d),
        "PING_TIME_SECS": PING_TIME_SECS,
        "RUN_EXPIRATION_SECS": RUN_EXPIRATION_SECS,
        "EXCEPT_DETAILS_ON_RERUN": True,
    }, sort_keys=False))
    return lp


@dataclass(frozen=True)
class PingSettings:
    """How often running Fireworks ping, and when a silent one counts as lost.

    Attributes
    ----------
    ping_s
        ``PING_TIME_SECS`` of the FireWorks config in force.
    expiry_s
        Seconds without a ping after which a RUNNING Firework is lost:
        ``RUN_EXPIRATION_SECS`` of that config, at least twice ``ping_s``.
    source
        The FW_config.yaml they come from (``None``: FireWorks' defaults).
    """

    ping_s: float
    expiry_s: float
    source: Path | None


def launcher_fw_config(lp_file: Path, env: dict[str, str] | None = None) -> Path | None:
    """The FW_config.yaml a launcher of ``lp_file`` should hand its rlaunch: the
    environment's ``FW_CONFIG_FILE``, else an ``FW_config.yaml`` beside the launchpad
    file (as ``cgflow db start`` writes), else ``None``."""
    env = os.environ if env is None else env
    if env.get("FW_CONFIG_FILE"):
        return Path(env["FW_CONFIG_FILE"]).expanduser()
    beside = Path(lp_file).parent / "FW_config.yaml"
    return beside if beside.is_file() else None


def fireworks_config_in_force(env: dict[str, str], cwd: Path | None = None) -> Path | None:
    """The FW_config.yaml FireWorks reads in a process with environment ``env`` started
    in ``cwd``: the first of ``cwd/FW_config.yaml``, ``~/.fireworks/FW_config.yaml`` and
    ``$FW_CONFIG_FILE`` that exists (FireWorks' own order; ``cwd=None``: a new, empty
    folder such as a launcher's worker folder)."""
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    candidates = [home / ".fireworks" / "FW_config.yaml"]
    if cwd is not None:
        candidates.insert(0, cwd / "FW_config.yaml")
    if env.get("FW_CONFIG_FILE"):
        candidates.append(Path(env["FW_CONFIG_FILE"]).expanduser())
    return next((c for c in candidates if c.is_file()), None)


def ping_settings(fw_config: Path | None) -> PingSettings:
    """The ping interval and lost-run expiry of a FireWorks config file (FireWorks'
    defaults, 3600 s and 14400 s, where it sets none or there is no file).

    Raises
    ------
    InvalidInputError
        When the file is not a YAML mapping or a value is not a positive number.
    """
    data = {} if fw_config is None else read_yaml_mapping(fw_config, "FireWorks config file")
    values = {}
    for key, default in (("PING_TIME_SECS", FIREWORKS_PING_TIME_SECS),
                         ("RUN_EXPIRATION_SECS", FIREWORKS_RUN_EXPIRATION_SECS)):
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise InvalidInputError(f"{fw_config}: field {key!r}: value {value!r}: expected "
                                    "a positive number of seconds")
        values[key] = float(value)
    ping = values["PING_TIME_SECS"]
    return PingSettings(ping_s=ping, expiry_s=max(values["RUN_EXPIRATION_SECS"], 2 * ping),
                        source=fw_config)
