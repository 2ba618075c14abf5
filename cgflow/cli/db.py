"""``cgflow db start | stop | status | env``: the embedded job database;
``cgflow db migrate [-l LAUNCHPAD]``: bring a job database's stored Fireworks up to date."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.common import embedded_server, launchpad_file, say
from cgflow.errors import InvalidInputError


def cmd_db(args: argparse.Namespace) -> int:
    """Run ``cgflow db ACTION``."""
    from cgflow.orchestration.fw_configs import fw_config_dir, write_embedded_configs

    if args.action == "migrate":
        return cmd_db_migrate(args)
    if getattr(args, "launchpad", None):
        raise InvalidInputError(f"option '-l/--launchpad': value {args.launchpad!r}: only "
                                f"'cgflow db migrate' takes a launchpad file")
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


def cmd_db_migrate(args: argparse.Namespace) -> int:
    """Run ``cgflow db migrate``: rename moved Firetask classes in every stored Firework
    and launch (a full scan), and print what changed per collection."""
    from cgflow.db.launcher_lock import exclusive_launcher
    from cgflow.db.migrations import migrate_firetask_names
    from cgflow.db.store import Store

    lp_file = launchpad_file(args)
    with Store.from_launchpad_file(lp_file) as store, \
            exclusive_launcher(lp_file, label="cgflow db migrate"):
        store.ping()  # an unreachable server or a refused login is said as such
        report = migrate_firetask_names(store.db, full_scan=True)
    say(f"job database: {report.database!r} (launchpad file {lp_file})")
    for coll, n in report.documents.items():
        say(f"  {coll}: {n} document(s) changed")
    for bucket, n in report.files.items():
        say(f"  GridFS {bucket}: {n} file(s) rewritten")
    say(f"  Firetask names renamed: {report.names}")
    say("migrated" if report.changed else "already up to date: nothing changed")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow db``."""
    db = sub.add_parser("db", help="the embedded job database; migrations")
    db.add_argument("action", choices=["start", "stop", "status", "env", "migrate"],
                    help="migrate: rename moved Firetask classes in the stored Fireworks "
                         "and launches of a job database")
    db.add_argument("-l", "--launchpad", default=None, metavar="FILE",
                    help="launchpad file of the database to migrate (migrate only; "
                         "default: the embedded server's)")
    db.set_defaults(func=cmd_db)
