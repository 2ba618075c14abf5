"""The ``cgflow`` command: the front door to the job database, campaigns and results.

Subcommands (one module of :mod:`cgflow.cli` per group; parsing and printing only)::

    cgflow db start|stop|status|env|migrate  embedded job database, migrations     cli.db
    cgflow campaign build|submit|status|results, cgflow launch                    cli.campaign
    cgflow potentials list|show|export       finished CG potentials               cli.potentials
    cgflow models list|show|train, cgflow predict                                 cli.models
    cgflow validate                          closed loop on unseen sets           cli.validate
    cgflow dataset export|merge              results as files                     cli.dataset
    cgflow report CAMPAIGN -o DIR            HTML page of figures and tables      cli.report
    cgflow params check FILE                 validate a parameter set file        cli.params
    cgflow demo                              the README's main job, end to end    cli.demo
"""

from __future__ import annotations

import argparse
import sys

from cgflow.cli import (
    campaign,
    dataset,
    db,
    demo,
    models,
    params,
    potentials,
    report,
    validate,
)
from cgflow.errors import CgflowError, InvalidInputError

#: The command groups, in the order ``cgflow --help`` lists them.
GROUPS = (db, campaign, potentials, models, validate, dataset, report, params, demo)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="cgflow", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cgflow`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInputError as exc:
        print(f"cgflow: invalid input: {exc}", file=sys.stderr)
        return 2
    except CgflowError as exc:
        print(f"cgflow: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
