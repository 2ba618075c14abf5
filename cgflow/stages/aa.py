"""The all-atom stage of one parameter set, as four steps on one run directory.

``build`` (topology, box, energy minimisation), ``equilibrate`` (NVT then NPT),
``produce`` (NPT production) and ``analyse`` (beads, RDF, density, pressure, D_AA).
Each step is a plain function on a run directory: GROMACS runs go through Custodian
(:func:`cgflow.jobs.gromacs.job.run_stage`), results come back as pydantic models. Nothing
here knows of FireWorks or of the database; :mod:`cgflow.orchestration.firetasks.aa` calls these
functions and stores what they return.

Files of one run directory: ``molecule.gro``, ``topol.top``, ``box.gro``, then
``em.*``, ``nvt.*``, ``npt.*``, ``prod.*`` (see :mod:`cgflow.engines.gromacs`), and
``beads.npz`` (centre-of-mass trajectory written by ``analyse``).
"""

from __future__ import annotations

import time
from pathlib import Path

from cgflow.analysis import (
    beads_from_gromacs,
    diffusion_coefficient,
    energy_averages,
    radial_distribution,
    save_beads_npz,
)
from cgflow.db.documents import AAResults, DiffusionData, MSDData, RDFData
from cgflow.engines import gromacs as gmx
from cgflow.jobs.gromacs.job import StageReport, run_stage
from cgflow.molecule.registry import MoleculeSpec
from cgflow.params import ParameterSet
from cgflow.presets import AAPreset

#: RDF grid of the IBI target (nm).
RDF_DR_NM = 0.01
#: Longest RDF range used as IBI target (nm); shorter if the box is small.
RDF_RMAX_NM = 1.5


def build(run_dir: Path, ps: ParameterSet, preset: AAPreset,
          molecule: MoleculeSpec | None = None) -> list[StageReport]:
    """Write the topology of ``molecule`` (default 2,3,4-trimethylpentane), fill the box,
    and minimise the energy. The state point is the preset's (a campaign puts the
    molecule's into it, :attr:`cgflow.orchestration.campaign.CampaignSpec.aa_preset`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    files = gmx.build_system(ps, preset, run_dir, molecule=molecule)
    dt = gmx.choose_timestep(ps, preset)
    mdp = run_dir / "em.mdp"
    gmx.write_mdp("em", preset, dt, mdp)
    report = run_stage(run_dir, "em", mdp, files.box_gro, files.topology,
                       threads=preset.threads, maxh=preset.maxh,
                       cpt_minutes=preset.checkpoint_minutes)
    return [report]


def equilibrate(run_dir: Path, ps: ParameterSet, preset: AAPreset) -> list[StageReport]:
    """NVT (velocities generated) then NPT, each continuing from the previous stage."""
    dt = gmx.choose_timestep(ps, preset)
    top = run_dir / "topol.top"
    reports = []
    mdp = run_dir / "nvt.mdp"
    gmx.write_mdp("nvt", preset, dt, mdp)
    reports.append(run_stage(run_dir, "nvt", mdp, run_dir / "em.gro", top,
                             threads=preset.threads, maxh=preset.maxh,
                             cpt_minutes=preset.checkpoint_minutes))
    mdp = run_dir / "npt.mdp"
    gmx.write_mdp("npt", preset, dt, mdp, continuation=True)
    reports.append(run_stage(run_dir, "npt", mdp, run_dir / "nvt.gro", top,
                             checkpoint_in=run_dir / "nvt.cpt",
                             threads=preset.threads, maxh=preset.maxh,
                             cpt_minutes=preset.checkpoint_minutes))
    return reports


def produce(run_dir: Path, ps: ParameterSet, preset: AAPreset) -> list[StageReport]:
    """NPT production, continuing from the NPT equilibration."""
    dt = gmx.choose_timestep(ps, preset)
    mdp = run_dir / "prod.mdp"
    gmx.write_mdp("production", preset, dt, mdp, continuation=True)
    report = run_stage(run_dir, "prod", mdp, run_dir / "npt.gro", run_dir / "topol.top",
                       checkpoint_in=run_dir / "npt.cpt",
                       threads=preset.threads, maxh=preset.maxh,
                       cpt_minutes=preset.checkpoint_minutes)
    return [report]


def analyse(run_dir: Path, preset: AAPreset) -> AAResults:
    """Map to centre-of-mass beads and measure the IBI target and the mobility.

    Returns the stored document's results part (:class:`cgflow.db.documents.AAResults`,
    GROMACS units: kg/m^3, bar, K, nm, ps, nm^2/ps).

    The RDF range is ``min(RDF_RMAX_NM, smallest half box)`` on a ``RDF_DR_NM`` grid.
    """
    t0 = time.perf_counter()
    beads = beads_from_gromacs(run_dir / "prod.tpr", run_dir / "prod.xtc")
    save_beads_npz(beads, run_dir / "beads.npz")
    half_box = float(beads.boxes.min()) / 2.0
    r_max = min(RDF_RMAX_NM, round(half_box - 0.005, 2))
    rdf = radial_distribution(beads, r_max_nm=r_max, dr_nm=RDF_DR_NM)
    energies = energy_averages(run_dir / "prod.edr", ("Density", "Pressure", "Temperature"))
    diff = diffusion_coefficient(beads, temperature_k=preset.temperature_k)
    from cgflow.analysis import mean_squared_displacement

    msd = mean_squared_displacement(beads)
    _ = time.perf_counter() - t0
    return AAResults(
        density_kg_m3=energies["Density"].mean,
        density_err_kg_m3=energies["Density"].err,
        pressure_bar=energies["Pressure"].mean,
        pressure_err_bar=energies["Pressure"].err,
        temperature_k=energies["Temperature"].mean,
        temperature_err_k=energies["Temperature"].err,
        box_length_nm=float(beads.boxes.mean()),
        n_molecules=int(beads.positions.shape[1]),
        production_ps=float(beads.times[-1] - beads.times[0]),
        rdf=RDFData(r_nm=rdf.r.tolist(), g=rdf.g.tolist(), n_frames=rdf.n_frames),
        msd=MSDData(lag_ps=msd.lag_ps.tolist(), msd_nm2=msd.msd_nm2.tolist()),
        diffusion=DiffusionData(
            d_nm2_ps=diff.d_nm2_ps, d_err_nm2_ps=diff.d_err_nm2_ps,
            d_xyz_nm2_ps=[float(x) for x in diff.d_xyz_nm2_ps],
            fit_start_ps=diff.fit_start_ps, fit_end_ps=diff.fit_end_ps,
            yeh_hummer_nm2_ps=diff.yeh_hummer_nm2_ps,
            d_corrected_nm2_ps=diff.d_corrected_nm2_ps, viscosity_pa_s=diff.viscosity_pa_s),
    )
