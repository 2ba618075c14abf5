"""Self-diffusion from the mean squared displacement (Einstein relation), with the
Yeh-Hummer finite-size correction.

Positions are in nm and times in ps, so diffusion coefficients are in nm^2/ps
(1 nm^2/ps = 1e-6 m^2/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict

from cgflow import units
from cgflow.analysis.beads import BeadTrajectory
from cgflow.errors import InvalidInputError

#: Dimensionless constant of the Yeh-Hummer correction for a cubic box
#: (Yeh & Hummer, J. Phys. Chem. B 108, 15873 (2004)).
YEH_HUMMER_XI = 2.837297

#: Default shear viscosity (Pa s) used in the Yeh-Hummer correction. This is an
#: approximation: the viscosity of the simulated model is not measured; 5e-4 Pa s is
#: the order of the experimental viscosity of liquid branched octanes (such as
#: 2,2,4- and 2,3,4-trimethylpentane) near 298 K. Pass ``viscosity_pa_s`` to override.
DEFAULT_VISCOSITY_PA_S = 5.0e-4

#: Relative tolerance on the spacing of frame times (times in xtc files are float32).
_DT_RTOL = 1.0e-2

#: Upper bound on the number of float64 values held by one FFT chunk of the MSD.
_FFT_CHUNK_VALUES = 4_000_000


def _uniform_dt(times: np.ndarray) -> float:
    """The constant frame spacing (ps); InvalidInputError if the spacing varies."""
    if times.size < 2:
        raise InvalidInputError(f"field 'traj': value with {times.size} frame(s): need at least 2")
    steps = np.diff(times)
    dt = float((times[-1] - times[0]) / (times.size - 1))
    if np.max(np.abs(steps - dt)) > _DT_RTOL * dt:
        raise InvalidInputError(
            f"field 'traj.times': frame spacing varies from {steps.min():g} to "
            f"{steps.max():g} ps; the MSD needs evenly spaced frames"
        )
    return dt


def unwrap_positions(traj: BeadTrajectory) -> np.ndarray:
    """Continuous bead paths (F, N, 3), nm, from the wrapped positions of ``traj``.

    Each step adds the minimum-image displacement between consecutive wrapped
    positions, with the box of the later frame:

        u_{t+1} = u_t + d - L_{t+1} round(d / L_{t+1}),   d = w_{t+1} - w_t.

    This is the "toroidal-view-preserving" scheme of von Bulow, Bullerjahn and Hummer
    (J. Chem. Phys. 153, 021101 (2020)), which stays correct when the box changes
    under constant pressure. It is valid while no bead moves more than half a box
    length between two frames. The first frame is taken as is.
    """
    w = traj.positions
    steps = np.diff(w, axis=0)
    lengths = traj.boxes[1:, None, :]
    steps -= lengths * np.round(steps / lengths)
    unwrapped = np.empty_like(w)
    unwrapped[0] = w[0]
    np.cumsum(steps, axis=0, out=unwrapped[1:])
    unwrapped[1:] += w[0]
    return unwrapped


@dataclass
class MSD:
    """Mean squared displacement against lag time.

    Attributes
    ----------
    lag_ps
        Lag times (L,), ps, starting at 0.
    msd_nm2
        MSD summed over x, y, z (L,), nm^2.
    msd_xyz_nm2
        MSD of each Cartesian component (L, 3), nm^2.
    """

    lag_ps: np.ndarray
    msd_nm2: np.ndarray
    msd_xyz_nm2: np.ndarray


def _msd_sum_fft(x: np.ndarray, n_lags: int) -> np.ndarray:
    """Sum over columns of the all-origins MSD of each column of ``x`` (F, M).

    Uses  sum_t (x_{t+m} - x_t)^2 = sum_{t>=m} x_t^2 + sum_{t<F-m} x_t^2 - 2 sum_t x_t x_{t+m},
    with the last term (an autocorrelation) from an FFT padded to 2F; O(F log F) per
    column. Returns the sums over origins and columns for lags 0..n_lags-1 (not yet
    divided by the number of origins).
    """
    n_frames = x.shape[0]
    sq = np.einsum("fm,fm->f", x, x)
    csum = np.concatenate(([0.0], np.cumsum(sq)))  # csum[k] = sum_{t<k} sq_t
    lags = np.arange(n_lags)
    tail = csum[n_frames] - csum[lags]  # sum_{t>=m}
    head = csum[n_frames - lags]  # sum_{t<F-m}
    n_fft = 2 * n_frames
    chunk = max(1, _FFT_CHUNK_VALUES // n_fft)
    power = np.zeros(n_fft // 2 + 1)
    for c0 in range(0, x.shape[1], chunk):
        spec = np.fft.rfft(x[:, c0 : c0 + chunk], n=n_fft, axis=0)
        power += (spec.real**2 + spec.imag**2).sum(axis=1)
    acf = np.fft.irfft(power, n=n_fft)[:n_lags]
    return tail + head - 2.0 * acf


def mean_squared_displacement(traj: BeadTrajectory, *, max_lag_fraction: float = 0.5) -> MSD:
    """MSD of the beads averaged over all time origins and all beads.

    The positions are unwrapped (:func:`unwrap_positions`) and the mass-weighted centre
    of mass of the whole system is subtracted frame by frame, which removes any drift
    of the system as a whole. The average over time origins is computed with FFTs.

    In a momentum-conserving MD run the centre of mass does not diffuse and its
    removal changes nothing but drift; for N independent random walkers of equal mass
    it lowers the MSD by the factor 1 - 1/N.

    Parameters
    ----------
    traj
        Bead trajectory with evenly spaced frames.
    max_lag_fraction
        Largest lag as a fraction of the trajectory length (0 < f <= 1). Lags near the
        full length have few time origins and are noisy; 0.5 is customary.

    Raises
    ------
    InvalidInputError
        On fewer than 2 frames, unevenly spaced frames, or ``max_lag_fraction``
        outside (0, 1] or too small to give a non-zero lag.
    """
    if not 0.0 < max_lag_fraction <= 1.0:
        raise InvalidInputError(
            f"field 'max_lag_fraction': value {max_lag_fraction!r}: must be in (0, 1]"
        )
    dt = _uniform_dt(traj.times)
    n_frames = traj.n_frames
    max_lag = int(np.floor(max_lag_fraction * (n_frames - 1) + 1e-9))
    if max_lag < 1:
        raise InvalidInputError(
            f"field 'max_lag_fraction': value {max_lag_fraction!r}: gives no lag for "
            f"{n_frames} frames"
        )
    u = unwrap_positions(traj)
    weights = traj.masses / traj.masses.sum()
    u -= np.einsum("fna,n->fa", u, weights)[:, None, :]
    u -= u[0]  # per-bead shift: the MSD is unchanged, round-off is smaller
    n_lags = max_lag + 1
    origins = (n_frames - np.arange(n_lags)).astype(np.float64)
    msd_xyz = np.empty((n_lags, 3))
    for a in range(3):
        msd_xyz[:, a] = _msd_sum_fft(u[:, :, a], n_lags) / (origins * traj.n_beads)
    msd_xyz[0] = 0.0
    return MSD(lag_ps=np.arange(n_lags) * dt, msd_nm2=msd_xyz.sum(axis=1), msd_xyz_nm2=msd_xyz)


def yeh_hummer_correction(
    *, temperature_k: float, viscosity_pa_s: float, box_length_nm: float
) -> float:
    """Yeh-Hummer finite-size correction xi kB T / (6 pi eta L), nm^2/ps.

    Add it to a diffusion coefficient measured in a cubic periodic box of edge
    ``box_length_nm`` to estimate the value in an infinite system.
    """
    for name, value in (
        ("temperature_k", temperature_k), ("viscosity_pa_s", viscosity_pa_s),
        ("box_length_nm", box_length_nm),
    ):
        if not (math.isfinite(value) and value > 0.0):
            raise InvalidInputError(f"field '{name}': value {value!r}: must be positive")
    box_m = box_length_nm * 1e-9
    d_m2_s = YEH_HUMMER_XI * units.KB_J_K * temperature_k / (6.0 * math.pi * viscosity_pa_s * box_m)
    return d_m2_s / units.M2_S_PER_NM2_PS


class DiffusionResult(BaseModel):
    """Self-diffusion coefficient from an Einstein fit, with its finite-size correction.

    Diffusion coefficients are in nm^2/ps (the ``*_m2_s`` properties give m^2/s).
    ``d_nm2_ps`` is the raw value in the periodic box; ``d_corrected_nm2_ps`` adds the
    Yeh-Hummer term ``yeh_hummer_nm2_ps`` computed with ``viscosity_pa_s``, which is
    an assumed, not a measured, viscosity.
    """

    model_config = ConfigDict(frozen=True)

    d_nm2_ps: float
    d_err_nm2_ps: float
    d_xyz_nm2_ps: tuple[float, float, float]
    fit_start_ps: float
    fit_end_ps: float
    box_length_nm: float
    temperature_k: float
    viscosity_pa_s: float
    yeh_hummer_nm2_ps: float
    d_corrected_nm2_ps: float
    n_beads: int
    n_frames: int

    @property
    def d_m2_s(self) -> float:
        """Raw diffusion coefficient, m^2/s."""
        return units.diffusion_nm2_ps_to_m2_s(self.d_nm2_ps)

    @property
    def d_err_m2_s(self) -> float:
        """Uncertainty of the raw diffusion coefficient, m^2/s."""
        return units.diffusion_nm2_ps_to_m2_s(self.d_err_nm2_ps)

    @property
    def yeh_hummer_m2_s(self) -> float:
        """Yeh-Hummer correction, m^2/s."""
        return units.diffusion_nm2_ps_to_m2_s(self.yeh_hummer_nm2_ps)

    @property
    def d_corrected_m2_s(self) -> float:
        """Finite-size corrected diffusion coefficient, m^2/s."""
        return units.diffusion_nm2_ps_to_m2_s(self.d_corrected_nm2_ps)


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y = s t + c."""
    design = np.column_stack([t, np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(coef[0])


def diffusion_coefficient(
    traj: BeadTrajectory,
    *,
    temperature_k: float,
    fit_start_fraction: float = 0.2,
    fit_end_fraction: float = 0.8,
    max_lag_fraction: float = 0.5,
    viscosity_pa_s: float = DEFAULT_VISCOSITY_PA_S,
) -> DiffusionResult:
    """Self-diffusion coefficient of the beads from the Einstein relation.

    The MSD (:func:`mean_squared_displacement`, lags up to ``max_lag_fraction`` of the
    trajectory length) is fitted by linear least squares with MSD = 6 D t + c over
    the lags from ``fit_start_fraction`` to ``fit_end_fraction`` of the largest lag
    (both ends included). The defaults (0.2 to 0.8 of half the run) fit 10 to 40 ps
    of a 100 ps all-atom production with frames every 0.5 ps (61 points, well past
    the sub-ps ballistic regime), and 100 to 400 ps of a 1 ns CG production.

    Uncertainty: each Cartesian component is fitted on its own, MSD_a = 2 D_a t + c_a,
    and ``d_err_nm2_ps = std(D_x, D_y, D_z) / sqrt(3)`` (sample standard deviation).
    ``D`` itself equals the mean of the three ``D_a``. This is preferred over block
    averages in time because the all-atom runs are short (100 ps): blocks would be
    too short to reach the diffusive regime, while the three components of an
    isotropic liquid are nearly independent estimates from the whole run. With three
    samples (two degrees of freedom) the error estimate itself scatters widely: it
    falls below half the true standard error in about one run in five, so read it as
    an order of magnitude; averaged over many runs it is right (see the tests).

    The Yeh-Hummer term xi kB T / (6 pi eta L) (:func:`yeh_hummer_correction`) uses the
    mean over frames of V^(1/3) as L (the box edge for cubic boxes; the formula is
    derived for cubic boxes) and ``viscosity_pa_s``, by default
    :data:`DEFAULT_VISCOSITY_PA_S` = 5e-4 Pa s. That default is an approximation (the
    order of the experimental viscosity of liquid branched octanes at 298 K), not the
    viscosity of the simulated model; pass the model's viscosity when it is known.

    Parameters
    ----------
    traj
        Bead trajectory with evenly spaced frames.
    temperature_k
        Temperature of the run, K (for the Yeh-Hummer term).
    fit_start_fraction, fit_end_fraction
        Fit window as fractions of the largest lag, ``0 <= start < end <= 1``.
    max_lag_fraction
        Largest lag as a fraction of the trajectory length.
    viscosity_pa_s
        Shear viscosity for the Yeh-Hummer term, Pa s.

    Raises
    ------
    InvalidInputError
        On a fit window that is out of range or holds fewer than 3 lags, or on
        invalid ``temperature_k``, ``viscosity_pa_s`` or trajectory.
    """
    if not 0.0 <= fit_start_fraction < fit_end_fraction <= 1.0:
        raise InvalidInputError(
            f"fields 'fit_start_fraction'/'fit_end_fraction': values "
            f"{fit_start_fraction!r}/{fit_end_fraction!r}: need 0 <= start < end <= 1"
        )
    box_length = float(np.mean(np.cbrt(traj.volumes_nm3)))
    correction = yeh_hummer_correction(
        temperature_k=temperature_k, viscosity_pa_s=viscosity_pa_s, box_length_nm=box_length
    )
    msd = mean_squared_displacement(traj, max_lag_fraction=max_lag_fraction)
    max_lag_ps = float(msd.lag_ps[-1])
    t0, t1 = fit_start_fraction * max_lag_ps, fit_end_fraction * max_lag_ps
    eps = 1e-9 * max_lag_ps
    window = (msd.lag_ps >= t0 - eps) & (msd.lag_ps <= t1 + eps)
    if np.count_nonzero(window) < 3:
        raise InvalidInputError(
            f"fields 'fit_start_fraction'/'fit_end_fraction': values "
            f"{fit_start_fraction!r}/{fit_end_fraction!r}: the fit window {t0:g} to "
            f"{t1:g} ps holds {np.count_nonzero(window)} lag(s), need at least 3"
        )
    t = msd.lag_ps[window]
    d_xyz = np.array([_slope(t, msd.msd_xyz_nm2[window, a]) / 2.0 for a in range(3)])
    d = float(d_xyz.mean())
    d_err = float(np.std(d_xyz, ddof=1) / math.sqrt(3.0))
    return DiffusionResult(
        d_nm2_ps=d,
        d_err_nm2_ps=d_err,
        d_xyz_nm2_ps=(float(d_xyz[0]), float(d_xyz[1]), float(d_xyz[2])),
        fit_start_ps=float(t[0]),
        fit_end_ps=float(t[-1]),
        box_length_nm=box_length,
        temperature_k=float(temperature_k),
        viscosity_pa_s=float(viscosity_pa_s),
        yeh_hummer_nm2_ps=correction,
        d_corrected_nm2_ps=d + correction,
        n_beads=traj.n_beads,
        n_frames=traj.n_frames,
    )
