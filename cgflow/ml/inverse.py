"""The structure-to-potential inverse: g(r), density, T, mass, pressure -> U(r).

Three inverses of one single-bead liquid's structure, all on the IBI grid (r in nm, U in
kJ/mol, densities in kg/m^3, pressures in bar):

* ``pmf``: the potential of mean force -kT ln g, the default first potential of IBI
  (:func:`cgflow.ibi.potential.initial_potential`);
* ``hnc``: the hypernetted-chain inversion -kT ln g + kT gamma[g]
  (:mod:`cgflow.ibi.integral_equation`), the physics baseline;
* :class:`StructureInverse`: a learned map trained on synthetic pairs (U, g, P, rho, T,
  m) from :mod:`cgflow.stages.synthetic`. Its output is the coefficient vector of a
  :class:`cgflow.ml.representation.PotentialRepresentation` fitted on the training
  potentials, decoded with the representation's guarantees (smooth, zero energy and
  force at the cutoff, a monotonic repulsive wall; forces the spline derivative of the
  energies), so every prediction is simulation-ready. With ``base="hnc"`` (or
  ``"pmf"``) it learns the correction ``z(U) - z(U_base[g])`` on top of that baseline;
  with ``base="none"`` it learns ``z(U)`` itself.

Features of a structure: the representation coefficients of its PMF and HNC potentials,
the leading principal components of g (fitted on the training RDFs), ln(rho / 1000),
and, when the pressure is given, the compressibility factor P / (rho_n kT) (rho_n the
number density). Regression: kernel ridge with a Gaussian kernel on standardised
features plus a linear ridge trend (the trend first, the kernel on its residuals), in
closed form with numpy, so that a trained inverse is a JSON file (:meth:`to_dict`).

*Approximations:* the inverse learns from the family of potentials it was trained on
(:mod:`cgflow.ml.potential_family`), so a structure far from the family's RDFs gets an
extrapolated potential; temperature and bead mass enter only through kT in the PMF and
HNC features and the compressibility factor (the reference family does not vary them);
the training RDFs carry the sampling noise of short CG runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cgflow import units
from cgflow.errors import InvalidInputError
from cgflow.ibi.integral_equation import S_MIN
from cgflow.ibi.potential import TabulatedPotential, initial_potential
from cgflow.ml.representation import PotentialRepresentation
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES

#: Version of the serialised format of :class:`StructureInverse`.
FORMAT_VERSION = 1
BASES = ("none", "pmf", "hnc")


def baseline_potential(method: str, r_nm: np.ndarray, g: np.ndarray, density_kg_m3: float,
                       temperature_k: float, mass_g_mol: float, *, g_min: float = 0.02,
                       switch_width_nm: float = 0.1, smoothing_window: int = 5,
                       s_min: float = S_MIN) -> np.ndarray:
    """The ``"pmf"`` or ``"hnc"`` inversion of one RDF on its grid (IBI's first potential
    with the campaign defaults), kJ/mol."""
    rho_n = units.number_density_nm3(density_kg_m3, mass_g_mol)
    return initial_potential(r_nm, g, temperature_k, g_min=g_min,
                             switch_width_nm=switch_width_nm,
                             smoothing_window=smoothing_window, method=method,
                             density_nm3=rho_n, s_min=s_min).u_kj_mol


def _check_inputs(r: np.ndarray, g: Any, density: Any, temperature: Any, mass: Any,
                  pressure: Any | None) -> tuple[np.ndarray, ...]:
    g = np.atleast_2d(np.asarray(g, float))
    n = g.shape[0]
    if g.shape[1] != r.size:
        raise InvalidInputError(f"structure inverse: field 'g': shape {g.shape}, expected "
                                f"(n, {r.size}) on the grid")
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise InvalidInputError("structure inverse: field 'g': values must be finite and >= 0")
    out = [g]
    for name, v in (("density_kg_m3", density), ("temperature_k", temperature),
                    ("mass_g_mol", mass)):
        a = np.broadcast_to(np.asarray(v, float), (n,)).copy()
        if not np.all(np.isfinite(a) & (a > 0)):
            raise InvalidInputError(f"structure inverse: field {name!r}: value {v!r}: must "
                                    "be finite and > 0")
        out.append(a)
    if pressure is None:
        out.append(None)
    else:
        p = np.broadcast_to(np.asarray(pressure, float), (n,)).copy()
        if not np.all(np.isfinite(p)):
            raise InvalidInputError(f"structure inverse: field 'pressure_bar': value "
                                    f"{pressure!r}: must be finite")
        out.append(p)
    return tuple(out)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0)


class StructureInverse:
    """Learned inverse from structure to a simulation-ready potential (module docstring).

    Parameters
    ----------
    base
        ``"hnc"`` (learn the correction to the HNC inversion), ``"pmf"`` or ``"none"``.
    use_pressure
        Use the pressure (compressibility factor) as a feature; predictions then need it.
    n_g_components
        Principal components of g among the features.
    ridge_alpha
        Ridge penalty of the linear trend (standardised features).
    kernel_alpha
        Ridge penalty of the kernel part; None: no kernel part (linear only).
    length_scale
        Length scale of the Gaussian kernel in units of sqrt(number of features).
    representation
        Unfitted representation of the output (default settings if None).
    """

    def __init__(self, *, base: str = "hnc", use_pressure: bool = True,
                 n_g_components: int = 12, ridge_alpha: float = 1.0,
                 kernel_alpha: float | None = 1e-2, length_scale: float = 1.0,
                 representation: PotentialRepresentation | None = None) -> None:
        if base not in BASES:
            raise InvalidInputError(f"structure inverse: field 'base': unknown value {base!r} "
                                    f"(expected one of {BASES})")
        for name, v in (("ridge_alpha", ridge_alpha), ("length_scale", length_scale)):
            if not (np.isfinite(v) and v > 0):
                raise InvalidInputError(f"structure inverse: field {name!r}: value {v!r}: "
                                        "must be > 0")
        if kernel_alpha is not None and not kernel_alpha > 0:
            raise InvalidInputError(f"structure inverse: field 'kernel_alpha': value "
                                    f"{kernel_alpha!r}: must be > 0 or None")
        if int(n_g_components) < 1:
            raise InvalidInputError(f"structure inverse: field 'n_g_components': value "
                                    f"{n_g_components!r}: must be >= 1")
        self.base = base
        self.use_pressure = bool(use_pressure)
        self.n_g_components = int(n_g_components)
        self.ridge_alpha = float(ridge_alpha)
        self.kernel_alpha = None if kernel_alpha is None else float(kernel_alpha)
        self.length_scale = float(length_scale)
        self.representation = representation or PotentialRepresentation()
        self.r_nm: np.ndarray | None = None

    # --- features -------------------------------------------------------------------

    def _baselines(self, g: np.ndarray, rho: np.ndarray, t: np.ndarray, m: np.ndarray
                   ) -> dict[str, np.ndarray]:
        r = self.r_nm
        return {meth: np.array([baseline_potential(meth, r, gi, ri, ti, mi)
                                for gi, ri, ti, mi in zip(g, rho, t, m, strict=True)])
                for meth in ("pmf", "hnc")}

    def _raw_features(self, g, rho, t, m, p, base_u: dict[str, np.ndarray]) -> np.ndarray:
        rep = self.representation
        cols = [rep.encode(base_u["pmf"]), rep.encode(base_u["hnc"]),
                (g - self.g_mean_) @ self.g_components_, np.log(rho / 1000.0)[:, None]]
        if self.use_pressure:
            rho_n = units.number_density_nm3(rho, m)
            kt = units.kt_kj_mol(t)
            z = p / units.kj_mol_nm3_to_bar(1.0) / (rho_n * kt)
            cols.append(np.asarray(z, float)[:, None])
        return np.hstack(cols)

    # --- fit / predict -----------------------------------------------------------------

    def fit(self, r_nm: np.ndarray, g: np.ndarray, density_kg_m3: np.ndarray,
            temperature_k: np.ndarray, mass_g_mol: np.ndarray, U: np.ndarray,
            pressure_bar: np.ndarray | None = None) -> StructureInverse:
        """Fit on pairs: RDFs (n, G) and potentials (n, G) on the grid ``r_nm``, the
        state points (n,), and the pressures (n,) if ``use_pressure``."""
        r = np.asarray(r_nm, float)
        U = np.asarray(U, float)
        if self.use_pressure and pressure_bar is None:
            raise InvalidInputError("structure inverse: field 'pressure_bar': needed with "
                                    "use_pressure")
        g, rho, t, m, p = _check_inputs(r, g, density_kg_m3, temperature_k, mass_g_mol,
                                        pressure_bar)
        if U.shape != g.shape:
            raise InvalidInputError(f"structure inverse: field 'U': shape {U.shape} differs "
                                    f"from g {g.shape}")
        if g.shape[0] < 3:
            raise InvalidInputError(f"structure inverse: need at least 3 pairs, got "
                                    f"{g.shape[0]}")
        self.r_nm = r
        self.representation.fit(r, U)
        self.g_mean_ = g.mean(axis=0)
        _, _, vt = np.linalg.svd(g - self.g_mean_, full_matrices=False)
        self.g_components_ = vt[: min(self.n_g_components, vt.shape[0])].T.copy()
        base_u = self._baselines(g, rho, t, m)
        X = self._raw_features(g, rho, t, m, p, base_u)
        self.x_mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.x_scale_ = np.where(sd > 1e-12, sd, 1.0)
        Xs = (X - self.x_mean_) / self.x_scale_
        Y = self.representation.encode(U) - self._base_coefficients(base_u)
        self.y_mean_ = Y.mean(axis=0)
        Yc = Y - self.y_mean_
        d = Xs.shape[1]
        self.linear_ = np.linalg.solve(Xs.T @ Xs + self.ridge_alpha * np.eye(d), Xs.T @ Yc)
        resid = Yc - Xs @ self.linear_
        if self.kernel_alpha is not None:
            K = self._kernel(Xs, Xs)
            self.dual_ = np.linalg.solve(K + self.kernel_alpha * np.eye(K.shape[0]), resid)
            self.x_train_ = Xs
        else:
            self.dual_ = None
            self.x_train_ = None
        return self

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ell2 = (self.length_scale**2) * a.shape[1]
        return np.exp(-0.5 * _sq_dist(a, b) / ell2)

    def _base_coefficients(self, base_u: dict[str, np.ndarray]) -> np.ndarray:
        n = base_u["pmf"].shape[0]
        if self.base == "none":
            return np.zeros((n, self.representation.n_components))
        return self.representation.encode(base_u[self.base])

    def predict_energy(self, g: np.ndarray, density_kg_m3: Any, temperature_k: Any,
                       mass_g_mol: Any, pressure_bar: Any | None = None) -> np.ndarray:
        """Potentials (n, G) in kJ/mol for RDFs (n, G) (or (G,) for one, returned as
        (G,)) on the training grid, decoded with the representation's guarantees."""
        if self.r_nm is None:
            raise InvalidInputError("structure inverse: not fitted (call fit first)")
        if self.use_pressure and pressure_bar is None:
            raise InvalidInputError("structure inverse: field 'pressure_bar': this inverse "
                                    "was trained with the pressure and needs it")
        single = np.asarray(g).ndim == 1
        g, rho, t, m, p = _check_inputs(self.r_nm, g, density_kg_m3, temperature_k,
                                        mass_g_mol, pressure_bar)
        base_u = self._baselines(g, rho, t, m)
        Xs = (self._raw_features(g, rho, t, m, p, base_u) - self.x_mean_) / self.x_scale_
        Y = self.y_mean_ + Xs @ self.linear_
        if self.dual_ is not None:
            Y = Y + self._kernel(Xs, self.x_train_) @ self.dual_
        U = self.representation.decode(Y + self._base_coefficients(base_u))
        return U[0] if single else U

    def predict_potential(self, g: np.ndarray, density_kg_m3: float, temperature_k: float,
                          mass_g_mol: float, pressure_bar: float | None = None
                          ) -> TabulatedPotential:
        """One simulation-ready potential: energies and their spline forces."""
        u = self.predict_energy(np.asarray(g, float).reshape(-1), density_kg_m3,
                                temperature_k, mass_g_mol, pressure_bar)
        return TabulatedPotential(self.r_nm.copy(), u, self.representation.forces(u))

    def predict_potential_on(self, r_nm: np.ndarray, g: np.ndarray, density_kg_m3: float,
                             temperature_k: float, mass_g_mol: float,
                             pressure_bar: float | None = None) -> TabulatedPotential:
        """:meth:`predict_potential` on an IBI grid ``r_nm`` that begins with the inverse's
        own grid (``g`` given on ``r_nm``).

        Beyond the inverse's cut-off the potential is 0: an approximation (the inverse
        was trained on potentials cut off there, so it gives a potential truncated at its
        cut-off; IBI then shapes the tail), exact in U and F at the joint.

        Raises
        ------
        InvalidInputError
            If ``r_nm`` does not begin with the inverse's grid.
        """
        r = np.asarray(r_nm, float)
        n = grid_prefix(self.r_nm, r)
        if n is None:
            raise InvalidInputError(
                f"structure inverse: field 'r_nm': the grid ({r[0]:.4g}..{r[-1]:.4g} nm, "
                f"{r.size} points) does not begin with the inverse's grid "
                f"({self.r_nm[0]:.4g}..{self.r_nm[-1]:.4g} nm, {self.r_nm.size} points)")
        pot = self.predict_potential(np.asarray(g, float).reshape(-1)[:n], density_kg_m3,
                                     temperature_k, mass_g_mol, pressure_bar)
        if n == r.size:
            return pot
        tail = np.zeros(r.size - n)
        return TabulatedPotential(r.copy(), np.concatenate([pot.u_kj_mol, tail]),
                                  np.concatenate([pot.f_kj_mol_nm, tail]))

    # --- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        if self.r_nm is None:
            raise InvalidInputError("structure inverse: not fitted (call fit first)")

        def lst(a: np.ndarray | None) -> Any:
            return None if a is None else np.asarray(a).tolist()

        return {"kind": "structure-inverse", "format_version": FORMAT_VERSION,
                "settings": {"base": self.base, "use_pressure": self.use_pressure,
                             "n_g_components": self.n_g_components,
                             "ridge_alpha": self.ridge_alpha,
                             "kernel_alpha": self.kernel_alpha,
                             "length_scale": self.length_scale},
                "representation": self.representation.to_dict(), "r_nm": lst(self.r_nm),
                "g_mean": lst(self.g_mean_), "g_components": lst(self.g_components_),
                "x_mean": lst(self.x_mean_), "x_scale": lst(self.x_scale_),
                "y_mean": lst(self.y_mean_), "linear": lst(self.linear_),
                "dual": lst(self.dual_), "x_train": lst(self.x_train_)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StructureInverse:
        """Inverse of :meth:`to_dict`."""
        if d.get("kind") != "structure-inverse" or d.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(f"structure inverse: unknown kind or format "
                                    f"({d.get('kind')!r}, {d.get('format_version')!r})")
        inv = cls(**d["settings"],
                  representation=PotentialRepresentation.from_dict(d["representation"]))
        inv.representation = PotentialRepresentation.from_dict(d["representation"])
        inv.r_nm = np.asarray(d["r_nm"], float)
        for name in ("g_mean", "g_components", "x_mean", "x_scale", "y_mean", "linear"):
            setattr(inv, name + "_", np.asarray(d[name], float))
        inv.dual_ = None if d["dual"] is None else np.asarray(d["dual"], float)
        inv.x_train_ = None if d["x_train"] is None else np.asarray(d["x_train"], float)
        return inv

    def save(self, path: str | Path) -> None:
        """Write the inverse as JSON."""
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> StructureInverse:
        """Read an inverse written by :meth:`save`."""
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"structure inverse: field 'path': value {str(p)!r}: no "
                                    "such file")
        try:
            d = json.loads(p.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"structure inverse: field 'path': value {str(p)!r}: not "
                                    f"JSON ({exc})") from None
        return cls.from_dict(d)


