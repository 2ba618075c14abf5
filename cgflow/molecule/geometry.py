"""Coordinates of one alkane molecule from a parameter set's own ``r0`` and ``theta0``.

The geometry uses the parameter set's own equilibrium bond lengths and angles, so that a
starting geometry exists for any parameter set of the sampled spaces (also far from
OPLS-AA). Acyclic molecules (2,3,4-trimethylpentane and every other chain) are built
from internal coordinates, as below; molecules with rings are embedded by RDKit and
relaxed to the set's ``r0`` and ``theta0`` (:func:`ring_coordinates`).

Construction of an acyclic molecule (all lengths in nm):

* C1 sits at the origin and C2 on the +x axis; the hydrogens of C1 are placed at the
  CT-CT-HC angle from the C1-C2 bond, 120 degrees apart around it.
* Walking the bond tree from C1, every atom ``X`` bonded to an already placed centre
  ``P`` (itself reached from ``G``) gets the bond length ``r0`` of its bond kind and the
  angle ``G-P-X`` equal to ``theta0`` of its angle kind. Around the ``G-P`` axis, the
  three substituents of ``P`` are 120 degrees apart, rotated to lie closest to the
  bisectors of the gaps between the substituents of ``G``: a staggered conformation
  (exactly so when the substituents of ``G`` are evenly spread around that axis).
* Which substituent of each centre takes which staggered position is chosen among all
  assignments (6 per branched centre) by the lowest soft repulsion ``sum (sigma/r)^12``
  over atom pairs three or more bonds apart; when there are more than
  :data:`MAX_EXHAUSTIVE` assignments (long chains: 6^6 for n-octane), by coordinate
  descent instead (each centre's best order with the others fixed, sweeps until nothing
  changes; a local minimum, staggered and free of overlap in practice).
* No overlap: if two atoms three or more bonds apart end up closer than the shortest
  bond length (possible for the acute ``theta0`` of the wide space, where the chain
  folds back on itself), the angles used are moved towards the tetrahedral angle,
  ``theta = theta0 + s (109.47 - theta0)`` with ``s = 0.25, 0.5, 0.75, 1``, until the
  geometry is free of overlap (if none is, the blend with the largest smallest distance
  is kept). Bond lengths always stay exactly ``r0``.

Approximation: only the angles to the bond towards the root (``G-P-X``) are exactly
``theta0`` (when no overlap forced a blend); the angles between two substituents of the
same centre follow from the three-fold placement (tetrahedral-like for ``theta0`` near
109.5 degrees). An energy minimisation relaxes them.

Rings (:func:`ring_coordinates`): RDKit embeds the molecule (ETKDG, fixed seed: a chair
for cyclohexane); the positions are then relaxed by minimising ``sum ((r - r0) /
0.001 nm)^2 + sum ((theta - theta0) / 1 deg)^2 + sum (sigma / d)^12`` (bonds, angles, and
the soft repulsion over pairs three or more bonds apart). A ring cannot always take the
set's ``theta0`` everywhere (five 90-degree angles do not close a pentagon), so bonds and
angles of ring molecules are close to, not exactly, ``r0`` and ``theta0``; acute angles
are blended towards tetrahedral as above when atoms overlap.
"""

from __future__ import annotations

from itertools import permutations, product

import numpy as np

from cgflow.molecule.structure import Molecule, angle_kind, bond_kind, trimethylpentane
from cgflow.params import ParameterSet

#: The tetrahedral angle (deg) towards which acute angles are blended to avoid overlap.
TETRAHEDRAL_DEG = float(np.degrees(np.arccos(-1.0 / 3.0)))
#: Blend fractions tried in turn (0: the parameter set's own theta0).
BLEND_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Most substituent assignments searched exhaustively (2,3,4-trimethylpentane has 216).
MAX_EXHAUSTIVE = 1296
#: Seed of RDKit's embedding of ring molecules.
EMBED_SEED = 20261207

# Lennard-Jones sigma (nm) of the OPLS-AA types, used only to rank conformations.
_SIGMA_NM = {"CT": 0.35, "HC": 0.25}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.sqrt(v @ v)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # small explicit cross product: numpy.cross is slow for single 3-vectors
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                     a[0] * b[1] - a[1] * b[0]])


