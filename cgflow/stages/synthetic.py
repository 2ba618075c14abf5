"""Synthetic structure-potential pairs: sample a potential, simulate it, measure g(r) and P.

One pair is one CG sampling run of a potential of the family
(:class:`cgflow.ml.potential_family.PotentialFamily`) through the same machinery as an IBI
iteration (:func:`cgflow.stages.cg.run_iteration`: the LAMMPS table, data and input of
:mod:`cgflow.ibi.iteration`, LAMMPS under Custodian, the block-averaged RDF and pressure
on the IBI grid). The pair is what the learned inverse (:mod:`cgflow.ml.inverse`) trains
on: (U, g, P, density, T, mass).

The run needs an IBI target for its box and temperature; a synthetic run has no target
RDF, so a flat g = 1 stands in (the run's ``rdf_deviation`` against it is meaningless and
not kept) and the pressure correction is off (the IBI update computed after the run is
discarded).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import BEAD_MASS_G_MOL, IBISettings
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.potential_family import FamilySample, FamilySettings, PotentialFamily
from cgflow.presets import CGPreset
from cgflow.stages import cg as cg_stage

#: Temperature of the reference dataset's runs, K.
REFERENCE_TEMPERATURE_K = 298.15


@dataclass
class SyntheticPair:
    """A potential and the structure and pressure it gives (GROMACS units).

    Attributes
    ----------
    r_nm, u_kj_mol
        The potential on the IBI grid (nm, kJ/mol).
    g, g_err
        RDF sampled with it on the same grid and its standard error (block averages).
    pressure_bar, pressure_err_bar
        CG pressure and its standard error, bar.
    density_kg_m3, temperature_k, mass_g_mol
        State point of the run.
    seed
        Seed of the LAMMPS run.
    wall_s
        Wall time of the pair (files, LAMMPS, analysis), s.
    """

    r_nm: np.ndarray
    u_kj_mol: np.ndarray
    g: np.ndarray
    g_err: np.ndarray
    pressure_bar: float
    pressure_err_bar: float
    density_kg_m3: float
    temperature_k: float
    mass_g_mol: float
    seed: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyntheticPair:
        """Inverse of :meth:`to_dict` (extra keys such as database ids are ignored)."""
        names = cls.__dataclass_fields__
        kw = {k: d[k] for k in names}
        for k in ("r_nm", "u_kj_mol", "g", "g_err"):
            kw[k] = np.asarray(kw[k], float)
        return cls(**kw)


def reference_anchors(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor potentials of the family from a committed dataset folder
    (``dataset.npz`` and ``sets.json``, e.g. ``data/reference``).

    Returns
    -------
    r_nm, U, density_kg_m3
        Grid (nm), IBI potentials (n, G) in kJ/mol and the sets' AA mass densities.
    """
    ds = CampaignDataset.load_npz(Path(data_dir) / "dataset.npz")
    rows = {r["param_id"]: r for r in
            json.loads((Path(data_dir) / "sets.json").read_text())["sets"]}
    rho = np.array([float(rows[p]["density_kg_m3"]) for p in ds.param_ids.tolist()])
    return np.asarray(ds.r_nm, float), np.asarray(ds.U, float), rho


def reference_family(data_dir: Path, settings: FamilySettings | None = None
                     ) -> PotentialFamily:
    """The potential family anchored on a committed dataset (:func:`reference_anchors`)."""
    r, U, rho = reference_anchors(data_dir)
    return PotentialFamily(r, U, rho, settings=settings)


def synthetic_settings(cg_preset: CGPreset, temperature_k: float = REFERENCE_TEMPERATURE_K
                       ) -> IBISettings:
    """IBI settings of a synthetic run: the campaign defaults on the preset's cutoff,
    without pressure correction."""
    return IBISettings(temperature_k=temperature_k, cutoff_nm=cg_preset.rcut_nm,
                       pressure_correction=False)


def run_pair(sample: FamilySample, workdir: Path, cg_preset: CGPreset, *, seed: int,
             temperature_k: float = REFERENCE_TEMPERATURE_K,
             mass_g_mol: float = BEAD_MASS_G_MOL, threads: int = 1,
             keep_files: bool = False) -> SyntheticPair:
    """Simulate one potential of the family and return the pair.

    ``workdir`` is the run directory (removed afterwards unless ``keep_files``).

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way the Custodian handlers cannot correct.
    cgflow.errors.InvalidInputError
        When the sample's grid is not the preset's IBI grid or the box cannot hold the
        cutoff.
    """
    t0 = time.time()
    settings = synthetic_settings(cg_preset, temperature_k)
    r = np.asarray(sample.r_nm, float)
    target = cg_stage.make_target(rdf_r_nm=r, rdf_g=np.ones_like(r),
                                  density_kg_m3=sample.density_kg_m3, pressure_bar=0.0,
                                  pressure_err_bar=0.0, temperature_k=temperature_k)
    target = dataclasses.replace(target, mass_g_mol=float(mass_g_mol))
    potential = TabulatedPotential.from_energy(r, sample.u_kj_mol)
    workdir = Path(workdir)
    result, _ = cg_stage.run_iteration(workdir, 0, potential, target, settings, cg_preset,
                                       previous=None, threads=threads, seed=seed)
    if not keep_files:
        shutil.rmtree(workdir, ignore_errors=True)
    return SyntheticPair(r_nm=result.r_nm, u_kj_mol=potential.u_kj_mol, g=result.g,
                         g_err=result.g_err, pressure_bar=result.pressure_bar,
                         pressure_err_bar=result.pressure_err_bar,
                         density_kg_m3=sample.density_kg_m3, temperature_k=temperature_k,
                         mass_g_mol=float(mass_g_mol), seed=seed,
                         wall_s=round(time.time() - t0, 3))


def run_pairs(family: PotentialFamily, n: int, seed: int, workdir: Path,
              cg_preset: CGPreset, *, start: int = 0, threads: int = 1
              ) -> list[SyntheticPair]:
    """Pairs ``start .. start + n - 1`` of the family's sample stream of ``seed``.

    Sample ``j`` is the ``j``-th of ``family.sample(start + n, seed)`` and runs with the
    LAMMPS seed ``seed * 100003 + j``, so batches of one stream can run anywhere and in
    any order and give the same pairs.
    """
    samples = family.sample(start + n, seed)[start:]
    return [run_pair(s, Path(workdir) / f"pair_{start + k:05d}", cg_preset,
                     seed=(seed * 100003 + start + k) % 900_000_000 + 1, threads=threads)
            for k, s in enumerate(samples)]
