"""Parameters -> the all-atom target structure: g_t(r), density and pressure, with errors.

Every all-atom run of a campaign measures the centre-of-mass RDF g_t(r) that IBI later
targets, the density and the pressure, whether or not its IBI converged. g_t is smooth,
measured directly and varies with the parameters more simply than the IBI potential
does, so :class:`RDFModel` learns it from every stored all-atom run
(:class:`AATargets`); a predicted g_t is the input of any route from a structure to a
potential.

The model:

* **g_t(r)**: principal components of the training RDFs on the common grid (centred on
  their mean; the fewest components whose RMS truncation error over the training RDFs is
  at most ``tolerance_g``, capped by ``max_components`` and n - 1), and one Gaussian
  process per component score;
* **density**: a Gaussian process on log(density);
* **pressure**: a Gaussian process on the pressure.

Every Gaussian process has the kernel ``C * Matern(nu, one length scale per input) +
White`` on the standardised inputs, hyperparameters by maximum marginal likelihood. The
inputs are the 19 parameters followed by molecular descriptors computed from them
(:data:`DEFAULT_DESCRIPTORS`: size, shape and volumes of the built molecule, whose
contact distance sets where g_t(r) rises, and its dihedral barriers; chosen by
cross-validation, ``benchmarks/ml/results/rdf_model_variants.md``), or, for a model of
several molecules, the molecule inputs of :mod:`cgflow.ml.features` (which hold its size
and shape already). The pressure's process leaves the descriptors out: the pressure of
an NPT run is its barostat's plus noise (below), and with them its cross-validated error
rose further above the mean predictor's. A measured standard error (density, pressure)
enters as the known noise of its row, the white term takes what is left. Predicted
standard deviations describe a new measurement of the same kind (model uncertainty,
fitted noise and the median measurement error of the training rows). Rows without a
value of one target (NaN) are left out of that target only; a target with fewer than
:data:`MIN_ROWS` rows is not modelled (its prediction is None, the reason in
``skipped_``).

*Approximations:* the components are fitted independently, so the predicted g_t(r) has
the standard deviation ``sqrt(sum_k V_k(r)^2 s_k^2 + e(r)^2)`` (``V_k`` the component,
``s_k`` its score's standard deviation, ``e(r)`` the RMS truncation error at r) without
correlations between components; predicted RDFs are clipped at zero. In an NPT run at 1
bar the measured pressure is the barostat's 1 bar plus sampling noise, so the pressure
model can hardly beat the mean of the training pressures; it is there for the pressure
error it predicts and for other ensembles.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor

from cgflow.errors import InvalidInputError
from cgflow.ibi.metrics import rdf_deviation
from cgflow.ml.alpha_model import ard_matern_kernel, kernel_from_state, kernel_state
from cgflow.ml.dataset import molecule_column
from cgflow.ml.features import check_descriptor_names, check_features, model_inputs
from cgflow.ml.metrics import regression_metrics
from cgflow.molecule.descriptors import DESCRIPTOR_NAMES
from cgflow.params import FIELDS, N_PARAMETERS, parameter_set_from_mapping

#: Fewest rows with a value that a target needs to be modelled.
MIN_ROWS = 4

#: Descriptors (:data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES`) added to the 19
#: parameters of a single-molecule model unless others are given (module docstring).
DEFAULT_DESCRIPTORS: tuple[str, ...] = DESCRIPTOR_NAMES

#: Per-set scalar fields of :class:`AATargets` (kg/m^3 and bar).
TARGET_FIELDS: tuple[str, ...] = ("density_kg_m3", "density_err_kg_m3", "pressure_bar",
                                  "pressure_err_bar")


@dataclass
class AATargets:
    """What the all-atom runs of a campaign measured, one row per run.

    Attributes
    ----------
    param_ids
        (n,) parameter-set ids.
    X
        (n, 19) parameters, ParameterSet field order, GROMACS units.
    r_nm
        (G,) common grid of the RDFs, nm.
    g
        (n, G) centre-of-mass RDFs on ``r_nm``; NaN rows where a run has none.
    density_kg_m3, density_err_kg_m3, pressure_bar, pressure_err_bar
        (n,) density and pressure with their standard errors; NaN where missing.
    campaign
        Name used in messages.
    molecule
        (n,) canonical SMILES of each run's molecule (None: the default molecule).
    """

    param_ids: np.ndarray
    X: np.ndarray
    r_nm: np.ndarray
    g: np.ndarray
    density_kg_m3: np.ndarray
    density_err_kg_m3: np.ndarray
    pressure_bar: np.ndarray
    pressure_err_bar: np.ndarray
    campaign: str = field(default="unnamed")
    molecule: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.param_ids = np.asarray(self.param_ids, dtype=str).reshape(-1)
        n = self.param_ids.size
        self.X = check_features(self.X, "AA targets field 'X'") if n else np.zeros((0, 19))
        if self.X.shape[0] != n:
            raise InvalidInputError(
                f"AA targets field 'X': expected {n} rows (one per param_id), "
                f"got {self.X.shape[0]}")
        self.r_nm = np.asarray(self.r_nm, dtype=float).reshape(-1)
        if self.r_nm.size < 4 or np.any(np.diff(self.r_nm) <= 0) or not self.r_nm[0] >= 0:
            raise InvalidInputError(
                "AA targets field 'r_nm': expected an increasing grid of at least 4 points "
                f">= 0 nm, got {self.r_nm.size} points")
        self.g = np.asarray(self.g, dtype=float)
        if self.g.shape != (n, self.r_nm.size):
            raise InvalidInputError(
                f"AA targets field 'g': expected shape ({n}, {self.r_nm.size}), got {self.g.shape}")
        for name in TARGET_FIELDS:
            arr = np.array(getattr(self, name), dtype=float).reshape(-1)  # own copy
            if arr.shape != (n,):
                raise InvalidInputError(
                    f"AA targets field '{name}': expected shape ({n},), got {arr.shape}")
            setattr(self, name, arr)
        if len(set(self.param_ids.tolist())) != n:
            raise InvalidInputError("AA targets field 'param_ids': ids must be unique")
        self.molecule = molecule_column(self.molecule, n, "AA targets field 'molecule'")

    @property
    def molecules(self) -> list[str]:
        """Canonical SMILES of every run's molecule, row order."""
        return self.molecule.tolist()

    def __len__(self) -> int:
        return int(self.param_ids.size)

    def subset(self, index: Sequence[int] | np.ndarray) -> AATargets:
        """A new table with the rows ``index`` (in that order)."""
        idx = np.asarray(index, dtype=int)
        return AATargets(
            param_ids=self.param_ids[idx], X=self.X[idx], r_nm=self.r_nm.copy(), g=self.g[idx],
            campaign=self.campaign, molecule=self.molecule[idx],
            **{name: getattr(self, name)[idx] for name in TARGET_FIELDS})

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]],
                     r_grid_nm: Sequence[float] | np.ndarray, *, campaign: str = "unnamed"
                     ) -> AATargets:
        """One row per record.

        Parameters
        ----------
        records
            Mappings with ``param_id``, ``params`` (the 19 fields, GROMACS units) and,
            each optional (None or missing gives NaN): ``r_nm`` and ``g`` (the RDF on its
            own grid, interpolated onto ``r_grid_nm``; beyond its last point it keeps its
            last value, as in :meth:`cgflow.ml.dataset.CampaignDataset.from_records`),
            ``density_kg_m3``, ``density_err_kg_m3``, ``pressure_bar``,
            ``pressure_err_bar``, ``molecule`` (canonical SMILES; missing: the default).
        r_grid_nm
            Common grid, nm.

        Raises
        ------
        InvalidInputError
            Naming the record, the field and the value.
        """
        grid = np.asarray(r_grid_nm, dtype=float).reshape(-1)
        ids, xs, gs, mols = [], [], [], []
        scalars: dict[str, list[float]] = {name: [] for name in TARGET_FIELDS}
        for k, rec in enumerate(records):
            pid = rec.get("param_id")
            where = f"AA record {k} (param_id {pid!r})"
            if pid is None or rec.get("params") is None:
                raise InvalidInputError(f"{where}: fields 'param_id' and 'params' are required")
            ps = parameter_set_from_mapping(rec["params"], source=f"{where} field 'params'")
            g = np.full(grid.shape, np.nan)
            if rec.get("g") is not None:
                if rec.get("r_nm") is None:
                    raise InvalidInputError(f"{where}: field 'g' given without its 'r_nm'")
                r = np.asarray(rec["r_nm"], dtype=float).reshape(-1)
                gv = np.asarray(rec["g"], dtype=float).reshape(-1)
                if r.shape != gv.shape or r.size < 2:
                    raise InvalidInputError(
                        f"{where}: field 'g' has {gv.size} values but 'r_nm' has {r.size}")
                if not np.all(np.isfinite(gv)):
                    raise InvalidInputError(f"{where}: field 'g' has non-finite values")
                g = np.interp(grid, r, gv)
            for name in TARGET_FIELDS:
                value = rec.get(name)
                try:
                    scalars[name].append(math.nan if value is None else float(value))
                except (TypeError, ValueError):
                    raise InvalidInputError(
                        f"{where}: field '{name}': expected a number or None, got {value!r}"
                    ) from None
            ids.append(str(pid))
            xs.append(ps.to_array())
            gs.append(g)
            mols.append(rec.get("molecule") or "")
        n = len(ids)
        return cls(param_ids=np.array(ids, dtype=str),
                   X=np.array(xs) if n else np.zeros((0, N_PARAMETERS)), r_nm=grid,
                   g=np.array(gs) if n else np.zeros((0, grid.size)), campaign=campaign,
                   molecule=np.array(mols, dtype=str) if n else None,
                   **{name: np.array(v, dtype=float) for name, v in scalars.items()})

    @classmethod
    def concatenate(cls, parts: Sequence[AATargets], r_grid_nm: Sequence[float] | np.ndarray,
                    *, campaign: str | None = None) -> AATargets:
        """The rows of several tables on the grid ``r_grid_nm`` (each RDF interpolated as
        in :meth:`from_records`).

        Raises
        ------
        InvalidInputError
            On no parts or a parameter-set id in two of them.
        """
        if not parts:
            raise InvalidInputError("AA targets concatenate: no tables given")
        records = []
        for part in parts:
            for i, pid in enumerate(part.param_ids.tolist()):
                g = part.g[i]
                rec = {"param_id": pid, "params": dict(zip(FIELDS, part.X[i].tolist(),
                                                           strict=True)),
                       "molecule": str(part.molecule[i]),
                       **{name: float(getattr(part, name)[i]) for name in TARGET_FIELDS}}
                if np.all(np.isfinite(g)):
                    rec.update(r_nm=part.r_nm, g=g)
                records.append(rec)
        name = campaign if campaign is not None else "+".join(p.campaign for p in parts)
        return cls.from_records(records, r_grid_nm, campaign=name)

    @classmethod
    def from_dataset(cls, dataset: Any) -> AATargets:
        """The target RDFs of a :class:`~cgflow.ml.dataset.CampaignDataset` (its converged
        sets; it holds no density or pressure, so those are NaN)."""
        n = len(dataset)
        g = (dataset.g_target if dataset.g_target is not None
             else np.full((n, dataset.r_nm.size), np.nan))
        return cls(param_ids=dataset.param_ids, X=dataset.X, r_nm=dataset.r_nm, g=g,
                   campaign=dataset.campaign, molecule=dataset.molecule,
                   **{name: np.full(n, np.nan) for name in TARGET_FIELDS})


    @classmethod
    def from_export(cls, folder: str | Path) -> AATargets:
        """The all-atom runs of an exported dataset (``cgflow dataset export`` or ``merge``).

        Every set of ``folder/sets.json`` whose all-atom run completed is a row, with its
        density and pressure; its RDF comes from ``folder/dataset.npz``, which holds the
        target RDFs of the converged sets only (the other rows' RDFs are NaN). The grid
        is the dataset's.

        Raises
        ------
        InvalidInputError
            When a file is missing or not an export.
        """
        from cgflow.ml.dataset import CampaignDataset

        folder = Path(folder)
        sets_file = folder / "sets.json"
        if not sets_file.is_file():
            raise InvalidInputError(f"dataset folder {str(folder)!r}: no sets.json")
        ds = CampaignDataset.load_npz(folder / "dataset.npz")
        try:
            listing = json.loads(sets_file.read_text(encoding="utf-8"))
            sets = listing["sets"]
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(
                f"{str(sets_file)!r}: not a dataset export (expected JSON with a 'sets' list)"
            ) from None
        mol_by_id = dict(zip(ds.param_ids.tolist(), ds.molecules, strict=True))
        g_by_id = ({} if ds.g_target is None else
                   {pid: g for pid, g in zip(ds.param_ids.tolist(), ds.g_target, strict=True)})
        records = []
        for entry in sets:
            if entry.get("aa_status") != "completed":
                continue
            rec = {k: entry.get(k) for k in ("param_id", "params", *TARGET_FIELDS)}
            rec["molecule"] = mol_by_id.get(entry.get("param_id")) or _export_smiles(entry)
            g = g_by_id.get(entry.get("param_id"))
            if g is not None and np.all(np.isfinite(g)):
                rec.update(r_nm=ds.r_nm, g=g)
            records.append(rec)
        campaign = str(listing.get("campaign", ds.campaign))
        return cls.from_records(records, ds.r_nm, campaign=campaign)


