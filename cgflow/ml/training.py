"""Training and evaluation of the three models of a campaign, and their serialisation.

Protocol (:func:`train_all`): :func:`~cgflow.ml.dataset.splits` holds out a test set and
cuts the rest into ``n_folds`` folds. For each fold the structure model, the dynamics
model, the alpha model and the random-forest baseline are trained on the fold's training
sets and scored on its validation sets; then all models are retrained on all non-test
sets and scored once on the test set. The returned models are those final ones.

* Potentials are scored as RMSE in kJ/mol over the grid, the sampled region and the
  first well (:func:`~cgflow.ml.metrics.potential_rmse`; regions from the mean
  potential of the non-test sets).
* The dynamics model is trained on the pairs ``(i, j)`` whose ``i`` is a training set and
  scored on the pairs whose ``i`` is a validation (test) set; it is skipped (with the
  reason recorded) when there are too few pairs.
* The alpha models use the sets with a finite, positive alpha.
* The friction model (the alpha model's Gaussian process, :class:`AccelerationFactorModel`,
  on the calibrated friction gamma instead: it fits log(gamma)) uses the sets with a
  calibrated gamma > 0; with fewer than :data:`MIN_SETS_TO_TRAIN` of them (a dataset
  without friction data, such as an older export) it is absent and the reason is
  recorded (``metadata["friction_model"]``).
* The structure model of the all-atom targets (:class:`~cgflow.ml.rdf_model.RDFModel`:
  g_t(r), density, pressure) is trained on every all-atom run given (``aa_targets``,
  converged or not; by default the target RDFs of the dataset's sets) except the held-out
  test sets, and scored once on those (``test["rdf"]``); absent, with the reason in
  ``metadata["rdf_model"]``, when it has nothing to learn from.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sklearn
import torch

from cgflow.errors import CgflowError, InvalidInputError
from cgflow.ml.alpha_model import AccelerationFactorModel, RandomForestAlphaBaseline
from cgflow.ml.dataset import CampaignDataset, splits
from cgflow.ml.dynamics import DynamicsModel, dynamics_pairs
from cgflow.ml.metrics import potential_rmse, regression_metrics
from cgflow.ml.rdf_model import AATargets, RDFModel, score_rdf_model
from cgflow.ml.structure_model import StructureModel
from cgflow.params import FIELDS

#: Fewest converged parameter sets :func:`train_all` accepts.
MIN_SETS_TO_TRAIN = 8
#: Fewest pairs (from at least 2 distinct sets i) to train a dynamics model.
MIN_DYNAMICS_PAIRS = 3


class InsufficientDataError(CgflowError):
    """A campaign has too few converged parameter sets to train on."""


@dataclass
class TrainedModels:
    """The models of one campaign plus their metadata.

    Attributes
    ----------
    structure
        Parameters -> IBI potential.
    dynamics
        Parameters -> potential with the all-atom dynamics; None when there were too few
        dynamics pairs.
    alpha
        Parameters -> acceleration factor (with uncertainty).
    friction
        Parameters -> calibrated friction gamma, 1/ps (with uncertainty); None without
        enough calibrated sets (``metadata["friction_model"]`` says why).
    rdf
        Parameters -> the all-atom run's g_t(r), density and pressure (with uncertainty);
        None when there was nothing to train it on, and for models stored before it
        existed.
    metadata
        JSON-able: campaign, dataset hash, ids of the training sets, the box spanned by
        their parameters (``training_bounds``: field -> [low, high], GROMACS units),
        seed, library versions, creation time.
    """

    structure: StructureModel
    dynamics: DynamicsModel | None
    alpha: AccelerationFactorModel
    metadata: dict[str, Any] = field(default_factory=dict)
    friction: AccelerationFactorModel | None = None
    rdf: RDFModel | None = None


@dataclass
class TrainingReport:
    """Metrics of :func:`train_all` and the final models.

    Attributes
    ----------
    campaign, dataset_hash, n_sets, seed, n_folds
        What was trained on.
    split
        The split (:meth:`~cgflow.ml.dataset.Splits.to_dict`).
    folds
        One dict per fold: ``structure`` (rmse_grid/sampled/well in kJ/mol),
        ``dynamics`` (same, plus pair counts, or a ``skipped`` reason), ``alpha`` and
        ``alpha_random_forest`` (rmse, mae, r2, nll, coverage_1sigma).
    cv_mean
        Mean over folds of every number in ``folds``.
    test
        Same structure as one fold, for the final models on the held-out test set.
    n_pairs
        Number of dynamics pairs in the whole dataset.
    seconds
        Wall time of the whole call.
    models
        The final :class:`TrainedModels`.
    """

    campaign: str
    dataset_hash: str
    n_sets: int
    seed: int
    n_folds: int
    split: dict[str, Any]
    folds: list[dict[str, Any]]
    cv_mean: dict[str, Any]
    test: dict[str, Any]
    n_pairs: int
    seconds: float
    models: TrainedModels

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form without the models (for storage next to the model blobs)."""
        return {
            "campaign": self.campaign, "dataset_hash": self.dataset_hash,
            "n_sets": self.n_sets, "seed": self.seed, "n_folds": self.n_folds,
            "split": self.split, "folds": self.folds, "cv_mean": self.cv_mean,
            "test": self.test, "n_pairs": self.n_pairs, "seconds": self.seconds,
            "model_metadata": self.models.metadata,
        }

    def summary(self) -> str:
        """A few lines for logs: CV mean and test errors."""
        lines = [f"campaign {self.campaign!r}: {self.n_sets} sets, {self.n_pairs} dynamics pairs"]
        for name, block in (("CV mean", self.cv_mean), ("test", self.test)):
            if not block:
                continue
            s, a, rf = block["structure"], block["alpha"], block["alpha_random_forest"]
            d = block["dynamics"]
            dyn = (f"{d['rmse_well']:.3f}" if isinstance(d.get("rmse_well"), float)
                   else d.get("skipped", "n/a"))
            fr = block.get("friction") or {}
            fric = (f"; friction rmse {fr['rmse']:.4g} 1/ps R2 {fr['r2']:.3f}"
                    if isinstance(fr.get("rmse"), float) else "")
            lines.append(
                f"{name}: U rmse {s['rmse_sampled']:.3f} kJ/mol (sampled), "
                f"{s['rmse_well']:.3f} (well); dynamics U well rmse {dyn}; alpha rmse "
                f"{a['rmse']:.4f} R2 {a['r2']:.3f} (random forest {rf['rmse']:.4f}, "
                f"R2 {rf['r2']:.3f}){fric}"
            )
        lines.append(f"friction model: {self.models.metadata.get('friction_model', 'absent')}")
        lines.append(f"rdf model: {self.models.metadata.get('rdf_model', 'absent')}")
        return "\n".join(lines)


