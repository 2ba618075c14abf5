"""Predict the CG potentials, the acceleration factor, the friction and the all-atom target
structure (g_t, density, pressure) of one parameter set.

Two structure-preserving routes are predicted side by side:

* ``structure`` (direct): parameters -> U(r) by the structure model, learned from the
  converged IBI potentials;
* ``structure-inverse``: parameters -> (g_t, density, pressure) by the RDF model, learned
  from every all-atom run, then g_t -> U(r) by the learned structure-to-potential inverse
  (:class:`cgflow.ml.inverse.StructureInverse`, trained on synthetic pairs). It needs
  an RDF model that predicts g_t and the density, and an inverse that covers the
  potential grid, temperature and bead mass: the one given, else the inverse shipped with
  cgflow (:func:`cgflow.ml.inverse.shipped_inverse_for`); otherwise it is absent (None).

*Approximation:* the inverse route feeds the inverse the RDF model's mean g_t, density
and pressure; their uncertainty is not propagated into the potential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgflow.ibi.settings import BEAD_MASS_G_MOL
from cgflow.ml.inverse import StructureInverse, grid_prefix, shipped_inverse_for
from cgflow.ml.training import TrainedModels
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES
from cgflow.params import FIELDS, Bounds, ParameterSet, ParameterSpace, get_space


@dataclass(frozen=True)
class Prediction:
    """Model predictions for one parameter set.

    Attributes
    ----------
    param_id
        Id of the parameter set.
    r_nm
        (G,) grid, nm; the last point is the cut-off.
    U_structure, F_structure
        Potential (kJ/mol) reproducing the all-atom structure, and its force -dU/dr
        (kJ/(mol nm)).
    U_dynamics, F_dynamics
        Potential and force reproducing the all-atom dynamics; None when the models have
        no dynamics model.
    alpha, alpha_std
        Predicted acceleration factor D_CG / D_AA and its standard deviation.
    out_of_space
        Warnings, one per parameter outside the training data's range (and outside
        ``space`` when one was given). Empty when the set is inside.
    friction, friction_std
        Predicted friction gamma (1/ps) with which the structure-preserving potential
        diffuses like the all-atom liquid, and its standard deviation; None when the
        models have no friction model.
    rdf_r_nm, g_target, g_target_std
        Grid (nm) and the predicted all-atom centre-of-mass RDF g_t(r) (the IBI target)
        with its standard deviation; None when the models have no RDF model.
    density_kg_m3, density_std_kg_m3, pressure_bar, pressure_std_bar
        Predicted all-atom density and pressure with standard deviations; None when the
        models have no RDF model or it had no such data.
    U_structure_inverse, F_structure_inverse
        The structure route through the predicted g_t and the learned inverse (module
        docstring), on ``r_nm``; None when that route is not available.
    """

    param_id: str
    r_nm: np.ndarray
    U_structure: np.ndarray
    F_structure: np.ndarray
    U_dynamics: np.ndarray | None
    F_dynamics: np.ndarray | None
    alpha: float
    alpha_std: float
    out_of_space: list[str] = field(default_factory=list)
    friction: float | None = None
    friction_std: float | None = None
    rdf_r_nm: np.ndarray | None = None
    g_target: np.ndarray | None = None
    g_target_std: np.ndarray | None = None
    density_kg_m3: float | None = None
    density_std_kg_m3: float | None = None
    pressure_bar: float | None = None
    pressure_std_bar: float | None = None
    U_structure_inverse: np.ndarray | None = None
    F_structure_inverse: np.ndarray | None = None


def training_space(models: TrainedModels) -> ParameterSpace | None:
    """The box spanned by the training sets' parameters, or None if not recorded."""
    bounds = models.metadata.get("training_bounds")
    if not bounds:
        return None
    return ParameterSpace(
        name="training-data", description="Range of the parameters the models were trained on",
        bounds={f: Bounds(low=bounds[f][0], high=bounds[f][1]) for f in FIELDS},
    )