def _export_smiles(entry: Mapping[str, Any]) -> str:
    """Canonical SMILES of a ``sets.json`` row: its ``smiles``, else the registry's for
    its ``molecule`` name, else "" (the default molecule; exports before molecules)."""
    if entry.get("smiles"):
        return str(entry["smiles"])
    from cgflow.molecule.registry import find_entry

    found = find_entry(str(entry["molecule"])) if entry.get("molecule") else None
    return found.canonical_smiles if found is not None else ""


@dataclass(frozen=True)
class RDFPrediction:
    """Predictions of :class:`RDFModel` for n parameter sets; a part the model has no
    target for is None.

    Attributes
    ----------
    r_nm
        (G,) grid of the RDFs, nm.
    g, g_std
        (n, G) predicted g_t(r) and its standard deviation.
    density_kg_m3, density_std_kg_m3
        (n,) predicted density (log-normal mean) and its standard deviation.
    pressure_bar, pressure_std_bar
        (n,) predicted pressure and its standard deviation.
    """

    r_nm: np.ndarray
    g: np.ndarray | None
    g_std: np.ndarray | None
    density_kg_m3: np.ndarray | None
    density_std_kg_m3: np.ndarray | None
    pressure_bar: np.ndarray | None
    pressure_std_bar: np.ndarray | None


