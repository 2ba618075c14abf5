"""The live view of a campaign (:mod:`cgflow.orchestration.progress`): stages, IBI
iterations with D and dP as they finish, sets done / total and the time left, as plain
lines or a progress bar; ``cgflow campaign status --watch``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fireworks import Firework, FWorker, ScriptTask, Workflow
from fireworks.core.rocket_launcher import rapidfire

from cgflow.cli.main import main
from cgflow.db.store import Store
from cgflow.ibi.potential import TabulatedPotential
from cgflow.orchestration.progress import (
    CampaignProgress,
    IterationPoint,
    ProgressReader,
    ProgressView,
    SetProgress,
    format_duration,
    progress_events,
    watch_campaign,
)

AA = ["aa-build", "aa-equilibrate", "aa-produce", "aa-analyse"]


def snapshot(*sets, time_spent_s=0.0, n_running=1, expected=4.0):
    return CampaignProgress(campaign="c", sets=list(sets), cg_stage=True,
                            expected_ibi_iterations=expected, n_running=n_running,
                            time_spent_s=time_spent_s)


def test_fraction_and_time_left_follow_the_sets_chains():
    done = SetProgress("a", "a", "done")
    produce = SetProgress("b", "b", "AA produce", "RUNNING")
    ibi = SetProgress("c", "c", "IBI iteration 2", "READY")
    waiting = SetProgress("d", "d", "AA build", "READY")
    # chain of a set: 4 AA stages + 4 expected IBI iterations + production = 9
    p = snapshot(done, produce, ibi, waiting, time_spent_s=600.0, n_running=2)
    assert p.set_fraction(done) == 1.0
    assert p.set_fraction(produce) == pytest.approx(2 / 9)
    assert p.set_fraction(ibi) == pytest.approx(6 / 9)
    assert p.set_fraction(waiting) == 0.0
    f = (1 + 2 / 9 + 6 / 9) / 4
    assert p.fraction == pytest.approx(f)
    assert p.eta_s == pytest.approx(600.0 * (1 - f) / f / 2)
    assert (p.n_finished, p.n_total) == (1, 4)
    assert p.stage_counts() == {"AA": 2, "IBI": 1, "done": 1}
    # an iteration beyond the expected number counts as through IBI, not beyond
    late = SetProgress("e", "e", "IBI iteration 9")
    assert snapshot(late).set_fraction(late) == pytest.approx(8 / 9)
    # nothing run yet: no estimate; all finished: nothing left
    assert snapshot(waiting).eta_s is None
    assert snapshot(done, SetProgress("f", "f", "failed"), time_spent_s=5).eta_s == 0.0
    assert format_duration(None) == "unknown"
    assert format_duration(45) == "about 45 s"
    assert format_duration(720) == "about 12 min"
    assert format_duration(9000) == "about 2.5 h"


def test_events_name_stage_changes_and_finished_iterations():
    before = snapshot(SetProgress("a", "ref", "IBI iteration 1", "RUNNING",
                                  (IterationPoint(0, 0.12, 40.0),)))
    after = snapshot(SetProgress("a", "ref", "IBI iteration 2", "READY",
                                 (IterationPoint(0, 0.12, 40.0), IterationPoint(1, 0.0345, -7.2))))
    lines = progress_events(before, after)
    assert lines[0] == "ref                IBI iteration 1 done: D = 0.0345, dP = -7 bar"
    assert lines[1].split() == ["ref", "IBI", "iteration", "2", "READY"]
    assert progress_events(after, after) == []
    # the first view: sets under way (with their last iteration), finished ones counted
    first = progress_events(None, snapshot(
        after.sets[0], SetProgress("b", "b", "done"), SetProgress("c", "c", "AA build", "READY")))
    assert first[0].endswith("IBI iteration 1 done: D = 0.0345, dP = -7 bar")
    assert first[1].split()[:3] == ["ref", "IBI", "iteration"]
    assert first[2] == "1 set(s) already finished (done 1)"
    assert len(first) == 3


def test_plain_lines_off_a_terminal_and_a_bar_on_one():
    lines: list[str] = []
    t = [0.0]
    view = ProgressView(lines.append, live=False, clock=lambda: t[0])
    a = snapshot(SetProgress("a", "a", "AA produce", "RUNNING"),
                 SetProgress("b", "b", "AA build", "READY"), time_spent_s=100.0)
    view.show(a)
    assert lines[0] == "[00:00:00] a                  AA produce         RUNNING"
    assert lines[1].startswith("[00:00:00] 0/2 sets finished (AA 2), 11 % done, about")
    t[0] = 5.0
    view.show(a)  # nothing changed, no summary due yet
    assert len(lines) == 2
    t[0] = 3725.0
    b = snapshot(SetProgress("a", "a", "done"), SetProgress("b", "b", "AA build", "RUNNING"),
                 time_spent_s=300.0)
    view.show(b)
    assert lines[2].startswith("[01:02:05] a") and lines[2].endswith("done")
    assert "1/2 sets finished (AA 1, done 1), 50 % done, about 5 min left" in lines[-1]

    out = io.StringIO()
    bar = ProgressView(lines.append, live=True, stream=out)
    bar.show(a)
    bar.show(b)
    bar.close()
    text = out.getvalue()
    assert "1/2 sets, 50 %, about 5 min left (AA 1, done 1)" in text
    assert "a                  done" in text  # events go above the bar, on its stream
    assert "|" in text and "c " in text


def lj_table():
    r = np.round(np.arange(0.1, 1.2 + 1e-9, 0.01), 6)
    u = np.minimum(4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6), 200.0)
    return TabulatedPotential.from_energy(r, u - u[-1])


def save_iteration(store, pid, it, d, dp):
    pot = lj_table()
    store.save_ibi_iteration({
        "param_id": pid, "campaign": "live", "preset": "tiny", "iteration": it,
        "potential": pot.to_dict(),
        "rdf": {"r_nm": pot.r_nm.tolist(), "g": np.ones_like(pot.r_nm).tolist(), "n_frames": 5},
        "metrics": {"rdf_deviation": d, "pressure_bar": 1.0 + dp, "pressure_deviation_bar": dp}})


A, B = "a" * 16, "b" * 16


def set_chain(pid, n_ibi, priority):
    fws = []
    stages = [(s, None) for s in AA] + [("cg-ibi", k) for k in range(n_ibi)]
    for st, k in [*stages, ("cg-production", None)]:
        spec = {"campaign": "live", "param_id": pid, "label": f"set-{pid[0]}",
                "cgflow_stage": st, "_priority": priority}
        if k is not None:
            spec["ibi_iteration"] = k
        fws.append(Firework([ScriptTask.from_str("true")], name=f"live:{pid}:{st}:{k}",
                            parents=fws[-1:] or None, spec=spec))
    return fws


@pytest.fixture
def live_campaign(launchpad, tmp_path, monkeypatch):
    """A workflow with two sets (a: 2 IBI iterations, b: 1) stored as a campaign would
    (spec in the metadata); nothing run yet."""
    monkeypatch.chdir(tmp_path)
    fws = set_chain(A, 2, 2) + set_chain(B, 1, 1)  # a first, as a campaign orders them
    launchpad.add_wf(Workflow(fws, name="cgflow:live", metadata={
        "cgflow_campaign": "live", "spec": {"name": "live", "preset": "tiny",
                                            "cg_stage": True}}))
    return launchpad


def run_until(launchpad, pid, stage, iteration=None):
    """Run the campaign's Fireworks one by one up to and including ``stage`` of ``pid``."""
    q = {"spec.param_id": pid, "spec.cgflow_stage": stage}
    if iteration is not None:
        q["spec.ibi_iteration"] = iteration
    target = launchpad.fireworks.find_one(q)["fw_id"]
    while launchpad.fireworks.find_one({"fw_id": target})["state"] != "COMPLETED":
        rapidfire(launchpad, FWorker(), nlaunches=1, strm_lvl="ERROR")


