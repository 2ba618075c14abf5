"""Internal-coordinate builder of 2,3,4-trimethylpentane coordinates.

The builder uses the parameter set's own equilibrium bond lengths and angles, so that a
starting geometry exists for any parameter set of the sampled spaces (also far from
OPLS-AA), without a cheminformatics toolkit.

Construction (all lengths in nm):

* C1 sits at the origin and C2 on the +x axis; the hydrogens of C1 are placed at the
  CT-CT-HC angle from the C1-C2 bond, 120 degrees apart around it.
* Walking the bond tree from C1, every atom ``X`` bonded to an already placed centre
  ``P`` (itself reached from ``G``) gets the bond length ``r0`` of its bond kind and the
  angle ``G-P-X`` equal to ``theta0`` of its angle kind. Around the ``G-P`` axis, the
  three substituents of ``P`` are 120 degrees apart, rotated to lie closest to the
  bisectors of the gaps between the substituents of ``G``: a staggered conformation
  (exactly so when the substituents of ``G`` are evenly spread around that axis).
* Which substituent of each CH centre takes which staggered position is chosen among all
  assignments (6 per CH centre) by the lowest soft repulsion ``sum (sigma/r)^12`` over
  atom pairs three or more bonds apart.
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


def _best_conformation(b: _Builder, far: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    centres = b.centres_with_choice()
    n_subs = {p: len(b.adj[p]) - 1 for p in centres}
    best, best_e = None, np.inf
    for choice in product(*(list(permutations(range(n_subs[p]))) for p in centres)):
        x = b.build(dict(zip(centres, choice, strict=True)))
        e = _repulsion(x, far, sigma)
        if e < best_e:
            best, best_e = x, e
    assert best is not None
    return best


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
        x = _best_conformation(_Builder(mol, ps, blend), far, sigma)
        d = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)
        ratio = d[far].min() / shortest
        if ratio > best_ratio:
            best, best_ratio = x, ratio
        if ratio >= 1.0:
            break
    assert best is not None
    return best - best.mean(axis=0)