class _TargetGP:
    """One Gaussian process on standardised inputs, with known per-row noise."""

    def __init__(self, nu: float, length_scale_bounds: tuple[float, float],
                 noise_bounds: tuple[float, float], random_state: int) -> None:
        self.nu = nu
        self.length_scale_bounds = length_scale_bounds
        self.noise_bounds = noise_bounds
        self.random_state = random_state

    def fit(self, Z: np.ndarray, y: np.ndarray, err: np.ndarray | None = None) -> _TargetGP:
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) if y.std() > 0 else 1.0
        known = np.zeros_like(y) if err is None else np.asarray(err, dtype=float)
        if np.any(np.isfinite(known)):
            known = np.where(np.isfinite(known), known, np.nanmedian(known))
        else:
            known = np.zeros_like(y)
        self.median_err_ = float(np.median(known))
        self.known_noise_ = (known / self.y_scale_) ** 2
        gp = GaussianProcessRegressor(
            kernel=ard_matern_kernel(Z.shape[1], self.nu, self.length_scale_bounds,
                                     self.noise_bounds),
            alpha=self.known_noise_ + 1e-10, normalize_y=False, random_state=self.random_state)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp.fit(Z, (y - self.y_mean_) / self.y_scale_)
        self.gp_ = gp
        return self

    def predict(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, s = self.gp_.predict(Z, return_std=True)
        std = np.sqrt((s * self.y_scale_) ** 2 + self.median_err_**2)
        return self.y_mean_ + self.y_scale_ * m, std

    def to_dict(self) -> dict[str, Any]:
        return {"y_mean": self.y_mean_, "y_scale": self.y_scale_, "median_err": self.median_err_,
                "known_noise": self.known_noise_.tolist(), "kernel": kernel_state(self.gp_.kernel_),
                "Z_train": self.gp_.X_train_.tolist(), "y_train": self.gp_.y_train_.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, Any], nu: float) -> _TargetGP:
        model = cls(nu, (0.05, 1000.0), (1e-5, 1.0), 0)
        model.y_mean_, model.y_scale_ = float(state["y_mean"]), float(state["y_scale"])
        model.median_err_ = float(state["median_err"])
        model.known_noise_ = np.asarray(state["known_noise"], dtype=float)
        gp = GaussianProcessRegressor(kernel=kernel_from_state(state["kernel"], nu),
                                      alpha=model.known_noise_ + 1e-10, optimizer=None)
        gp.fit(np.asarray(state["Z_train"], dtype=float), np.asarray(state["y_train"], dtype=float))
        model.gp_ = gp
        return model