def test_reader_follows_a_campaign_through_the_database(live_campaign):
    lp = live_campaign
    lines: list[str] = []
    with Store.from_launchpad(lp) as store:
        reader = ProgressReader(lp, store, "live")
        view = ProgressView(lines.append, live=False)
        snap = reader.read()
        view.show(snap)
        assert (snap.n_total, snap.n_finished, snap.fraction, snap.eta_s) == (2, 0, 0.0, None)
        # the tiny preset's limit is 8 IBI iterations: half of it expected
        assert snap.expected_ibi_iterations == 4.0
        # the iterations of an earlier IBI of set a are still stored when its new IBI is
        # queued: they are not this IBI's
        run_until(lp, A, "aa-analyse")
        for k in range(5):
            save_iteration(store, A, k, 0.5, 999.0)
        view.show(snap := reader.read())
        assert (snap.sets[0].stage, snap.sets[0].iterations) == ("IBI iteration 0", ())
        store.delete_ibi_iterations(A, "tiny")  # what iteration 0's Firetask does first
        run_until(lp, A, "cg-ibi", 0)
        save_iteration(store, A, 0, 0.1234, 56.0)
        view.show(snap := reader.read())
        assert [s.stage for s in snap.sets] == ["IBI iteration 1", "AA build"]
        assert any("set-a              IBI iteration 0 done: D = 0.1234, dP = +56 bar" in ln
                   for ln in lines)
        run_until(lp, A, "cg-ibi", 1)
        save_iteration(store, A, 1, 0.0151, -3.0)
        run_until(lp, A, "cg-production")
        view.show(snap := reader.read())
        assert any("IBI iteration 1 done: D = 0.0151, dP = -3 bar" in ln for ln in lines)
        a = snap.sets[0]
        assert a.stage == "done" and [p.iteration for p in a.iterations] == [0, 1]
        assert not any("D = 0.5000" in ln for ln in lines)
        # a's IBI took 2 iterations: that is now the expectation
        assert snap.expected_ibi_iterations == 2.0
        assert snap.n_finished == 1 and 0.5 <= snap.fraction < 1.0
        assert snap.eta_s is not None and snap.eta_s > 0
        assert "1/2 sets finished (AA 1, done 1)" in lines[-1]

        # --watch refreshes the same view until every set is finished
        slept: list[float] = []

        def sleep(s):
            slept.append(s)
            rapidfire(lp, FWorker(), nlaunches=2, strm_lvl="ERROR")

        out: list[str] = []
        last = watch_campaign(lp, store, "live", interval_s=0.5, report=out.append,
                              live=False, sleep=sleep)
        assert last.n_finished == 2 and last.eta_s == 0.0
        assert slept and set(slept) == {0.5}
        assert "2/2 sets finished (done 2), 100 % done, about 0 s left" in out[-1]


def test_campaign_status_watch_command(live_campaign, launchpad_file, capsys):
    rapidfire(live_campaign, FWorker(), strm_lvl="ERROR")
    assert main(["campaign", "status", "live", "--watch", "--interval", "0.1",
                 "-l", str(launchpad_file)]) == 0
    out = capsys.readouterr().out
    assert "2 set(s) already finished (done 2)" in out
    assert "2/2 sets finished (done 2), 100 % done" in out
    assert main(["campaign", "status", "live", "--watch", "--interval", "0",
                 "-l", str(launchpad_file)]) == 2
    assert "--interval: value 0.0" in capsys.readouterr().err
    assert main(["campaign", "status", "nope", "--watch", "-l", str(launchpad_file)]) == 2
