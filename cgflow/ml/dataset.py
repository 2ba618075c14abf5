"""The training table of a campaign: parameters, converged CG potentials and dynamics.

A :class:`CampaignDataset` holds, for ``n`` converged parameter sets, the 19 bonded
parameters (columns in :data:`cgflow.params.FIELDS` order, GROMACS units), the converged
IBI potential on one common distance grid, the target RDF (optional), the all-atom and
coarse-grained self-diffusion coefficients, the acceleration factor
``alpha = D_CG / D_AA`` and, where calibrated, the friction gamma with D_CG(gamma) = D_AA
(:mod:`cgflow.ibi.friction`). Units: r in nm, U in kJ/mol, D in nm^2/ps, gamma in 1/ps.

:func:`splits` defines the evaluation protocol used everywhere in :mod:`cgflow.ml`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.errors import InvalidInputError
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES as DEFAULT_SMILES
from cgflow.params import FIELDS, N_PARAMETERS, parameter_set_from_mapping

#: Scalar per-set quantities of a record (nm^2/ps for D, dimensionless alpha).
SCALAR_FIELDS: tuple[str, ...] = ("d_aa", "d_aa_err", "d_cg", "d_cg_err", "alpha", "alpha_err")
#: Optional per-set columns: the calibrated friction gamma and its uncertainty, 1/ps (NaN
#: where not calibrated; a dataset without any, such as older exports, stores none).
FRICTION_FIELDS: tuple[str, ...] = ("friction", "friction_err")


@dataclass
class CampaignDataset:
    """Per-parameter-set arrays of one campaign, on a common r grid.

    Attributes
    ----------
    param_ids
        (n,) parameter-set ids (strings).
    X
        (n, 19) parameters in ParameterSet field order, GROMACS units.
    r_nm
        (G,) common distance grid in nm, strictly increasing; its last point is the
        cut-off of the CG potential.
    U
        (n, G) converged CG pair potentials in kJ/mol.
    g_target
        (n, G) target RDFs, or None. Rows of sets without a stored RDF are NaN.
    d_aa, d_aa_err, d_cg, d_cg_err
        (n,) self-diffusion coefficients and their standard errors, nm^2/ps. NaN where
        a value is missing.
    alpha, alpha_err
        (n,) acceleration factor D_CG / D_AA and its standard error. NaN where missing.
    friction, friction_err
        (n,) calibrated friction gamma (D_CG(gamma) = D_AA) and its uncertainty, 1/ps.
        NaN where not calibrated (all NaN when None is given).
    campaign
        Name of the campaign the sets come from (used in messages).
    molecule
        (n,) canonical SMILES of the molecule of each set (the default,
        2,3,4-trimethylpentane, when None is given: every dataset made before campaigns
        of other molecules). Saved only when some set is of another molecule, so
        single-molecule datasets keep their content hash.
    """

    param_ids: np.ndarray
    X: np.ndarray
    r_nm: np.ndarray
    U: np.ndarray
    d_aa: np.ndarray
    d_aa_err: np.ndarray
    d_cg: np.ndarray
    d_cg_err: np.ndarray
    alpha: np.ndarray
    alpha_err: np.ndarray
    g_target: np.ndarray | None = None
    campaign: str = field(default="unnamed")
    friction: np.ndarray | None = None
    friction_err: np.ndarray | None = None
    molecule: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.param_ids = np.asarray(self.param_ids, dtype=str).reshape(-1)
        self.X = np.asarray(self.X, dtype=float)
        self.r_nm = np.asarray(self.r_nm, dtype=float).reshape(-1)
        self.U = np.asarray(self.U, dtype=float)
        n, g = self.param_ids.shape[0], self.r_nm.shape[0]
        if self.X.shape != (n, N_PARAMETERS):
            raise InvalidInputError(
                f"dataset field 'X': expected shape ({n}, {N_PARAMETERS}), got {self.X.shape}"
            )
        if not np.all(np.isfinite(self.X)):
            bad = int(np.argwhere(~np.isfinite(self.X))[0, 0])
            raise InvalidInputError(
                f"dataset field 'X': non-finite value in row {bad} "
                f"(param_id {self.param_ids[bad]!r})"
            )
        _check_grid(self.r_nm, "dataset field 'r_nm'")
        if self.U.shape != (n, g):
            raise InvalidInputError(
                f"dataset field 'U': expected shape ({n}, {g}), got {self.U.shape}"
            )
        if not np.all(np.isfinite(self.U)):
            bad = int(np.argwhere(~np.isfinite(self.U))[0, 0])
            raise InvalidInputError(
                f"dataset field 'U': non-finite potential value in row {bad} "
                f"(param_id {self.param_ids[bad]!r})"
            )
        for name in FRICTION_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, np.full(n, np.nan))
        for name in (*SCALAR_FIELDS, *FRICTION_FIELDS):
            arr = np.asarray(getattr(self, name), dtype=float).reshape(-1)
            if arr.shape != (n,):
                raise InvalidInputError(
                    f"dataset field '{name}': expected shape ({n},), got {arr.shape}"
                )
            setattr(self, name, arr)
        if self.g_target is not None:
            self.g_target = np.asarray(self.g_target, dtype=float)
            if self.g_target.shape != (n, g):
                raise InvalidInputError(
                    f"dataset field 'g_target': expected shape ({n}, {g}), "
                    f"got {self.g_target.shape}"
                )
        if len(set(self.param_ids.tolist())) != n:
            raise InvalidInputError("dataset field 'param_ids': ids must be unique")
        self.molecule = molecule_column(self.molecule, n, "dataset field 'molecule'")

    # --- size and subsets ---------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.param_ids.shape[0])

    def subset(self, index: Sequence[int] | np.ndarray) -> CampaignDataset:
        """A new dataset with the rows ``index`` (in that order)."""
        idx = np.asarray(index, dtype=int)
        return CampaignDataset(
            param_ids=self.param_ids[idx], X=self.X[idx], r_nm=self.r_nm.copy(),
            U=self.U[idx], d_aa=self.d_aa[idx], d_aa_err=self.d_aa_err[idx],
            d_cg=self.d_cg[idx], d_cg_err=self.d_cg_err[idx], alpha=self.alpha[idx],
            alpha_err=self.alpha_err[idx],
            g_target=None if self.g_target is None else self.g_target[idx],
            campaign=self.campaign, friction=self.friction[idx],
            friction_err=self.friction_err[idx], molecule=self.molecule[idx],
        )

    @property
    def molecules(self) -> list[str]:
        """Canonical SMILES of every set's molecule, row order."""
        return self.molecule.tolist()

    @property
    def is_multi_molecule(self) -> bool:
        """True when some set is of a molecule other than the default."""
        return bool(np.any(self.molecule != DEFAULT_SMILES))

    @property
    def has_friction(self) -> bool:
        """True when at least one set has a calibrated friction."""
        return bool(np.any(np.isfinite(self.friction)))

    # --- construction from database records ---------------------------------------------

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], r_grid_nm: Sequence[float] | np.ndarray,
        *, campaign: str = "unnamed",
    ) -> CampaignDataset:
        """Build a dataset from one record per converged parameter set.

        Each potential (and RDF) is linearly interpolated from its own grid onto
        ``r_grid_nm``. Beyond the last point of a record's grid (its cut-off) the
        potential is taken as 0 and the RDF as its last value; a common grid that starts
        before a record's first point is an error, since the short-range wall cannot be
        invented.

        Parameters
        ----------
        records
            Mappings with keys ``param_id``, ``params`` (the 19 fields, GROMACS units),
            ``r_nm``, ``u_kj_mol``, optional ``g_target`` (on ``r_nm``), and ``d_aa``,
            ``d_aa_err``, ``d_cg``, ``d_cg_err``, ``alpha``, ``alpha_err``, ``friction``,
            ``friction_err`` (None or a missing key gives NaN), optional ``molecule``
            (SMILES of the set's molecule; missing: the default molecule).
        r_grid_nm
            Common grid in nm, strictly increasing.
        campaign
            Campaign name, used in messages.

        Raises
        ------
        InvalidInputError
            Naming the record (index and param_id), the field and the problem.
        """
        grid = np.asarray(r_grid_nm, dtype=float).reshape(-1)
        _check_grid(grid, "argument 'r_grid_nm'")
        if len(records) == 0:
            raise InvalidInputError(f"campaign {campaign!r}: no records to build a dataset from")
        ids, xs, us, gs, mols = [], [], [], [], []
        scalars: dict[str, list[float]] = {k: [] for k in (*SCALAR_FIELDS, *FRICTION_FIELDS)}
        any_g = False
        for k, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InvalidInputError(f"record {k}: expected a mapping, got {type(rec).__name__}")
            pid = rec.get("param_id")
            where = f"record {k} (param_id {pid!r})"
            for key in ("param_id", "params", "r_nm", "u_kj_mol"):
                if key not in rec or rec[key] is None:
                    raise InvalidInputError(f"{where}: field '{key}' missing (required)")
            ps = parameter_set_from_mapping(rec["params"], source=f"{where} field 'params'")
            r = np.asarray(rec["r_nm"], dtype=float).reshape(-1)
            u = np.asarray(rec["u_kj_mol"], dtype=float).reshape(-1)
            _check_grid(r, f"{where} field 'r_nm'")
            if u.shape != r.shape:
                raise InvalidInputError(
                    f"{where}: field 'u_kj_mol' has {u.size} values but 'r_nm' has {r.size}"
                )
            if not np.all(np.isfinite(u)):
                raise InvalidInputError(f"{where}: field 'u_kj_mol' has non-finite values")
            if grid[0] < r[0] - 1e-9:
                raise InvalidInputError(
                    f"{where}: field 'r_nm' starts at {r[0]:g} nm, after the common grid's "
                    f"first point {grid[0]:g} nm"
                )
            us.append(np.interp(grid, r, u, right=0.0))
            g_rec = rec.get("g_target")
            if g_rec is not None:
                g_arr = np.asarray(g_rec, dtype=float).reshape(-1)
                if g_arr.shape != r.shape:
                    raise InvalidInputError(
                        f"{where}: field 'g_target' has {g_arr.size} values but 'r_nm' has "
                        f"{r.size}"
                    )
                gs.append(np.interp(grid, r, g_arr))
                any_g = True
            else:
                gs.append(np.full(grid.shape, np.nan))
            for name in (*SCALAR_FIELDS, *FRICTION_FIELDS):
                scalars[name].append(_scalar(rec.get(name), f"{where} field '{name}'"))
            ids.append(str(pid))
            xs.append(ps.to_array())
            mols.append(rec.get("molecule") or DEFAULT_SMILES)
        return cls(
            param_ids=np.array(ids), X=np.array(xs), r_nm=grid, U=np.array(us),
            g_target=np.array(gs) if any_g else None, campaign=campaign,
            molecule=np.array(mols, dtype=str),
            **{name: np.array(v) for name, v in scalars.items()},
        )

    @classmethod
    def concatenate(cls, parts: Sequence[CampaignDataset], *,
                    campaign: str | None = None) -> CampaignDataset:
        """The rows of several datasets (e.g. of several campaigns) on one grid.

        The grids must share their spacing. The common grid runs from the largest first
        point to the largest last point, with the rule of :meth:`from_records`: beyond a
        part's grid its potentials are 0 (they end at their cut-off) and its RDFs hold
        their last value.

        Raises
        ------
        InvalidInputError
            On no parts, different grid spacings, or a parameter-set id in two parts
            (naming the id and both campaigns).
        """
        if not parts:
            raise InvalidInputError("dataset concatenate: no datasets given")
        steps = [float(p.r_nm[1] - p.r_nm[0]) for p in parts]
        if max(steps) - min(steps) > 1e-9:
            raise InvalidInputError(f"dataset concatenate: field 'r_nm': the grids have "
                                    f"different spacings {sorted(set(steps))} nm")
        seen: dict[str, str] = {}
        records: list[dict[str, Any]] = []
        for part in parts:
            for i, pid in enumerate(part.param_ids.tolist()):
                if pid in seen:
                    raise InvalidInputError(
                        f"dataset concatenate: field 'param_ids': {pid!r} is in both "
                        f"{seen[pid]!r} and {part.campaign!r}")
                seen[pid] = part.campaign
                rec: dict[str, Any] = {
                    "param_id": pid, "params": dict(zip(FIELDS, part.X[i].tolist(), strict=True)),
                    "r_nm": part.r_nm, "u_kj_mol": part.U[i],
                    "g_target": None if part.g_target is None else part.g_target[i],
                    "molecule": str(part.molecule[i]),
                }
                rec.update({name: float(getattr(part, name)[i])
                            for name in (*SCALAR_FIELDS, *FRICTION_FIELDS)})
                records.append(rec)
        dr = steps[0]
        lo = max(float(p.r_nm[0]) for p in parts)
        hi = max(float(p.r_nm[-1]) for p in parts)
        grid = np.round(lo + dr * np.arange(int(np.floor((hi - lo) / dr + 1e-6)) + 1), 10)
        name = campaign if campaign is not None else "+".join(p.campaign for p in parts)
        return cls.from_records(records, grid, campaign=name)

    # --- persistence and identity ------------------------------------------------------------

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "param_ids": self.param_ids, "X": self.X, "r_nm": self.r_nm, "U": self.U,
            **{name: getattr(self, name) for name in SCALAR_FIELDS},
        }
        if self.g_target is not None:
            arrays["g_target"] = self.g_target
        if self.has_friction:  # absent otherwise: older datasets keep their hash
            arrays.update({name: getattr(self, name) for name in FRICTION_FIELDS})
        if self.is_multi_molecule:  # likewise
            arrays["molecule"] = self.molecule
        return arrays

    def save_npz(self, path: str | Path) -> Path:
        """Write the dataset to a compressed ``.npz`` file; returns the path."""
        path = Path(path)
        np.savez_compressed(path, campaign=np.array(self.campaign), **self._arrays())
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load_npz(cls, path: str | Path) -> CampaignDataset:
        """Read a dataset written by :meth:`save_npz`.

        Read by :func:`cgflow.userfiles.read_npz_arrays` (a zip of plain ``.npy`` arrays,
        never a pickle, with size limits), then checked array by array: the names of
        :meth:`save_npz` only, ``param_ids`` and ``campaign`` text, the others numbers,
        and the shapes of :class:`CampaignDataset`.

        Raises
        ------
        InvalidInputError
            Naming the file and the array (garbage, YAML, a pickle, a missing or unknown
            array, a wrong dtype or shape).
        """
        from cgflow.userfiles import read_npz_arrays

        source = f"dataset file {Path(path)}"
        required = ("param_ids", "X", "r_nm", "U", *SCALAR_FIELDS)
        # the other fields of the dataclass: g_target, campaign and any optional column
        optional = [f.name for f in fields(cls) if f.name not in required]
        arrays = read_npz_arrays(path, "dataset file", required=required, optional=optional)
        for name, arr in arrays.items():
            if name in ("param_ids", "campaign", "molecule"):
                if arr.dtype.kind != "U":
                    raise InvalidInputError(f"{source}: array {name!r}: dtype {arr.dtype}, "
                                            "expected text")
            elif arr.dtype.kind not in "iuf":
                raise InvalidInputError(f"{source}: array {name!r}: dtype {arr.dtype}, "
                                        "expected numbers")
        campaign = arrays.pop("campaign", None)
        if campaign is not None and campaign.ndim != 0:
            raise InvalidInputError(f"{source}: array 'campaign': expected one name, got "
                                    f"shape {campaign.shape}")
        try:
            return cls(campaign=str(campaign) if campaign is not None else "unnamed",
                       **arrays)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{source}: {exc}") from None

    def content_hash(self) -> str:
        """SHA-256 (hex) of the ids and every array (shape, dtype and bytes, fixed order).

        Two datasets with the same content have the same hash whatever their campaign
        name; model metadata records it to tie a model to its training data.
        """
        h = hashlib.sha256()
        for name, arr in self._arrays().items():
            a = np.ascontiguousarray(arr)
            if a.dtype.kind == "U":
                payload = "\x1f".join(a.tolist()).encode()
            else:
                payload = a.astype("<f8").tobytes()
            h.update(f"{name}:{a.shape}:".encode())
            h.update(payload)
        return h.hexdigest()