def _check_enough(dataset: CampaignDataset) -> None:
    n = len(dataset)
    if n < MIN_SETS_TO_TRAIN:
        raise InsufficientDataError(
            f"campaign {dataset.campaign!r} has {n} converged parameter sets; training needs "
            f"at least {MIN_SETS_TO_TRAIN}"
        )
    n_alpha = int(np.sum(_alpha_ok(dataset)))
    if n_alpha < MIN_SETS_TO_TRAIN:
        raise InsufficientDataError(
            f"campaign {dataset.campaign!r} has {n_alpha} parameter sets with a finite, positive "
            f"alpha; training needs at least {MIN_SETS_TO_TRAIN}"
        )


def _alpha_ok(ds: CampaignDataset) -> np.ndarray:
    return np.isfinite(ds.alpha) & (ds.alpha > 0)


def _friction_ok(ds: CampaignDataset) -> np.ndarray:
    return np.isfinite(ds.friction) & (ds.friction > 0)


def _molecules(ds: CampaignDataset, rows: np.ndarray) -> list[str] | None:
    """The molecule (SMILES) of each of ``rows`` for a model of several molecules, else
    None (a single-molecule model takes no molecules)."""
    return ds.molecule[rows].tolist() if ds.is_multi_molecule else None


def _fit_friction(ds: CampaignDataset, rows: np.ndarray, seed: int,
                  kwargs: dict[str, Any]) -> tuple[AccelerationFactorModel | None, str]:
    """The friction model on the rows with a calibrated gamma > 0, or None and why."""
    rows = rows[_friction_ok(ds)[rows]]
    if rows.size < MIN_SETS_TO_TRAIN:
        why = ("the dataset has no friction calibrations" if not ds.has_friction else
               f"{rows.size} training set(s) with a calibrated friction; the friction model "
               f"needs at least {MIN_SETS_TO_TRAIN}")
        return None, why
    model = AccelerationFactorModel(**{"random_state": seed,
                                       "molecule_features": ds.is_multi_molecule, **kwargs})
    return model.fit(ds.X[rows], ds.friction[rows], molecules=_molecules(ds, rows)), ""


