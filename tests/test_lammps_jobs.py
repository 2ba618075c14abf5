"""LAMMPS under Custodian: table repairs, error handlers on canned failures, the job, the
validator and run_lammps on real failures (engine tests).

The canned cases under tests/data/lammps_failures/ are real LAMMPS runs made by
tests/data/lammps_failures/make_job_cases.py (see its docstring for each case).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from monty.json import MontyDecoder

from cgflow.engines import lammps as eng
from cgflow.errors import EngineError, InvalidInputError
from cgflow.ibi import table_repair as tr
from cgflow.jobs.lammps import state as rd
from cgflow.jobs.lammps.handlers import (
    LostAtomsHandler,
    RestartContinueHandler,
    TableRangeHandler,
    interruption,
)
from cgflow.jobs.lammps.job import LammpsJob, LammpsOutputValidator, run_lammps
from cgflow.jobs.lifetime import tied_to_parent

CASES = Path(__file__).parent / "data" / "lammps_failures"
HAVE_LMP = shutil.which(os.environ.get("CGFLOW_LMP", "lmp")) is not None


def case(name: str, tmp_path: Path) -> Path:
    """A writable copy of a canned case."""
    d = tmp_path / name
    shutil.copytree(CASES / name, d)
    return d


def _case_maker():
    """The script that made the canned cases (its potentials are reused here)."""
    spec = importlib.util.spec_from_file_location("make_job_cases", CASES / "make_job_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MAKER = _case_maker()
lj = _MAKER.lj
holed = _MAKER.holed


def handlers() -> list:
    return [TableRangeHandler(), LostAtomsHandler(), RestartContinueHandler()]


def triggered(d: Path) -> list[str]:
    return [type(h).__name__ for h in handlers() if h.check(d)]


# --- table repairs ------------------------------------------------------------------------


def test_diagnose_core_sound_soft_and_absent():
    r = np.linspace(0.3, 1.5, 241)
    u, _ = lj(r)
    sound = tr.diagnose_core(r, u)
    assert sound is not None and sound.sound
    assert u[sound.anchor_index] - u[-1] >= tr.ANCHOR_ENERGY_KJ_MOL
    assert u[sound.anchor_index + 1] - u[-1] < tr.ANCHOR_ENERGY_KJ_MOL  # outermost such point

    r2 = np.linspace(0.01, 1.5, 300)
    soft = tr.diagnose_core(r2, holed(r2)[0])
    assert soft is not None and not soft.sound and "too soft" in soft.reason
    assert 0.55 < soft.r_anchor_nm < 0.6

    assert tr.diagnose_core(r, -np.exp(-r)) is None  # purely attractive


def test_stiffen_core_is_continuous_monotonic_and_consistent():
    r = np.linspace(0.01, 1.5, 1491)
    u, f = holed(r)
    r2, u2, f2, rep = tr.stiffen_core(r, u, f, factor=2.0)
    a = rep.n_points_replaced
    assert a > 0 and np.isclose(r2[a], rep.r_anchor_nm)
    np.testing.assert_array_equal(u2[a:], u[a:])  # nothing outside the anchor changes
    assert np.all(np.diff(u2[: a + 1]) < 0)  # monotonic wall inside it
    # forces consistent with -dU/dr inside the wall (central differences, away from r_a)
    mid = slice(a // 2, a - 2)
    fd = -(u2[2:] - u2[:-2]) / (r2[2:] - r2[:-2])
    np.testing.assert_allclose(f2[1:-1][mid][-20:], fd[mid][-20:], rtol=2e-3)
    # harder than the original table just inside the anchor, and a sound core now
    assert u2[a - 5] > u[a - 5]
    assert tr.diagnose_core(r2, u2).sound
    # a larger factor gives a harder wall
    _, u4, _, rep4 = tr.stiffen_core(r, u, f, factor=4.0)
    assert rep4.force_kj_mol_nm == pytest.approx(2 * rep.force_kj_mol_nm)
    assert u4[a - 5] > u2[a - 5]


def test_stiffen_core_rejects_bad_input():
    r = np.linspace(0.3, 1.5, 50)
    u, f = lj(r)
    with pytest.raises(InvalidInputError, match="factor"):
        tr.stiffen_core(r, u, f, factor=0.5)
    with pytest.raises(InvalidInputError, match="no repulsive core"):
        tr.stiffen_core(r, -np.exp(-r), -np.exp(-r))
    with pytest.raises(InvalidInputError, match="same length"):
        tr.stiffen_core(r, u[:-1], f)


def test_extend_inward_and_outward_keep_the_grid():
    r = np.linspace(0.5, 1.5, 101)
    u, f = lj(r)
    r2, u2, f2 = tr.extend_inward(r, u, f, 0.37)
    dr = r[1] - r[0]
    assert r2[0] <= 0.37 + 1e-12 and r2[0] > 0.37 - dr
    np.testing.assert_allclose(np.diff(r2), dr, rtol=1e-9)
    np.testing.assert_array_equal(u2[-r.size:], u)
    k = r2.size - r.size
    assert np.all(np.diff(u2[: k + 1]) < 0) and u2[k - 1] > u[0]
    f_edge = max(f[0], tr.MIN_CORE_FORCE_KJ_MOL_NM)
    assert f2[k - 1] == pytest.approx(f_edge * (r[0] / r2[k - 1]) ** 13)

    r3, u3, f3 = tr.extend_outward(r, u, f, 1.63)
    assert r3[-1] >= 1.63 and r3[-1] < 1.63 + dr
    assert np.all(u3[r.size:] == 0) and np.all(f3[r.size:] == 0)
    assert tr.tail_is_zero(u, np.zeros_like(f)) and not tr.tail_is_zero(u + 1.0, f)
    with pytest.raises(InvalidInputError, match="r_min_nm"):
        tr.extend_inward(r, u, f, -0.1)


# --- handlers on canned failures ----------------------------------------------------------


def test_each_canned_failure_triggers_only_its_handler(tmp_path):
    expected = {
        "lost_atoms_soft_core": ["LostAtomsHandler"],
        "lost_atoms_large_dt": ["LostAtomsHandler"],
        "table_inner_cutoff": ["TableRangeHandler"],
        "table_outer_cutoff": ["TableRangeHandler"],
        "killed_with_restart": ["RestartContinueHandler"],
        "walltime_stop": ["RestartContinueHandler"],
        "finished_ibi": [],
    }
    for name, want in expected.items():
        assert triggered(case(name, tmp_path)) == want, name


def test_lost_atoms_soft_core_stiffens_the_table(tmp_path):
    d = case("lost_atoms_soft_core", tmp_path)
    h = LostAtomsHandler()
    assert "Lost atoms: original 343" in h.diagnose(d)
    before = eng.read_table(d / "pair.table")
    assert not tr.diagnose_core(before[0], before[1]).sound
    out = h.correct(d)
    assert out["actions"][0]["action"]["_stiffen_core"]["factor"] == 2.0
    assert "too soft" in " ".join(out["errors"])
    r, u, _ = eng.read_table(d / "pair.table")
    assert tr.diagnose_core(r, u).sound
    original = (CASES / "lost_atoms_soft_core/pair.table").read_text()
    assert (d / "pair.table.orig").read_text() == original
    # the failed attempt is archived; the input is unchanged (same settings, fresh run)
    assert (d / "attempts/1/log.lammps").exists() and not (d / "log.lammps").exists()
    assert (d / "in.lammps").read_text() == (CASES / "lost_atoms_soft_core/in.lammps").read_text()
    assert rd.load_state(d)["lost_atoms"] == {"core_stiffenings": 1, "dt_halvings": 0}


def test_lost_atoms_with_a_sound_core_halves_the_time_step(tmp_path):
    d = case("lost_atoms_large_dt", tmp_path)  # hand-written input, no settings
    table_before = (d / "pair.table").read_text()
    out = LostAtomsHandler().correct(d)
    assert out["actions"][0]["action"]["_set"]["timestep_fs"] == 50.0
    assert rd.timestep_fs(d / "in.lammps") == 50.0
    assert any(w == ["run", "10000"] for w in rd.input_commands(d / "in.lammps"))
    assert (d / "pair.table").read_text() == table_before
    assert not list(d.glob("restart.*")) and list((d / "attempts/1").glob("restart.*"))


def test_lost_atoms_halving_rescales_the_settings(tmp_path):
    d = case("lost_atoms_soft_core", tmp_path)
    s0 = rd.load_settings(d)
    rd.save_state(d, {"lost_atoms": {"core_stiffenings": 2, "dt_halvings": 0}})
    LostAtomsHandler().correct(d)
    s1 = rd.load_settings(d)
    assert s1.dt_fs == s0.dt_fs / 2
    assert s1.final_step == 2 * s0.final_step
    assert s1.block_steps == 2 * s0.block_steps
    assert s1.final_step * s1.dt_fs == s0.final_step * s0.dt_fs  # same simulated time
    assert rd.timestep_fs(d / "in.lammps") == s1.dt_fs
    assert f"run {s1.final_step} upto" in (d / "in.lammps").read_text()


def test_lost_atoms_gives_up_at_its_limits(tmp_path):
    d = case("lost_atoms_large_dt", tmp_path)
    rd.save_state(d, {"lost_atoms": {"core_stiffenings": 0, "dt_halvings": 2}})
    out = LostAtomsHandler().correct(d)
    assert out["actions"] == []
    assert "gave up after 0 core stiffening(s) and 2 time-step halving(s)" in out["errors"][-1]
    d2 = case("lost_atoms_soft_core", tmp_path / "b")
    out = LostAtomsHandler(max_core_stiffenings=0, min_dt_fs=4.0).correct(d2)
    assert out["actions"] == [] and "Lost atoms" in out["errors"][0]


def test_table_inner_cutoff_extends_the_table(tmp_path):
    d = case("table_inner_cutoff", tmp_path)
    r0, _, _ = eng.read_table(d / "pair.table")
    out = TableRangeHandler().correct(d)
    act = out["actions"][0]["action"]["_extend_inward"]
    r, u, f = eng.read_table(d / "pair.table")
    assert r[0] == pytest.approx(act["to_nm"], abs=1e-9)
    assert r[0] <= 0.8 * 0.5495084 + 1e-9 and r0[0] == pytest.approx(0.55)
    np.testing.assert_allclose(np.diff(r), r[1] - r[0], rtol=1e-6)
    assert np.all(np.diff(u[: r.size - r0.size + 1]) < 0)
    assert rd.load_state(d)["table_range"]["extensions"] == 1
    # an instability is not a range problem: a table edge far above kT goes to LostAtoms
    d2 = case("table_inner_cutoff", tmp_path / "b")
    rr = np.linspace(0.2, 1.5, 131)
    eng.write_table(d2 / "pair.table", rr, *lj(rr))
    assert triggered(d2) == ["LostAtomsHandler"]


def test_table_outer_cutoff_extends_with_zeros_or_lowers_the_cutoff(tmp_path):
    d = case("table_outer_cutoff", tmp_path)
    TableRangeHandler().correct(d)
    r, u, f = eng.read_table(d / "pair.table")
    assert r[-1] >= 1.6 - 1e-9 and u[-1] == 0 and f[-1] == 0
    assert rd.load_settings(d).rcut_nm == 1.6
    # a table that does not end at zero: the cut-off comes down to the table's end
    d2 = case("table_outer_cutoff", tmp_path / "b")
    rr = np.linspace(0.3, 1.5, 241)
    u2, f2 = lj(rr)
    eng.write_table(d2 / "pair.table", rr, u2 - 0.5, f2)
    out = TableRangeHandler().correct(d2)
    assert out["actions"][0]["action"]["_set"]["pair_cutoff_nm"] == pytest.approx(1.5)
    assert rd.load_settings(d2).rcut_nm == pytest.approx(1.5)
    assert rd.table_ref(d2 / "in.lammps").cutoff_angstrom == pytest.approx(15.0)


def test_killed_run_continues_from_the_newest_restart(tmp_path):
    d = case("killed_with_restart", tmp_path)
    assert "killed" in interruption(d)
    s0 = rd.load_settings(d)
    out = RestartContinueHandler().correct(d)
    info = out["actions"][0]["action"]["_continue_from_restart"]
    assert info == {"restart_file": "restart.16000", "restart_step": 16000,
                    "attempt_dir": "attempts/1"}
    text = (d / "in.lammps").read_text()
    assert "read_restart restart.16000" in text and "read_data" not in text
    assert f"run {s0.final_step} upto" in text and "velocity" not in text
    s1 = rd.load_settings(d)
    assert (s1.restart_file, s1.restart_step) == ("restart.16000", 16000)
    assert (d / "rdf.dat.part1").exists() and (d / "attempts/1/log.lammps").exists()
    assert rd.load_state(d)["restart_continue"]["continuations"] == 1


def test_restart_continue_limits_and_hand_written_inputs(tmp_path):
    d = case("killed_with_restart", tmp_path)
    rd.save_state(d, {"restart_continue": {"continuations": 5}})
    out = RestartContinueHandler().correct(d)
    assert out["actions"] == [] and "gave up after 5" in out["errors"][-1]
    # wall-time stop of a hand-written input: needs a continuation input
    w = case("walltime_stop", tmp_path)
    assert interruption(w).startswith("wall-time stop")
    out = RestartContinueHandler().correct(w)
    assert out["actions"] == [] and "no continuation input" in out["errors"][-1]
    out = RestartContinueHandler(continuation_input="in.continue").correct(w)
    marker = json.loads((w / rd.CONTINUE_FILE).read_text())
    assert marker == {"restart_file": "restart.1000", "restart_step": 1000}
    (w / "in.continue").write_text("read_restart ${restart_file}\n")
    job = LammpsJob(continuation_input="in.continue")
    cmd = job.current_command(w)
    assert cmd[cmd.index("-in") + 1] == "in.continue"
    assert cmd[-6:] == ["-var", "restart_file", "restart.1000", "-var", "restart_step", "1000"]


def test_a_run_killed_before_its_first_restart_file_is_rerun_from_the_start(tmp_path):
    d = case("killed_with_restart", tmp_path)
    for p in d.glob("restart.*"):  # killed while equilibrating: no restart file yet
        p.unlink()
    assert "killed" in interruption(d) and triggered(d) == ["RestartContinueHandler"]
    out = RestartContinueHandler().correct(d)
    assert out["errors"][-1] == "no restart file to continue from"
    assert "attempts/1/" in out["actions"][0]["action"]["_rerun_from_start"]
    assert not (d / "log.lammps").exists() and (d / "attempts/1/log.lammps").exists()
    assert not (d / "rdf.dat").exists() and "read_data" in (d / "in.lammps").read_text()
    assert rd.load_state(d)["restart_continue"]["continuations"] == 1
    # killed before it wrote its log: the screen output alone, without an ERROR
    (d / "lammps.out").write_text("")
    assert "before it wrote log.lammps" in interruption(d)
    assert RestartContinueHandler().check(d)
    (d / "lammps.out").write_text("ERROR: Cannot open input script in.lammps\n")
    assert interruption(d) is None
    # a wall-time stop without a restart file is not rerun (it would stop again)
    w = case("walltime_stop", tmp_path)
    for p in w.glob("restart.*"):
        p.unlink()
    assert not RestartContinueHandler().check(w)
    assert RestartContinueHandler().correct(w)["actions"] == []


def test_job_setup_resumes_or_starts_afresh(tmp_path):
    d = case("killed_with_restart", tmp_path)
    job = LammpsJob()
    job.setup(d)
    assert job.resumed == {"restart_file": "restart.16000", "restart_step": 16000,
                           "attempt_dir": "attempts/1"}
    assert "read_restart restart.16000" in (d / "in.lammps").read_text()
    # without settings (and no continuation input) there is nothing to resume with
    d2 = case("killed_with_restart", tmp_path / "b")
    (d2 / rd.SETTINGS_FILE).unlink()
    job2 = LammpsJob()
    job2.setup(d2)
    assert job2.resumed is None and (d2 / "log.lammps").exists()
    assert "read_data" in (d2 / "in.lammps").read_text()
    with pytest.raises(InvalidInputError, match="input_file"):
        LammpsJob(input_file="missing.in").setup(d2)


def test_saved_settings_of_a_corrected_run_are_kept(tmp_path):
    from cgflow.jobs.lammps.job import _store_settings

    d = case("lost_atoms_soft_core", tmp_path)
    original = rd.load_settings(d)
    rd.save_state(d, {"lost_atoms": {"core_stiffenings": 2, "dt_halvings": 0}})
    LostAtomsHandler().correct(d)  # halves the time step
    _store_settings(d, original)  # a rerun passes the original settings again
    assert rd.load_settings(d).dt_fs == original.dt_fs / 2
    d2 = case("finished_ibi", tmp_path)
    changed = dataclasses.replace(rd.load_settings(d2), run_steps=3000)
    _store_settings(d2, changed)  # no corrections recorded: the new settings win
    assert rd.load_settings(d2) == changed


def test_handlers_and_job_serialise():
    dec = MontyDecoder()
    for obj in (*handlers(), LammpsJob(threads=2, resume=False), LammpsOutputValidator()):
        back = dec.process_decoded(json.loads(json.dumps(obj.as_dict())))
        assert type(back) is type(obj) and back.as_dict() == obj.as_dict()
    with pytest.raises(InvalidInputError, match="threads"):
        LammpsJob(threads=0)
    with pytest.raises(InvalidInputError, match="core_factor"):
        LostAtomsHandler(core_factor=0.5)


def test_validator_on_finished_and_failed_runs(tmp_path):
    v = LammpsOutputValidator()
    assert not v.check(case("finished_ibi", tmp_path))
    d = case("finished_ibi", tmp_path / "b")
    (d / "rdf.dat").write_text("# empty\n")
    assert v.check(d) and any("rdf.dat" in p for p in v.problems)
    k = case("killed_with_restart", tmp_path)
    assert v.check(k)
    assert any("Total wall time" in p for p in v.problems)
    assert any("final step" in p for p in v.problems)
    w = case("walltime_stop", tmp_path)
    assert LammpsOutputValidator(stage="ibi").check(w)
    assert any("wall-time" in p for p in LammpsOutputValidator().find_problems(w))


# --- real runs ----------------------------------------------------------------------------


def _system(d: Path, table: tuple[np.ndarray, ...], **kw) -> eng.LammpsRunSettings:
    d.mkdir(parents=True, exist_ok=True)
    eng.write_table(d / eng.TABLE_FILE, *table)
    eng.write_data(d / eng.DATA_FILE, 343, eng.box_length_nm(343, 690.0, 114.23), 114.23, 3)
    base = dict(stage="ibi", temperature_k=298.15, dt_fs=5.0, equilibration_steps=500,
                run_steps=1500, rcut_nm=1.5, table_points=1000, minimize=False,
                thermo_every=100)
    base.update(kw)
    s = eng.LammpsRunSettings(**base)
    eng.write_input(d / eng.INPUT_FILE, s)
    return s


def _lmp_children() -> list[int]:
    """Pids of the LAMMPS processes started by this test process."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and comm.startswith("lmp"):
            pids.append(int(stat.parent.name))
    return pids


