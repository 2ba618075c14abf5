"""Radial distribution function of beads in an orthorhombic periodic box."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from cgflow.analysis.beads import BeadTrajectory
from cgflow.errors import InvalidInputError


@dataclass
class RDF:
    """A radial distribution function g(r) on uniform bins.

    Attributes
    ----------
    r
        Bin centres (B,), nm; bin ``k`` covers ``[k dr, (k+1) dr)``.
    g
        g(r) at the bin centres (B,), dimensionless.
    n_frames
        Number of frames averaged.
    n_beads
        Number of beads per frame.
    """

    r: np.ndarray
    g: np.ndarray
    n_frames: int
    n_beads: int

    @property
    def dr_nm(self) -> float:
        """Bin width, nm."""
        return float(self.r[1] - self.r[0]) if self.r.size > 1 else float(2.0 * self.r[0])

    @property
    def edges(self) -> np.ndarray:
        """Bin edges (B + 1,), nm."""
        dr = self.dr_nm
        return np.arange(self.r.size + 1) * dr


def _pair_distances(x: np.ndarray, box: np.ndarray, r_max: float) -> np.ndarray:
    """Minimum-image distances of all pairs i < j closer than ``r_max`` (one frame)."""
    tree = cKDTree(x, boxsize=box)
    pairs = tree.query_pairs(r_max, output_type="ndarray")
    i = np.ascontiguousarray(pairs[:, 0])
    j = np.ascontiguousarray(pairs[:, 1])
    r2 = np.zeros(i.size)
    for a in range(3):
        xa = np.ascontiguousarray(x[:, a])
        d = xa[j] - xa[i]
        d -= box[a] * np.rint(d / box[a])
        r2 += d * d
    return np.sqrt(r2)


def radial_distribution(traj: BeadTrajectory, *, r_max_nm: float, dr_nm: float = 0.01) -> RDF:
    """g(r) of all bead pairs, averaged over the frames of ``traj``.

    Each frame is normalised with its own volume V and bead count N: with
    ``n_k`` pairs (i < j) in shell ``k``,

        g_k = 2 n_k / (N (N - 1) / V * 4/3 pi (r_{k+1}^3 - r_k^3)),

    so an ideal gas gives g = 1 exactly on average (the N - 1 counts the partners of
    a bead), and boxes that change in NPT are handled. The frame values are then
    averaged with equal weights.

    Pairs are found with a periodic ``scipy.spatial.cKDTree`` and their minimum-image
    distances computed in numpy. Memory is about 100 bytes per pair within
    ``r_max_nm`` in one frame. CPU time for 1000 beads in a 6.5 nm box (liquid
    234TriMePe density) is about 6 ms per frame with ``r_max_nm`` = 1.5 and 22 ms
    with half the box length.

    Parameters
    ----------
    traj
        Bead trajectory (positions in nm).
    r_max_nm
        Largest distance, nm; at most half the smallest box length of any frame.
        The bins are ``[k dr, (k+1) dr)`` for ``k < floor(r_max_nm / dr_nm)`` (a
        ``r_max_nm`` that is not a multiple of ``dr_nm`` is rounded down to one).
    dr_nm
        Bin width, nm.

    Raises
    ------
    InvalidInputError
        If ``dr_nm`` or ``r_max_nm`` is not positive, ``r_max_nm < dr_nm``,
        ``r_max_nm`` exceeds half the smallest box length, or there are fewer than
        two beads.
    """
    if not dr_nm > 0.0:
        raise InvalidInputError(f"field 'dr_nm': value {dr_nm!r}: must be positive")
    if not r_max_nm >= dr_nm:
        raise InvalidInputError(
            f"field 'r_max_nm': value {r_max_nm!r}: must be at least dr_nm ({dr_nm!r})"
        )
    half_box = 0.5 * float(traj.boxes.min())
    if r_max_nm > half_box * (1.0 + 1e-12):
        raise InvalidInputError(
            f"field 'r_max_nm': value {r_max_nm!r}: exceeds half the smallest box length "
            f"({half_box:.6g} nm)"
        )
    n = traj.n_beads
    if n < 2:
        raise InvalidInputError(f"field 'traj': value with {n} bead(s): need at least 2")
    n_bins = int(np.floor(r_max_nm / dr_nm + 1e-9))
    edges = np.arange(n_bins + 1) * dr_nm
    r_top = float(edges[-1])
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)

    g_sum = np.zeros(n_bins)
    for x, box, volume in zip(traj.positions, traj.boxes, traj.volumes_nm3, strict=True):
        r = _pair_distances(x, box, r_top)
        k = (r / dr_nm).astype(np.intp)
        counts = np.bincount(k[k < n_bins], minlength=n_bins)
        g_sum += 2.0 * counts / (n * (n - 1) / volume * shell)
    return RDF(r=edges[:-1] + 0.5 * dr_nm, g=g_sum / traj.n_frames, n_frames=traj.n_frames,
               n_beads=n)
