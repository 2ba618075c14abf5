"""Tests of the GROMACS engine layer: time step, mdp files, commands, log parsing, and a
real shortened pipeline (build -> em -> nvt -> npt -> production) on the tiny preset."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from cgflow import units
from cgflow.engines import gromacs as g
from cgflow.engines import gromacs_output as gout
from cgflow.errors import EngineError, InvalidInputError
from cgflow.params import OPLSAA_REFERENCE, SPACES
from cgflow.presets import get_aa_preset

HAVE_GMX = shutil.which("gmx") is not None
needs_gmx = pytest.mark.skipif(not HAVE_GMX, reason="GROMACS not installed")

TINY = get_aa_preset("tiny")
DEMO = get_aa_preset("demo")


# --- time step -----------------------------------------------------------------------------------


def test_timestep_reference_is_1fs():
    assert g.choose_timestep(OPLSAA_REFERENCE, DEMO) == pytest.approx(0.001, abs=1e-12)
    periods = g.vibration_periods_ps(OPLSAA_REFERENCE)
    # OPLS-AA C-H stretch: about 11.4 fs (2940 cm^-1), the fastest vibration
    assert units.ps_to_fs(periods["bond_cthc_k"]) == pytest.approx(11.36, abs=0.05)
    assert min(periods, key=periods.get) == "bond_cthc_k"


def test_timestep_stiffest_wide_ch_bond():
    wide = SPACES["wide"]
    k_max = wide.bounds["bond_cthc_k"].high
    assert units.bond_k_gromacs_to_lammps(k_max) == pytest.approx(990.0)
    ps = OPLSAA_REFERENCE.model_copy(update={"bond_cthc_k": k_max})
    dt = g.choose_timestep(ps, DEMO)
    assert 0.0005 <= dt <= 0.00065
    # a multiple of 0.05 fs
    assert units.ps_to_fs(dt) / 0.05 == pytest.approx(round(units.ps_to_fs(dt) / 0.05), abs=1e-6)


def test_timestep_angles_count_and_cap():
    # a stiff H-C-H bend on short C-H bonds becomes the fastest vibration
    ps = OPLSAA_REFERENCE.model_copy(update={
        "bond_cthc_k": 40000.0, "bond_cthc_r0": 0.07, "angle_hcthc_k": 800.0,
        "angle_hcthc_theta0": 75.0})
    periods = g.vibration_periods_ps(ps)
    assert min(periods, key=periods.get) == "angle_hcthc_k"
    dt = g.choose_timestep(ps, DEMO)
    assert dt <= periods["angle_hcthc_k"] / 11.0 + 1e-12
    # soft parameters: capped by the preset
    soft = OPLSAA_REFERENCE.model_copy(update={"bond_cthc_k": 50000.0, "bond_ctct_k": 50000.0})
    assert g.choose_timestep(soft, DEMO) == DEMO.dt_max_ps
    assert g.choose_timestep(soft, DEMO.model_copy(update={"dt_max_ps": 0.0015})) > 0.001


def test_timestep_whole_wide_space_is_reasonable():
    dts = [g.choose_timestep(ps, DEMO) for ps in SPACES["wide"].sample(50, seed=0)]
    assert min(dts) >= 0.0004 and max(dts) <= 0.001


def test_timestep_rejects_absurd_stiffness():
    ps = OPLSAA_REFERENCE.model_copy(update={"bond_cthc_k": 1.0e9})
    with pytest.raises(InvalidInputError, match="bond_cthc_k"):
        g.choose_timestep(ps, DEMO)


# --- mdp files -----------------------------------------------------------------------------------


def test_mdp_stages(tmp_path):
    dt = 0.0008
    opts = {}
    for stage in g.STAGES:
        path = g.write_mdp(stage, DEMO, dt, tmp_path / f"{stage}.mdp",
                           continuation=stage in ("npt", "production"))
        opts[stage] = g.read_mdp(path)
    for o in opts.values():
        assert o["constraints"] == "none"
        assert o["cutoff-scheme"] == "Verlet" and o["coulombtype"] == "PME"
        assert float(o["rcoulomb"]) == float(o["rvdw"]) == DEMO.rcut_nm
        assert o["dispcorr"] == "EnerPres"
    em = opts["em"]
    assert em["integrator"] == "steep" and int(em["nsteps"]) == DEMO.em_steps
    assert float(em["emtol"]) == 100.0
    nvt, npt, prod = opts["nvt"], opts["npt"], opts["production"]
    for o, length in ((nvt, DEMO.nvt_ps), (npt, DEMO.npt_ps), (prod, DEMO.production_ps)):
        assert o["integrator"] == "md" and float(o["dt"]) == dt
        assert int(o["nsteps"]) == round(length / dt)
        assert o["tcoupl"] == "V-rescale" and float(o["ref-t"]) == 298.15
        nste, nstc = int(o["nstenergy"]), int(o["nstcalcenergy"])
        assert abs(nste - DEMO.energy_interval_ps / dt) <= 5 and nste % 10 == 0
        assert nste % nstc == 0 and 10 <= nstc <= 100
    assert nvt["pcoupl"] == "no" and nvt["gen-vel"] == "yes" and nvt["gen-seed"] == "20240"
    for o in (npt, prod):
        assert o["pcoupl"] == "C-rescale" and o["gen-vel"] == "no" and o["continuation"] == "yes"
        assert float(o["ref-p"]) == 1.0 and float(o["compressibility"]) == pytest.approx(1e-4)
        assert 2.0 <= float(o["tau-p"]) <= 5.0
    assert int(prod["nstxout-compressed"]) == round(DEMO.traj_interval_ps / dt)
    assert int(npt["nstxout-compressed"]) == 0
    assert {k: v for k, v in npt.items() if k != "nsteps" and k != "nstxout-compressed"} == {
        k: v for k, v in prod.items()
        if k not in ("nsteps", "nstxout-compressed", "compressed-x-precision")}


def test_mdp_options_and_errors(tmp_path):
    o = g.read_mdp(g.write_mdp("nvt", TINY, 0.001, tmp_path / "a.mdp", nsteps=17,
                               continuation=True, gen_seed=5))
    assert o["nsteps"] == "17" and o["gen-vel"] == "no" and "gen-seed" not in o
    o = g.read_mdp(g.write_mdp("em", TINY, 0.001, tmp_path / "b.mdp", nsteps=3))
    assert o["nsteps"] == "3"
    with pytest.raises(InvalidInputError, match="stage"):
        g.write_mdp("md", TINY, 0.001, tmp_path / "c.mdp")
    with pytest.raises(InvalidInputError, match="dt_ps"):
        g.write_mdp("nvt", TINY, -1.0, tmp_path / "c.mdp")
    with pytest.raises(InvalidInputError, match="nsteps"):
        g.write_mdp("nvt", TINY, 0.001, tmp_path / "c.mdp", nsteps=-2)
    with pytest.raises(InvalidInputError, match="traj_interval_ps"):
        g.write_mdp("production", TINY.model_copy(update={"traj_interval_ps": 1e-5}), 0.001,
                    tmp_path / "c.mdp")


# --- commands ------------------------------------------------------------------------------------


@needs_gmx
def test_commands():
    cmd = g.grompp_command("nvt.mdp", "em.gro", "topol.top", "nvt.tpr")
    assert Path(cmd[0]).name.startswith("gmx") and cmd[1] == "grompp"
    assert cmd[cmd.index("-f") + 1] == "nvt.mdp" and cmd[cmd.index("-o") + 1] == "nvt.tpr"
    assert cmd[cmd.index("-po") + 1] == "nvt.mdout.mdp"
    assert "-t" not in cmd and cmd[-2:] == ["-maxwarn", "0"]
    cmd = g.grompp_command("p.mdp", "npt.gro", "topol.top", "prod.tpr", checkpoint="npt.cpt",
                           maxwarn=1)
    assert cmd[cmd.index("-t") + 1] == "npt.cpt" and cmd[-1] == "1"
    cmd = g.mdrun_command("prod", threads=2, maxh=1.5, checkpoint_in="prod.cpt", cpt_minutes=2)
    assert cmd[1:3] == ["mdrun", "-deffnm"] and cmd[3] == "prod"
    for flag, value in (("-ntomp", "2"), ("-ntmpi", "1"), ("-pin", "off"), ("-maxh", "1.5"),
                        ("-cpt", "2"), ("-cpi", "prod.cpt")):
        assert cmd[cmd.index(flag) + 1] == value
    assert "-cpi" not in g.mdrun_command("nvt", threads=1, maxh=1)
    with pytest.raises(InvalidInputError, match="threads"):
        g.mdrun_command("nvt", threads=0, maxh=1)
    assert g.STAGE_DEFFNM == {"em": "em", "nvt": "nvt", "npt": "npt", "production": "prod"}


def test_find_gmx_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv(g.GMX_ENV_VAR, str(tmp_path / "no-such-gmx"))
    with pytest.raises(EngineError, match="CGFLOW_GMX"):
        g.find_gmx()
    fake = tmp_path / "mygmx"
    fake.write_text("#!/bin/sh\necho 'GROMACS version:    2099.1-test'\n")
    fake.chmod(0o755)
    monkeypatch.setenv(g.GMX_ENV_VAR, str(fake))
    assert g.find_gmx() == str(fake)
    assert g.gromacs_version() == "2099.1-test"


@needs_gmx
def test_gromacs_version():
    assert g.gromacs_version().startswith("20")


def test_run_command_failure(tmp_path):
    code = "import sys; print('line one'); print('boom', file=sys.stderr); sys.exit(3)"
    with pytest.raises(EngineError) as exc:
        g.run_command([sys.executable, "-c", code], tmp_path, "out.log")
    msg = str(exc.value)
    assert "exit code 3" in msg and "boom" in msg and sys.executable in msg
    assert "line one" in (tmp_path / "out.log").read_text()
    res = g.run_command([sys.executable, "-c", "print(input())"], tmp_path, "ok.log",
                        input_text="hello\n")
    assert res.returncode == 0 and res.stdout.strip() == "hello"
    with pytest.raises(EngineError, match="could not be started"):
        g.run_command([str(tmp_path / "missing-exe")], tmp_path, "x.log")


# --- md.log parsing ------------------------------------------------------------------------------

FATAL_LOG = """\
                      :-) GROMACS - gmx mdrun, 2022.5-Debian_2022.5_2 (-:
GROMACS version:    2022.5-Debian_2022.5_2
   nsteps                         = 5000

           Step           Time
              0        0.00000

-------------------------------------------------------
Program:     gmx mdrun, version 2022.5-Debian_2022.5_2
Source file: src/gromacs/mdlib/sim_util.cpp (line 770)

Fatal error:
Step 1: The total potential energy is nan, which is not finite. The LJ and
electrostatic contributions to the energy are 0 and -6442.62, respectively.

For more information and tips for troubleshooting, please check the GROMACS
website at http://www.gromacs.org/Documentation/Errors
-------------------------------------------------------
"""


def test_parse_md_log_fatal(tmp_path):
    p = tmp_path / "md.log"
    p.write_text(FATAL_LOG)
    info = gout.parse_md_log(p)
    assert info.gromacs_version == "2022.5-Debian_2022.5_2"
    assert not info.finished and not info.completed
    assert info.steps_requested == 5000 and info.last_step == 0
    assert info.fatal_error.startswith("Step 1: The total potential energy is nan")
    assert "respectively." in info.fatal_error and "For more information" not in info.fatal_error
    assert info.ns_per_day is None
    with pytest.raises(EngineError, match="cannot read"):
        gout.parse_md_log(tmp_path / "missing.log")


# --- system building ----------------------------------------------------------------------------


def test_box_size_check():
    assert g.check_box_size(TINY) > 2.0 * (TINY.rcut_nm + 0.1)
    with pytest.raises(InvalidInputError, match="n_molecules.*27.*rcut_nm.*1.0"):
        g.check_box_size(TINY.model_copy(update={"n_molecules": 27}))
    with pytest.raises(InvalidInputError, match="rcut_nm"):
        g.check_box_size(TINY.model_copy(update={"rcut_nm": 1.4}))
    # 0.72 g/cm^3 and 114.23 g/mol: 64 molecules fill (2.56 nm)^3
    assert g.box_edge_nm(64, 0.72) == pytest.approx(2.564, abs=0.002)


def test_build_system_rejects_small_box_before_writing(tmp_path):
    with pytest.raises(InvalidInputError, match="n_molecules"):
        g.build_system(OPLSAA_REFERENCE, TINY.model_copy(update={"n_molecules": 27}),
                       tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _gro_atoms_and_box(path: Path) -> tuple[int, np.ndarray, list[float]]:
    lines = path.read_text().splitlines()
    n = int(lines[1])
    x = np.array([[float(ln[20 + 8 * k:28 + 8 * k]) for k in range(3)] for ln in lines[2:2 + n]])
    return n, x, [float(v) for v in lines[2 + n].split()]


def _run_stage(run: Path, stage: str, preset, dt: float, prev: str, nsteps: int | None = None):
    d = g.STAGE_DEFFNM[stage]
    cont = stage in ("npt", "production")
    g.write_mdp(stage, preset, dt, run / f"{d}.mdp", continuation=cont, nsteps=nsteps)
    g.run_command(g.grompp_command(f"{d}.mdp", f"{prev}.gro", g.TOPOLOGY_TOP, f"{d}.tpr",
                                   checkpoint=f"{prev}.cpt" if cont else None),
                  run, f"grompp_{d}.log")
    g.run_command(g.mdrun_command(d, threads=1, maxh=0.2), run, f"mdrun_{d}.out")
    return gout.parse_md_log(run / f"{d}.log")


@pytest.mark.engine
@needs_gmx
def test_tiny_pipeline(tmp_path):
    import pyedr

    preset = TINY.model_copy(update={"em_steps": 300, "nvt_ps": 0.2, "npt_ps": 0.3,
                                     "production_ps": 0.3, "traj_interval_ps": 0.1,
                                     "energy_interval_ps": 0.02})
    run = tmp_path / "run"
    files = g.build_system(OPLSAA_REFERENCE, preset, run)
    assert files.box_gro == run / g.BOX_GRO and files.topology == run / g.TOPOLOGY_TOP
    assert files.molecule_gro.exists()
    n, x, box = _gro_atoms_and_box(files.box_gro)
    assert n == 64 * 26
    assert box == pytest.approx([files.box_edge_nm] * 3, abs=1e-3)
    assert np.all(x > -0.5) and np.all(x < files.box_edge_nm + 0.5)
    # the box is at least at the build density
    density = 64 * 114.232 / (units.AVOGADRO * (files.box_edge_nm * 1e-7) ** 3)
    assert density == pytest.approx(preset.build_density_g_cm3, rel=0.2)

    dt = g.choose_timestep(OPLSAA_REFERENCE, preset)
    em = _run_stage(run, "em", preset, dt, "box")
    assert em.finished and em.completed and em.fatal_error is None
    assert em.gromacs_version == g.gromacs_version()
    prev = "em"
    for stage in ("nvt", "npt", "production"):
        info = _run_stage(run, stage, preset, dt, prev)
        d = g.STAGE_DEFFNM[stage]
        length = {"nvt": preset.nvt_ps, "npt": preset.npt_ps,
                  "production": preset.production_ps}[stage]
        assert info.finished and info.completed, stage
        assert info.steps_requested == info.last_step == round(length / dt)
        assert info.ns_per_day > 0 and info.hours_per_ns == pytest.approx(
            24.0 / info.ns_per_day, rel=0.02)
        assert info.wall_time_s > 0
        for ext in ("gro", "edr", "cpt", "log", "tpr"):
            assert (run / f"{d}.{ext}").exists(), (stage, ext)
        prev = d
    assert (run / "prod.xtc").exists() and not (run / "npt.xtc").exists()
    e = pyedr.edr_to_dict(str(run / "prod.edr"))
    assert len(e["Time"]) == round(preset.production_ps / preset.energy_interval_ps) + 1
    for key in ("Pres-XX", "Pres-YY", "Pres-ZZ", "Pres-XY", "Density", "Volume"):
        assert key in e
    assert 300.0 < float(np.mean(e["Density"])) < 900.0  # kg/m^3, compressing from 600
    assert 200.0 < float(np.mean(e["Temperature"])) < 400.0


@pytest.mark.engine
@needs_gmx
def test_wide_space_samples_build_and_minimise(tmp_path):
    preset = TINY.model_copy(update={"em_steps": 150})
    for k, ps in enumerate(SPACES["wide"].sample(3, seed=0)):
        run = tmp_path / f"w{k}"
        g.build_system(ps, preset, run)
        info = _run_stage(run, "em", preset, g.choose_timestep(ps, preset), "box")
        assert info.finished and info.fatal_error is None, k
        assert (run / "em.gro").exists()
        n, x, _ = _gro_atoms_and_box(run / "em.gro")
        assert n == 64 * 26 and np.all(np.isfinite(x))
        assert info.last_step is not None and info.last_step > 0
        if k == 2:  # the dynamics inputs are accepted without warnings at this time step
            dt = g.choose_timestep(ps, preset)
            assert dt < 0.001
            for stage in ("nvt", "production"):
                g.write_mdp(stage, preset, dt, run / f"{stage}.mdp")
                g.run_command(g.grompp_command(f"{stage}.mdp", "em.gro", g.TOPOLOGY_TOP,
                                               f"{stage}.tpr"), run, f"grompp_{stage}.log")
                assert (run / f"{stage}.tpr").exists()


@pytest.mark.parametrize("line, converged, steps", [
    ("Steepest Descents converged to Fmax < 100 in 378 steps", True, 378),
    ("Steepest Descents converged to machine precision in 41 steps,\n"
     "but did not reach the requested Fmax < 100.", False, 41),
    ("Steepest Descents did not converge to Fmax < 100 in 151 steps.", False, 151),
])
def test_parse_md_log_minimisation(tmp_path, line, converged, steps):
    p = tmp_path / "em.log"
    p.write_text(f"GROMACS version:    2022.5\n   nsteps = 150\n\n{line}\n"
                 "Potential Energy  = -9.19e+00\n\nFinished mdrun on rank 0 Wed Nov 25\n")
    info = gout.parse_md_log(p)
    assert info.converged is converged and info.last_step == steps
    assert info.finished and info.completed and info.ns_per_day is None


def test_parse_md_log_stopped_by_maxh(tmp_path):
    p = tmp_path / "prod.log"
    p.write_text(
        "GROMACS version:    2022.5\n   nsteps                         = 100000\n"
        "           Step           Time\n           4000        4.00000\n\n"
        "Step 4180: Run time exceeded 0.010 hours, will terminate the run within 10 steps\n"
        "           Step           Time\n           4190        4.19000\n\n"
        "               Core t (s)   Wall t (s)        (%)\n"
        "       Time:       72.114       36.060      200.0\n"
        "                 (ns/day)    (hour/ns)\n"
        "Performance:       10.040        2.390\n\nFinished mdrun on rank 0 Wed Nov 25\n")
    info = gout.parse_md_log(p)
    assert info.finished and not info.completed
    assert info.last_step == info.steps_done == 4190 and info.steps_requested == 100000
    assert info.wall_time_s == 36.06 and info.ns_per_day == 10.04 and info.hours_per_ns == 2.39


@pytest.mark.engine
@needs_gmx
def test_build_system_reports_failed_insertion(tmp_path):
    crowded = TINY.model_copy(update={"build_density_g_cm3": 4.0})
    with pytest.raises(EngineError, match="placed fewer than 64 molecules after 1 attempts") as exc:
        g.build_system(OPLSAA_REFERENCE, crowded, tmp_path / "run", max_attempts=1)
    assert "Added" in str(exc.value) and "Try " not in str(exc.value)
    assert not (tmp_path / "run" / g.BOX_GRO).exists()


def test_run_command_timeout(tmp_path):
    code = "import time; print('started', flush=True); time.sleep(30)"
    with pytest.raises(EngineError, match="timed out after 1 s") as exc:
        g.run_command([sys.executable, "-c", code], tmp_path, "slow.log", timeout_s=1)
    assert "started" in str(exc.value)
