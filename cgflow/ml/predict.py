"""Predict the CG potentials, the acceleration factor, the friction and the all-atom target
structure (g_t, density, pressure) of one parameter set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgflow.ml.training import TrainedModels
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


def training_space(models: TrainedModels) -> ParameterSpace | None:
    """The box spanned by the training sets' parameters, or None if not recorded."""
    bounds = models.metadata.get("training_bounds")
    if not bounds:
        return None
    return ParameterSpace(
        name="training-data", description="Range of the parameters the models were trained on",
        bounds={f: Bounds(low=bounds[f][0], high=bounds[f][1]) for f in FIELDS},
    )


def predict_potentials(
    models: TrainedModels, ps: ParameterSet, *, space: ParameterSpace | str | None = None
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
    """
    x = ps.to_array()[None, :]
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
    U_s, F_s = models.structure.predict_forces(x)
    if models.dynamics is not None:
        U_d, F_d = models.dynamics.predict_forces(x)
        U_d, F_d = U_d[0], F_d[0]
    else:
        U_d = F_d = None
    alpha, alpha_std = models.alpha.predict(x, return_std=True)
    gamma = gamma_std = None
    if models.friction is not None:
        g, g_std = models.friction.predict(x, return_std=True)
        gamma, gamma_std = float(g[0]), float(g_std[0])
    structure: dict[str, Any] = {}
    if models.rdf is not None:
        aa = models.rdf.predict(x)
        structure["rdf_r_nm"] = aa.r_nm
        if aa.g is not None:
            structure.update(g_target=aa.g[0], g_target_std=aa.g_std[0])
        for name, value, std in (("density_kg_m3", aa.density_kg_m3, aa.density_std_kg_m3),
                                 ("pressure_bar", aa.pressure_bar, aa.pressure_std_bar)):
            if value is not None:
                structure[name] = float(value[0])
                structure[name.replace("_", "_std_", 1)] = float(std[0])
    return Prediction(
        param_id=ps.id, r_nm=models.structure.r_nm.copy(), U_structure=U_s[0],
        F_structure=F_s[0], U_dynamics=U_d, F_dynamics=F_d, alpha=float(alpha[0]),
        alpha_std=float(alpha_std[0]), out_of_space=warnings, friction=gamma,
        friction_std=gamma_std, **structure,
    )
