"""Size, shape and flexibility descriptors of one molecule, from a parameter set.

Cheap numbers that a learning model can use besides the 19 raw parameters. They are
computed on one conformer built from the parameter set's own ``r0`` and ``theta0``
(:func:`descriptor_coordinates`) and on the OPLS-AA Lennard-Jones sizes of the atom
types, which no parameter set changes:

* ``radius_of_gyration_nm``: mass-weighted radius of gyration of all 26 atoms, nm;
* ``asphericity``: relative shape anisotropy ``kappa^2 = 3/2 sum l_i^2 / (sum l_i)^2 -
  1/2`` of the principal moments ``l_i`` of the gyration tensor (0 for a sphere, 1 for a
  rod);
* ``vdw_volume_nm3``: volume of the union of the atoms' van der Waals spheres, nm^3;
* ``carbon_volume_nm3``: the same for the eight carbons alone, nm^3;
* ``hydrogen_volume_nm3``: what the hydrogens add to the carbons' volume
  (``vdw_volume_nm3 - carbon_volume_nm3``), nm^3: near zero when short C-H bonds bury
  them inside the carbons' spheres (a smooth, united-atom-like molecule), large when
  long C-H bonds make them stick out;
* ``dih_<kind>_barrier_kj_mol``: height of the torsion profile of each dihedral kind,
  max - min over phi of ``V(phi) = 1/2 [C1 (1 + cos phi) + C2 (1 - cos 2 phi) + C3 (1 +
  cos 3 phi)]`` (OPLS Fourier form of GROMACS' dihedral type 5), kJ/mol.

**Which conformer.** :func:`cgflow.molecule.geometry.build_coordinates` (the starting
geometry of a simulation) picks, per parameter set, the staggered arrangement with the
least overlap and blends acute angles towards tetrahedral to avoid overlaps; both
choices switch discretely as ``theta0`` changes, so descriptors of its geometry jump
(the asphericity by a factor two between 130 and 140 degrees). Descriptors are therefore
computed on the arrangement chosen for OPLS-AA, built with the set's exact ``r0`` and
``theta0`` and no blending: a continuous function of the five geometric parameters,
as a regression input must be (atoms may overlap for very acute angles; that is then
part of the molecule's size). One jump remains: at a CT-CT-CT ``theta0`` of exactly 90
degrees the builder's azimuthal order of the substituents flips, and the asphericity
jumps by about 0.04 (the volumes and the radius of gyration by less than 1 %). The
HC-CT-HC ``theta0`` does not enter (the builder sets the angles between substituents of
one centre by their three-fold placement).

*Approximations:* the van der Waals radius of an atom type is half the distance of its
Lennard-Jones minimum, ``2^(1/6) sigma / 2`` with GROMACS' ``oplsaa.ff`` sigmas (CT 0.35
nm, HC 0.25 nm); volumes are counted on a cubic grid of ``VOLUME_GRID_NM`` spacing
(within about 1 % of the exact union volume, checked against the analytic volume of two
overlapping spheres in the tests); the single built conformation stands in for the
thermal ensemble.
"""

from __future__ import annotations

import numpy as np

from cgflow.molecule.geometry import _SIGMA_NM, _Builder, best_orders, ring_coordinates
from cgflow.molecule.structure import Molecule, trimethylpentane
from cgflow.params import OPLSAA_REFERENCE, ParameterSet

#: Spacing of the grid on which van der Waals volumes are counted, nm.
VOLUME_GRID_NM = 0.01

#: Van der Waals radius of each bonded type: half the Lennard-Jones minimum distance, nm.
VDW_RADIUS_NM: dict[str, float] = {t: 2.0 ** (1.0 / 6.0) * s / 2.0 for t, s in _SIGMA_NM.items()}

#: The dihedral kinds of :class:`cgflow.params.ParameterSet`, in field order.
DIHEDRAL_KINDS: tuple[str, ...] = ("ctctctct", "ctctcthc", "hcctcthc")

