"""Files written by ``cgflow predict``: simulation-ready tables of predicted potentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cgflow.engines.lammps import TABLE_KEYWORD
from cgflow.ibi.export import write_lammps_table, write_votca_table, write_xvg_table
from cgflow.ibi.potential import TabulatedPotential
from cgflow.units import nm_to_angstrom


def write_prediction(pred: Any, out_dir: Path) -> list[Path]:
    """Write LAMMPS, xvg and VOTCA tables of the structure-preserving (and, if present,
    dynamics-preserving) potentials of a :class:`cgflow.ml.predict.Prediction`, plus a
    JSON summary with alpha and its standard deviation."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    routes = {"structure": pred.U_structure}
    if pred.U_dynamics is not None:
        routes["dynamics"] = pred.U_dynamics
    for route, u in routes.items():
        pot = TabulatedPotential.from_energy(pred.r_nm, u)
        r, uu, f = pot.tabulate(0.001)
        stem = f"{pred.param_id}-{route}"
        files.append(write_lammps_table(out_dir / f"{stem}.table", r, uu, f, TABLE_KEYWORD))
        snippet = out_dir / f"{stem}.in.pair"
        snippet.write_text(f"pair_style table linear {r.size}\n"
                           f"pair_coeff 1 1 {stem}.table {TABLE_KEYWORD} "
                           f"{nm_to_angstrom(r[-1]):.4f}\n")
        files.append(snippet)
        files.append(write_xvg_table(out_dir / f"{stem}.xvg", r, uu, f))
        files.append(write_votca_table(out_dir / f"{stem}.pot", pot.r_nm, pot.u_kj_mol))
    summary = out_dir / f"{pred.param_id}-prediction.json"
    summary.write_text(json.dumps({
        "param_id": pred.param_id, "alpha": pred.alpha, "alpha_std": pred.alpha_std,
        "out_of_space": list(pred.out_of_space), "routes": sorted(routes),
        "note": "structure route: rescale CG time by alpha; dynamics route: D_CG ~ D_AA",
    }, indent=2))
    files.append(summary)
    return files
