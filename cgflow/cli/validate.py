"""``cgflow validate``: closed-loop validation of a campaign's models on unseen sets.

Parsing and printing around :func:`cgflow.stages.validate.validate_campaign_models`, which
loads the models of a campaign, picks parameter sets with a completed all-atom run that
are not among the models' training sets (by default from the models' own campaign: its
held-out test sets, and sets whose IBI did not converge), predicts their potentials and
alpha, simulates them in LAMMPS and stores one ``validations`` document per set (tied to
the models by their training data's hash). This module prints the table. A set whose runs
fail is reported and the others go on; the command then exits non-zero.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from cgflow.errors import InvalidInputError


def _pct(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{100 * x:+.0f} %"


def _num(x: float | None) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.3f}"


def format_validations(docs: list[Any]) -> str:
    """A table: per set, the structure route's RDF deviation (direct, and through the
    predicted g_t and the inverse) and alpha-rescaled D error,
    the dynamics route's D error (and RDF deviation), and the potential + predicted
    friction route's D error."""
    head = (f"{'param_id':16s}  {'RDF dev (struct)':>16s}  {'RDF dev (inverse)':>17s}  "
            f"{'alpha pred':>14s}  "
            f"{'D_CG/alpha vs D_AA':>18s}  {'D_CG dyn vs D_AA':>16s}  {'RDF dev (dyn)':>13s}  "
            f"{'D_CG(gamma_pred) vs D_AA':>24s}")
    lines = [head, "-" * len(head)]
    for d in docs:
        s, dyn = d.structure, d.dynamics or {}
        inv = getattr(d, "structure_inverse", None) or {}
        fr = getattr(d, "friction", None) or {}
        std = f" +- {d.alpha_std:.2f}" if d.alpha_std is not None else ""
        lines.append(
            f"{d.param_id:16s}  {_num(s['rdf_deviation']):>16s}  "
            f"{_num(inv.get('rdf_deviation')):>17s}  {d.alpha_pred:7.2f}{std:>7s}  "
            f"{_pct(s.get('d_rescaled_rel_error')):>18s}  {_pct(dyn.get('d_rel_error')):>16s}  "
            f"{_num(dyn.get('rdf_deviation')):>13s}  {_pct(fr.get('d_rel_error')):>24s}")
    return "\n".join(lines)


def add_parser(sub: Any) -> None:
    """Add ``cgflow validate`` to the subparsers ``sub``."""
    v = sub.add_parser("validate", help="simulate predicted potentials of unseen sets and "
                       "compare with their all-atom results")
    v.add_argument("--campaign", required=True, help="whose models to validate")
    v.add_argument("--sets-from", help="campaign whose unseen sets to use (default: the "
                   "models' campaign: its held-out test sets and unconverged sets)")
    v.add_argument("--param-id", action="append", help="only this set (repeatable)")
    v.add_argument("--max-sets", type=int, help="at most this many sets")
    v.add_argument("--preset", help="CG preset of the runs (default: the set's AA preset)")
    v.add_argument("--threads", type=int, default=1)
    v.add_argument("-o", "--output", default="validation", help="run directories")
    v.add_argument("-l", "--launchpad")
    v.set_defaults(func=cmd_validate)


def run_validate(args: argparse.Namespace, store: Any) -> int:
    """Run ``cgflow validate`` on ``store``."""
    if args.max_sets is not None and args.max_sets < 1:
        raise InvalidInputError(f"--max-sets: value {args.max_sets}: must be >= 1")
    from cgflow.stages.validate import validate_campaign_models

    docs, failures = validate_campaign_models(
        store, args.campaign, sets_campaign=args.sets_from, work_root=args.output,
        preset=args.preset, max_sets=args.max_sets, param_ids=args.param_id,
        threads=args.threads)
    print(format_validations(docs), flush=True)
    for msg in failures:
        print(f"failed: {msg}", flush=True)
    return 1 if failures else 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Run ``cgflow validate`` on the store of the command's launchpad."""
    from cgflow.cli.common import open_store

    with open_store(args) as store:
        return run_validate(args, store)
