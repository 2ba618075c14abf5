"""What every command group of the ``cgflow`` command shares: printing, the launchpad
file (``-l``, else the embedded server's) and the store behind it."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any


def command_group(sub: Any, name: str, help_text: str) -> Any:
    """Register the command group ``cgflow NAME`` (its subcommand required, stored as
    ``NAME_cmd``) and return its subparsers."""
    group = sub.add_parser(name, help=help_text)
    return group.add_subparsers(dest=f"{name}_cmd", required=True)


def say(msg: str = "") -> None:
    """Print a line at once (progress must reach a log or a pipe while it happens)."""
    print(msg, flush=True)


def embedded_server() -> Any:
    """The embedded job database of the cgflow home (not started)."""
    from cgflow.db.server import EmbeddedServer

    return EmbeddedServer()


def launchpad_file(args: argparse.Namespace) -> Path:
    """The launchpad file: ``-l``, else the embedded server's (started if needed)."""
    if getattr(args, "launchpad", None):
        return Path(args.launchpad)
    from cgflow.orchestration.fw_configs import write_embedded_configs

    uri = embedded_server().start()
    return write_embedded_configs(uri)


@contextlib.contextmanager
def open_store(args: argparse.Namespace):
    """The :class:`cgflow.db.store.Store` of the command's launchpad, closed after use."""
    from cgflow.db.store import Store

    with Store.from_launchpad_file(str(launchpad_file(args))) as store:
        store.ping()  # an unreachable server is said at once, naming its address
        yield store


def molecule_matches(name: str, query: str) -> bool:
    """Whether a stored molecule ``name`` is what ``--molecule query`` asks for: the same
    name, or a registry name or alias of the same molecule (case-insensitive)."""
    from cgflow.molecule.registry import find_entry

    if name.strip().lower() == query.strip().lower():
        return True
    entry = find_entry(query)
    return entry is not None and entry.name == name
