"""``cgflow params check FILE``: validate a parameter-set file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from cgflow.cli.common import say
from cgflow.errors import InvalidInputError


def cmd_params_check(args: argparse.Namespace) -> int:
    from cgflow.params import parameter_set_from_mapping

    path = Path(args.file)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: malformed YAML: {exc}") from None
    ps = parameter_set_from_mapping(data, units_system=args.units, source=str(path))
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
