"""Files written by ``cgflow predict`` and ``cgflow potentials export``: simulation-ready
tables of a CG potential and a LAMMPS input snippet with its thermostat.

:func:`write_simulation_files` is the one writer both use: per potential a LAMMPS table
(``<stem>.table``, ``units real``), the ``pair_style`` lines that use it
(``<stem>.in.pair``), a LAMMPS input snippet ready to paste (``<stem>.in.lammps``: the
bead mass in g/mol, the pair style and table, and the thermostat with the calibrated or
predicted friction: ``fix langevin`` with damping 1/gamma in fs, or the DPD pair
friction; without a friction, the weakly coupled Nose-Hoover thermostat of cgflow's CG
production, whose dynamics are the frictionless ones), a GROMACS xvg and a VOTCA table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cgflow.engines.lammps import (
    TABLE_KEYWORD,
    dpd_pair_lines,
    langevin_damp_fs,
    production_thermostat_lines,
)
from cgflow.ibi.export import write_lammps_table, write_votca_table, write_xvg_table
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import BEAD_MASS_G_MOL
from cgflow.units import nm_to_angstrom

#: Table spacing of the exported files, nm.
EXPORT_SPACING_NM = 0.001
#: Seed of the thermostat line of a snippet (change it per run).
SNIPPET_SEED = 4928


def thermostat_snippet(*, temperature_k: float, friction_per_ps: float | None,
                       thermostat: str = "langevin", dpd_gamma_g_mol_ps: float | None = None,
                       table: tuple[str, int, float] | None = None, note: str = "",
                       seed: int = SNIPPET_SEED) -> list[str]:
    """The thermostat lines of a snippet (``units real``).

    ``friction_per_ps`` > 0 with ``thermostat="langevin"``: ``fix langevin`` with damping
    1/gamma (fs) and ``fix nve``; with ``thermostat="dpd"`` and ``dpd_gamma_g_mol_ps``:
    the DPD pair style overlaid on ``table`` (file, points, cutoff in nm) and ``fix nve``;
    None or 0: the frictionless production thermostat (Nose-Hoover, 5 ps).
    """
    T = temperature_k
    if friction_per_ps is None or not friction_per_ps > 0:
        return [f"# frictionless dynamics (cgflow's CG production){note}: D_CG = alpha D_AA",
                *production_thermostat_lines("nose-hoover", T, seed=seed)]
    head = (f"# friction gamma = {friction_per_ps:.6g} 1/ps{note}: the CG model then diffuses "
            "like the all-atom liquid")
    if thermostat == "dpd" and dpd_gamma_g_mol_ps and table is not None:
        file, points, rcut_nm = table
        return [head, f"# DPD thermostat, pair friction {dpd_gamma_g_mol_ps:.6g} g/mol/ps "
                "(needs the DPD-BASIC package)",
                *dpd_pair_lines(file, TABLE_KEYWORD, points, rcut_nm, T, dpd_gamma_g_mol_ps,
                                seed),
                *production_thermostat_lines("dpd", T, seed=seed)]
    return [head, f"# Langevin damping 1/gamma = {langevin_damp_fs(friction_per_ps):.6g} fs",
            *production_thermostat_lines("langevin", T, seed=seed,
                                         friction_per_ps=friction_per_ps)]


def write_simulation_files(
    out_dir: Path, stem: str, potential: TabulatedPotential, *, title: str,
    temperature_k: float = 298.15, mass_g_mol: float = BEAD_MASS_G_MOL,
    friction_per_ps: float | None = None, friction_note: str = "",
    thermostat: str = "langevin", dpd_gamma_g_mol_ps: float | None = None,
) -> list[Path]:
    """Write the tables and the LAMMPS snippets of one potential into ``out_dir``.

    Returns
    -------
    list of Path
        ``<stem>.table``, ``<stem>.in.pair`` (pair style only), ``<stem>.in.lammps``
        (mass, pair style, thermostat: :func:`thermostat_snippet`), ``<stem>.xvg``,
        ``<stem>.pot``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    r, u, f = potential.tabulate(EXPORT_SPACING_NM)
    table = f"{stem}.table"
    files = [write_lammps_table(out_dir / table, r, u, f, TABLE_KEYWORD)]
    pair = [f"pair_style table linear {r.size}",
            f"pair_coeff 1 1 {table} {TABLE_KEYWORD} {nm_to_angstrom(r[-1]):.4f}"]
    head = f"# LAMMPS, units real: one bead type, {title}"
    snippet = out_dir / f"{stem}.in.pair"
    snippet.write_text("\n".join([head, *pair]) + "\n")
    files.append(snippet)
    full = out_dir / f"{stem}.in.lammps"
    lines = [head, f"mass 1 {mass_g_mol:.6g}", *pair,
             *thermostat_snippet(temperature_k=temperature_k, friction_per_ps=friction_per_ps,
                                 thermostat=thermostat, dpd_gamma_g_mol_ps=dpd_gamma_g_mol_ps,
                                 table=(table, r.size, float(r[-1])), note=friction_note)]
    full.write_text("\n".join(lines) + "\n")
    files.append(full)
    files.append(write_xvg_table(out_dir / f"{stem}.xvg", r, u, f))
    files.append(write_votca_table(out_dir / f"{stem}.pot", potential.r_nm,
                                   potential.u_kj_mol))
    return files