#: The inverse shipped with cgflow (package data): trained on the 400 synthetic pairs of
#: ``benchmarks/synthetic_pairs.py`` (the potential family around the 53 IBI potentials of
#: ``data/reference``), at the one temperature and bead mass of those pairs, on the grid
#: of the ``tiny`` and ``reference`` CG presets (0.1 to 1.2 nm in steps of 0.01 nm).
SHIPPED_INVERSE = Path(__file__).resolve().parent / "models" / "inverse_234trimepe_298K.json"
SHIPPED_TEMPERATURE_K = 298.15
SHIPPED_MASS_G_MOL = 114.23
#: The molecule of the shipped inverse (2,3,4-trimethylpentane, canonical SMILES).
SHIPPED_SMILES = TRIMETHYLPENTANE_SMILES


def grid_prefix(model_r_nm: np.ndarray, r_nm: np.ndarray) -> int | None:
    """How many first points of the IBI grid ``r_nm`` are the inverse's grid
    ``model_r_nm`` (all of it), or None when the IBI grid does not begin with it.

    An IBI grid that goes on past the inverse's cut-off (a longer cut-off, same spacing)
    still begins with it: the inverse then gives the potential up to its own cut-off,
    where its decoding makes U and F exactly 0, and the potential is 0 beyond
    (:meth:`StructureInverse.predict_potential_on`)."""
    model = np.asarray(model_r_nm, float)
    r = np.asarray(r_nm, float)
    n = model.size
    if r.size < n or not np.allclose(r[:n], model):
        return None
    return n


def shipped_inverse_for(r_nm: np.ndarray, temperature_k: float, mass_g_mol: float,
                        molecule_smiles: str = SHIPPED_SMILES) -> Path | None:
    """The shipped inverse when it covers this IBI grid, temperature (within 1 K), bead
    mass (within 0.1 g/mol) and molecule (its canonical SMILES: an isomer of the same
    mass, such as 2,2,4-trimethylpentane, is another liquid), else None.

    The grid is compared point by point with the model's own (read from its file, so
    this costs one JSON read); an IBI grid that begins with the model's and goes on to a
    longer cut-off is covered too (:func:`grid_prefix`: the first potential is then the
    inverse's, truncated at its cut-off)."""
    if (abs(temperature_k - SHIPPED_TEMPERATURE_K) > 1.0
            or abs(mass_g_mol - SHIPPED_MASS_G_MOL) > 0.1
            or molecule_smiles != SHIPPED_SMILES or not SHIPPED_INVERSE.is_file()):
        return None
    grid = np.asarray(json.loads(SHIPPED_INVERSE.read_text())["r_nm"], float)
    if grid_prefix(grid, r_nm) is None:
        return None
    return SHIPPED_INVERSE