def molecule_column(values: Any, n: int, what: str) -> np.ndarray:
    """(n,) canonical SMILES from ``values`` (None: the default molecule everywhere; an
    empty entry: the default molecule)."""
    if values is None:
        return np.full(n, DEFAULT_SMILES, dtype=object).astype(str)
    arr = np.asarray(values, dtype=str).reshape(-1)
    if arr.shape != (n,):
        raise InvalidInputError(f"{what}: expected shape ({n},), got {arr.shape}")
    return np.where(arr == "", DEFAULT_SMILES, arr).astype(str)


def _check_grid(r: np.ndarray, what: str) -> None:
    if r.ndim != 1 or r.size < 4:
        raise InvalidInputError(f"{what}: expected a 1-D grid of at least 4 points, got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise InvalidInputError(f"{what}: grid has non-finite values")
    if np.any(np.diff(r) <= 0.0):
        k = int(np.argmax(np.diff(r) <= 0.0))
        raise InvalidInputError(
            f"{what}: grid must be strictly increasing, but r[{k + 1}] = {r[k + 1]!r} <= "
            f"r[{k}] = {r[k]!r}"
        )
    if r[0] <= 0.0:
        raise InvalidInputError(f"{what}: grid must start at r > 0 nm, got {r[0]!r}")


def _scalar(value: Any, what: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what}: expected a number or None, got {value!r}") from None


# --- evaluation protocol ------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    """Index sets of the evaluation protocol (see :func:`splits`).

    Attributes
    ----------
    test
        Sorted indices of the held-out test sets, never used for training or model choice.
    trainval
        Sorted indices of all other sets (cross-validation and final training).
    folds
        ``n_folds`` pairs ``(train, val)`` of sorted index arrays partitioning
        ``trainval``: each set of ``trainval`` is in exactly one ``val``.
    seed
        Seed of the permutation.
    """

    test: np.ndarray
    trainval: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (lists of ints)."""
        return {
            "seed": self.seed, "test": self.test.tolist(), "trainval": self.trainval.tolist(),
            "folds": [{"train": t.tolist(), "val": v.tolist()} for t, v in self.folds],
        }


def splits(n: int, *, n_folds: int = 5, test_fraction: float = 0.2, seed: int = 0) -> Splits:
    """The evaluation protocol: a held-out test set and k-fold CV over the rest.

    The ``n`` indices are shuffled with ``numpy.random.default_rng(seed)``. The first
    ``round(test_fraction * n)`` of the permutation (at least 1 when ``test_fraction > 0``)
    form the test set; the rest is cut into ``n_folds`` contiguous chunks of the
    permutation (sizes differ by at most one), each the validation set of one fold whose
    training set is the remainder. The same ``(n, n_folds, test_fraction, seed)`` always
    gives the same split.

    Raises
    ------
    InvalidInputError
        When ``n_folds < 2``, ``test_fraction`` is outside [0, 1), or fewer than
        ``n_folds`` sets remain after the test set.
    """
    if n_folds < 2:
        raise InvalidInputError(f"field 'n_folds': must be >= 2, got {n_folds!r}")
    if not 0.0 <= test_fraction < 1.0:
        raise InvalidInputError(f"field 'test_fraction': must be in [0, 1), got {test_fraction!r}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(test_fraction * n))
    if test_fraction > 0.0:
        n_test = max(n_test, 1)
    rest = perm[n_test:]
    if rest.size < n_folds:
        raise InvalidInputError(
            f"field 'n_folds': {n_folds} folds need at least {n_folds} sets besides the "
            f"{n_test} test set(s), but only {rest.size} remain of n = {n}"
        )
    folds = []
    for chunk in np.array_split(rest, n_folds):
        train = np.setdiff1d(rest, chunk)
        folds.append((np.sort(train), np.sort(chunk)))
    return Splits(test=np.sort(perm[:n_test]), trainval=np.sort(rest), folds=folds, seed=seed)