class RDFModel:
    """Parameters -> g_t(r), density and pressure of the all-atom run, with uncertainty.

    See the module docstring for the model and its approximations.

    Parameters
    ----------
    tolerance_g
        Largest RMS truncation error (in units of g) of the principal components kept.
    max_components
        Most principal components of g_t.
    nu
        Matern smoothness of every Gaussian process.
    length_scale_bounds
        Bounds of the length scales, in units of the standardised parameters.
    noise_bounds
        Bounds of the white-noise variance, in units of the target's variance.
    random_state
        Seed of the optimiser.
    molecule_features
        Inputs of several molecules (:func:`cgflow.ml.features.model_inputs`).
    descriptors
        Names of :data:`cgflow.molecule.descriptors.DESCRIPTOR_NAMES` added to the
        inputs; None: :data:`DEFAULT_DESCRIPTORS`, or none with ``molecule_features``.
    """

    def __init__(self, *, tolerance_g: float = 0.01, max_components: int = 8, nu: float = 2.5,
                 length_scale_bounds: tuple[float, float] = (0.05, 1000.0),
                 noise_bounds: tuple[float, float] = (1e-2, 1.0), random_state: int = 0,
                 molecule_features: bool = False,
                 descriptors: Sequence[str] | None = None) -> None:
        if not (np.isfinite(tolerance_g) and tolerance_g > 0):
            raise InvalidInputError(f"field 'tolerance_g': must be > 0, got {tolerance_g!r}")
        if int(max_components) < 1:
            raise InvalidInputError(f"field 'max_components': must be >= 1, got {max_components!r}")
        self.tolerance_g = float(tolerance_g)
        self.max_components = int(max_components)
        self.nu = float(nu)
        self.length_scale_bounds = tuple(float(v) for v in length_scale_bounds)
        self.noise_bounds = tuple(float(v) for v in noise_bounds)
        self.random_state = int(random_state)
        self.molecule_features = bool(molecule_features)
        if descriptors is None:
            # a model of several molecules has their size and shape among its molecule inputs
            descriptors = () if self.molecule_features else DEFAULT_DESCRIPTORS
        self.descriptors: tuple[str, ...] = check_descriptor_names(descriptors)

    def _inputs(self, X: Any, molecules: Any) -> np.ndarray:
        """Model inputs (:func:`cgflow.ml.features.model_inputs`) of parameters ``X``."""
        return model_inputs(X, self.descriptors, molecules=molecules,
                            molecule_features=self.molecule_features)

    def _settings(self) -> dict[str, Any]:
        return {"tolerance_g": self.tolerance_g, "max_components": self.max_components,
                "nu": self.nu, "length_scale_bounds": list(self.length_scale_bounds),
                "noise_bounds": list(self.noise_bounds), "random_state": self.random_state,
                # only when set: models without them keep the settings they always had
                **({"molecule_features": True} if self.molecule_features else {}),
                **({"descriptors": list(self.descriptors)} if self.descriptors else {})}

    def _pressure_inputs(self, Z: np.ndarray) -> np.ndarray:
        """The pressure's inputs: every input but the descriptors (module docstring)."""
        d = len(self.descriptors)
        return np.delete(Z, np.s_[N_PARAMETERS:N_PARAMETERS + d], axis=1) if d else Z

    def _gp(self) -> _TargetGP:
        return _TargetGP(self.nu, self.length_scale_bounds, self.noise_bounds, self.random_state)

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_mean_) / self.x_scale_

    # --- fitting ---------------------------------------------------------------------------

    def fit_targets(self, targets: AATargets) -> RDFModel:
        """:meth:`fit` on the rows of an :class:`AATargets` table."""
        return self.fit(targets.X, targets.r_nm, g=targets.g,
                        density_kg_m3=targets.density_kg_m3, pressure_bar=targets.pressure_bar,
                        density_err_kg_m3=targets.density_err_kg_m3,
                        pressure_err_bar=targets.pressure_err_bar,
                        molecules=targets.molecules)

    def fit(self, X: Any, r_nm: Any, *, g: Any = None, density_kg_m3: Any = None,
            pressure_bar: Any = None, density_err_kg_m3: Any = None,
            pressure_err_bar: Any = None, molecules: Any = None) -> RDFModel:
        """Fit on parameters ``X`` (n, 19) and whatever targets are given.

        Parameters
        ----------
        X
            (n, 19) parameters, ParameterSet field order, GROMACS units.
        r_nm
            (G,) grid of ``g``, nm.
        g
            (n, G) RDFs; rows with a NaN are left out.
        density_kg_m3, pressure_bar
            (n,) values; NaN rows are left out. Densities must be > 0.
        density_err_kg_m3, pressure_err_bar
            (n,) standard errors (NaN: the median of the others), the known noise of
            each row.
        molecules
            (n,) canonical SMILES of each row's molecule (a model with
            ``molecule_features``; None: the default molecule).

        Raises
        ------
        InvalidInputError
            On shapes that do not match, a non-positive density, or no target with at
            least :data:`MIN_ROWS` rows.
        """
        X = self._inputs(X, molecules)
        n = X.shape[0]
        r = np.asarray(r_nm, dtype=float).reshape(-1)
        self.r_nm = r
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        Z = self._scale(X)
        self.skipped_: dict[str, str] = {}
        self.n_rows_: dict[str, int] = {}

        self.g_gps_: list[_TargetGP] | None = None
        if g is not None:
            g = np.asarray(g, dtype=float)
            if g.shape != (n, r.size):
                raise InvalidInputError(f"field 'g': expected shape ({n}, {r.size}), got {g.shape}")
            rows = np.all(np.isfinite(g), axis=1)
            self._fit_g(Z[rows], g[rows])
        else:
            self.skipped_["g"] = "no RDFs given"
        self.density_gp_ = self._fit_scalar("density_kg_m3", Z, density_kg_m3,
                                            density_err_kg_m3, n, log=True)
        self.pressure_gp_ = self._fit_scalar("pressure_bar", self._pressure_inputs(Z),
                                             pressure_bar, pressure_err_bar,
                                             n, log=False)
        if self.g_gps_ is None and self.density_gp_ is None and self.pressure_gp_ is None:
            raise InvalidInputError(
                f"RDF model: no target has {MIN_ROWS} or more rows with a value "
                f"({'; '.join(f'{k}: {v}' for k, v in self.skipped_.items())})")
        return self

    def _fit_g(self, Z: np.ndarray, g: np.ndarray) -> None:
        m = g.shape[0]
        self.n_rows_["g"] = int(m)
        if m < MIN_ROWS:
            self.skipped_["g"] = f"{m} RDF(s); need at least {MIN_ROWS}"
            return
        self.g_mean_ = g.mean(axis=0)
        _, sv, vt = np.linalg.svd(g - self.g_mean_, full_matrices=False)
        # RMS truncation error over the training RDFs after keeping k components
        tail = np.sqrt(np.append(np.cumsum((sv**2)[::-1])[::-1], 0.0)[1:] / g.size)
        k_max = max(1, min(self.max_components, m - 1, int(np.sum(sv > 1e-12 * sv[0]))))
        k = next((i + 1 for i in range(k_max) if tail[i] <= self.tolerance_g), k_max)
        self.g_components_ = vt[:k].T.copy()  # (G, K), orthonormal columns
        scores = (g - self.g_mean_) @ self.g_components_
        residual = g - self.g_mean_ - scores @ self.g_components_.T
        self.g_truncation_rms_ = np.sqrt(np.mean(residual**2, axis=0))  # (G,)
        self.g_gps_ = [self._gp().fit(Z, scores[:, j]) for j in range(k)]

    def _fit_scalar(self, name: str, Z: np.ndarray, y: Any, err: Any, n: int,
                    log: bool) -> _TargetGP | None:
        if y is None:
            self.skipped_[name] = "not given"
            return None
        y = np.asarray(y, dtype=float).reshape(-1)
        e = np.full(n, np.nan) if err is None else np.asarray(err, dtype=float).reshape(-1)
        for label, arr in ((name, y), (f"{name} error", e)):
            if arr.shape != (n,):
                raise InvalidInputError(f"field '{label}': expected shape ({n},), got {arr.shape}")
        rows = np.isfinite(y)
        self.n_rows_[name] = int(rows.sum())
        if rows.sum() < MIN_ROWS:
            self.skipped_[name] = f"{int(rows.sum())} value(s); need at least {MIN_ROWS}"
            return None
        if log:
            if np.any(y[rows] <= 0):
                i = int(np.argwhere(rows & (y <= 0))[0, 0])
                raise InvalidInputError(
                    f"field '{name}': must be > 0, got {float(y[i])!r} in row {i}")
            e, y = e / y, np.log(y)  # relative error = error of the log
        return self._gp().fit(Z[rows], y[rows], e[rows])

    # --- prediction ------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "x_mean_"):
            raise InvalidInputError("RDF model: not fitted (call fit or load first)")

    def predict(self, X: Any, molecules: Any = None) -> RDFPrediction:
        """Predicted g_t(r), density and pressure with standard deviations for ``X``
        (``molecules``: each row's canonical SMILES, for a model with
        ``molecule_features``)."""
        self._check_fitted()
        Z = self._scale(self._inputs(X, molecules))
        g = g_std = None
        if self.g_gps_ is not None:
            moments = [gp.predict(Z) for gp in self.g_gps_]
            mean = np.stack([m for m, _ in moments], axis=1)  # (n, K)
            var = np.stack([s for _, s in moments], axis=1) ** 2
            g = np.maximum(self.g_mean_ + mean @ self.g_components_.T, 0.0)
            g_std = np.sqrt(var @ (self.g_components_.T ** 2) + self.g_truncation_rms_**2)
        density = density_std = None
        if self.density_gp_ is not None:
            m, s = self.density_gp_.predict(Z)
            density = np.exp(m + 0.5 * s**2)
            density_std = density * np.sqrt(np.expm1(s**2))
        pressure = pressure_std = None
        if self.pressure_gp_ is not None:
            pressure, pressure_std = self.pressure_gp_.predict(self._pressure_inputs(Z))
        return RDFPrediction(r_nm=self.r_nm.copy(), g=g, g_std=g_std, density_kg_m3=density,
                             density_std_kg_m3=density_std, pressure_bar=pressure,
                             pressure_std_bar=pressure_std)

    @property
    def n_components(self) -> int:
        """Number of principal components of g_t (0 without an RDF model)."""
        self._check_fitted()
        return 0 if self.g_gps_ is None else int(self.g_components_.shape[1])

    # --- serialisation without pickle --------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly state; :meth:`from_dict` refits every GP with its fitted
        hyperparameters fixed, which reproduces the predictions exactly."""
        self._check_fitted()
        state: dict[str, Any] = {
            "kind": "rdf-pca-gp", "settings": self._settings(), "r_nm": self.r_nm.tolist(),
            "x_mean": self.x_mean_.tolist(), "x_scale": self.x_scale_.tolist(),
            "skipped": dict(self.skipped_), "n_rows": dict(self.n_rows_), "g": None,
            "density": None if self.density_gp_ is None else self.density_gp_.to_dict(),
            "pressure": None if self.pressure_gp_ is None else self.pressure_gp_.to_dict(),
        }
        if self.g_gps_ is not None:
            state["g"] = {"mean": self.g_mean_.tolist(), "components": self.g_components_.tolist(),
                          "truncation_rms": self.g_truncation_rms_.tolist(),
                          "gps": [gp.to_dict() for gp in self.g_gps_]}
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RDFModel:
        """Inverse of :meth:`to_dict`."""
        if state.get("kind") != "rdf-pca-gp":
            raise InvalidInputError(f"RDF model: unknown kind {state.get('kind')!r}")
        # models stored before descriptors were inputs had none
        model = cls(**{"descriptors": (), **state["settings"]})
        model.r_nm = np.asarray(state["r_nm"], dtype=float)
        model.x_mean_ = np.asarray(state["x_mean"], dtype=float)
        model.x_scale_ = np.asarray(state["x_scale"], dtype=float)
        model.skipped_ = dict(state["skipped"])
        model.n_rows_ = dict(state["n_rows"])
        model.g_gps_ = None
        if state["g"] is not None:
            gs = state["g"]
            model.g_mean_ = np.asarray(gs["mean"], dtype=float)
            model.g_components_ = np.asarray(gs["components"], dtype=float).reshape(
                model.r_nm.size, -1)
            model.g_truncation_rms_ = np.asarray(gs["truncation_rms"], dtype=float)
            model.g_gps_ = [_TargetGP.from_dict(s, model.nu) for s in gs["gps"]]
        for name in ("density", "pressure"):
            sub = state[name]
            gp = None if sub is None else _TargetGP.from_dict(sub, model.nu)
            setattr(model, f"{name}_gp_", gp)
        return model

    def to_bytes(self) -> bytes:
        """:meth:`to_dict` as UTF-8 JSON."""
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> RDFModel:
        """Inverse of :meth:`to_bytes`."""
        return cls.from_dict(json.loads(blob))


def score_rdf_model(model: RDFModel, targets: AATargets,
                    rows: Sequence[int] | np.ndarray,
                    baseline_rows: Sequence[int] | np.ndarray | None = None) -> dict[str, Any]:
    """Errors of ``model`` on the rows ``rows`` of ``targets``, next to the mean predictor.

    Parameters
    ----------
    model
        A fitted :class:`RDFModel`.
    targets
        The table holding the evaluation rows (its grid must be the model's).
    rows
        Rows to score (a row without a value of a target is not scored for it).
    baseline_rows
        Rows whose mean is the mean predictor (normally the training rows); default
        every row of ``targets`` not in ``rows``.

    Returns
    -------
    dict
        ``rdf``: ``deviation_mean``, ``deviation_median``, ``deviation_max`` (the RDF
        deviation D of :func:`cgflow.ibi.metrics.rdf_deviation` between predicted and
        measured g_t, per set), ``mean_predictor_deviation_mean`` (the mean training RDF
        instead), ``coverage_1sigma`` (fraction of grid points of the scored RDFs within
        one predicted standard deviation), ``n``; ``density`` and ``pressure``: the
        metrics of :func:`~cgflow.ml.metrics.regression_metrics` plus
        ``mean_predictor_rmse``. A target the model or the rows lack has a ``skipped``
        reason instead; an undefined number (the R^2 of constant values) is None.
    """
    rows = np.asarray(rows, dtype=int)
    if baseline_rows is None:
        baseline_rows = np.setdiff1d(np.arange(len(targets)), rows)
    base = np.asarray(baseline_rows, dtype=int)
    if not np.allclose(targets.r_nm, model.r_nm):
        raise InvalidInputError("RDF model score: the table's grid 'r_nm' is not the model's")
    pred = (model.predict(targets.X[rows], molecules=targets.molecule[rows].tolist())
            if rows.size else None)
    out: dict[str, Any] = {}
    have_g = np.all(np.isfinite(targets.g[rows]), axis=1) if rows.size else np.zeros(0, bool)
    base_g = base[np.all(np.isfinite(targets.g[base]), axis=1)] if base.size else base
    if pred is None or pred.g is None or not have_g.any():
        out["rdf"] = {"skipped": model.skipped_.get("g", "no measured RDFs among the rows")}
    else:
        r = targets.r_nm
        true, p, s = targets.g[rows][have_g], pred.g[have_g], pred.g_std[have_g]
        dev = np.array([rdf_deviation(r, a, b) for a, b in zip(p, true, strict=True)])
        out["rdf"] = {"deviation_mean": float(dev.mean()),
                      "deviation_median": float(np.median(dev)),
                      "deviation_max": float(dev.max()),
                      "coverage_1sigma": float(np.mean(np.abs(true - p) <= s)),
                      "n": int(dev.size)}
        if base_g.size:
            mean_g = targets.g[base_g].mean(axis=0)
            out["rdf"]["mean_predictor_deviation_mean"] = float(np.mean(
                [rdf_deviation(r, mean_g, b) for b in true]))
    for name, value, std, attr in (
            ("density", None if pred is None else pred.density_kg_m3,
             None if pred is None else pred.density_std_kg_m3, "density_kg_m3"),
            ("pressure", None if pred is None else pred.pressure_bar,
             None if pred is None else pred.pressure_std_bar, "pressure_bar")):
        y = getattr(targets, attr)
        ok = np.isfinite(y[rows]) if rows.size else np.zeros(0, bool)
        if value is None or not ok.any():
            out[name] = {"skipped": model.skipped_.get(attr, f"no measured {name} among the rows")}
            continue
        m = regression_metrics(y[rows][ok], value[ok], std[ok])
        yb = y[base][np.isfinite(y[base])] if base.size else np.zeros(0)
        if yb.size:
            m["mean_predictor_rmse"] = float(np.sqrt(np.mean((y[rows][ok] - yb.mean()) ** 2)))
        out[name] = m
    # undefined numbers (an R^2 of constant values, say) as None: the scores are stored
    return {part: {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                   for k, v in block.items()} for part, block in out.items()}