def _fit_rdf(ds: CampaignDataset, test: np.ndarray, aa_targets: AATargets | None, seed: int,
             kwargs: dict[str, Any]) -> tuple[RDFModel | None, dict[str, Any], str]:
    """The RDF model on every all-atom run but the dataset's test sets, its test scores,
    and a description of what it was trained on (or why it is absent)."""
    table = aa_targets if aa_targets is not None else AATargets.from_dataset(ds)
    held_out = np.isin(table.param_ids, ds.param_ids[test])
    train, evaluate = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    several = ds.is_multi_molecule or bool(np.any(table.molecule != ds.molecule[0]))
    try:
        model = RDFModel(**{"random_state": seed, "molecule_features": several, **kwargs}
                         ).fit_targets(table.subset(train))
    except InvalidInputError as exc:
        return None, {"skipped": str(exc)}, f"absent: {exc}"
    scores = (score_rdf_model(model, table, evaluate, baseline_rows=train) if evaluate.size
              else {"skipped": "no test sets among the all-atom runs"})
    parts = ", ".join(f"{k} {v}" for k, v in model.n_rows_.items())
    return model, scores, f"trained on {train.size} all-atom runs ({parts})"


def _fit_structure(ds: CampaignDataset, rows: np.ndarray, seed: int,
                   kwargs: dict[str, Any]) -> StructureModel:
    model = StructureModel(ds.r_nm, seed=seed,
                           **{"molecule_features": ds.is_multi_molecule, **kwargs})
    return model.fit(ds.X[rows], ds.U[rows], molecules=_molecules(ds, rows))


