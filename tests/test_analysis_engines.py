"""Analysis of fresh output of the real engines on tiny systems (about a second each).

GROMACS: 213 SPC waters, 0.5 ps NPT (inputs water.mdp / water.top shipped beside the
test data). LAMMPS: 40 Lennard-Jones beads, 50 steps NPT (lj40.in).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cgflow.analysis import beads_from_gromacs, beads_from_lammps, energy_averages

DATA = Path(__file__).parent / "data" / "analysis"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

pytestmark = pytest.mark.engine


def _run(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    proc = subprocess.run(  # noqa: S603 - fixed argument lists, no shell
        args, cwd=cwd, input=stdin, capture_output=True, text=True, env=ENV, timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{args} failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def water_run(tmp_path_factory) -> Path:
    gmx = shutil.which("gmx")
    if gmx is None:
        pytest.skip("gmx not installed")
    work = tmp_path_factory.mktemp("water")
    for name in ("water.mdp", "water.top"):
        shutil.copy(DATA / name, work / name)
    _run([gmx, "-quiet", "solvate", "-cs", "spc216.gro", "-box", "1.9", "1.9", "1.9",
          "-o", "conf.gro"], work)
    _run([gmx, "-quiet", "grompp", "-f", "water.mdp", "-c", "conf.gro", "-p", "water.top",
          "-o", "water.tpr"], work)
    _run([gmx, "-quiet", "mdrun", "-nt", "1", "-s", "water.tpr", "-deffnm", "water"], work)
    return work


def test_energy_averages_agree_with_gmx_energy(water_run):
    """pyedr reads the same numbers that ``gmx energy`` writes."""
    terms = ["Temperature", "Pressure", "Volume", "Density"]
    _run(["gmx", "-quiet", "energy", "-f", "water.edr", "-o", "energy.xvg"], water_run,
         stdin="\n".join(terms) + "\n\n")
    xvg = np.loadtxt(water_run / "energy.xvg", comments=("#", "@"))
    assert xvg.shape == (51, 5)
    result = energy_averages(water_run / "water.edr", terms, n_blocks=3)
    for k, term in enumerate(terms, start=1):
        assert result[term].n_samples == 51
        assert result[term].mean == pytest.approx(xvg[:, k].mean(), rel=1e-6, abs=1e-4)
    assert 800.0 < result["Density"].mean < 1100.0  # liquid water, kg/m^3


def test_beads_of_fresh_gromacs_output(water_run):
    import pyedr

    traj = beads_from_gromacs(water_run / "water.tpr", water_run / "water.xtc")
    assert traj.n_beads == 213 and traj.n_frames == 11
    energies = pyedr.edr_to_dict(str(water_run / "water.edr"))
    idx = np.searchsorted(energies["Time"], traj.times - 1e-4)
    np.testing.assert_allclose(energies["Box-X"][idx], traj.boxes[:, 0], atol=1e-5)
    np.testing.assert_allclose(traj.mass_densities_kg_m3, energies["Density"][idx], rtol=1e-4)


def test_beads_of_fresh_lammps_output(tmp_path):
    lmp = shutil.which("lmp")
    if lmp is None:
        pytest.skip("lmp not installed")
    shutil.copy(DATA / "lj40.in", tmp_path / "lj40.in")
    _run([lmp, "-in", "lj40.in", "-log", "lj40.log", "-screen", "none"], tmp_path)
    ref = beads_from_lammps(tmp_path / "lj40.data", tmp_path / "lj40_wrapped.lammpstrj",
                            timestep_fs=5.0)
    np.testing.assert_allclose(ref.times, np.arange(6) * 0.05)
    volumes = {}
    for line in (tmp_path / "lj40.log").read_text().splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[0].isdigit() and int(fields[0]) % 10 == 0:
            volumes[int(fields[0])] = float(fields[3])
    expected = np.array([volumes[s] for s in range(0, 60, 10)]) / 1000.0  # A^3 -> nm^3
    np.testing.assert_allclose(ref.volumes_nm3, expected, rtol=1e-6)
    for name in ("lj40_scaled", "lj40_unwrapped"):
        other = beads_from_lammps(tmp_path / "lj40.data", tmp_path / f"{name}.lammpstrj",
                                  timestep_fs=5.0)
        d = other.positions - ref.positions
        d -= ref.boxes[:, None, :] * np.round(d / ref.boxes[:, None, :])
        assert np.abs(d).max() < 1e-5