#: Names of :func:`molecular_descriptors`, in the order of :func:`descriptor_vector`.
DESCRIPTOR_NAMES: tuple[str, ...] = (
    "radius_of_gyration_nm", "asphericity", "vdw_volume_nm3", "carbon_volume_nm3",
    "hydrogen_volume_nm3", *(f"dih_{k}_barrier_kj_mol" for k in DIHEDRAL_KINDS),
)


def radius_of_gyration_nm(x_nm: np.ndarray, masses: np.ndarray | None = None) -> float:
    """Radius of gyration ``sqrt(sum m_i |x_i - x_com|^2 / sum m_i)`` of positions (n, 3) nm."""
    return float(np.sqrt(np.trace(gyration_tensor(x_nm, masses))))


def gyration_tensor(x_nm: np.ndarray, masses: np.ndarray | None = None) -> np.ndarray:
    """(3, 3) mass-weighted gyration tensor about the centre of mass, nm^2 (equal masses
    without ``masses``)."""
    x = np.asarray(x_nm, dtype=float)
    m = np.ones(len(x)) if masses is None else np.asarray(masses, dtype=float)
    d = x - (m[:, None] * x).sum(axis=0) / m.sum()
    return np.einsum("i,ij,ik->jk", m, d, d) / m.sum()


def asphericity(x_nm: np.ndarray, masses: np.ndarray | None = None) -> float:
    """Relative shape anisotropy kappa^2 of the gyration tensor (0 sphere, 1 rod)."""
    lam = np.linalg.eigvalsh(gyration_tensor(x_nm, masses))
    return float(1.5 * np.sum(lam**2) / np.sum(lam) ** 2 - 0.5)


def union_volume_nm3(x_nm: np.ndarray, radii_nm: np.ndarray,
                     spacing_nm: float = VOLUME_GRID_NM) -> float:
    """Volume of the union of spheres (centres (n, 3) and radii (n,), nm), in nm^3.

    Counted on a cubic grid of ``spacing_nm`` whose cells are tested at their centres:
    each sphere marks the grid points inside it (only those of its bounding cube are
    visited), and the marked points times the cell volume are the volume.
    """
    x = np.asarray(x_nm, dtype=float)
    r = np.asarray(radii_nm, dtype=float)
    lo = (x - r[:, None]).min(axis=0)
    shape = np.ceil(((x + r[:, None]).max(axis=0) - lo) / spacing_nm).astype(int) + 1
    inside = np.zeros(tuple(shape), dtype=bool)
    for c, rad in zip(x, r, strict=True):
        a = np.maximum(np.floor((c - rad - lo) / spacing_nm).astype(int), 0)
        b = np.minimum(np.ceil((c + rad - lo) / spacing_nm).astype(int) + 1, shape)
        axes = [lo[k] + spacing_nm * (np.arange(a[k], b[k]) + 0.5) - c[k] for k in range(3)]
        d2 = (axes[0][:, None, None] ** 2 + axes[1][None, :, None] ** 2
              + axes[2][None, None, :] ** 2)
        inside[a[0]:b[0], a[1]:b[1], a[2]:b[2]] |= d2 <= rad * rad
    return float(inside.sum()) * spacing_nm**3


def dihedral_barrier_kj_mol(c1: float, c2: float, c3: float, n_points: int = 721) -> float:
    """Height (max - min over phi) of the OPLS Fourier torsion profile, kJ/mol.

    ``V(phi) = 1/2 [c1 (1 + cos phi) + c2 (1 - cos 2 phi) + c3 (1 + cos 3 phi)]``, the
    coefficients in kJ/mol (GROMACS dihedral type 5); evaluated on ``n_points`` angles
    (0.5 degree apart by default).
    """
    phi = np.linspace(0.0, 2.0 * np.pi, n_points)
    v = 0.5 * (c1 * (1.0 + np.cos(phi)) + c2 * (1.0 - np.cos(2.0 * phi))
               + c3 * (1.0 + np.cos(3.0 * phi)))
    return float(v.max() - v.min())


