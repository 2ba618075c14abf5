"""Averages of GROMACS energy-file terms with block-average uncertainties."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from cgflow.errors import InvalidInputError

#: Tolerance (ps) when comparing energy-frame times with ``start_ps``.
_TIME_TOLERANCE_PS = 1.0e-6

#: First four bytes of a GROMACS energy file (the XDR integer -55555). pyedr does not
#: check it and can allocate gigabytes on a file that is not an energy file.
_EDR_MAGIC = (-55555).to_bytes(4, "big", signed=True)


def block_average(x: np.ndarray, n_blocks: int = 5) -> tuple[float, float]:
    """Mean of a time series and its standard error from block averages.

    The series is cut into ``n_blocks`` contiguous blocks of equal length ``b =
    len(x) // n_blocks``; the first ``len(x) - n_blocks * b`` samples (the earliest,
    fewer than ``n_blocks``) are dropped so the blocks are equal. Returns the mean of
    the block means and ``std(block means, ddof=1) / sqrt(n_blocks)``.

    The error is a valid standard error of the mean when each block is much longer
    than the correlation time of ``x``, so that block means are nearly independent;
    with correlated data it is larger than the naive ``std(x) / sqrt(len(x))``. With
    5 blocks the error estimate itself is uncertain by about 35 %.

    Raises
    ------
    InvalidInputError
        If ``x`` is not one-dimensional and finite, ``n_blocks < 2``, or ``x`` has
        fewer than ``n_blocks`` samples.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidInputError(f"field 'x': shape {x.shape}: expected one dimension")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("field 'x': contains non-finite values")
    if n_blocks < 2:
        raise InvalidInputError(f"field 'n_blocks': value {n_blocks!r}: must be >= 2")
    if x.size < n_blocks:
        raise InvalidInputError(
            f"field 'x': {x.size} sample(s), fewer than n_blocks ({n_blocks})"
        )
    size = x.size // n_blocks
    blocks = x[x.size - n_blocks * size :].reshape(n_blocks, size).mean(axis=1)
    return float(blocks.mean()), float(blocks.std(ddof=1) / math.sqrt(n_blocks))


class EnergyAverage(BaseModel):
    """Average of one energy-file term.

    Attributes
    ----------
    mean
        Mean over the samples used, in ``unit``.
    err
        Block-average standard error (:func:`block_average`), in ``unit``.
    unit
        Unit as written in the energy file (GROMACS units: kJ/mol, bar, K, nm^3,
        kg/m^3 for density).
    n_samples
        Number of energy frames averaged (the frames at or after ``start_ps``, less
        the earliest few that :func:`block_average` drops to make equal blocks).
    """

    model_config = ConfigDict(frozen=True)

    mean: float
    err: float
    unit: str
    n_samples: int


def energy_averages(
    edr: Path,
    terms: Sequence[str] = ("Density", "Pressure", "Temperature", "Volume"),
    *,
    start_ps: float = 0.0,
    n_blocks: int = 5,
) -> dict[str, EnergyAverage]:
    """Averages of terms of a GROMACS ``.edr`` file, read with ``pyedr``.

    Values keep the GROMACS units of the file (``Density`` in kg/m^3, ``Pressure`` in
    bar, ``Temperature`` in K, ``Volume`` in nm^3, energies in kJ/mol). Every energy
    frame with time >= ``start_ps`` is used; the uncertainty is the block-average
    standard error with ``n_blocks`` blocks.

    Parameters
    ----------
    edr
        The energy file.
    terms
        Names as GROMACS writes them (``"Density"``, ``"Pressure"``, ``"Potential"``,
        ...). ``Density`` exists only for runs with a barostat.
    start_ps
        Energy frames before this time (ps) are skipped.
    n_blocks
        Number of blocks for the error.

    Returns
    -------
    dict[str, EnergyAverage]
        One entry per requested term, in the order given.

    Raises
    ------
    InvalidInputError
        If the file is missing or unreadable, a term is not in the file (the message
        lists the terms that are), or fewer than ``n_blocks`` frames are at or after
        ``start_ps``.
    """
    import pyedr

    edr = Path(edr)
    if not edr.is_file():
        raise InvalidInputError(f"field 'edr': value '{edr}': file not found")
    with edr.open("rb") as handle:
        magic = handle.read(4)
    if magic != _EDR_MAGIC:
        raise InvalidInputError(
            f"field 'edr': value '{edr}': not a GROMACS energy file (it does not start "
            f"with the energy-file magic number)"
        )
    try:
        data = pyedr.edr_to_dict(str(edr))
        unit_of = pyedr.get_unit_dictionary(str(edr))
    except Exception as exc:  # pyedr raises several types on a corrupt file
        raise InvalidInputError(
            f"field 'edr': value '{edr}': not a readable energy file: {exc}"
        ) from exc
    available = [name for name in data if name != "Time"]
    missing = [t for t in terms if t not in data or t == "Time"]
    if missing:
        raise InvalidInputError(
            f"field 'terms': value(s) {missing} not in {edr}; it has {available}"
        )
    times = np.asarray(data["Time"], dtype=np.float64)
    keep = times >= start_ps - _TIME_TOLERANCE_PS
    n_kept = int(np.count_nonzero(keep))
    if n_kept < n_blocks:
        raise InvalidInputError(
            f"field 'start_ps': value {start_ps!r}: leaves {n_kept} energy frame(s) of "
            f"{edr} ({times[0] if times.size else 'no'} to "
            f"{times[-1] if times.size else 'no'} ps), need at least n_blocks ({n_blocks})"
        )
    result: dict[str, EnergyAverage] = {}
    for term in terms:
        mean, err = block_average(np.asarray(data[term], dtype=np.float64)[keep], n_blocks)
        result[term] = EnergyAverage(
            mean=mean, err=err, unit=unit_of.get(term, ""),
            n_samples=n_blocks * (n_kept // n_blocks),
        )
    return result
