"""Choose the next parameter sets to simulate: acquisition criteria and diverse batches.

:func:`select_batch` fits the models of :mod:`cgflow.ml` to the sets simulated so far and
picks ``n`` of the candidate parameter sets where they are most uncertain:

* ``alpha_std``: the predictive standard deviation of ``log(alpha)`` of the
  acceleration-factor Gaussian process (:class:`~cgflow.ml.alpha_model.AccelerationFactorModel`
  fits ``log(alpha)``, so its uncertainty is taken there), without the fitted white
  noise (the noise is the same everywhere and says nothing about where to sample);
* ``structure_spread``: the spread of the predicted all-atom target structure g_t(r) of
  the :class:`~cgflow.ml.rdf_model.RDFModel`, as the RMS over r of the standard
  deviation of g_t(r). With ``structure_ensemble = 0`` (the default) it is the posterior
  standard deviation of the model's principal-component Gaussian processes (again
  without white noise and truncation error): the limit of an ensemble of posterior draws,
  exact and cheap. With ``structure_ensemble = k >= 2`` it is the standard deviation over
  k models fitted to bootstrap resamples of the training sets (seeds drawn from
  ``seed``), each with its own hyperparameters (k full fits: seconds to tens of seconds
  each with tens of sets);
* ``combined``: both, each divided by its median over the candidates, summed. A route
  with too few training values (alpha: fewer than 2 finite values > 0; g_t: fewer than
  :data:`cgflow.ml.rdf_model.MIN_ROWS` RDFs) is left out of the sum and the state says so;
  with neither, the selection fails.

What is maximised (``objective``):

* ``max_std`` (default): the criterion's uncertainty at the candidate itself;
* ``variance_reduction`` (integrated variance reduction): the mean, over the candidates
  (at most :data:`MAX_REFERENCE` of them, a seeded subsample), of the drop of their
  posterior variance if the candidate were simulated (``sum_j cov(j, x)^2 / (var(x) +
  noise)``, the Gaussian-process posterior with the fitted hyperparameters fixed; for
  g_t the variance averaged over r). It favours sets that inform many candidates over
  sets at the edge of the space, where the standard deviation is largest but few
  candidates lie. The chosen sets are always conditioned on (as in the kriging believer),
  so a batch does not count the same reduction twice; not with a bootstrap ensemble.

Batches are made diverse by a greedy rule (``batch_rule``):

* ``distance`` (default): each next choice maximises ``criterion x f(d)``, with ``d`` the
  distance of the candidate to the nearest training or already chosen set in the scaled
  parameter space (every parameter mapped to [0, 1] by ``bounds``, or by the range of
  the training and candidate sets without bounds; fixed parameters dropped) and
  ``f(d) = 1 - exp(-(d / l)^2)``, ``l = diversity_weight x h``, ``h`` the median
  distance of a training set to its nearest other training set. ``diversity_weight = 0``
  takes the top ``n`` by the criterion; a candidate equal to a training set has f = 0.
* ``believer`` (kriging believer): after each choice the Gaussian processes are
  conditioned on the chosen set as if it had been measured at the predicted mean, with the
  fitted hyperparameters fixed, and the criterion is recomputed (the posterior variance of
  a Gaussian process does not depend on the measured values, so this is the exact
  variance after the batch); the distance factor is applied on top when
  ``diversity_weight > 0``. Not with a bootstrap ensemble (``structure_ensemble >= 2``).

The score of a choice is the value of the product that chose it; its ``components`` are
the raw criterion values (``alpha_std``, ``structure_spread`` where available; with
``variance_reduction`` also ``alpha_variance_reduction``, ``structure_variance_reduction``)
and the distance factor (``diversity``). The selection is deterministic for a given ``seed``
(the optimiser restarts of the Gaussian processes and the bootstrap seeds derive from it).

The candidates may be a pool of already simulated sets (the benchmark
``benchmarks/active_learning.py``) or sets sampled from a campaign's parameter space
(``n_candidates`` of them per round, drawn by the caller).

Contract changes against the first design (announced with the commits): the settings gain
``batch_rule``, ``structure_ensemble`` and ``objective``, all with defaults, so a settings
document of the first design stays valid; :func:`select_batch` takes the models of
:func:`fit_models` as an optional keyword ``models``.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cgflow.errors import InvalidInputError
from cgflow.ml.features import check_features

#: Most candidates over which the variance reduction is averaged (a seeded subsample).
MAX_REFERENCE = 500

#: Component name of each route's variance reduction.
_REDUCTION = {"alpha_std": "alpha_variance_reduction",
              "structure_spread": "structure_variance_reduction"}

#: Criteria that use each route.
_ROUTES: dict[str, tuple[str, ...]] = {"alpha_std": ("alpha_std",),
                                       "structure_spread": ("structure_spread",),
                                       "combined": ("alpha_std", "structure_spread")}


class AcquisitionSettings(BaseModel):
    """The model part of a campaign's ``active:`` section.

    Attributes
    ----------
    criterion
        ``alpha_std``, ``structure_spread`` or ``combined`` (module docstring).
    n_candidates
        Candidates the caller draws from the parameter space per round (generative mode;
        :func:`select_batch` scores whatever candidates it is given).
    diversity_weight
        Length of the distance factor in units of the training sets' median
        nearest-neighbour distance; 0 switches the factor off.
    batch_rule
        ``distance`` or ``believer`` (module docstring).
    objective
        ``max_std``: the criterion is the uncertainty at the candidate;
        ``variance_reduction``: the mean reduction of the posterior variance over the
        candidates if the candidate were simulated (module docstring).
    structure_ensemble
        0: the structure spread is the RDF model's posterior standard deviation; k >= 2:
        the spread over k bootstrap models.
    structure_descriptors
        Descriptors (:data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES`) the RDF model
        of the structure spread adds to the 19 parameters. Default none: the inputs the
        structure spread always had, so that rounds stored earlier replay to their choice
        (``cgflow predict``'s RDF model uses :data:`cgflow.ml.rdf_model.DEFAULT_DESCRIPTORS`).
    seed
        Seed of everything random in the selection.
    """

    model_config = ConfigDict(extra="forbid")

    criterion: Literal["alpha_std", "structure_spread", "combined"] = "combined"
    n_candidates: int = Field(2000, ge=1)
    diversity_weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    batch_rule: Literal["distance", "believer"] = "distance"
    objective: Literal["max_std", "variance_reduction"] = "max_std"
    structure_ensemble: int = Field(0, ge=0, le=50)
    structure_descriptors: list[str] = Field(default_factory=list)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> AcquisitionSettings:
        from cgflow.ml.features import check_descriptor_names

        try:
            check_descriptor_names(self.structure_descriptors, "structure_descriptors")
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None
        if self.structure_ensemble == 1:
            raise ValueError("structure_ensemble: 0 (posterior spread) or >= 2 (bootstrap "
                             "models), got 1")
        if self.objective == "variance_reduction" and self.structure_ensemble >= 2:
            raise ValueError("objective: 'variance_reduction' needs the posterior spread "
                             f"(structure_ensemble 0), got structure_ensemble "
                             f"{self.structure_ensemble}")
        if self.batch_rule == "believer" and self.structure_ensemble >= 2:
            raise ValueError("batch_rule: 'believer' needs the posterior spread "
                             f"(structure_ensemble 0), got structure_ensemble "
                             f"{self.structure_ensemble}")
        return self


class BatchChoice(BaseModel):
    """One chosen candidate."""

    model_config = ConfigDict(extra="forbid")

    candidate_index: int
    score: float
    components: dict[str, float]


class BatchSelection(BaseModel):
    """What chose a batch: enough to replay and audit the choice."""

    model_config = ConfigDict(extra="forbid")

    criterion: str
    n_train: int
    model_state: dict[str, Any]
    settings: AcquisitionSettings
    choices: list[BatchChoice]


# --- inputs --------------------------------------------------------------------------------


def _check_settings(settings: Any) -> AcquisitionSettings:
    if isinstance(settings, AcquisitionSettings):
        return settings
    if isinstance(settings, dict):
        try:
            return AcquisitionSettings.model_validate(settings)
        except ValidationError as exc:
            raise InvalidInputError.from_validation_error(exc, "settings") from None
    raise InvalidInputError(
        f"settings: expected AcquisitionSettings or a mapping, got {type(settings).__name__}")


def _check_rows(values: Any, n: int, name: str, ndim: int) -> np.ndarray | None:
    if values is None:
        return None
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name}: expected a numeric array, could not convert it"
                                ) from None
    if arr.ndim != ndim or arr.shape[0] != n:
        want = f"({n},)" if ndim == 1 else f"({n}, n_r)"
        raise InvalidInputError(f"{name}: expected shape {want} (one row per row of X_train), "
                                f"got {arr.shape}")
    if np.any(np.isinf(arr)):
        i = int(np.argwhere(np.isinf(arr))[0, 0])
        raise InvalidInputError(f"{name}: infinite value in row {i} (NaN marks a missing one)")
    return arr


def _unit_scaler(X_train: np.ndarray, X_candidates: np.ndarray,
                 bounds: tuple[np.ndarray, np.ndarray] | None):
    """Map to [0, 1] per parameter (fixed parameters dropped)."""
    if bounds is None:
        both = np.vstack([X_train, X_candidates])
        lo, hi = both.min(axis=0), both.max(axis=0)
    else:
        try:
            lo, hi = (np.asarray(b, dtype=float).reshape(-1) for b in bounds)
        except (TypeError, ValueError):
            raise InvalidInputError("bounds: expected (lows, highs), two arrays of 19 numbers"
                                    ) from None
        if lo.shape != (X_train.shape[1],) or hi.shape != lo.shape:
            raise InvalidInputError(
                f"bounds: expected (lows, highs) of {X_train.shape[1]} values each, got "
                f"{lo.shape} and {hi.shape}")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(hi < lo):
            j = int(np.argmax(~(hi >= lo)))
            raise InvalidInputError(
                f"bounds: need finite lows <= highs, column {j} has {lo[j]!r} > {hi[j]!r}")
    keep = hi > lo
    return lo, hi, keep, (lambda X: (X[:, keep] - lo[keep]) / (hi[keep] - lo[keep]))


# --- Gaussian-process posteriors with fixed hyperparameters --------------------------------


class _Posterior:
    """Latent posterior variance of a fitted scikit-learn GP (kernel ``C*Matern + White``)
    at fixed inputs, updatable with pseudo-observations (the kriging believer)."""

    def __init__(self, gp: Any, Z_candidates: np.ndarray, y_scale: float,
                 reference: np.ndarray | None = None) -> None:
        self.signal = gp.kernel_.k1
        self.noise = float(gp.kernel_.k2.noise_level)
        alpha = np.broadcast_to(np.asarray(gp.alpha, dtype=float), (gp.X_train_.shape[0],))
        self.extra_noise = float(np.median(alpha))  # noise of a pseudo-observation
        self.Z_train = gp.X_train_
        self.diag_noise = alpha + self.noise
        self.Zc = Z_candidates
        self.scale2 = y_scale**2
        self.prior = self.signal.diag(Z_candidates)
        self.reference = reference
        self._variance(self.Z_train, self.diag_noise)

    def _variance(self, Z: np.ndarray, diag_noise: np.ndarray) -> None:
        K = self.signal(Z) + np.diag(diag_noise)
        L = np.linalg.cholesky(K)
        v = np.linalg.solve(L, self.signal(Z, self.Zc))
        var = np.maximum(self.prior - np.sum(v**2, axis=0), 0.0)
        self.var = var * self.scale2
        if self.reference is not None:
            # mean over the reference candidates of the drop of their variance if a
            # candidate were measured (with the noise of one measurement)
            ref = self.reference
            cov = self.signal(self.Zc[ref], self.Zc) - v[:, ref].T @ v  # (n_ref, n_c)
            self.reduction = (np.sum(cov**2, axis=0) / (var + self.extra_noise + self.noise)
                              / ref.size * self.scale2)

    def condition(self, index: int) -> None:
        """Add candidate ``index`` as a pseudo-observation."""
        self.Z_train = np.vstack([self.Z_train, self.Zc[index]])
        self.diag_noise = np.append(self.diag_noise, self.extra_noise + self.noise)
        self._variance(self.Z_train, self.diag_noise)


def _kernel_summary(gp: Any) -> dict[str, Any]:
    from cgflow.ml.alpha_model import kernel_state

    return kernel_state(gp.kernel_)


# --- the two routes --------------------------------------------------------------------------


class _AlphaRoute:
    def __init__(self, model: Any, Xc: np.ndarray, reference: np.ndarray | None) -> None:
        self.model = model
        Zc = self.model._scale(self.model._inputs(Xc, None))
        self.post = _Posterior(self.model.gp_, Zc, float(np.std(self.model.log_y_train_)) or 1.0,
                               reference)

    def values(self) -> np.ndarray:
        return np.sqrt(self.post.var)

    def reduction(self) -> np.ndarray:
        return self.post.reduction

    def condition(self, index: int) -> None:
        self.post.condition(index)

    def state(self) -> dict[str, Any]:
        m = self.model
        return {"model": "AccelerationFactorModel", "target": "log(alpha)",
                "params": {k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in m.get_params().items()},
                "x_mean": m.x_mean_.tolist(), "x_scale": m.x_scale_.tolist(),
                "kernel": _kernel_summary(m.gp_), "n_rows": int(m.log_y_train_.size),
                "log_marginal_likelihood": float(m.gp_.log_marginal_likelihood_value_)}


class _StructureRoute:
    def __init__(self, models: AcquisitionModels, Xc: np.ndarray,
                 reference: np.ndarray | None) -> None:
        self.members = models.rdf_members
        self.ensemble = len(self.members)
        if not self.ensemble:
            self.model = models.rdf
            Zc = self.model._scale(self.model._inputs(Xc, None))  # parameters + descriptors
            self.weights = np.mean(self.model.g_components_**2, axis=0)  # (K,) mean_r V_k^2
            self.posts = [_Posterior(tgp.gp_, Zc, tgp.y_scale_, reference)
                          for tgp in self.model.g_gps_]
        else:
            self.member_seeds = models.member_seeds
            preds = np.stack([m.predict(Xc).g for m in self.members])
            self.spread = np.sqrt(np.mean(np.std(preds, axis=0) ** 2, axis=1))

    def values(self) -> np.ndarray:
        if self.ensemble:
            return self.spread
        var = np.stack([p.var for p in self.posts], axis=1)  # (n_c, K)
        return np.sqrt(var @ self.weights)

    def reduction(self) -> np.ndarray:
        """Mean over the reference candidates of the drop of the r-averaged variance of
        g_t."""
        return np.stack([p.reduction for p in self.posts], axis=1) @ self.weights

    def condition(self, index: int) -> None:
        for p in self.posts:
            p.condition(index)

    def state(self) -> dict[str, Any]:
        def one(m: Any) -> dict[str, Any]:
            return {"n_components": m.n_components, "n_rows": m.n_rows_.get("g"),
                    "settings": m._settings(),
                    "kernels": [_kernel_summary(t.gp_) for t in m.g_gps_]}

        if self.ensemble:
            return {"model": "RDFModel", "target": "g_t(r)", "spread": "bootstrap ensemble",
                    "member_seeds": self.member_seeds,
                    "x_mean": self.members[0].x_mean_.tolist(),
                    "members": [one(m) for m in self.members]}
        return {"model": "RDFModel", "target": "g_t(r)", "spread": "posterior std",
                "x_mean": self.model.x_mean_.tolist(), "x_scale": self.model.x_scale_.tolist(),
                **one(self.model)}


# --- the models ----------------------------------------------------------------------------


@dataclass
class AcquisitionModels:
    """The fitted models a selection scores the candidates with.

    Attributes
    ----------
    alpha
        :class:`~cgflow.ml.alpha_model.AccelerationFactorModel` on the rows with alpha, or
        None.
    rdf
        :class:`~cgflow.ml.rdf_model.RDFModel` of g_t on the rows with an RDF, or None.
    rdf_members, member_seeds
        The bootstrap ensemble of RDF models and their seeds (``structure_ensemble >= 2``;
        empty otherwise).
    skipped
        Route -> why it has no model.
    """

    alpha: Any = None
    rdf: Any = None
    rdf_members: list[Any] = field(default_factory=list)
    member_seeds: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def fit_models(X_train: Any, alpha_train: Any, g_train: Any,
               settings: AcquisitionSettings | dict[str, Any], *,
               alpha_options: dict[str, Any] | None = None,
               rdf_options: dict[str, Any] | None = None) -> AcquisitionModels:
    """Fit the models the criterion of ``settings`` needs (arguments as in
    :func:`select_batch`).

    ``alpha_options`` and ``rdf_options`` are extra keyword arguments of
    :class:`~cgflow.ml.alpha_model.AccelerationFactorModel` and
    :class:`~cgflow.ml.rdf_model.RDFModel` (default none: their defaults); the seed of
    both is the settings' seed. A caller that also wants the models' predictions (the benchmark)
    fits them once here and passes them to :func:`select_batch`.
    """
    from cgflow.ml.alpha_model import AccelerationFactorModel
    from cgflow.ml.rdf_model import MIN_ROWS, RDFModel

    settings = _check_settings(settings)
    X = check_features(X_train, "X_train")
    alpha = _check_rows(alpha_train, X.shape[0], "alpha_train", 1)
    g = _check_rows(g_train, X.shape[0], "g_train", 2)
    wanted = _ROUTES[settings.criterion]
    out = AcquisitionModels()
    if "alpha_std" in wanted:
        ok = np.zeros(X.shape[0], bool) if alpha is None else np.isfinite(alpha) & (alpha > 0)
        if alpha is not None and np.any(np.isfinite(alpha) & (alpha <= 0)):
            i = int(np.argmax(np.isfinite(alpha) & (alpha <= 0)))
            raise InvalidInputError(f"alpha_train: alpha must be > 0, got {alpha[i]!r} in row {i}")
        if ok.sum() >= 2:
            out.alpha = AccelerationFactorModel(
                random_state=settings.seed, **dict(alpha_options or {})).fit(X[ok], alpha[ok])
        else:
            out.skipped["alpha_std"] = f"{int(ok.sum())} finite alpha value(s); need at least 2"
    if "structure_spread" in wanted:
        ok = np.zeros(X.shape[0], bool) if g is None else np.all(np.isfinite(g), axis=1)
        if ok.sum() >= MIN_ROWS:
            Xg, gg = X[ok], g[ok]
            r = np.arange(gg.shape[1], dtype=float)  # the grid only labels the columns here
            opts = {"descriptors": tuple(settings.structure_descriptors),
                    **dict(rdf_options or {})}
            if settings.structure_ensemble == 0:
                out.rdf = RDFModel(random_state=settings.seed, **opts).fit(Xg, r, g=gg)
            else:
                rng = np.random.default_rng(settings.seed)
                out.member_seeds = rng.integers(0, 2**31 - 1,
                                                size=settings.structure_ensemble).tolist()
                for seed in out.member_seeds:
                    rows = np.random.default_rng(seed).integers(0, Xg.shape[0], size=Xg.shape[0])
                    out.rdf_members.append(
                        RDFModel(random_state=int(seed), **opts).fit(Xg[rows], r, g=gg[rows]))
        else:
            out.skipped["structure_spread"] = (f"{int(ok.sum())} complete RDF row(s); need at "
                                               f"least {MIN_ROWS}")
    if out.alpha is None and out.rdf is None and not out.rdf_members:
        arg = {"alpha_std": "alpha_train", "structure_spread": "g_train"}
        raise InvalidInputError("; ".join(f"{arg[k]}: criterion {settings.criterion!r} needs "
                                          f"it, but {v}" for k, v in out.skipped.items()))
    return out


# --- selection -------------------------------------------------------------------------------


def _nearest(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Distance of every row of A to its nearest row of B."""
    d2 = np.sum(A**2, 1)[:, None] + np.sum(B**2, 1)[None, :] - 2.0 * A @ B.T
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))


def select_batch(X_train: Any, alpha_train: Any, g_train: Any, X_candidates: Any, n: int,
                 settings: AcquisitionSettings | dict[str, Any],
                 bounds: tuple[np.ndarray, np.ndarray] | None = None, *,
                 models: AcquisitionModels | None = None) -> BatchSelection:
    """Choose ``n`` of the candidates to simulate next.

    Parameters
    ----------
    X_train
        (n_train, 19) parameters of the sets simulated so far (:data:`cgflow.params.FIELDS`
        order, GROMACS units).
    alpha_train
        (n_train,) their acceleration factors, NaN where unavailable; or None.
    g_train
        (n_train, n_r) their target RDFs g_t on one common grid, NaN rows where
        unavailable; or None.
    X_candidates
        (n_candidates, 19) parameter sets to choose from.
    n
        Batch size, 1 <= n <= n_candidates.
    settings
        :class:`AcquisitionSettings` (or a mapping of its fields).
    bounds
        (lows, highs) of the parameter space (19 values each) for the distance scaling;
        default the range of the training and candidate sets.
    models
        The models of :func:`fit_models` fitted to these training sets with these
        settings (default: fitted here).

    Returns
    -------
    BatchSelection
        The choices in the order chosen, with the model state.

    Raises
    ------
    InvalidInputError
        Naming the argument: shapes, non-finite parameters, a criterion whose route has
        too few training values, a bad ``n`` or settings.
    """
    settings = _check_settings(settings)
    X = check_features(X_train, "X_train")
    Xc = check_features(X_candidates, "X_candidates")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= Xc.shape[0]:
        raise InvalidInputError(f"n: expected an integer in [1, {Xc.shape[0]}] (the number of "
                                f"candidates), got {n!r}")
    n = int(n)
    if models is None:
        models = fit_models(X, alpha_train, g_train, settings)
    reduce = settings.objective == "variance_reduction"
    if (settings.batch_rule == "believer" or reduce) and models.rdf_members:
        raise InvalidInputError("models: the kriging believer and the variance reduction "
                                "need the posterior spread, not a bootstrap ensemble")
    reference = None
    if reduce:
        reference = np.arange(Xc.shape[0])
        if reference.size > MAX_REFERENCE:
            reference = np.sort(np.random.default_rng(settings.seed).choice(
                reference, MAX_REFERENCE, replace=False))
    routes: dict[str, Any] = {}
    if models.alpha is not None:
        routes["alpha_std"] = _AlphaRoute(models.alpha, Xc, reference)
    if models.rdf is not None or models.rdf_members:
        routes["structure_spread"] = _StructureRoute(models, Xc, reference)
    skipped = dict(models.skipped)

    lo, hi, keep, unit = _unit_scaler(X, Xc, bounds)
    U, Uc = unit(X), unit(Xc)
    h = float(np.median(_nearest_other(U))) if U.shape[0] >= 2 else 1.0
    length = settings.diversity_weight * (h if h > 0 else 1.0)
    d = _nearest(Uc, U) if U.shape[1] else np.zeros(Xc.shape[0])

    available = np.ones(Xc.shape[0], bool)
    choices: list[BatchChoice] = []
    medians: dict[str, float] = {}
    for _ in range(n):
        raw = {k: route.values() for k, route in routes.items()}
        values = ({_REDUCTION[k]: route.reduction() for k, route in routes.items()}
                  if reduce else raw)
        if settings.criterion == "combined":
            if not medians:  # normalised by the medians of the first step, kept for the batch
                medians = {k: float(np.median(v)) or float(np.max(v)) or 1.0
                           for k, v in values.items()}
            crit = sum(v / medians[k] for k, v in values.items())
        else:
            crit = next(iter(values.values()))
        factor = (-np.expm1(-(d / length) ** 2) if length > 0 else np.ones_like(d))
        score = np.where(available, crit * factor, -np.inf)
        best = int(np.argmax(score))  # ties: the lowest index
        choices.append(BatchChoice(
            candidate_index=best, score=float(score[best]),
            components={**{k: float(v[best]) for k, v in raw.items()},
                        **({k: float(v[best]) for k, v in values.items()} if reduce else {}),
                        "diversity": float(factor[best])}))
        available[best] = False
        d = np.minimum(d, _nearest(Uc, Uc[best:best + 1]))
        if settings.batch_rule == "believer" or reduce:
            for route in routes.values():
                route.condition(best)

    import sklearn

    import cgflow

    state: dict[str, Any] = {
        "routes": {k: r.state() for k, r in routes.items()}, "skipped": skipped,
        "combined_medians": medians,
        "variance_reduction_reference": None if reference is None else reference.tolist(),
        "distance": {"lows": lo.tolist(), "highs": hi.tolist(),
                     "used_columns": np.flatnonzero(keep).tolist(),
                     "median_nearest_training": h, "length": length},
        "versions": {"cgflow": cgflow.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__, "python": platform.python_version()},
    }
    return BatchSelection(criterion=settings.criterion, n_train=int(X.shape[0]),
                          model_state=state, settings=settings, choices=choices)


def _nearest_other(U: np.ndarray) -> np.ndarray:
    """Distance of every row to its nearest other row."""
    d2 = np.sum(U**2, 1)[:, None] + np.sum(U**2, 1)[None, :] - 2.0 * U @ U.T
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))
