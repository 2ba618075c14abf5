"""``cgflow params check FILE``: validate a parameter-set file."""

from __future__ import annotations

import argparse
from typing import Any

from cgflow.cli.common import say


def cmd_params_check(args: argparse.Namespace) -> int:
    from cgflow.params import parameter_set_from_mapping
    from cgflow.userfiles import read_yaml_mapping

    data = read_yaml_mapping(args.file, "parameter set")
    ps = parameter_set_from_mapping(data, units_system=args.units, source=str(args.file))
    say(f"valid parameter set, id {ps.id}")
    say(ps.summary())
    return 0


def add_parser(sub: Any) -> None:
    """Register ``cgflow params``."""
    pa = sub.add_parser("params", help="parameter sets")
    psub = pa.add_subparsers(dest="params_cmd", required=True)
    c = psub.add_parser("check", help="validate a parameter set file (YAML or JSON)")
    c.add_argument("file")
    c.add_argument("--units", choices=["gromacs", "lammps"], default="gromacs")
    c.set_defaults(func=cmd_params_check)
