"""``cgflow potentials list | show | export``: finished CG potentials from the database.

Filters: ``--campaign``, ``--molecule`` (a name or registry alias),
``--converged/--unconverged``, parameter ranges (``--where bond_cthc_k=250000:300000``,
GROMACS units, repeatable) and an alpha range (``--alpha 1.5:3``). Export writes, per
potential, simulation-ready tables (:func:`cgflow.stages.predict.write_simulation_files`,
shared with ``cgflow predict``):
``<id>.table`` (LAMMPS ``pair_style table``, units real, keyword ``CG_CG``) with a
``<id>.in.pair`` snippet that uses it, ``<id>.in.lammps`` (mass, pair style and the
thermostat with the set's calibrated friction), ``<id>.xvg`` (GROMACS user-table layout)
and ``<id>.pot`` (VOTCA), plus the target and final RDFs as ``<id>.rdf.dat``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.params import FIELD_UNITS

if TYPE_CHECKING:
    from cgflow.db.documents import PotentialDoc
    from cgflow.db.views import SetView


@dataclass(frozen=True)
class PotentialRow:
    """A stored potential with what users filter and show it by: the set's view
    (:class:`cgflow.db.views.SetView`, which has a potential)."""

    view: SetView

    @property
    def doc(self) -> PotentialDoc:
        """The potential document."""
        assert self.view.potential is not None
        return self.view.potential

    @property
    def params(self) -> dict[str, float] | None:
        """The set's parameters (GROMACS units), if its parameter set is stored."""
        return self.view.params

    @property
    def alpha(self) -> float | None:
        """The acceleration factor of the set's CG run, if measured."""
        return self.view.alpha

    @property
    def alpha_err(self) -> float | None:
        """The standard error of :attr:`alpha`, if known."""
        return self.view.alpha_err

    @property
    def key(self) -> str:
        """File stem of the potential: ``<param_id>-<preset>``."""
        return self.view.key


def parse_range(text: str, what: str) -> tuple[float, float]:
    """``"lo:hi"`` (either side may be empty) -> (lo, hi); errors name the value."""
    lo, sep, hi = text.partition(":")
    if not sep:
        raise InvalidInputError(f"{what}: expected LOW:HIGH, got {text!r}")
    try:
        return (float(lo) if lo else -np.inf, float(hi) if hi else np.inf)
    except ValueError:
        raise InvalidInputError(f"{what}: expected numbers in LOW:HIGH, got {text!r}") from None


def parse_where(items: list[str] | None) -> dict[str, tuple[float, float]]:
    """``["field=lo:hi", ...]`` -> {field: (lo, hi)} for ParameterSet fields."""
    out = {}
    for item in items or []:
        name, sep, rng = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--where: expected FIELD=LOW:HIGH, got {item!r}")
        if name not in FIELD_UNITS:
            raise InvalidInputError(f"--where: field {name!r} is not a parameter "
                                    f"(expected one of {list(FIELD_UNITS)})")
        out[name] = parse_range(rng, f"--where {name}")
    return out


def select_potentials(store: Any, *, campaign: str | None = None,
                      converged: bool | None = None,
                      where: dict[str, tuple[float, float]] | None = None,
                      alpha: tuple[float, float] | None = None,
                      molecule: str | None = None) -> list[PotentialRow]:
    """Stored potentials matching the filters, oldest first (parameter and alpha filters
    client-side).

    With ``campaign``, the potentials of its sets, its own and those it reused from an
    earlier campaign (:func:`cgflow.db.views.campaign_sets`).
    """
    from cgflow.cli.common import molecule_matches
    from cgflow.db.views import campaign_sets

    views = [v for v in campaign_sets(store, campaign=campaign, converged=converged)
             if v.potential is not None
             and (molecule is None or molecule_matches(v.molecule, molecule))]
    rows = []
    for view in sorted(views, key=lambda v: (v.potential.created_at, v.potential.id or "")):
        params, a = view.params, view.alpha
        if where:
            if params is None:
                continue
            if not all(lo <= params[f] <= hi for f, (lo, hi) in where.items()):
                continue
        if alpha is not None and (a is None or not alpha[0] <= a <= alpha[1]):
            continue
        rows.append(PotentialRow(view))
    return rows


