"""Machine learning of CG potentials and acceleration factors from force-field parameters.

Works on arrays and plain dataclasses only: the campaign's database records become a
:class:`CampaignDataset`, :func:`train_all` cross-validates and trains the
:class:`StructureModel` (parameters -> IBI potential), the :class:`DynamicsModel`
(parameters -> potential with the all-atom dynamics) and the
:class:`AccelerationFactorModel` (parameters -> alpha = D_CG / D_AA) and the
:class:`RDFModel` (parameters -> the all-atom run's g_t(r), density and pressure, from
every all-atom run, :class:`AATargets`), and :func:`predict_potentials` applies them to a
new parameter set; :func:`select_batch` picks the next sets to simulate where the models
are most uncertain (active learning). Feature matrices ``X`` are
(n, 19) in :data:`cgflow.params.FIELDS` order, GROMACS units; potentials are kJ/mol on a
grid in nm; diffusion coefficients nm^2/ps.

The public names below are imported on first use, so that ``cgflow.ml.dataset`` (say)
can be used without loading torch or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "AcquisitionSettings": "active_learning",
    "BatchChoice": "active_learning",
    "BatchSelection": "active_learning",
    "fit_models": "active_learning",
    "select_batch": "active_learning",
    "AccelerationFactorModel": "alpha_model",
    "RandomForestAlphaBaseline": "alpha_model",
    "compare_on_folds": "alpha_model",
    "CampaignDataset": "dataset",
    "Splits": "dataset",
    "splits": "dataset",
    "DynamicsModel": "dynamics",
    "dynamics_pairs": "dynamics",
    "check_features": "features",
    "descriptor_matrix": "features",
    "model_inputs": "features",
    "potential_rmse": "metrics",
    "regression_metrics": "metrics",
    "Prediction": "predict",
    "predict_potentials": "predict",
    "PotentialRepresentation": "representation",
    "AATargets": "rdf_model",
    "RDFModel": "rdf_model",
    "RDFPrediction": "rdf_model",
    "score_rdf_model": "rdf_model",
    "forces_from_potential": "representation",
    "StructureModel": "structure_model",
    "MIN_SETS_TO_TRAIN": "training",
    "InsufficientDataError": "training",
    "TrainedModels": "training",
    "TrainingReport": "training",
    "learning_curve": "training",
    "load_models": "training",
    "save_models": "training",
    "train_all": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cgflow.ml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cgflow.ml.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