def inverse_route(r_nm: np.ndarray, rdf_r_nm: np.ndarray, g_target: np.ndarray,
                  density_kg_m3: float, pressure_bar: float | None, *,
                  temperature_k: float, mass_g_mol: float,
                  inverse: StructureInverse | None = None, molecule: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """U and F on ``r_nm`` of the learned inverse applied to a target structure (g_t on
    ``rdf_r_nm``, interpolated onto ``r_nm``), or None when no inverse covers the grid
    (``inverse`` or the shipped one, which covers its own molecule only: ``molecule``,
    canonical SMILES, default 2,3,4-trimethylpentane) or the inverse needs a pressure
    that is missing."""
    r = np.asarray(r_nm, float)
    if inverse is None:
        path = shipped_inverse_for(r, temperature_k, mass_g_mol,
                                   molecule or TRIMETHYLPENTANE_SMILES)
        if path is None:
            return None
        inverse = StructureInverse.load(path)
    if inverse.r_nm is None or grid_prefix(inverse.r_nm, r) is None:
        return None
    if inverse.use_pressure and pressure_bar is None:
        return None
    g = np.interp(r, np.asarray(rdf_r_nm, float), np.asarray(g_target, float))
    pot = inverse.predict_potential_on(r, np.clip(g, 0.0, None), density_kg_m3,
                                       temperature_k, mass_g_mol, pressure_bar)
    return pot.u_kj_mol, pot.f_kj_mol_nm


def predict_potentials(
    models: TrainedModels, ps: ParameterSet, *, space: ParameterSpace | str | None = None,
    inverse: StructureInverse | None = None, temperature_k: float = 298.15,
    mass_g_mol: float = BEAD_MASS_G_MOL, molecule: str | None = None,
) -> Prediction:
    """Predict both potentials, their forces, alpha and (with an RDF model) the all-atom
    target structure for the parameter set ``ps``.

    Parameters
    ----------
    models
        Trained models (from :func:`~cgflow.ml.training.train_all` or
        :func:`~cgflow.ml.training.load_models`).
    ps
        The parameter set (GROMACS units).
    space
        Optionally a parameter space (or the name of a shipped one) to check ``ps``
        against, besides the training data's range.
    inverse, temperature_k, mass_g_mol
        The learned inverse of the ``structure-inverse`` route (default: the shipped one
        where it covers the grid), and the state point it is applied at (K, g/mol).
    molecule
        Canonical SMILES of the molecule (default 2,3,4-trimethylpentane); models trained
        on one molecule refuse another (:func:`cgflow.ml.features.model_inputs`).
    """
    x = ps.to_array()[None, :]
    mol = None if molecule is None else [molecule]
    warnings: list[str] = []
    checks = [training_space(models)]
    if space is not None:
        checks.append(get_space(space) if isinstance(space, str) else space)
    for sp in checks:
        if sp is None:
            continue
        for f in sp.contains(ps):
            b = sp.bounds[f]
            warnings.append(
                f"{f} = {getattr(ps, f):.6g} is outside {sp.name!r} [{b.low:.6g}, {b.high:.6g}]: "
                "the prediction is an extrapolation"
            )
    U_s, F_s = models.structure.predict_forces(x, mol)
    if models.dynamics is not None:
        U_d, F_d = models.dynamics.predict_forces(x, mol)
        U_d, F_d = U_d[0], F_d[0]
    else:
        U_d = F_d = None
    alpha, alpha_std = models.alpha.predict(x, return_std=True, molecules=mol)
    gamma = gamma_std = None
    if models.friction is not None:
        g, g_std = models.friction.predict(x, return_std=True, molecules=mol)
        gamma, gamma_std = float(g[0]), float(g_std[0])
    structure: dict[str, Any] = {}
    if models.rdf is not None:
        aa = models.rdf.predict(x, mol)
        structure["rdf_r_nm"] = aa.r_nm
        if aa.g is not None:
            structure.update(g_target=aa.g[0], g_target_std=aa.g_std[0])
        for name, value, std in (("density_kg_m3", aa.density_kg_m3, aa.density_std_kg_m3),
                                 ("pressure_bar", aa.pressure_bar, aa.pressure_std_bar)):
            if value is not None:
                structure[name] = float(value[0])
                structure[name.replace("_", "_std_", 1)] = float(std[0])
    if structure.get("g_target") is not None and structure.get("density_kg_m3") is not None:
        via = inverse_route(models.structure.r_nm, structure["rdf_r_nm"],
                            structure["g_target"], structure["density_kg_m3"],
                            structure.get("pressure_bar"), temperature_k=temperature_k,
                            mass_g_mol=mass_g_mol, inverse=inverse, molecule=molecule)
        if via is not None:
            structure["U_structure_inverse"], structure["F_structure_inverse"] = via
    return Prediction(
        param_id=ps.id, r_nm=models.structure.r_nm.copy(), U_structure=U_s[0],
        F_structure=F_s[0], U_dynamics=U_d, F_dynamics=F_d, alpha=float(alpha[0]),
        alpha_std=float(alpha_std[0]), out_of_space=warnings, friction=gamma,
        friction_std=gamma_std, **structure,
    )
