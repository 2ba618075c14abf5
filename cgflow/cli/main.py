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

Errors: bad input (:class:`~cgflow.errors.InvalidInputError`) prints one message naming
the file, the field and the value, exit status 2; cgflow's other errors (an unreachable
database, a failed engine run) print their message, exit status 1; any other exception
prints one line with its type and message, exit status 1, and its traceback only with
``cgflow --debug``.
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
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an unexpected error instead of one line")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cgflow`` console script (see the module docstring for the exit
    statuses)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInputError as exc:
        print(f"cgflow: invalid input: {exc}", file=sys.stderr)
        return 2
    except CgflowError as exc:
        print(f"cgflow: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cgflow: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        return _unexpected(exc)


def _unexpected(exc: Exception) -> int:
    """One line for an exception cgflow did not expect (a lost database connection among
    them), without credentials; exit status 1."""
    from pymongo.errors import ConnectionFailure, PyMongoError

    from cgflow.db.store import AUTHENTICATION_FAILED, redact_uri, unreachable_message

    if isinstance(exc, ConnectionFailure) or (
            isinstance(exc, PyMongoError) and getattr(exc, "code", None) == AUTHENTICATION_FAILED):
        msg = unreachable_message("the launchpad's server", exc)
    else:
        text = " ".join(str(exc).split())
        msg = f"unexpected error: {type(exc).__name__}: {redact_uri(text)[:500]}"
    print(f"cgflow: {msg} (run with --debug for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