def _kill_after_first_restart(d: Path, timeout_s: float = 60.0) -> threading.Thread:
    def watch() -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if rd.latest_restart(d) is not None:
                time.sleep(0.2)  # let LAMMPS finish writing it and run on
                for pid in _lmp_children():
                    os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


needs_lmp = pytest.mark.skipif(not HAVE_LMP, reason="LAMMPS (lmp) not installed")


@pytest.mark.engine
@needs_lmp
def test_run_lammps_recovers_a_too_soft_core(tmp_path):
    r = np.linspace(0.01, 1.5, 300)
    s = _system(tmp_path, (r, *holed(r)))
    report = run_lammps(tmp_path, settings=s)
    assert report.final_step == s.final_step
    assert report.attempts == 2
    assert [c["handler"] for c in report.corrections] == ["LostAtomsHandler"]
    assert "_stiffen_core" in report.corrections[0]["actions"][0]["action"]
    first = (tmp_path / "attempts/1/log.lammps").read_text()
    assert "Lost atoms" in first or "Pair distance < table inner cutoff" in first
    assert report.ns_per_day and report.ns_per_day > 0 and report.wall_time_s > 0
    steps, g = eng.read_block_file(tmp_path / eng.RDF_FILE)
    assert steps[-1] == s.final_step and np.all(np.isfinite(g))