def write_prediction(pred: Any, out_dir: Path, *, molecule: Any = None) -> list[Path]:
    """Write LAMMPS, xvg and VOTCA tables of the structure-preserving (direct and, if
    present, through the predicted g_t and the learned inverse) and dynamics-preserving
    potentials of a :class:`cgflow.ml.predict.Prediction`
    (:func:`write_simulation_files`; the structure route's snippet carries the predicted
    friction, when the models have a friction model), plus a JSON summary with alpha and
    the friction and their standard deviations. ``molecule`` (a
    :class:`cgflow.molecule.registry.MoleculeSpec`; default 2,3,4-trimethylpentane) gives
    the bead mass and temperature of the LAMMPS snippets."""
    from cgflow.molecule.registry import resolve_molecule

    spec = resolve_molecule(molecule)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    routes = {"structure": pred.U_structure}
    if getattr(pred, "U_structure_inverse", None) is not None:
        routes["structure-inverse"] = pred.U_structure_inverse
    if pred.U_dynamics is not None:
        routes["dynamics"] = pred.U_dynamics
    gamma = getattr(pred, "friction", None)
    gamma_std = getattr(pred, "friction_std", None)
    for route, u in routes.items():
        pot = TabulatedPotential.from_energy(pred.r_nm, u)
        friction = gamma if route.startswith("structure") else None
        note = (f" (predicted, +- {gamma_std:.2g})" if friction is not None
                and gamma_std is not None else "")
        files += write_simulation_files(
            out_dir, f"{pred.param_id}-{route}", pot,
            title=(f"the structure-preserving potential predicted for {pred.param_id} "
                   "through its predicted g_t and the learned inverse"
                   if route == "structure-inverse" else
                   f"the {route}-preserving potential predicted for {pred.param_id}"),
            friction_per_ps=friction, friction_note=note, temperature_k=spec.temperature_k,
            mass_g_mol=spec.bead_mass_g_mol)
    summary = out_dir / f"{pred.param_id}-prediction.json"
    summary.write_text(json.dumps({
        "param_id": pred.param_id, "molecule": spec.name, "smiles": spec.smiles,
        "temperature_k": spec.temperature_k, "bead_mass_g_mol": spec.bead_mass_g_mol,
        "alpha": pred.alpha, "alpha_std": pred.alpha_std,
        "friction_per_ps": gamma, "friction_std_per_ps": gamma_std,
        "langevin_damp_fs": (langevin_damp_fs(gamma) if gamma is not None
                             and math.isfinite(gamma) and gamma > 0 else None),
        "out_of_space": list(pred.out_of_space), "routes": sorted(routes),
        # the route with the smaller closed-loop RDF and pressure errors on unseen sets
        # (benchmarks/ml/results/structure_routes.md)
        "recommended_structure_route": ("structure-inverse" if "structure-inverse" in routes
                                        else "structure"),
        "note": ("structure route: rescale CG time by alpha, or run it with the predicted "
                 "friction (its .in.lammps); structure-inverse: the same through the "
                 "predicted g_t and the learned inverse; dynamics route: D_CG ~ D_AA"),
    }, indent=2))
    files.append(summary)
    return files
