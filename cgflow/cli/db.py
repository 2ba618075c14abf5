"""``cgflow db start | stop | status | env``: the embedded job database."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.common import embedded_server, say


def cmd_db(args: argparse.Namespace) -> int:
    """Run ``cgflow db ACTION``."""
    from cgflow.orchestration.fw_configs import fw_config_dir, write_embedded_configs

    server = embedded_server()
    if args.action == "start":
        uri = server.start()
        lp = write_embedded_configs(uri)
        say(f"embedded job database running at {uri}")
        say(f"launchpad file: {lp}")
        fw_config = lp.parent / "FW_config.yaml"
        say(f"for plain lpad/rlaunch/qlaunch: export FW_CONFIG_FILE={fw_config}")
    elif args.action == "stop":
        server.stop()
        say("embedded job database stopped")
    elif args.action == "status":
        st = server.status()
        if st.running:
            say(f"running: pid {st.pid}, {st.uri}")
        else:
            say("not running")
        say(f"data: {st.data_dir}")
        return 0 if st.running else 3
    elif args.action == "env":
        say(f"export FW_CONFIG_FILE={fw_config_dir() / 'FW_config.yaml'}")
        say(f"export CGFLOW_DB_FILE={fw_config_dir() / 'my_launchpad.yaml'}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow db``."""
    db = sub.add_parser("db", help="the embedded job database")
    db.add_argument("action", choices=["start", "stop", "status", "env"])
    db.set_defaults(func=cmd_db)