@pytest.mark.engine
@needs_lmp
def test_run_lammps_halves_a_far_too_large_time_step(tmp_path):
    r = np.linspace(0.05, 1.5, 291)
    s = _system(tmp_path, (r, *lj(r)), dt_fs=250.0, equilibration_steps=200, run_steps=400,
                sample_every=5)
    report = run_lammps(tmp_path, settings=s)
    halvings = [c for c in report.corrections if "_set" in c["actions"][0]["action"]]
    assert len(halvings) >= 1
    final = rd.load_settings(tmp_path)
    assert final.dt_fs == 250.0 / 2 ** len(halvings)
    assert report.final_step == final.final_step == s.final_step * 2 ** len(halvings)
    assert "Lost atoms" in (tmp_path / "attempts/1/log.lammps").read_text()


@pytest.mark.engine
@needs_lmp
def test_run_lammps_gives_up_with_a_clear_error(tmp_path):
    r = np.linspace(0.01, 1.5, 300)
    s = _system(tmp_path, (r, *holed(r)))
    hs = [LostAtomsHandler(max_core_stiffenings=0, max_dt_halvings=0)]
    with pytest.raises(EngineError) as err:
        run_lammps(tmp_path, settings=s, handlers=hs)
    msg = str(err.value)
    assert "handler LostAtomsHandler gave up" in msg
    assert "LAMMPS error: " in msg and ("Lost atoms" in msg or "inner cutoff" in msg)
    assert "exit code 1" in msg and "tail of log.lammps" in msg


