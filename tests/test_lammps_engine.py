"""LAMMPS CG engine: tables, data files, inputs, commands, logs, runs and continuations."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cgflow import units
from cgflow.engines import lammps
from cgflow.errors import EngineError, InvalidInputError
from cgflow.ibi.potential import TabulatedPotential, potential_grid, switching_function

DATA = Path(__file__).parent / "data"
FAILURES = DATA / "lammps_failures"
NORMAL_RUN = DATA / "ibi" / "normal_run"

needs_lmp = pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")


def lj_potential(r_cut: float = 1.2, r_min: float = 0.1) -> TabulatedPotential:
    r = potential_grid(r_min, r_cut, 0.01)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    return TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, r_cut, 0.1))


# --- tables -----------------------------------------------------------------------------


def test_table_round_trip_and_units(tmp_path):
    r, u, f = lj_potential().tabulate(0.001)
    path = lammps.write_table(tmp_path / "t.table", r, u, f, "PAIR")
    text = path.read_text().splitlines()
    assert "PAIR" in text
    n_line = next(line for line in text if line.startswith("N "))
    assert n_line.split()[:2] == ["N", str(r.size)]
    assert float(n_line.split()[3]) == pytest.approx(units.nm_to_angstrom(r[0]))
    # the file is in Angstrom and kcal/mol
    first = next(line for line in text if line.startswith("1 ")).split()
    assert float(first[2]) == pytest.approx(units.kj_to_kcal(u[0]), rel=1e-10)
    r2, u2, f2 = lammps.read_table(path, "PAIR")
    np.testing.assert_allclose(r2, r, rtol=1e-9)
    np.testing.assert_allclose(u2, u, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(f2, f, rtol=1e-9, atol=1e-9)


def test_table_forces_are_minus_energy_derivative():
    r, u, f = lj_potential().tabulate(0.001)
    fd = -(u[2:] - u[:-2]) / (r[2:] - r[:-2])
    # where the liquid lives (r > 0.45 nm) the central difference matches to O(h^2)
    sel = r[1:-1] > 0.45
    scale = np.max(np.abs(f[1:-1][sel]))
    assert np.max(np.abs(fd[sel] - f[1:-1][sel])) < 1e-3 * scale
    # and the analytic LJ force, away from the switching region
    s = (r > 0.5) & (r < 1.05)
    f_lj = 4 * 3.0 * (12 * 0.6**12 / r[s] ** 13 - 6 * 0.6**6 / r[s] ** 7)
    assert np.max(np.abs(f[s] - f_lj)) < 2e-3 * np.max(np.abs(f_lj))


@pytest.mark.parametrize(
    ("r", "u", "field"),
    [
        (np.array([0.1, 0.2, 0.35, 0.4]), np.zeros(4), "r_nm"),
        (np.array([0.0, 0.1, 0.2, 0.3]), np.zeros(4), "r_nm"),
        (np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, np.nan, 0, 0]), "u_kj_mol"),
    ],
)
def test_write_table_rejects_bad_input(tmp_path, r, u, field):
    with pytest.raises(InvalidInputError, match=field):
        lammps.write_table(tmp_path / "t", r, u, np.zeros_like(r))


# --- data file --------------------------------------------------------------------------


def test_write_data_places_beads_without_overlap(tmp_path):
    box = lammps.box_length_nm(343, 723.0, 114.23)
    assert box == pytest.approx((343 / units.number_density_nm3(723.0, 114.23)) ** (1 / 3))
    path = lammps.write_data(tmp_path / "d.data", 343, box, 114.23, seed=5)
    lines = path.read_text().splitlines()
    assert "343 atoms" in lines
    start = lines.index("Atoms # atomic") + 2
    xyz = np.array([[float(v) for v in ln.split()[2:5]] for ln in lines[start:start + 343]])
    box_a = units.nm_to_angstrom(box)
    assert np.all((xyz >= 0) & (xyz < box_a))
    d = xyz[:, None, :] - xyz[None, :, :]
    d -= box_a * np.round(d / box_a)
    dist = np.sqrt((d**2).sum(-1)) + np.eye(343) * 1e9
    spacing = box_a / 7  # 7^3 = 343 sites
    assert dist.min() >= 0.8 * spacing - 1e-6
    # reproducible for a seed, different for another
    again = lammps.write_data(tmp_path / "e.data", 343, box, 114.23, seed=5).read_text()
    assert again == path.read_text()
    assert lammps.write_data(tmp_path / "f.data", 343, box, 114.23, seed=6).read_text() != again


def test_write_data_rejects_bad_input(tmp_path):
    with pytest.raises(InvalidInputError, match="n_beads"):
        lammps.write_data(tmp_path / "d", 1, 3.0, 114.23, 1)
    with pytest.raises(InvalidInputError, match="box_nm"):
        lammps.write_data(tmp_path / "d", 10, -3.0, 114.23, 1)


# --- inputs -----------------------------------------------------------------------------


def settings(**kw) -> lammps.LammpsRunSettings:
    base = dict(stage="ibi", temperature_k=298.15, dt_fs=5.0, equilibration_steps=1000,
                run_steps=4000, rcut_nm=1.2, table_points=1101, n_blocks=4, sample_every=10)
    base.update(kw)
    return lammps.LammpsRunSettings(**base)


def test_ibi_input_samples_rdf_and_pressure_in_lammps(tmp_path):
    s = settings()
    text = lammps.write_input(tmp_path / "in", s).read_text()
    assert "read_data system.data" in text
    assert "pair_style table linear 1101" in text
    assert "pair_coeff 1 1 pair.table CG_CG 12" in text
    assert "minimize" in text
    assert f"compute rdf all rdf {round(1.2 / 0.01)}" in text
    assert f"c_rdf[*] file {lammps.RDF_FILE} mode vector" in text
    assert f"c_thermo_press file {lammps.PRESSURE_FILE}" in text
    assert "dump" not in text
    assert s.block_steps == 1000 and s.equilibration_end == 0 and s.final_step == 4000
    # equilibrate, then count sampling steps from 0
    assert text.index("run 1000\n") < text.index("reset_timestep 0\nfix pressure_avg")
    assert "run 4000 upto" in text


def test_production_input_dumps_unwrapped_and_writes_restarts(tmp_path):
    s = settings(stage="production", run_steps=20000, dump_every=200, restart_every=3000)
    text = lammps.write_input(tmp_path / "in", s).read_text()
    assert s.interval_steps == 3000  # multiple of dump_every (200) and sample_every (10)
    assert f"restart {s.interval_steps} restart.*" in text
    assert f"dump traj all custom 200 {lammps.DUMP_FILE} id type xu yu zu" in text
    assert "fix integrate all nvt temp 298.15 298.15 5000" in text
    assert "compute rdf" not in text
    # restarts only after the minimisation
    assert text.index("minimize") < text.index("restart ")
    cont = lammps.write_input(tmp_path / "in2", lammps.LammpsRunSettings(
        **{**s.__dict__, "restart_file": "restart.6000", "restart_step": 6000})).read_text()
    assert "read_restart restart.6000" in cont and "read_data" not in cont
    assert "minimize" not in cont and "velocity" not in cont
    assert "langevin" not in cont  # already past equilibration
    assert "append yes" in cont and f"run {s.final_step} upto" in cont


def test_settings_name_bad_field():
    with pytest.raises(InvalidInputError, match="dt_fs"):
        settings(dt_fs=-1.0)
    with pytest.raises(InvalidInputError, match="stage"):
        settings(stage="npt")


# --- command ------------------------------------------------------------------------------


@needs_lmp
def test_lammps_command_and_version(monkeypatch):
    cmd = lammps.lammps_command("in.x", "log.x")
    assert cmd[1:] == ["-in", "in.x", "-log", "log.x", "-screen", "none", "-nocite"]
    assert Path(cmd[0]).name == "lmp"
    assert lammps.lammps_version()[0].isdigit()
    two = lammps.lammps_command(threads=2)
    assert "2" in two and ("-np" in two or "omp" in two)
    with pytest.raises(InvalidInputError, match="threads"):
        lammps.lammps_command(threads=0)


def test_missing_executable_is_an_engine_error(monkeypatch):
    monkeypatch.setenv("CGFLOW_LMP", "no-such-lammps-binary")
    with pytest.raises(EngineError, match="no-such-lammps-binary"):
        lammps.lammps_executable()


# --- logs and block files -----------------------------------------------------------------


def test_parse_normal_log():
    info = lammps.parse_lammps_log(NORMAL_RUN / "log.lammps")
    assert info.finished and info.error is None
    assert info.version and "2021" in info.version
    assert len(info.thermo) == 3  # minimisation, equilibration, sampling
    last = info.thermo[-1]
    assert {"Step", "Temp", "Press", "PotEng"} <= set(last)
    assert info.last_step == int(last["Step"][-1]) == 1000
    assert 250 < last["Temp"].mean() < 350
    assert info.performance_ns_day and info.performance_ns_day > 0
    assert len(info.loop_times_s) == 3 and info.wall_time_s > 0
    # the table check warns at inflection points of the spline
    assert any("inconsistent with -dE/dr" in w for w in info.warnings)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("engine_lost_atoms", "Lost atoms"),
        ("engine_table_inner_cutoff", "Pair distance < table inner cutoff"),
        ("engine_missing_table", "cannot open pair table potential file"),
    ],
)
def test_parse_failure_logs(case, message):
    info = lammps.parse_lammps_log(FAILURES / case / "log.lammps")
    assert not info.finished
    assert info.error is not None and message in info.error


def test_parse_killed_log_and_find_restart():
    info = lammps.parse_lammps_log(FAILURES / "engine_killed" / "log.lammps")
    assert not info.finished and info.error is None
    newest = max(int(p.name.split(".")[1]) for p in (FAILURES / "engine_killed").glob("restart.*"))
    assert info.last_step is not None and info.last_step >= newest >= 1000
    path, step = lammps.latest_restart(FAILURES / "engine_killed")
    assert step == newest and path.name == f"restart.{newest}"


def test_read_block_files():
    steps, rdf = lammps.read_block_file(NORMAL_RUN / lammps.RDF_FILE)
    assert steps.tolist() == [500, 1000]
    assert rdf.shape == (2, 120, 3)  # bins: r, g, coordination
    np.testing.assert_allclose(rdf[0, :, 0], (np.arange(120) + 0.5) * 0.1)
    assert rdf[:, -20:, 1].mean() == pytest.approx(1.0, abs=0.1)
    steps, p = lammps.read_block_file(NORMAL_RUN / lammps.PRESSURE_FILE)
    assert steps.tolist() == [500, 1000] and p.shape == (2,)


def test_prepare_continuation_truncates_outputs(tmp_path):
    work = tmp_path / "engine_killed"
    shutil.copytree(FAILURES / "engine_killed", work)
    s = settings(stage="production", equilibration_steps=200, run_steps=400000,
                 dump_every=500, restart_every=1000, rcut_nm=1.2, table_points=221)
    _, newest = lammps.latest_restart(work)
    cont = lammps.prepare_continuation(work, s)
    assert cont is not None and cont.restart_step == newest
    text = (work / lammps.INPUT_FILE).read_text()
    assert f"read_restart restart.{newest}" in text
    assert not (work / lammps.PRESSURE_FILE).exists()
    steps, _ = lammps.read_block_file(work / lammps.PRESSURE_FILE)
    assert steps.max() <= newest
    dump_steps = [int(x) for x in _dump_steps(work / lammps.DUMP_FILE)]
    assert dump_steps and max(dump_steps) < newest
    assert dump_steps == sorted(set(dump_steps))


def test_second_continuation_keeps_earlier_blocks(tmp_path):
    work = tmp_path / "engine_killed"
    shutil.copytree(FAILURES / "engine_killed", work)
    s = settings(stage="production", equilibration_steps=200, run_steps=400000,
                 dump_every=500, restart_every=1000, rcut_nm=1.2, table_points=221)
    cont = lammps.prepare_continuation(work, s)
    first, _ = lammps.read_block_file(work / lammps.PRESSURE_FILE)
    # the continuation was killed again before writing a new restart file
    (work / lammps.PRESSURE_FILE).write_text(
        "# Time-averaged data for fix pressure_avg\n# TimeStep c_thermo_press\n"
        f"{cont.restart_step + 1000} 400.0\n")
    lammps.prepare_continuation(work, s)
    assert (work / (lammps.PRESSURE_FILE + ".part2")).exists()
    again, _ = lammps.read_block_file(work / lammps.PRESSURE_FILE)
    assert again.tolist() == first.tolist() and first.max() == cont.restart_step


def _dump_steps(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [lines[i + 1] for i, ln in enumerate(lines) if ln.startswith("ITEM: TIMESTEP")]


# --- real runs ----------------------------------------------------------------------------


def _small_run_dir(tmp_path: Path, **kw) -> tuple[Path, lammps.LammpsRunSettings]:
    work = tmp_path / "run"
    work.mkdir()
    r, u, f = lj_potential().tabulate(0.002)
    lammps.write_table(work / lammps.TABLE_FILE, r, u, f)
    box = lammps.box_length_nm(216, 723.0, 114.23)
    lammps.write_data(work / lammps.DATA_FILE, 216, box, 114.23, seed=2)
    s = settings(table_points=r.size, **kw)
    lammps.write_input(work / lammps.INPUT_FILE, s)
    return work, s


@needs_lmp
@pytest.mark.engine
def test_lammps_accepts_table_and_samples(tmp_path):
    work, s = _small_run_dir(tmp_path, equilibration_steps=100, run_steps=400, n_blocks=2)
    lammps.run_command(lammps.lammps_command(), work)
    info = lammps.parse_lammps_log(work / lammps.LOG_FILE)
    assert info.finished and info.last_step == s.final_step
    steps, rdf = lammps.read_block_file(work / lammps.RDF_FILE)
    assert steps.tolist() == [s.equilibration_end + s.block_steps, s.final_step]
    assert rdf[:, :40, 1].max() < 0.01  # nothing inside 0.4 nm with this core
    assert (work / lammps.FINAL_DATA_FILE).exists()


@needs_lmp
@pytest.mark.engine
def test_run_command_raises_with_command_code_and_log(tmp_path):
    work, _ = _small_run_dir(tmp_path, equilibration_steps=100, run_steps=200, n_blocks=1)
    (work / lammps.TABLE_FILE).unlink()
    cmd = lammps.lammps_command()
    with pytest.raises(EngineError) as err:
        lammps.run_command(cmd, work)
    msg = str(err.value)
    assert "in.lammps" in msg and "exit code 1" in msg
    assert "cannot open pair table" in msg and "tail of log.lammps" in msg


@needs_lmp
@pytest.mark.engine
def test_production_continues_from_restart(tmp_path):
    work, s = _small_run_dir(tmp_path, stage="production", equilibration_steps=100,
                             run_steps=1500, dump_every=50, restart_every=500)
    lammps.run_command(lammps.lammps_command(), work)
    full = _dump_steps(work / lammps.DUMP_FILE)
    # pretend the run was killed just after writing restart.1000
    for p in work.glob("restart.*"):
        if int(p.name.split(".")[1]) > 1000:
            p.unlink()
    (work / lammps.FINAL_DATA_FILE).unlink()
    cont = lammps.prepare_continuation(work, s)
    assert cont is not None and cont.restart_step == 1000
    lammps.run_command(lammps.lammps_command(), work)
    assert lammps.parse_lammps_log(work / lammps.LOG_FILE).finished
    steps = _dump_steps(work / lammps.DUMP_FILE)
    assert steps == full  # every frame once, in order, up to the final step
    p_steps, _ = lammps.read_block_file(work / lammps.PRESSURE_FILE)
    expected = list(range(s.equilibration_end + s.block_steps, s.final_step + 1, s.block_steps))
    assert p_steps.tolist() == expected