def _frame(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to the unit vector ``u`` and to each other."""
    trial = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e2 = _unit(_cross(u, trial))
    e3 = _cross(u, e2)
    return e2, e3


def _substituent(pos_p: np.ndarray, u: np.ndarray, e2: np.ndarray, e3: np.ndarray,
                 r: float, theta_deg: float, phi: float) -> np.ndarray:
    """Position at distance ``r`` from P whose angle to the bond P->G (``-u``) is theta."""
    th = np.radians(theta_deg)
    d = -np.cos(th) * u + np.sin(th) * (np.cos(phi) * e2 + np.sin(phi) * e3)
    return pos_p + r * d


class _Builder:
    def __init__(self, mol: Molecule, ps: ParameterSet, blend: float = 0.0) -> None:
        self.mol = mol
        self.ps = ps
        self.blend = blend
        self.adj = mol.neighbours()
        self.types = [a.bonded_type for a in mol.atoms]

    def r0(self, i: int, j: int) -> float:
        return getattr(self.ps, f"bond_{bond_kind(self.types[i], self.types[j])}_r0")

    def theta0(self, i: int, j: int, k: int) -> float:
        kind = angle_kind(self.types[i], self.types[j], self.types[k])
        theta0 = getattr(self.ps, f"angle_{kind}_theta0")
        return theta0 + self.blend * (TETRAHEDRAL_DEG - theta0)

    def centres_with_choice(self) -> list[int]:
        """Centres whose substituents are not all hydrogens (their order matters)."""
        out = []
        for p in range(1, self.mol.n_atoms):
            if self.types[p] != "CT":
                continue
            others = self.adj[p]
            heavy = [x for x in others if self.types[x] == "CT"]
            if len(heavy) > 1:  # one heavy neighbour is the parent in the tree from C1
                out.append(p)
        return out

    def build(self, orders: dict[int, tuple[int, ...]]) -> np.ndarray:
        """Coordinates (n_atoms, 3) in nm; ``orders`` maps a centre to a permutation."""
        n = self.mol.n_atoms
        x = np.full((n, 3), np.nan)
        placed = [False] * n
        root, first = 0, self.adj[0][0]
        x[root] = 0.0
        x[first] = np.array([self.r0(root, first), 0.0, 0.0])
        placed[root] = placed[first] = True
        # substituents of the root around the axis root->first (u points first->root)
        u = _unit(x[root] - x[first])
        e2, e3 = _frame(u)
        subs = [a for a in self.adj[root] if a != first]
        for m, a in enumerate(subs):
            x[a] = _substituent(x[root], u, e2, e3, self.r0(root, a),
                                self.theta0(first, root, a), 2.0 * np.pi * m / len(subs))
            placed[a] = True
        stack = [(first, root)]
        while stack:
            p, g = stack.pop()
            subs = [a for a in self.adj[p] if not placed[a]]
            if not subs:
                continue
            u = _unit(x[p] - x[g])
            e2, e3 = _frame(u)
            # azimuths of G's other substituents around the G->P axis
            ref = [a for a in self.adj[g] if a != p]
            az = sorted(
                float(np.arctan2(np.dot(x[a] - x[g], e3), np.dot(x[a] - x[g], e2))) for a in ref
            )
            step = 2.0 * np.pi / len(subs)
            if az:
                gaps = [(az[(m + 1) % len(az)] - az[m]) % (2.0 * np.pi) for m in range(len(az))]
                if len(az) == 1:
                    gaps = [2.0 * np.pi]
                bisectors = [az[m] + 0.5 * gaps[m] for m in range(len(az))]
                # evenly spaced positions, rotated to lie closest to the bisectors
                offsets = [b - step * m for m, b in enumerate(bisectors)]
                phase = float(np.arctan2(np.sum(np.sin(offsets)), np.sum(np.cos(offsets))))
            else:
                phase = 0.0
            targets = [phase + step * m for m in range(len(subs))]
            perm = orders.get(p, tuple(range(len(subs))))
            for slot, a in zip(perm, subs, strict=True):
                x[a] = _substituent(x[p], u, e2, e3, self.r0(p, a), self.theta0(g, p, a),
                                    targets[slot])
                placed[a] = True
            for a in subs:
                stack.append((a, p))
        return x


def _repulsion(x: np.ndarray, far: np.ndarray, sigma: np.ndarray) -> float:
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    with np.errstate(divide="ignore"):
        s = (sigma / np.where(far, d, np.inf)) ** 12
    return float(np.sum(s))


def min_distance_apart(x: np.ndarray, molecule: Molecule | None = None,
                       min_bonds: int = 3) -> float:
    """Smallest distance (nm) between two atoms at least ``min_bonds`` bonds apart."""
    mol = molecule or trimethylpentane()
    far = np.array(mol.graph_distances()) >= min_bonds
    d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
    return float(d[far].min())


def best_orders(b: _Builder, far: np.ndarray, sigma: np.ndarray
                ) -> dict[int, tuple[int, ...]]:
    """The substituent order of every centre with a choice that gives the least soft
    repulsion between atoms three or more bonds apart (``far``, pair sigmas ``sigma``):
    every arrangement when there are at most :data:`MAX_EXHAUSTIVE`, else a coordinate
    descent (module docstring)."""
    centres = b.centres_with_choice()
    options = {p: list(permutations(range(len(b.adj[p]) - 1))) for p in centres}
    if int(np.prod([len(options[p]) for p in centres])) > MAX_EXHAUSTIVE:
        return _descent_orders(b, far, sigma, centres, options)
    best, best_e = None, np.inf
    for choice in product(*(options[p] for p in centres)):
        orders = dict(zip(centres, choice, strict=True))
        e = _repulsion(b.build(orders), far, sigma)
        if e < best_e:
            best, best_e = orders, e
    assert best is not None
    return best


def _best_conformation(b: _Builder, far: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return b.build(best_orders(b, far, sigma))


def _descent_orders(b: _Builder, far: np.ndarray, sigma: np.ndarray,
                    centres: list[int], options: dict[int, list[tuple[int, ...]]]
                    ) -> dict[int, tuple[int, ...]]:
    """Coordinate descent over the centres' substituent orders (module docstring)."""
    orders = {p: options[p][0] for p in centres}
    best_e = _repulsion(b.build(orders), far, sigma)
    for _sweep in range(20):
        changed = False
        for p in centres:
            for choice in options[p]:
                if choice == orders[p]:
                    continue
                trial = {**orders, p: choice}
                e = _repulsion(b.build(trial), far, sigma)
                if e < best_e - 1e-12:
                    orders, best_e, changed = trial, e, True
        if not changed:
            break
    return orders


def _rdkit_embedding(mol: Molecule) -> np.ndarray:
    """RDKit ETKDG coordinates (nm) of ``mol`` in its own atom order."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    rw = Chem.RWMol()
    for a in mol.atoms:
        atom = Chem.Atom(a.element)
        atom.SetNoImplicit(True)
        rw.AddAtom(atom)
    for bd in mol.bonds:
        rw.AddBond(bd.i, bd.j, Chem.BondType.SINGLE)
    rd = rw.GetMol()
    Chem.SanitizeMol(rd)
    params = AllChem.ETKDGv3()
    params.randomSeed = EMBED_SEED
    if AllChem.EmbedMolecule(rd, params) != 0:
        raise ValueError(f"RDKit could not embed {mol.label} ({mol.smiles})")
    return np.array(rd.GetConformer().GetPositions(), dtype=float) / 10.0  # Angstrom -> nm


def ring_coordinates(ps: ParameterSet, molecule: Molecule, blend: float = 0.0) -> np.ndarray:
    """Coordinates (n_atoms, 3), nm, of a molecule with rings: RDKit's embedding relaxed
    to the set's ``r0`` and ``theta0`` (blended towards tetrahedral by ``blend``), see
    the module docstring."""
    from scipy.optimize import minimize

    b = _Builder(molecule, ps, blend)
    x0 = _rdkit_embedding(molecule)
    bi = np.array([(bd.i, bd.j) for bd in molecule.bonds])
    r0 = np.array([b.r0(bd.i, bd.j) for bd in molecule.bonds])
    an = np.array([(a.i, a.j, a.k) for a in molecule.angles])
    th0 = np.radians([b.theta0(a.i, a.j, a.k) for a in molecule.angles])
    far = np.array(molecule.graph_distances()) >= 3
    iu = np.triu_indices(molecule.n_atoms, 1)
    pi, pj = iu[0][far[iu]], iu[1][far[iu]]
    sig = np.array([_SIGMA_NM[a.bonded_type] for a in molecule.atoms])
    sij = 0.5 * (sig[pi] + sig[pj])
    w_bond, w_angle = 1.0 / 0.001**2, 1.0 / np.radians(1.0) ** 2
    n = molecule.n_atoms

    def incidence(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), n))
        out[np.arange(len(rows)), rows] = 1.0
        return out

    b0, b1 = incidence(bi[:, 0]), incidence(bi[:, 1])
    a0, a1, a2 = incidence(an[:, 0]), incidence(an[:, 1]), incidence(an[:, 2])
    p0, p1 = incidence(pi), incidence(pj)

    def energy(flat: np.ndarray) -> tuple[float, np.ndarray]:
        x = flat.reshape(-1, 3)
        db = x[bi[:, 0]] - x[bi[:, 1]]
        r = np.linalg.norm(db, axis=1)
        gb = (2.0 * w_bond * (r - r0) / r)[:, None] * db
        grad = (b0 - b1).T @ gb
        u = x[an[:, 0]] - x[an[:, 1]]
        v = x[an[:, 2]] - x[an[:, 1]]
        lu, lv = np.linalg.norm(u, axis=1), np.linalg.norm(v, axis=1)
        cos = np.clip(np.sum(u * v, axis=1) / (lu * lv), -1.0 + 1e-12, 1.0 - 1e-12)
        th = np.arccos(cos)
        # dE/dcos = 2 w (th - th0) dth/dcos, dth/dcos = -1/sin(th)
        de_dcos = (-2.0 * w_angle * (th - th0) / np.sqrt(1.0 - cos**2))[:, None]
        gu = de_dcos * (v / (lu * lv)[:, None] - cos[:, None] * u / (lu**2)[:, None])
        gv = de_dcos * (u / (lu * lv)[:, None] - cos[:, None] * v / (lv**2)[:, None])
        grad += a0.T @ gu + a2.T @ gv - a1.T @ (gu + gv)
        dp = x[pi] - x[pj]
        d = np.linalg.norm(dp, axis=1)
        rep = (sij / d) ** 12
        gp = (-12.0 * rep / d**2)[:, None] * dp
        grad += (p0 - p1).T @ gp
        e = (w_bond * np.sum((r - r0) ** 2) + w_angle * np.sum((th - th0) ** 2)
             + np.sum(rep))
        return float(e), grad.ravel()

    res = minimize(energy, x0.ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000})
    return res.x.reshape(-1, 3)


def build_coordinates(ps: ParameterSet, molecule: Molecule | None = None) -> np.ndarray:
    """Coordinates of one molecule in a staggered, overlap-free conformation.

    Parameters
    ----------
    ps
        Parameter set whose ``*_r0`` (nm) and ``*_theta0`` (deg) define the geometry.
    molecule
        The molecule (default :func:`trimethylpentane`).

    Returns
    -------
    numpy.ndarray
        (n_atoms, 3) positions in nm, centred on the origin (geometric centre), in the
        atom order of the molecule. Every bond has exactly its ``r0``; two atoms three or
        more bonds apart are not closer than the shortest ``r0`` whenever a blend of the
        angles towards tetrahedral achieves it (see the module docstring).
    """
    mol = molecule or trimethylpentane()
    dist = np.array(mol.graph_distances())
    far = dist >= 3
    types = [a.bonded_type for a in mol.atoms]
    sig = np.array([_SIGMA_NM[t] for t in types])
    sigma = 0.5 * (sig[:, None] + sig[None, :])
    shortest = min(ps.bond_ctct_r0, ps.bond_cthc_r0)
    best, best_ratio = None, -np.inf
    for blend in BLEND_STEPS:
        if mol.is_cyclic():
            x = ring_coordinates(ps, mol, blend)
        else:
            x = _best_conformation(_Builder(mol, ps, blend), far, sigma)
        d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
        ratio = d[far].min() / shortest
        if ratio > best_ratio:
            best, best_ratio = x, ratio
        if ratio >= 1.0:
            break
    assert best is not None
    return best - best.mean(axis=0)