def export_potential(row: PotentialRow, out_dir: Path) -> list[Path]:
    """Write the tables, LAMMPS snippets and RDFs of one potential into ``out_dir``;
    returns the files. The ``.in.lammps`` snippet carries the set's calibrated friction
    (a converged calibration), else the frictionless thermostat."""
    from cgflow.ibi.potential import TabulatedPotential
    from cgflow.stages.predict import write_simulation_files

    pot = TabulatedPotential.from_dict(row.doc.potential.model_dump())
    stem = row.key
    fr = row.view.friction
    calibrated = fr is not None and fr.converged and fr.gamma_per_ps is not None
    note = ""
    if calibrated and fr.friction_per_ps.err is not None:
        note = f" (calibrated, +- {fr.friction_per_ps.err:.2g})"
    files = write_simulation_files(
        out_dir, stem, pot,
        title=f"the cgflow CG potential of {row.doc.param_id} ({row.doc.preset})",
        temperature_k=fr.temperature_k if calibrated and getattr(fr, "temperature_k", None)
        else 298.15,
        friction_per_ps=fr.gamma_per_ps if calibrated else None, friction_note=note,
        thermostat=fr.thermostat if calibrated else "langevin",
        dpd_gamma_g_mol_ps=fr.dpd_gamma_g_mol_ps if calibrated else None)
    rdf = out_dir / f"{stem}.rdf.dat"
    t = row.doc.target_rdf
    fin = row.doc.final_rdf
    g_fin = np.interp(t.r_nm, fin.r_nm, fin.g) if fin is not None else np.full(len(t.r_nm),
                                                                               np.nan)
    np.savetxt(rdf, np.column_stack([t.r_nm, t.g, g_fin]),
               header="r/nm  g_target(AA)  g_final(CG)")
    files.append(rdf)
    return files


def _row_summary(row: PotentialRow) -> dict[str, Any]:
    d = row.doc
    last = row.view.best_metrics
    return {
        "param_id": d.param_id, "molecule": row.view.molecule, "preset": d.preset,
        "campaign": d.campaign,
        "converged": d.converged, "iterations": d.n_iterations,
        "best_iteration": d.best_iteration,
        "rdf_deviation": last.get("rdf_deviation"),
        "pressure_deviation_bar": last.get("pressure_deviation_bar"),
        "alpha": row.alpha, "alpha_err": row.alpha_err, "reason": d.reason,
    }


def run_potentials(args: argparse.Namespace, store: Any) -> int:
    """Run ``cgflow potentials ACTION`` on ``store``."""
    converged = True if args.converged else (False if args.unconverged else None)
    rows = select_potentials(
        store, campaign=args.campaign, converged=converged, where=parse_where(args.where),
        alpha=parse_range(args.alpha, "--alpha") if args.alpha else None,
        molecule=args.molecule)
    if args.param_id:
        rows = [r for r in rows if r.doc.param_id.startswith(args.param_id)]
    if args.action == "list":
        print(f"{'param_id':18s} {'preset':7s} {'conv':5s} {'iter':>4s} {'RDF dev':>8s} "
              f"{'dP/bar':>8s} {'alpha':>14s}  {'molecule':22s} campaign")
        for r in rows:
            s = _row_summary(r)
            dev = f"{s['rdf_deviation']:.4f}" if s["rdf_deviation"] is not None else "-"
            dp = (f"{s['pressure_deviation_bar']:.1f}"
                  if s["pressure_deviation_bar"] is not None else "-")
            al = f"{r.alpha:.2f} +- {r.alpha_err or 0:.2f}" if r.alpha is not None else "-"
            print(f"{s['param_id']:18s} {s['preset']:7s} {str(s['converged']):5s} "
                  f"{s['iterations']:4d} {dev:>8s} {dp:>8s} {al:>14s}  {s['molecule']:22s} "
                  f"{s['campaign']}")
        return 0
    if args.action == "show":
        if not rows:
            raise InvalidInputError("no potential matches the filters")
        for r in rows:
            print(json.dumps({**_row_summary(r), "parameters": r.params,
                              "potential": r.doc.potential.model_dump()}, indent=2))
        return 0
    if not rows:
        raise InvalidInputError("no potential matches the filters")
    out = Path(args.output)
    for r in rows:
        for f in export_potential(r, out):
            print(f)
    return 0


def add_parser(sub: Any) -> None:
    """Register ``potentials`` on the CLI's subparsers; ``func`` runs it."""
    p = sub.add_parser("potentials", help="list, show and export finished CG potentials")
    p.add_argument("action", choices=["list", "show", "export"])
    p.add_argument("param_id", nargs="?", help="a parameter-set id (or its prefix)")
    p.add_argument("-l", "--launchpad")
    p.add_argument("--campaign")
    p.add_argument("--molecule", help="only this molecule's potentials (a name or alias)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--converged", action="store_true")
    g.add_argument("--unconverged", action="store_true")
    p.add_argument("--where", action="append", metavar="FIELD=LOW:HIGH",
                   help="parameter range, GROMACS units (repeatable)")
    p.add_argument("--alpha", metavar="LOW:HIGH", help="acceleration-factor range")
    p.add_argument("-o", "--output", default="potentials", help="export folder")
    p.set_defaults(func=cmd_potentials)


def cmd_potentials(args: argparse.Namespace) -> int:
    """Run ``cgflow potentials`` on the store of the command's launchpad."""
    from cgflow.cli.common import open_store

    with open_store(args) as store:
        return run_potentials(args, store)