@pytest.mark.engine
@needs_lmp
def test_run_lammps_continues_a_run_killed_with_sigkill(tmp_path):
    r = np.linspace(0.3, 1.5, 241)
    s = _system(tmp_path, (r, *lj(r)), run_steps=4000, n_blocks=4, restart_every=1)
    watcher = _kill_after_first_restart(tmp_path)
    report = run_lammps(tmp_path, settings=s)
    watcher.join(timeout=5)
    step = report.resumed_from_step
    assert step is not None and 0 < step < s.final_step
    assert [c["handler"] for c in report.corrections] == ["RestartContinueHandler"]
    assert report.attempts == 2 and report.final_step == s.final_step
    killed = eng.parse_lammps_log(tmp_path / "attempts/1/log.lammps")
    assert not killed.finished and killed.last_step >= step
    resumed = eng.parse_lammps_log(tmp_path / eng.LOG_FILE)
    assert resumed.thermo[0]["Step"][0] == step  # started from the restart, not from 0
    steps, _ = eng.read_block_file(tmp_path / eng.RDF_FILE)
    np.testing.assert_array_equal(
        steps, s.equilibration_end + s.block_steps * np.arange(1, len(steps) + 1))
    assert steps[-1] == s.final_step


@pytest.mark.engine
@needs_lmp
def test_job_resumes_a_run_whose_supervisor_died(tmp_path):
    r = np.linspace(0.3, 1.5, 241)
    s = _system(tmp_path, (r, *lj(r)), run_steps=4000, n_blocks=4, restart_every=1)
    rd.save_settings(tmp_path, s)
    job = LammpsJob()
    watcher = _kill_after_first_restart(tmp_path)
    assert job.run(tmp_path).wait() == -signal.SIGKILL
    watcher.join(timeout=5)
    restart, step = rd.latest_restart(tmp_path)
    report = run_lammps(tmp_path)  # settings from the directory; resume=True by default
    assert report.resumed_from_step == step and report.corrections == []
    assert eng.parse_lammps_log(tmp_path / eng.LOG_FILE).thermo[0]["Step"][0] == step
    assert report.final_step == s.final_step


