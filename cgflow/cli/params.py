"""``cgflow params check FILE``: validate a parameter-set file."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.common import command_group, say


def cmd_params_check(args: argparse.Namespace) -> int:
    from cgflow.params import read_parameter_set_file

    ps = read_parameter_set_file(args.file, args.units)
    say(f"valid parameter set, id {ps.id}")
    say(ps.summary())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow params``."""
    psub = command_group(sub, "params", "parameter sets")
    c = psub.add_parser("check", help="validate a parameter set file (YAML or JSON)")
    c.add_argument("file")
    c.add_argument("--units", choices=["gromacs", "lammps"], default=None,
                   help="units of the file's values when it has no 'units:' key "
                   "(default gromacs); a different 'units:' in the file is an error")
    c.set_defaults(func=cmd_params_check)