#: Geometric descriptors by the five r0/theta0 values they depend on.
_GEOMETRY_CACHE: dict[tuple[float, ...], tuple[float, ...]] = {}
_GEOMETRY_CACHE_SIZE = 4096
_GEOMETRY_FIELDS = ("bond_ctct_r0", "bond_cthc_r0", "angle_ctctct_theta0",
                    "angle_ctcthc_theta0", "angle_hcthc_theta0")


_REFERENCE_ORDERS: dict[str, dict[int, tuple[int, ...]]] = {}


def _molecule_key(molecule: Molecule) -> str:
    return molecule.smiles or molecule.label


def _reference_orders(molecule: Molecule | None = None) -> dict[int, tuple[int, ...]]:
    """The staggered arrangement (substituent order per centre with a choice) of the
    OPLS-AA reference of an acyclic molecule (default 2,3,4-trimethylpentane): the one
    with the least soft repulsion, as the geometry builder chooses (every arrangement
    when there are at most :data:`cgflow.molecule.geometry.MAX_EXHAUSTIVE`, else its
    coordinate descent)."""
    mol = molecule or trimethylpentane()
    key = _molecule_key(mol)
    if key not in _REFERENCE_ORDERS:
        far = np.array(mol.graph_distances()) >= 3
        sig = np.array([_SIGMA_NM[a.bonded_type] for a in mol.atoms])
        sigma = 0.5 * (sig[:, None] + sig[None, :])
        _REFERENCE_ORDERS[key] = best_orders(_Builder(mol, OPLSAA_REFERENCE, 0.0), far, sigma)
    return dict(_REFERENCE_ORDERS[key])


def descriptor_coordinates(ps: ParameterSet, molecule: Molecule | None = None) -> np.ndarray:
    """(n_atoms, 3) positions (nm, centred) of the conformer the descriptors are computed
    on: for an acyclic molecule (default 2,3,4-trimethylpentane) the OPLS-AA reference's
    staggered arrangement with the set's ``r0`` and ``theta0`` (see the module
    docstring); for a ring, RDKit's embedding relaxed to them
    (:func:`cgflow.molecule.geometry.ring_coordinates`, no blending)."""
    mol = molecule or trimethylpentane()
    if mol.is_cyclic():
        x = ring_coordinates(ps, mol, 0.0)
    else:
        x = _Builder(mol, ps, 0.0).build(_reference_orders(mol))
    return x - x.mean(axis=0)


def _geometry_descriptors(ps: ParameterSet, molecule: Molecule | None = None
                          ) -> tuple[float, ...]:
    mol = molecule or trimethylpentane()
    key = (_molecule_key(mol), *(float(getattr(ps, f)) for f in _GEOMETRY_FIELDS))
    if key in _GEOMETRY_CACHE:
        return _GEOMETRY_CACHE[key]
    x = descriptor_coordinates(ps, mol)
    types = [a.bonded_type for a in mol.atoms]
    masses = np.array(mol.masses())
    radii = np.array([VDW_RADIUS_NM[t] for t in types])
    carbon = np.array([t == "CT" for t in types])
    volume = union_volume_nm3(x, radii)
    carbon_volume = union_volume_nm3(x[carbon], radii[carbon])
    out = (radius_of_gyration_nm(x, masses), asphericity(x, masses), volume, carbon_volume,
           volume - carbon_volume)
    if len(_GEOMETRY_CACHE) >= _GEOMETRY_CACHE_SIZE:
        _GEOMETRY_CACHE.pop(next(iter(_GEOMETRY_CACHE)))
    _GEOMETRY_CACHE[key] = out
    return out