def _lmp_in(d: Path) -> list[int]:
    """Pids of LAMMPS processes working in ``d``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().startswith("lmp") and \
                    Path(os.readlink(proc / "cwd")) == d.resolve():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.engine
@needs_lmp
@pytest.mark.skipif(not tied_to_parent(["x"])[0].endswith("setpriv"),
                    reason="util-linux setpriv with --pdeathsig not installed")
def test_engine_dies_with_its_killed_supervisor_and_the_rerun_resumes(tmp_path):
    """kill -9 of the process running the job (as of an rlaunch) leaves no orphan LAMMPS
    behind; a new run_lammps continues from the last restart file."""
    import subprocess
    import sys

    r = np.linspace(0.3, 1.5, 241)
    s = _system(tmp_path, (r, *lj(r)), run_steps=12000, n_blocks=4, restart_every=1)
    rd.save_settings(tmp_path, s)
    supervisor = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import sys; from cgflow.jobs.lammps.job import LammpsJob; "
         "LammpsJob().run(sys.argv[1]).wait()", str(tmp_path)])
    try:
        t0 = time.monotonic()
        while rd.latest_restart(tmp_path) is None and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        engines = _lmp_in(tmp_path)
        assert len(engines) == 1, f"expected one running LAMMPS in {tmp_path}, got {engines}"
        (engine,) = engines
        supervisor.kill()
        supervisor.wait(timeout=10)
        t0 = time.monotonic()
        while _lmp_in(tmp_path) and time.monotonic() - t0 < 10:
            time.sleep(0.05)
        assert _lmp_in(tmp_path) == [], f"LAMMPS {engine} outlived its supervisor"
    finally:
        supervisor.kill()
        for pid in _lmp_in(tmp_path):
            os.kill(pid, signal.SIGKILL)
    restart, step = rd.latest_restart(tmp_path)
    report = run_lammps(tmp_path)
    assert report.resumed_from_step == step and report.final_step == s.final_step


def test_a_kill_after_the_log_was_complete_does_not_fail_the_run(tmp_path):
    """A SIGKILL that comes while LAMMPS tears down, after ``Total wall time``, counts as a
    finished run (the validators still check the outputs); one before it does not."""
    from cgflow.jobs.lammps.job import _LammpsProcess

    log = tmp_path / "log.lammps"
    shutil.copy(CASES / "finished_ibi" / "log.lammps", log)
    late = _LammpsProcess(["sh", "-c", "kill -9 $$"], log=log)
    assert late.wait() == 0 and late.poll() == 0 and late.signal_returncode == -signal.SIGKILL
    shutil.copy(CASES / "killed_with_restart" / "log.lammps", log)
    early = _LammpsProcess(["sh", "-c", "kill -9 $$"], log=log)
    assert early.wait() == -signal.SIGKILL and early.signal_returncode is None