def _pairs_with_i_in(pairs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if pairs.size == 0:
        return pairs.reshape(0, 2)
    return pairs[np.isin(pairs[:, 0], rows)]


def _fit_dynamics(ds: CampaignDataset, pairs: np.ndarray, seed: int,
                  kwargs: dict[str, Any]) -> tuple[DynamicsModel | None, str]:
    if ds.is_multi_molecule:
        return None, ("not trained on a dataset of several molecules (its pairs match the "
                      "dynamics of sets of one liquid)")
    if pairs.shape[0] < MIN_DYNAMICS_PAIRS or np.unique(pairs[:, 0]).size < 2:
        return None, (f"{pairs.shape[0]} pair(s) from {np.unique(pairs[:, 0]).size} set(s); "
                      f"need at least {MIN_DYNAMICS_PAIRS} pairs from 2 sets")
    model = DynamicsModel(ds.r_nm, seed=seed, **kwargs)
    return model.fit_pairs(ds.X, ds.U, [tuple(p) for p in pairs.tolist()]), ""


def _fit_alpha(ds: CampaignDataset, rows: np.ndarray, seed: int, kwargs: dict[str, Any],
               baseline: bool) -> AccelerationFactorModel | RandomForestAlphaBaseline:
    rows = rows[_alpha_ok(ds)[rows]]
    if baseline:
        return RandomForestAlphaBaseline(random_state=seed).fit(ds.X[rows], ds.alpha[rows])
    return AccelerationFactorModel(**{"random_state": seed,
                                      "molecule_features": ds.is_multi_molecule, **kwargs}
                                   ).fit(ds.X[rows], ds.alpha[rows],
                                         molecules=_molecules(ds, rows))


def _score(ds: CampaignDataset, reference: np.ndarray, rows: np.ndarray, pairs: np.ndarray,
           structure: StructureModel, dynamics: DynamicsModel | None, skipped: str,
           alpha: Any, alpha_rf: Any, friction: Any = None,
           friction_skipped: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["structure"] = potential_rmse(
        ds.r_nm, ds.U[rows], structure.predict(ds.X[rows], _molecules(ds, rows)), reference)
    val_pairs = _pairs_with_i_in(pairs, rows)
    if dynamics is None:
        out["dynamics"] = {"skipped": skipped, "n_pairs_eval": int(val_pairs.shape[0])}
    elif val_pairs.shape[0] == 0:
        out["dynamics"] = {"skipped": "no pairs with i in the evaluation sets",
                           "n_pairs_train": dynamics.training_info_["n_pairs"],
                           "n_pairs_eval": 0}
    else:
        pred = dynamics.predict(ds.X[val_pairs[:, 0]])
        out["dynamics"] = {
            **potential_rmse(ds.r_nm, ds.U[val_pairs[:, 1]], pred, reference),
            "n_pairs_train": dynamics.training_info_["n_pairs"],
            "n_pairs_eval": int(val_pairs.shape[0]),
        }
    arows = rows[_alpha_ok(ds)[rows]]
    for name, model in (("alpha", alpha), ("alpha_random_forest", alpha_rf)):
        if arows.size == 0:
            out[name] = {"skipped": "no sets with a finite alpha"}
            continue
        mol = {} if name == "alpha_random_forest" else {"molecules": _molecules(ds, arows)}
        p, s = model.predict(ds.X[arows], return_std=True, **mol)
        out[name] = regression_metrics(ds.alpha[arows], p, s)
    frows = rows[_friction_ok(ds)[rows]]
    if friction is None:
        out["friction"] = {"skipped": friction_skipped or "no friction model"}
    elif frows.size == 0:
        out["friction"] = {"skipped": "no evaluation sets with a calibrated friction"}
    else:
        p, s = friction.predict(ds.X[frows], return_std=True,
                                molecules=_molecules(ds, frows))
        out["friction"] = regression_metrics(ds.friction[frows], p, s)
    return out


def _mean_of(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in blocks[0]:
        sub: dict[str, Any] = {}
        names = {k for b in blocks for k, v in b.get(key, {}).items()
                 if isinstance(v, int | float) and not isinstance(v, bool)}
        for name in sorted(names):
            vals = [b[key][name] for b in blocks if isinstance(b[key].get(name), int | float)]
            sub[name] = float(np.nanmean(vals)) if vals else float("nan")
        skipped = [b[key]["skipped"] for b in blocks if "skipped" in b[key]]
        if skipped and len(skipped) == len(blocks):
            sub["skipped"] = skipped[0]
        sub["n_folds_scored"] = len(blocks) - len(skipped)
        out[key] = sub
    return out


def _training_bounds(X: np.ndarray) -> dict[str, list[float]]:
    return {f: [float(lo), float(hi)]
            for f, lo, hi in zip(FIELDS, X.min(axis=0), X.max(axis=0), strict=True)}


def train_all(
    dataset: CampaignDataset, *, seed: int = 0, n_folds: int = 5, test_fraction: float = 0.2,
    pair_k: float = 1.0, structure_kwargs: dict[str, Any] | None = None,
    dynamics_kwargs: dict[str, Any] | None = None, alpha_kwargs: dict[str, Any] | None = None,
    friction_kwargs: dict[str, Any] | None = None, aa_targets: AATargets | None = None,
    rdf_kwargs: dict[str, Any] | None = None,
) -> TrainingReport:
    """Cross-validate, train and test the structure, dynamics and alpha models.

    Parameters
    ----------
    dataset
        The campaign's converged sets.
    seed
        Seed of the split and of every model.
    n_folds, test_fraction
        See :func:`~cgflow.ml.dataset.splits`.
    pair_k
        ``k`` of :func:`~cgflow.ml.dynamics.dynamics_pairs`.
    structure_kwargs, dynamics_kwargs, alpha_kwargs, friction_kwargs
        Extra keyword arguments of :class:`StructureModel`, :class:`DynamicsModel` and
        :class:`AccelerationFactorModel` (for alpha, and for the friction).
    aa_targets, rdf_kwargs
        Every all-atom run of the campaign (converged or not) for the
        :class:`~cgflow.ml.rdf_model.RDFModel` (default: the target RDFs of ``dataset``),
        and extra keyword arguments of that model.

    Raises
    ------
    InsufficientDataError
        With fewer than :data:`MIN_SETS_TO_TRAIN` sets (or sets with a valid alpha).
    """
    t0 = time.perf_counter()
    _check_enough(dataset)
    skw, dkw, akw = structure_kwargs or {}, dynamics_kwargs or {}, alpha_kwargs or {}
    fkw = friction_kwargs or {}
    ds = dataset
    sp = splits(len(ds), n_folds=n_folds, test_fraction=test_fraction, seed=seed)
    pairs = np.asarray(dynamics_pairs(ds.d_aa, ds.d_aa_err, ds.d_cg, ds.d_cg_err, k=pair_k),
                       dtype=int).reshape(-1, 2)
    reference = ds.U[sp.trainval].mean(axis=0)

    def fit_and_score(train: np.ndarray, evaluate: np.ndarray):
        structure = _fit_structure(ds, train, seed, skw)
        dynamics, skipped = _fit_dynamics(ds, _pairs_with_i_in(pairs, train), seed, dkw)
        alpha = _fit_alpha(ds, train, seed, akw, baseline=False)
        alpha_rf = _fit_alpha(ds, train, seed, {}, baseline=True)
        friction, f_skipped = _fit_friction(ds, train, seed, fkw)
        scores = (_score(ds, reference, evaluate, pairs, structure, dynamics, skipped, alpha,
                         alpha_rf, friction, f_skipped) if evaluate.size else {})
        return structure, dynamics, alpha, friction, f_skipped, scores

    fold_scores = []
    for k, (train, val) in enumerate(sp.folds):
        *_, scores = fit_and_score(train, val)
        scores["fold"] = k
        scores["n_train"], scores["n_val"] = int(train.size), int(val.size)
        fold_scores.append(scores)
    structure, dynamics, alpha, friction, f_skipped, test_scores = fit_and_score(
        sp.trainval, sp.test)
    rdf, test_scores["rdf"], rdf_note = _fit_rdf(ds, sp.test, aa_targets, seed, rdf_kwargs or {})
    meta = {
        "campaign": ds.campaign, "dataset_hash": ds.content_hash(), "seed": seed,
        "train_param_ids": ds.param_ids[sp.trainval].tolist(),
        "training_bounds": _training_bounds(ds.X[sp.trainval]),
        "n_pairs_train": int(_pairs_with_i_in(pairs, sp.trainval).shape[0]),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": {"torch": torch.__version__, "sklearn": sklearn.__version__,
                     "numpy": np.__version__},
        "friction_model": (f"trained on {int(_friction_ok(ds)[sp.trainval].sum())} sets with "
                           "a calibrated friction" if friction is not None
                           else f"absent: {f_skipped}"),
        "rdf_model": rdf_note,
        # the molecules the models know (canonical SMILES); several: molecule features
        "molecules": sorted(set(ds.molecule[sp.trainval].tolist())),
        "molecule_features": ds.is_multi_molecule,
    }
    for model in (structure, dynamics):
        if model is not None:
            model.metadata = {"campaign": ds.campaign, "dataset_hash": meta["dataset_hash"]}
    models = TrainedModels(structure=structure, dynamics=dynamics, alpha=alpha, metadata=meta,
                           friction=friction, rdf=rdf)
    return TrainingReport(
        campaign=ds.campaign, dataset_hash=meta["dataset_hash"], n_sets=len(ds), seed=seed,
        n_folds=n_folds, split=sp.to_dict(), folds=fold_scores,
        cv_mean=_mean_of([{k: v for k, v in f.items() if isinstance(v, dict)}
                          for f in fold_scores]),
        test=test_scores, n_pairs=int(pairs.shape[0]), seconds=time.perf_counter() - t0,
        models=models,
    )


def learning_curve(
    dataset: CampaignDataset, sizes: list[int], *, seed: int = 0, test_fraction: float = 0.2,
    structure_kwargs: dict[str, Any] | None = None, alpha_kwargs: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Test errors of the structure and alpha models against the number of training sets.

    The test set is that of :func:`~cgflow.ml.dataset.splits` (same ``seed`` and
    ``test_fraction``); the training sets of size ``s`` are the first ``s`` of a seeded
    permutation of the other sets, so smaller training sets are nested in larger ones.

    Returns
    -------
    list of dict
        One row per size: ``n_train``, ``n_test``, ``structure_rmse_grid``,
        ``structure_rmse_sampled``, ``structure_rmse_well`` (kJ/mol), ``alpha_rmse``,
        ``alpha_r2``, ``alpha_random_forest_rmse``, ``alpha_random_forest_r2``,
        ``seconds``.
    """
    _check_enough(dataset)
    ds = dataset
    sp = splits(len(ds), n_folds=2, test_fraction=test_fraction, seed=seed)
    order = np.random.default_rng(seed).permutation(sp.trainval)
    reference = ds.U[sp.trainval].mean(axis=0)
    rows = []
    for s in sizes:
        if not 3 <= int(s) <= order.size:
            raise InvalidInputError(
                f"field 'sizes': each size must be in [3, {order.size}] (the non-test sets), "
                f"got {s!r}"
            )
        t0 = time.perf_counter()
        train = np.sort(order[: int(s)])
        structure = _fit_structure(ds, train, seed, structure_kwargs or {})
        srm = potential_rmse(ds.r_nm, ds.U[sp.test],
                             structure.predict(ds.X[sp.test], _molecules(ds, sp.test)), reference)
        row: dict[str, Any] = {"n_train": int(s), "n_test": int(sp.test.size)}
        row.update({f"structure_{k}": v for k, v in srm.items() if k.startswith("rmse")})
        test_a = sp.test[_alpha_ok(ds)[sp.test]]
        for name, baseline in (("alpha", False), ("alpha_random_forest", True)):
            model = _fit_alpha(ds, train, seed, alpha_kwargs or {}, baseline=baseline)
            mol = {} if baseline else {"molecules": _molecules(ds, test_a)}
            m = regression_metrics(ds.alpha[test_a], model.predict(ds.X[test_a], **mol))
            row[f"{name}_rmse"], row[f"{name}_r2"] = m["rmse"], m["r2"]
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    return rows


# --- serialisation -------------------------------------------------------------------------


def save_models(models: TrainedModels | TrainingReport) -> dict[str, bytes]:
    """Serialise the models to named byte strings (e.g. one GridFS file each).

    Returns
    -------
    dict
        ``structure`` and ``dynamics`` (zip: JSON metadata + torch weights, see
        :meth:`StructureModel.to_bytes`; ``dynamics`` only when trained), ``alpha``
        (JSON), ``friction`` (JSON, the same GP on gamma; only when trained), ``rdf``
        (JSON, :meth:`RDFModel.to_bytes`; only when trained), ``manifest`` (JSON:
        metadata and the names present). No pickle is used.
    """
    if isinstance(models, TrainingReport):
        models = models.models
    blobs = {"structure": models.structure.to_bytes(), "alpha": models.alpha.to_bytes()}
    if models.dynamics is not None:
        blobs["dynamics"] = models.dynamics.to_bytes()
    if models.friction is not None:
        blobs["friction"] = models.friction.to_bytes()
    if models.rdf is not None:
        blobs["rdf"] = models.rdf.to_bytes()
    manifest = {"format_version": 1, "models": sorted(blobs), "metadata": models.metadata}
    blobs["manifest"] = json.dumps(manifest).encode()
    return blobs


def load_models(blobs: dict[str, bytes]) -> TrainedModels:
    """Inverse of :func:`save_models`."""
    for key in ("manifest", "structure", "alpha"):
        if key not in blobs:
            raise InvalidInputError(f"model blobs: '{key}' missing (have {sorted(blobs)})")
    manifest = json.loads(blobs["manifest"])
    if "dynamics" in manifest.get("models", []) and "dynamics" not in blobs:
        raise InvalidInputError("model blobs: the manifest lists 'dynamics' but it is missing")
    return TrainedModels(
        structure=StructureModel.from_bytes(blobs["structure"]),
        # only what the manifest lists: a stale blob of an earlier training is ignored
        dynamics=(DynamicsModel.from_bytes(blobs["dynamics"])
                  if "dynamics" in manifest.get("models", []) else None),
        alpha=AccelerationFactorModel.from_bytes(blobs["alpha"]),
        metadata=dict(manifest.get("metadata", {})),
        friction=(AccelerationFactorModel.from_bytes(blobs["friction"])
                  if "friction" in manifest.get("models", []) and "friction" in blobs
                  else None),
        # models stored before the RDF model existed have none
        rdf=(RDFModel.from_bytes(blobs["rdf"])
             if "rdf" in manifest.get("models", []) and "rdf" in blobs else None),
    )