def molecular_descriptors(ps: ParameterSet, molecule: Molecule | None = None
                          ) -> dict[str, float]:
    """The descriptors of the module docstring for one parameter set (GROMACS units) on
    one molecule (default 2,3,4-trimethylpentane).

    Geometric descriptors are cached by the molecule and the five ``r0``/``theta0``
    values they depend on (the volumes take about 0.05 s). The barrier of a dihedral
    kind the molecule lacks is still the profile of the set's coefficients (it is a
    property of the parameters); :func:`cgflow.ml.features.model_inputs` neutralises
    such kinds in multi-molecule models.
    """
    geo = _geometry_descriptors(ps, molecule)
    barriers = [dihedral_barrier_kj_mol(*(getattr(ps, f"dih_{k}_c{i}") for i in (1, 2, 3)))
                for k in DIHEDRAL_KINDS]
    return dict(zip(DESCRIPTOR_NAMES, (*geo, *barriers), strict=True))


def descriptor_vector(ps: ParameterSet, molecule: Molecule | None = None) -> np.ndarray:
    """:func:`molecular_descriptors` as an array in :data:`DESCRIPTOR_NAMES` order."""
    d = molecular_descriptors(ps, molecule)
    return np.array([d[name] for name in DESCRIPTOR_NAMES])


# --- graph descriptors: what a molecule is, whatever the parameters --------------------------

#: The bonded-term kinds of :class:`cgflow.params.ParameterSet` (prefix_kind, as in
#: :meth:`cgflow.molecule.structure.Molecule.term_counts`), in field order.
TERM_KINDS: tuple[str, ...] = (
    "bond_ctct", "bond_cthc", "angle_ctctct", "angle_ctcthc", "angle_hcthc",
    *(f"dih_{k}" for k in DIHEDRAL_KINDS),
)

#: Carbon classes by OPLS-AA type (hydrogen count 3, 2, 1, 0).
CARBON_CLASSES: dict[str, str] = {"ch3": "opls_135", "ch2": "opls_136", "ch": "opls_137",
                                  "c": "opls_139"}

#: Names of :func:`graph_descriptors`, in order.
GRAPH_DESCRIPTOR_NAMES: tuple[str, ...] = (
    "molar_mass_g_mol", "n_carbons", "n_rings",
    *(f"frac_{c}" for c in CARBON_CLASSES),
    *(f"{k}_per_carbon" for k in TERM_KINDS),
)


def term_kind_of_field(field: str) -> str:
    """The bonded-term kind (:data:`TERM_KINDS`) a ParameterSet field belongs to
    (``angle_ctcthc_theta0`` -> ``angle_ctcthc``)."""
    kind = field.rsplit("_", 1)[0]
    if kind not in TERM_KINDS:
        raise ValueError(f"field {field!r} belongs to no bonded-term kind")
    return kind


def graph_descriptors(molecule: Molecule) -> dict[str, float]:
    """Descriptors of the molecule's graph, the same for every parameter set.

    * ``molar_mass_g_mol``: OPLS-AA molar mass, g/mol (the CG bead's mass);
    * ``n_carbons``, ``n_rings`` (independent cycles: bonds - atoms + 1);
    * ``frac_ch3`` .. ``frac_c``: fraction of the carbons of each class (opls_135 CH3,
      opls_136 CH2, opls_137 CH, opls_139 C);
    * ``<kind>_per_carbon``: number of bonded terms of each kind (the parameter kinds of
      :data:`TERM_KINDS`) per carbon: how much each group of the 19 parameters acts on
      the molecule (0 for a kind it lacks, such as CT-CT-CT-CT in neopentane).
    """
    counts = molecule.term_counts()
    nc = molecule.n_carbons
    out: dict[str, float] = {
        "molar_mass_g_mol": molecule.molar_mass_g_mol(), "n_carbons": float(nc),
        "n_rings": float(len(molecule.bonds) - molecule.n_atoms + 1),
    }
    out.update({f"frac_{c}": counts.get(t, 0) / nc for c, t in CARBON_CLASSES.items()})
    out.update({f"{k}_per_carbon": counts.get(k, 0) / nc for k in TERM_KINDS})
    return out
