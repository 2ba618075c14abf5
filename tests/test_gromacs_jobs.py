"""GROMACS under Custodian: handlers on canned failures, the job, and real failures end
to end (:mod:`cgflow.jobs.gromacs.job`, :mod:`cgflow.jobs.gromacs.handlers`,
:mod:`cgflow.jobs.gromacs.validators`, :mod:`cgflow.jobs.gromacs.state`), and the readers
of GROMACS output they use (:mod:`cgflow.engines.gromacs_output`).

The canned cases under ``tests/data/gromacs_failures/`` are real GROMACS 2022 failures of
a 250-atom diatomic liquid (see ``make_cases.py`` there, which regenerates them). Tests
marked ``engine`` run ``gmx``; each takes a few seconds on one thread.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from cgflow.engines import gromacs as eng
from cgflow.engines import gromacs_output as gout
from cgflow.errors import EngineError, InvalidInputError
from cgflow.jobs.gromacs import handlers as gh
from cgflow.jobs.gromacs import state as gs
from cgflow.jobs.gromacs.job import GromacsJob, StageReport, run_stage, stage_names
from cgflow.jobs.gromacs.validators import GromacsOutputValidator, stage_problems

DATA = Path(__file__).parent / "data" / "gromacs_failures"
SYSTEM = DATA / "system"

needs_gmx = pytest.mark.skipif(shutil.which("gmx") is None and not os.environ.get("CGFLOW_GMX"),
                               reason="gmx not installed")

def _case_maker():
    """The script that made the canned cases (its test system's mdp options are reused)."""
    spec = importlib.util.spec_from_file_location(
        "make_cases", Path(__file__).parent / "data" / "gromacs_failures" / "make_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: mdp options of the test system (make_cases.BASE_MDP; fixed seeds).
BASE_MDP = _case_maker().BASE_MDP
#: NVT at 3000 K with a 5 fs step: blows up near step 400 (checkpoints every 50 steps
#: with -cpt 0), and is stable with 2.5 fs (see make_cases.py, blowup_hang_checkpoint).
HOT_MDP = {"dt": "0.005", "nsteps": "1000", "nstlog": "10", "nstcalcenergy": "10",
           "nstenergy": "10", "ref-t": "3000", "gen-temp": "3000",
           "verlet-buffer-tolerance": "-1", "rlist": "0.95", "nstlist": "50"}


def mdp_text(**changes: str) -> str:
    opts = dict(BASE_MDP)
    opts.update({k.replace("_", "-"): v for k, v in changes.items()})
    return "".join(f"{k:<24s} = {v}\n" for k, v in opts.items())


def case(name: str, tmp_path: Path) -> Path:
    """A copy of canned case ``name`` in ``tmp_path``."""
    dest = tmp_path / name
    shutil.copytree(DATA / name, dest)
    return dest


def system_dir(tmp_path: Path, conf: str = "conf.gro") -> Path:
    """A run directory with the test system (``conf.gro``, ``topol.top``)."""
    d = tmp_path / "run"
    d.mkdir()
    shutil.copy(SYSTEM / "topol.top", d / "topol.top")
    shutil.copy(SYSTEM / conf, d / "conf.gro")
    return d


def set_returncode(d: Path, deffnm: str, rc: int | None) -> None:
    state = gs.load_state(d, deffnm)
    state.returncode = rc
    gs.save_state(d, state)


# --- names, settings, serialisation -------------------------------------------------------


def test_stage_names_accepts_stage_and_file_stem():
    assert stage_names("production") == ("production", "prod")
    assert stage_names("prod") == ("production", "prod")
    assert stage_names("em") == ("em", "em")
    with pytest.raises(InvalidInputError, match="field 'stage': unknown value 'equil'"):
        stage_names("equil")


@pytest.mark.parametrize("kw, field", [({"threads": 0}, "threads"), ({"maxh": 0}, "maxh"),
                                       ({"cpt_minutes": -1}, "cpt_minutes"),
                                       ({"maxwarn": -2}, "maxwarn")])
def test_job_rejects_bad_settings_naming_the_field(kw, field):
    with pytest.raises(InvalidInputError, match=f"field '{field}'"):
        GromacsJob("nvt", "nvt.mdp", "conf.gro", "topol.top", **kw)


def test_job_setup_names_a_missing_input(tmp_path):
    d = system_dir(tmp_path)
    job = GromacsJob("nvt", "nvt.mdp", "conf.gro", "topol.top")
    with pytest.raises(InvalidInputError, match=r"field 'mdp': file .*nvt\.mdp does not exist"):
        job.setup(d)
    assert not gs.state_path(d, "nvt").exists()


def test_job_and_handlers_are_json_serialisable(tmp_path):
    job = GromacsJob("prod", tmp_path / "prod.mdp", "npt.gro", "topol.top",
                     checkpoint_in="npt.cpt", threads=2, maxh=1.5, cpt_minutes=2.0)
    d = json.loads(json.dumps(job.as_dict()))
    back = GromacsJob.from_dict(d)
    assert (back.deffnm, back.stage_name, back.checkpoint_in, back.threads, back.maxh) == \
        ("prod", "production", "npt.cpt", 2, 1.5)
    for h in (gh.BlowUpHandler("prod", max_halvings=2), gh.CheckpointContinueHandler("prod"),
              gh.GromppErrorHandler("prod"), GromacsOutputValidator("prod")):
        assert type(h).from_dict(json.loads(json.dumps(h.as_dict()))).deffnm == "prod"


def test_setup_resumes_only_a_matching_earlier_attempt(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    job = GromacsJob("nvt", "nvt.mdp", "conf.gro", "topol.top")
    job.setup(d)  # same inputs as the killed attempt: continue it
    state = gs.load_state(d, "nvt")
    assert state.plan.mode == "continue" and state.attempt == 1
    GromacsJob("nvt", "nvt.mdp", "conf.gro", "topol.top", resume=False).setup(d)
    assert gs.load_state(d, "nvt").plan.mode == "fresh"
    gs.state_path(d, "nvt").unlink()  # no state: the checkpoint and tpr are trusted
    job.setup(d)
    assert gs.load_state(d, "nvt").plan.mode == "continue"
    (d / "nvt.mdp").write_text((d / "nvt.mdp").read_text() + "tinit = 0\n")
    job.setup(d)  # other inputs than the attempt's: start afresh
    state = gs.load_state(d, "nvt")
    assert state.plan.mode == "fresh" and state.attempt == 0 and state.dt_history_ps == [0.002]


# --- mdp editing and time-step halving --------------------------------------------------


def test_edit_mdp_replaces_adds_and_removes_keeping_comments():
    text = "; header\ndt = 0.002 ; step\nnstxout_compressed=100\ngen-vel = yes\n"
    out = eng.edit_mdp(text, {"dt": "0.001", "nstxout-compressed": "200", "gen_vel": None,
                             "continuation": "yes"}, "fix")
    lines = out.splitlines()
    assert lines[0] == "; header"
    assert lines[1].startswith("dt") and "= 0.001" in lines[1]
    assert "nstxout-compressed" in lines[2] and "= 200" in lines[2]
    assert not any(line.startswith("gen-vel") for line in lines)
    assert lines[-2:] == ["; fix", f"{'continuation':<24s} = yes"]


def test_halving_from_the_start_keeps_end_time_and_output_times():
    opts = {"dt": "0.002", "nsteps": "1000", "nstenergy": "50", "nstxout-compressed": "100",
            "nstcalcenergy": "50"}
    upd = gh.halved_dt_updates(opts, t_start_ps=None)
    assert float(upd["dt"]) == pytest.approx(0.001)
    assert (upd["nsteps"], upd["init-step"]) == ("2000", "0")
    assert (upd["nstenergy"], upd["nstxout-compressed"], upd["nstcalcenergy"]) == \
        ("100", "200", "100")
    assert upd["nstlog"] == "2000"  # GROMACS default 1000 steps, now stated explicitly
    assert "nstxout" not in upd  # 0: no output, stays off


def test_halving_from_a_checkpoint_runs_the_remaining_steps_only():
    opts = {"dt": "0.004", "nsteps": "500", "init-step": "100", "tinit": "1.0"}
    # the stage runs from t = 1.0 + 100*0.004 = 1.4 ps to 1.0 + 600*0.004 = 3.4 ps
    upd = gh.halved_dt_updates(opts, t_start_ps=2.2)
    dt, init, n = float(upd["dt"]), int(upd["init-step"]), int(upd["nsteps"])
    assert dt == pytest.approx(0.002)
    assert 1.0 + init * dt == pytest.approx(2.2)
    assert 1.0 + (init + n) * dt == pytest.approx(3.4)


# --- log reading --------------------------------------------------------------------------


def test_energy_blocks_and_log_facts_of_a_blown_up_run():
    text = (DATA / "blowup_hang_checkpoint" / "nvt.log").read_text()
    facts = gout.log_facts(text)
    assert (facts.integrator, facts.nsteps, facts.init_step, facts.n_atoms) == \
        ("md", 1000, 0, 250)
    assert facts.ref_t_k == [3000.0] and facts.dt_ps == pytest.approx(0.005)
    blocks = gout.energy_blocks(text)
    steps = [b.step for b in blocks]
    assert steps[:3] == [0, 10, 20] and steps == sorted(steps)
    by_step = {b.step: b.values for b in blocks}
    assert by_step[0]["Potential"] < 0 < by_step[0]["Kinetic En."]
    assert by_step[400]["Kinetic En."] > 1e9  # where it blew up
    scan = gout.scan_blowup(gout.last_log_segment(text), "", facts)
    assert (scan.first_bad_step, scan.last_good_step) == (400, 390)


def test_nan_energies_are_read_as_nan():
    blocks = gout.energy_blocks((DATA / "lincs_warnings" / "nvt.log").read_text())
    assert any(math.isnan(b.values.get("Temperature", 0.0)) for b in blocks)


def test_last_log_segment_of_an_appended_log():
    header = " :-) GROMACS - gmx mdrun, 2022 (-:\n"
    text = f"head\n{header}old\n{header}new\n"
    assert gout.last_log_segment(text) == f"{header}new\n"


# --- diagnosis of the canned failures -------------------------------------------------------


@pytest.mark.parametrize("name, deffnm, kind, evidence", [
    ("blowup_overlap_step0", "nvt", "blowup", "extremely high"),
    ("blowup_hang_checkpoint", "nvt", "blowup", "abnormal energies at step 400"),
    ("lincs_warnings", "nvt", "blowup", "LINCS warning"),
    ("em_nonfinite", "em", "blowup", "not finite"),
    ("killed_with_checkpoint", "nvt", "interrupted", "SIGKILL"),
    ("maxh_stop", "nvt", "interrupted", "-maxh wall-time limit at step"),
    ("grompp_bad_mdp", "nvt", "grompp_failed", "Invalid enum 'mdd'"),
    ("complete_nvt", "nvt", "complete", None),
])
def test_diagnose_canned_cases(tmp_path, name, deffnm, kind, evidence):
    diag = gh.diagnose(case(name, tmp_path), deffnm)
    assert diag.kind == kind
    if evidence:
        assert any(evidence in e for e in diag.evidence), diag.evidence


def test_crash_signal_without_error_is_a_blowup(tmp_path):
    # the killed run's files with the exit code of a segmentation fault instead
    d = case("killed_with_checkpoint", tmp_path)
    set_returncode(d, "nvt", -int(signal.SIGSEGV))
    diag = gh.diagnose(d, "nvt")
    assert diag.kind == "blowup" and "SIGSEGV" in diag.evidence[0]


def test_unknown_exit_without_finish_counts_as_interrupted(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    set_returncode(d, "nvt", None)  # supervisor gone: exit code never recorded
    assert gh.diagnose(d, "nvt").kind == "interrupted"


def test_a_silent_running_mdrun_counts_as_hung(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    stand_in = subprocess.Popen(["sleep", "60"])  # a live process in place of mdrun
    try:
        state = gs.load_state(d, "nvt")
        state.pid, state.returncode = stand_in.pid, None
        gs.save_state(d, state)
        old = time.time() - 600
        for p in d.iterdir():
            os.utime(p, (old, old))
        assert gh.diagnose(d, "nvt", gh.Thresholds(stall_s=3600)).kind == "running"
        diag = gh.diagnose(d, "nvt", gh.Thresholds(stall_s=60))
        assert diag.kind == "blowup" and "wrote nothing" in diag.evidence[0]
    finally:
        stand_in.kill()
        stand_in.wait()


# --- grompp errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, where, text", [
    ("grompp_bad_mdp", r"nvt\.mdp, line \d+\]", "Invalid enum 'mdd' for variable integrator"),
    ("grompp_missing_include", r"topol\.top, line 1\]",
     'Topology include file "missing_ff.itp" not found'),
    ("grompp_too_many_warnings", r"topol\.top, line 24\]", "Too many warnings"),
])
def test_grompp_failure_names_file_line_and_gromacs_text(tmp_path, name, where, text):
    d = case(name, tmp_path)
    output = (d / "nvt.grompp.out").read_text()
    msg = gout.grompp_failure_message(output, d, d / "topol.top", 1)
    assert msg.startswith("grompp failed (exit code 1)")
    assert text in msg
    assert re.search(str(d.resolve()).replace(".", r"\.") + "/" + where, msg), msg
    handler = gh.GromppErrorHandler("nvt")
    assert handler.check(d) and not handler.is_monitor
    corr = handler.correct(d)
    assert corr["actions"] is None and text in corr["errors"][0]


def test_grompp_handler_ignores_other_failures(tmp_path):
    assert not gh.GromppErrorHandler("nvt").check(case("blowup_overlap_step0", tmp_path))


# --- corrections ----------------------------------------------------------------------------


def test_blowup_at_step0_reruns_with_half_dt_after_a_minimisation(tmp_path):
    d = case("blowup_overlap_step0", tmp_path)
    user_mdp = (d / "nvt.mdp").read_text()
    handler = gh.BlowUpHandler("nvt")
    assert handler.is_monitor and handler.check(d)
    corr = handler.correct(d)
    act = corr["actions"][0]
    assert act["action"] == "rerun_from_input" and act["dt_ps"] == [0.002, 0.001]
    assert act["premin_steps"] == 5000 and act["nsteps"] == 2000
    assert any("extremely high" in e for e in corr["errors"])
    state = gs.load_state(d, "nvt")
    assert state.plan.mode == "fresh" and state.plan.premin_steps == 5000
    assert state.dt_history_ps == [0.002, 0.001] and state.phase == "corrected"
    retry = gout.read_text(d / "nvt_retry1.mdp")
    assert "0.001" in retry and "2000" in retry
    assert (d / "nvt.mdp").read_text() == user_mdp  # the user's mdp is untouched
    assert (d / "attempts" / "nvt-1" / "nvt.log").exists() and not (d / "nvt.log").exists()
    # corrected: no handler sees anything until the next attempt ran
    assert not handler.check(d) and not gh.CheckpointContinueHandler("nvt").check(d)


def test_blowup_of_a_minimisation_halves_emstep(tmp_path):
    d = case("em_nonfinite", tmp_path)
    handler = gh.BlowUpHandler("em")
    assert handler.check(d)
    act = handler.correct(d)["actions"][0]
    assert act["action"] == "rerun_minimisation"
    assert act["emstep_nm"] == [0.01, 0.005] and act["nsteps"] == 1000
    state = gs.load_state(d, "em")
    assert state.emstep_history_nm == [0.01, 0.005] and state.dt_history_ps == []
    assert "emstep" in (d / "em_retry1.mdp").read_text()


def test_blowup_handler_gives_up_at_its_limits(tmp_path):
    d = case("lincs_warnings", tmp_path)
    state = gs.load_state(d, "nvt")
    state.n_blowup_corrections = 2
    gs.save_state(d, state)
    handler = gh.BlowUpHandler("nvt", max_halvings=2)
    assert handler.check(d)
    corr = handler.correct(d)
    assert corr["actions"] is None and "max_halvings = 2" in corr["errors"][-1]
    # min_dt: the run used 80 fs; halving to 40 fs is below a 50 fs floor
    handler = gh.BlowUpHandler("nvt", max_halvings=5, min_dt_ps=0.05)
    assert handler.check(d)
    corr = handler.correct(d)
    assert corr["actions"] is None and "min_dt_ps" in corr["errors"][-1]


def test_continue_handler_gives_up_after_max_continuations(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    state = gs.load_state(d, "nvt")
    state.n_continuations = 3
    gs.save_state(d, state)
    handler = gh.CheckpointContinueHandler("nvt", max_continuations=3)
    assert handler.check(d) and not gh.BlowUpHandler("nvt").check(d)
    corr = handler.correct(d)
    assert corr["actions"] is None and "max_continuations = 3" in corr["errors"][-1]


def test_continue_without_checkpoint_reruns_the_attempt(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    (d / "nvt.cpt").unlink()
    (d / "nvt_prev.cpt").unlink(missing_ok=True)
    handler = gh.CheckpointContinueHandler("nvt")
    assert handler.check(d)
    act = handler.correct(d)["actions"][0]
    assert act["action"] == "rerun_attempt"
    assert gs.load_state(d, "nvt").plan.mode == "fresh"


@needs_gmx
@pytest.mark.engine
def test_blowup_restarts_from_the_last_good_checkpoint(tmp_path):
    d = case("blowup_hang_checkpoint", tmp_path)
    handler = gh.BlowUpHandler("nvt")
    assert handler.check(d)
    act = handler.correct(d)["actions"][0]
    # nvt.cpt is at step 400, where the energies are already absurd: nvt_prev.cpt (350)
    assert act["action"] == "restart_from_checkpoint"
    assert act["checkpoint"] == "attempts/nvt-1/nvt_prev.cpt" and act["checkpoint_step"] == 350
    assert act["dt_ps"] == [0.005, 0.0025]
    assert (act["init_step"], act["nsteps"]) == (700, 1300)  # 1.75 ps .. 5.0 ps at 2.5 fs
    state = gs.load_state(d, "nvt")
    assert state.plan.mode == "restart"
    assert state.plan.checkpoint == "attempts/nvt-1/nvt_prev.cpt"
    assert state.segments[0].prefix == "attempts/nvt-1/nvt"
    assert state.segments[0].t_end_ps == pytest.approx(1.75)
    retry = (d / "nvt_retry1.mdp").read_text()
    assert "continuation             = yes" in retry and "gen-vel                  = no" in retry


@needs_gmx
@pytest.mark.engine
@pytest.mark.parametrize("name", ["killed_with_checkpoint", "maxh_stop"])
def test_interrupted_runs_continue_from_their_checkpoint(tmp_path, name):
    d = case(name, tmp_path)
    handler = gh.CheckpointContinueHandler("nvt")
    assert handler.check(d)
    act = handler.correct(d)["actions"][0]
    assert act["action"] == "continue_from_checkpoint" and act["checkpoint"] == "nvt.cpt"
    assert act["checkpoint_step"] == gout.checkpoint_info(d / "nvt.cpt").step > 0
    assert gs.load_state(d, "nvt").plan.mode == "continue"


# --- validator ------------------------------------------------------------------------------


def test_validator_accepts_a_complete_run_and_lists_what_is_missing(tmp_path):
    v = GromacsOutputValidator("nvt")
    assert not v.check(case("complete_nvt", tmp_path)) and v.problems == []
    assert v.check(case("maxh_stop", tmp_path))
    assert any(re.fullmatch(r"log nvt\.log: last energy step [1-9]\d* is not init-step \+ "
                            r"nsteps = 500000", p) for p in v.problems), v.problems
    assert any("nvt.gro missing" in p for p in v.problems)
    assert stage_problems(case("grompp_bad_mdp", tmp_path), "nvt")[0].startswith(
        "grompp failed")


# --- real runs under Custodian --------------------------------------------------------------


def fast(**kw):
    """run_stage settings for seconds-long test runs."""
    return {"threads": 1, "maxh": 1.0, "polling_s": 0.1, "monitor_interval_s": 0.2, **kw}


@needs_gmx
@pytest.mark.engine
def test_killed_mdrun_resumes_from_its_checkpoint(tmp_path):
    d = system_dir(tmp_path)
    (d / "nvt.mdp").write_text(mdp_text(nsteps="10000", nstlog="500", nstenergy="500"))
    killed: list[int] = []

    def kill_after_first_checkpoint() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = gs.load_state(d, "nvt") if gs.state_path(d, "nvt").exists() else None
            log = d / "nvt.log"
            if state and state.pid and (d / "nvt.cpt").exists() and log.exists() \
                    and "Writing checkpoint" in log.read_text():
                os.kill(state.pid, signal.SIGKILL)
                killed.append(state.pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after_first_checkpoint)
    killer.start()
    report = run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top",
                       **fast(cpt_minutes=0.002))
    killer.join()
    assert killed, "mdrun ended before its first checkpoint"
    assert isinstance(report, StageReport)
    assert [c["handler"] for c in report.corrections] == ["CheckpointContinueHandler"]
    assert report.corrections[0]["errors"] == ["mdrun was stopped by SIGKILL (exit code -9)"]
    step = report.continued_from_steps[0]
    assert step > 0 and report.attempts == 2 and report.last_step == 10000
    log = (d / "nvt.log").read_text()
    assert "Restarting from checkpoint, appending to previous log file." in log
    assert f"  step:                  {step}\n" in log
    assert log.count("Started mdrun") == 2 and log.count("Finished mdrun") == 1
    assert stage_problems(d, "nvt") == []
    assert report.final_dt_ps == pytest.approx(0.002) and report.ns_per_day > 0


@needs_gmx
@pytest.mark.engine
def test_resume_flag_continues_an_interrupted_stage_without_grompp(tmp_path):
    d = case("killed_with_checkpoint", tmp_path)
    (d / "nvt.mdp").write_text((d / "nvt.mdp").read_text())  # same inputs, same fingerprint
    cpt_step = gout.checkpoint_info(d / "nvt.cpt").step
    report = run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top", **fast())
    assert report.continued_from_steps == [cpt_step] and report.corrections == []
    assert not (d / "nvt.grompp.out").exists()
    assert "-cpi nvt.cpt" in (d / "nvt.log").read_text().split("Restarting from checkpoint")[1]
    assert stage_problems(d, "nvt") == [] and report.last_step == 20000
    again = run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top", **fast())
    assert again.already_complete and again.attempts == 0


@needs_gmx
@pytest.mark.engine
def test_blowup_is_restarted_from_a_checkpoint_with_half_the_time_step(tmp_path):
    d = system_dir(tmp_path)
    (d / "prod.mdp").write_text(mdp_text(**HOT_MDP, nstxout_compressed="20"))
    report = run_stage(d, "production", "prod.mdp", "conf.gro", "topol.top",
                       **fast(cpt_minutes=0, maxwarn=1))
    assert [c["handler"] for c in report.corrections] == ["BlowUpHandler"]
    act = report.corrections[0]["actions"][0]
    # a checkpoint (every 50 steps) before the blow-up; 350 on this build, see the
    # canned blowup_hang_checkpoint case
    assert act["action"] == "restart_from_checkpoint"
    assert act["checkpoint_step"] % 50 == 0 and 0 < act["checkpoint_step"] < 1000
    assert report.dt_history_ps == [0.005, 0.0025]
    assert report.final_dt_ps == pytest.approx(0.0025) and report.last_step == 2000
    assert stage_problems(d, "prod") == []
    # the trajectory joins both segments: frames every 0.1 ps from 0 to 5 ps
    from MDAnalysis import Universe

    u = Universe(str(d / "conf.gro"), str(d / "prod.xtc"))
    times = [ts.time for ts in u.trajectory]
    assert len(times) == 51 and times[0] == pytest.approx(0.0) and times[-1] == pytest.approx(5.0)
    steps = [b - a for a, b in zip(times[:-1], times[1:], strict=True)]
    assert steps == pytest.approx([0.1] * 50, abs=1e-4)


@needs_gmx
@pytest.mark.engine
def test_blowup_at_step0_is_fixed_by_an_inserted_minimisation(tmp_path):
    d = system_dir(tmp_path, conf="overlap.gro")
    (d / "nvt.mdp").write_text(mdp_text(nsteps="500"))
    report = run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top", **fast())
    act = report.corrections[0]["actions"][0]
    assert act["action"] == "rerun_from_input" and act["premin_steps"] == 5000
    assert (d / "nvt_premin.gro").exists()
    assert "Finished mdrun" in (d / "nvt_premin.log").read_text()
    assert report.dt_history_ps == [0.002, 0.001] and report.last_step == 1000
    assert stage_problems(d, "nvt") == []


@needs_gmx
@pytest.mark.engine
def test_grompp_error_raises_engine_error_naming_handler_file_and_line(tmp_path):
    d = system_dir(tmp_path)
    (d / "nvt.mdp").write_text(mdp_text(integrator="mdd"))
    with pytest.raises(EngineError) as err:
        run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top", **fast())
    msg = str(err.value)
    assert "GROMACS stage nvt (nvt)" in msg and "handler GromppErrorHandler gave up" in msg
    assert f"{(d / 'nvt.mdp').resolve()}, line" in msg and "Invalid enum 'mdd'" in msg


@needs_gmx
@pytest.mark.engine
def test_uncorrectable_blowup_raises_engine_error(tmp_path):
    d = system_dir(tmp_path, conf="overlap.gro")
    (d / "nvt.mdp").write_text(mdp_text(nsteps="200"))
    handlers = [gh.GromppErrorHandler("nvt"), gh.BlowUpHandler("nvt", max_halvings=0),
                gh.CheckpointContinueHandler("nvt")]
    with pytest.raises(EngineError) as err:
        run_stage(d, "nvt", "nvt.mdp", "conf.gro", "topol.top", handlers=handlers, **fast())
    msg = str(err.value)
    assert "handler BlowUpHandler gave up" in msg and "max_halvings = 0" in msg
    assert "GROMACS error: Internal error (bug): Step 0: The total potential energy" in msg
