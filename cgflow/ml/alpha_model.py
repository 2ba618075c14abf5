"""Regression of the acceleration factor ``alpha = D_CG / D_AA`` on the 19 parameters.

:class:`AccelerationFactorModel` (the default) is a Gaussian process on ``log(alpha)``;
:class:`RandomForestAlphaBaseline` is the random forest of the original study, kept for
comparison. Both follow scikit-learn conventions (``fit``, ``predict``,
``predict(X, return_std=True)``, ``get_params``/``set_params``, ``clone``, ``score`` = R^2)
and take ``X`` as (n, 19) in ParameterSet field order, GROMACS units. The Gaussian
process can append molecular descriptors computed from the parameters
(``descriptors``, :func:`cgflow.ml.features.model_inputs`) to its inputs.

Why a Gaussian process: with tens to a few hundred sets, a GP with one length scale per
parameter (automatic relevance determination) finds which parameters matter, is smooth
where alpha is smooth, and gives calibrated uncertainties. ``alpha`` is positive and
acts multiplicatively, so the GP models ``log(alpha)``. On synthetic tables of this
problem's size (25-200 rows) it cuts the random forest's RMSE by 35-55 % and has the
better R^2 and mean NLL on the same folds (see :func:`compare_on_folds` and
``benchmarks/ml``). Limitation: with few rows its 1-sigma intervals are too narrow (1-sigma
coverage 0.35-0.6 instead of 0.68 on those tables), because the hyperparameters are point
estimates.

Defaults chosen on cgflow's reference dataset only (``data/reference``, 53 sets; 10-fold
cross-validation repeated with 5 shuffles, ``benchmarks/ml/alpha_selection.py``): three
optimiser restarts (pooled R^2 of alpha 0.840 against 0.831 without, better on 4 of 5
shuffles); no descriptors: with 53 sets every descriptor added as an input (the van der
Waals volumes, the radius of gyration and shape, the dihedral barriers) lowered the pooled
R^2 (0.55-0.78: more length scales to fit than the data pin down); Matern 3/2 and the
squared exponential did worse than Matern 5/2; a noise bound of 1e-3 tied on R^2 (0.844,
difference +0.003 +- 0.020) with a worse R^2 of log(alpha) and NLL.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from cgflow.errors import InvalidInputError
from cgflow.ml.features import MOLECULE_INPUT_NAMES, check_features, model_inputs
from cgflow.ml.metrics import regression_metrics
from cgflow.params import FIELDS, N_PARAMETERS


def ard_matern_kernel(n_features: int, nu: float, length_scale_bounds: tuple[float, float],
                      noise_bounds: tuple[float, float]):
    """``C * Matern(nu, one length scale per feature) + White``: the kernel of cgflow's
    Gaussian processes (initial constant 1, length scales 3, noise 1e-2 clipped to its
    bounds)."""
    lo, hi = noise_bounds
    return (ConstantKernel(1.0, (1e-3, 1e3))
            * Matern(length_scale=np.full(n_features, 3.0),
                     length_scale_bounds=tuple(length_scale_bounds), nu=nu)
            + WhiteKernel(min(max(1e-2, lo), hi), tuple(noise_bounds)))


def kernel_state(kernel) -> dict[str, Any]:
    """The fitted hyperparameters of an :func:`ard_matern_kernel` (JSON-able)."""
    return {"constant": float(kernel.k1.k1.constant_value),
            "length_scale": np.atleast_1d(kernel.k1.k2.length_scale).tolist(),
            "noise_level": float(kernel.k2.noise_level)}


def kernel_from_state(state: dict[str, Any], nu: float):
    """Inverse of :func:`kernel_state`: the kernel with its hyperparameters fixed."""
    return (ConstantKernel(state["constant"], "fixed")
            * Matern(length_scale=np.asarray(state["length_scale"], dtype=float),
                     length_scale_bounds="fixed", nu=nu)
            + WhiteKernel(state["noise_level"], "fixed"))


def _check_targets(y: Any, n: int, *, positive: bool) -> np.ndarray:
    try:
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError("y: expected a numeric array, could not convert it") from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise InvalidInputError(f"y: expected shape ({n},) (one alpha per row of X), got {y.shape}")
    if not np.all(np.isfinite(y)):
        i = int(np.argwhere(~np.isfinite(y))[0, 0])
        raise InvalidInputError(f"y: non-finite value {float(y[i])!r} in row {i}")
    if positive and np.any(y <= 0):
        i = int(np.argmax(y <= 0))
        raise InvalidInputError(
            f"y: alpha must be > 0 (the model fits log(alpha)), got {float(y[i])!r} in row {i}"
        )
    return y


class AccelerationFactorModel(RegressorMixin, BaseEstimator):
    """Gaussian process regression of ``log(alpha)`` on standardised parameters.

    Kernel: ``C * Matern(nu, one length scale per input) + White``, with ``normalize_y``;
    hyperparameters by maximum marginal likelihood (L-BFGS-B, plus ``n_restarts``
    restarts from random hyperparameters drawn with ``random_state``). The inputs are the
    19 parameters and the named ``descriptors``, standardised; constant columns are
    ignored (scale 1 after centring, so they are all zero).

    Predictions: with ``m, s`` the GP mean and standard deviation of ``log(alpha)``
    (``s`` includes the fitted noise, so it describes a new measurement), ``alpha`` is
    log-normal; :meth:`predict` returns its mean ``exp(m + s^2/2)`` and, with
    ``return_std``, its standard deviation ``exp(m + s^2/2) * sqrt(exp(s^2) - 1)``.

    Parameters
    ----------
    nu
        Matern smoothness (0.5, 1.5, 2.5 or inf for the squared exponential).
    n_restarts
        Extra optimiser restarts (3: on the reference dataset they raised the
        cross-validated R^2 a little on every shuffle; on synthetic tables they changed
        nothing).
    length_scale_bounds
        Bounds of the length scales, in units of the standardised inputs.
    noise_bounds
        Bounds of the white-noise variance, in units of the normalised targets (variance
        of log(alpha) over the training sets). The lower bound 0.01 (noise std at least
        10 % of the spread of log(alpha)) stops the marginal likelihood from explaining
        every point exactly with tens of sets: on synthetic tables of 25-40 rows it
        lowered the NLL from 1-4 to about -0.5 and the RMSE by up to 20 %, and it made no
        difference at 100 rows. D_AA and D_CG from short runs carry errors of several per
        cent, so real data are not less noisy than that.
    random_state
        Seed of the restarts.
    descriptors
        Names of :data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES` to add to the
        inputs (default none, see the module docstring).
    molecule_features
        A model of several molecules: each row names its molecule (``molecules`` of
        :meth:`fit` and :meth:`predict`) and the inputs gain the molecule inputs of
        :func:`cgflow.ml.features.model_inputs`.
    """

    def __init__(
        self, nu: float = 2.5, n_restarts: int = 3,
        length_scale_bounds: tuple[float, float] = (0.05, 1000.0),
        noise_bounds: tuple[float, float] = (1e-2, 1.0), random_state: int = 0,
        descriptors: tuple[str, ...] = (), molecule_features: bool = False,
    ) -> None:
        self.nu = nu
        self.n_restarts = n_restarts
        self.length_scale_bounds = length_scale_bounds
        self.noise_bounds = noise_bounds
        self.random_state = random_state
        self.descriptors = descriptors
        self.molecule_features = molecule_features

    def _inputs(self, X: Any, molecules: Any) -> np.ndarray:
        return model_inputs(X, tuple(self.descriptors), molecules=molecules,
                            molecule_features=bool(self.molecule_features))

    def _kernel(self, n_inputs: int):
        return ard_matern_kernel(n_inputs, self.nu, self.length_scale_bounds, self.noise_bounds)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean_) / self.x_scale_

    def fit(self, X: Any, y: Any, molecules: Any = None) -> AccelerationFactorModel:
        """Fit on parameters ``X`` (n, 19) and acceleration factors ``y`` (n,) > 0
        (``molecules``: the canonical SMILES of each row, for ``molecule_features``)."""
        X = check_features(X)
        y = _check_targets(y, X.shape[0], positive=True)
        if X.shape[0] < 2:
            raise InvalidInputError(f"X: need at least 2 rows to fit, got {X.shape[0]}")
        Z = self._inputs(X, molecules)
        self.x_mean_ = Z.mean(axis=0)
        std = Z.std(axis=0)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        gp = GaussianProcessRegressor(
            kernel=self._kernel(Z.shape[1]), normalize_y=True,
            n_restarts_optimizer=self.n_restarts, random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # length scales of irrelevant parameters run into their upper bound: expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(self._scale(Z), np.log(y))
        self.gp_ = gp
        self.log_y_train_ = np.log(y)
        self.n_features_in_ = N_PARAMETERS
        return self

    def _log_moments(self, X: Any, molecules: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "gp_"):
            raise InvalidInputError("alpha model: not fitted (call fit or load first)")
        Z = self._inputs(X, molecules)
        m, s = self.gp_.predict(self._scale(Z), return_std=True)
        return m, s

    def predict_log(self, X: Any, molecules: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """GP mean and standard deviation of ``log(alpha)`` (n,) each (the standard
        deviation includes the fitted noise)."""
        return self._log_moments(X, molecules)

    def predict(self, X: Any, return_std: bool = False, molecules: Any = None):
        """Predicted alpha (n,) (log-normal mean); with ``return_std``, ``(alpha, std)``."""
        m, s = self._log_moments(X, molecules)
        mean = np.exp(m + 0.5 * s**2)
        if not return_std:
            return mean
        return mean, mean * np.sqrt(np.expm1(s**2))

    def relevance(self) -> dict[str, float]:
        """Inverse fitted length scale per input, parameters and descriptors (larger =
        alpha depends more on it)."""
        ls = np.atleast_1d(self.gp_.kernel_.k1.k2.length_scale)
        names = (*FIELDS, *self.descriptors,
                 *(MOLECULE_INPUT_NAMES if self.molecule_features else ()))
        return {f: float(1.0 / v) for f, v in zip(names, ls, strict=True)}

    # --- serialisation without pickle ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state: settings, scaler, fitted kernel hyperparameters and the
        training data. :meth:`from_dict` refits the GP with these hyperparameters fixed,
        which reproduces the posterior exactly."""
        if not hasattr(self, "gp_"):
            raise InvalidInputError("alpha model: not fitted (call fit first)")
        return {
            "kind": "alpha-gp", "params": _jsonable(self.get_params()),
            "x_mean": self.x_mean_.tolist(), "x_scale": self.x_scale_.tolist(),
            **kernel_state(self.gp_.kernel_),
            "X_train": self.gp_.X_train_.tolist(),
            "log_alpha_train": self.log_y_train_.tolist(),
            "log_marginal_likelihood": float(self.gp_.log_marginal_likelihood_value_),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> AccelerationFactorModel:
        """Inverse of :meth:`to_dict`."""
        if state.get("kind") != "alpha-gp":
            raise InvalidInputError(f"alpha model: unknown kind {state.get('kind')!r}")
        params = dict(state["params"])
        for key in ("length_scale_bounds", "noise_bounds"):
            params[key] = tuple(params[key])
        # models stored before descriptors existed had none
        params["descriptors"] = tuple(params.get("descriptors", ()))
        params["molecule_features"] = bool(params.get("molecule_features", False))
        model = cls(**params)
        model.x_mean_ = np.asarray(state["x_mean"], dtype=float)
        model.x_scale_ = np.asarray(state["x_scale"], dtype=float)
        gp = GaussianProcessRegressor(kernel=kernel_from_state(state, model.nu),
                                      normalize_y=True, optimizer=None)
        model.log_y_train_ = np.asarray(state["log_alpha_train"], dtype=float)
        gp.fit(np.asarray(state["X_train"], dtype=float), model.log_y_train_)
        model.gp_ = gp
        model.n_features_in_ = N_PARAMETERS
        return model

    def to_bytes(self) -> bytes:
        """:meth:`to_dict` as UTF-8 JSON."""
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> AccelerationFactorModel:
        """Inverse of :meth:`to_bytes`."""
        return cls.from_dict(json.loads(blob))


class RandomForestAlphaBaseline(RegressorMixin, BaseEstimator):
    """Random forest on raw alpha (the original study's choice), for comparisons.

    ``predict(X, return_std=True)`` gives the standard deviation of the individual
    trees' predictions as the uncertainty (it ignores measurement noise, so it tends to
    be too small).
    """

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 1,
                 max_features: float | str | None = 1.0, random_state: int = 0) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> RandomForestAlphaBaseline:
        """Fit on parameters ``X`` (n, 19) and acceleration factors ``y`` (n,)."""
        X = check_features(X)
        y = _check_targets(y, X.shape[0], positive=False)
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features, random_state=self.random_state, n_jobs=1,
        ).fit(X, y)
        self.n_features_in_ = N_PARAMETERS
        return self

    def predict(self, X: Any, return_std: bool = False):
        """Predicted alpha (n,); with ``return_std``, ``(alpha, spread of the trees)``."""
        if not hasattr(self, "forest_"):
            raise InvalidInputError("random-forest baseline: not fitted (call fit first)")
        X = check_features(X)
        per_tree = np.stack([t.predict(X) for t in self.forest_.estimators_])
        mean = per_tree.mean(axis=0)
        return (mean, per_tree.std(axis=0)) if return_std else mean


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        out[k] = v
    return out


def compare_on_folds(
    X: Any, y: Any, folds: list[tuple[np.ndarray, np.ndarray]],
    models: dict[str, BaseEstimator] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score alpha models on the same folds.

    Parameters
    ----------
    X, y
        (n, 19) parameters and (n,) alpha.
    folds
        ``(train_index, test_index)`` pairs, e.g. ``splits(...).folds``.
    models
        Name -> unfitted estimator with ``predict(X, return_std=True)``; default the
        :class:`AccelerationFactorModel` and the :class:`RandomForestAlphaBaseline`.

    Returns
    -------
    dict
        Per model: ``folds`` (list of per-fold metrics from
        :func:`~cgflow.ml.metrics.regression_metrics`: rmse, mae, r2, nll,
        coverage_1sigma, n), ``pooled`` (the same metrics over all out-of-fold
        predictions together) and ``predictions`` (``index``, ``alpha``, ``std``: the
        out-of-fold predictions, arrays in the order of the folds' test rows).
    """
    from sklearn.base import clone

    X = check_features(X)
    y = _check_targets(y, X.shape[0], positive=False)
    if models is None:
        models = {"gp": AccelerationFactorModel(), "random_forest": RandomForestAlphaBaseline()}
    out: dict[str, dict[str, Any]] = {}
    for name, proto in models.items():
        per_fold, preds, stds, truth, rows = [], [], [], [], []
        for train, test in folds:
            model = clone(proto).fit(X[train], y[train])
            p, s = model.predict(X[test], return_std=True)
            per_fold.append(regression_metrics(y[test], p, s))
            preds.append(p)
            stds.append(s)
            truth.append(y[test])
            rows.append(np.asarray(test))
        out[name] = {
            "folds": per_fold,
            "pooled": regression_metrics(np.concatenate(truth), np.concatenate(preds),
                                         np.concatenate(stds)),
            "predictions": {"index": np.concatenate(rows), "alpha": np.concatenate(preds),
                            "std": np.concatenate(stds)},
        }
    return out
