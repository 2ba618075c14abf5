"""``cgflow campaign status``: stages, failures and reasons read from the database."""

from __future__ import annotations

from fireworks import Firework, FWorker, PyTask, ScriptTask, Workflow
from fireworks.core.rocket_launcher import rapidfire

from cgflow.db.store import Store
from cgflow.orchestration.status import campaign_status, format_status


def chain(campaign: str, pid: str, stages: list[str], fail_at: str | None = None):
    fws = []
    for st in stages:
        if st == fail_at:
            task = PyTask(func="builtins.float", args=["not a number (mdrun exploded)"])
        else:
            task = ScriptTask.from_str("true")
        fws.append(Firework([task], name=f"{campaign}:{pid}:{st}", parents=fws[-1:] or None,
                            spec={"campaign": campaign, "param_id": pid, "label": pid,
                                  "cgflow_stage": st}))
    return fws


def test_status_reports_stages_and_failure_reasons(launchpad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("cgflow.orchestration.status._CHUNK", 2)  # launches read in many chunks
    aa = ["aa-build", "aa-equilibrate", "aa-produce", "aa-analyse"]
    fws = (chain("camp", "set_ok", aa) + chain("camp", "set_bad", aa, fail_at="aa-produce")
           + chain("camp", "set_wait", aa))
    launchpad.add_wf(Workflow(fws, name="camp"))
    # run everything of the first two sets only
    for fw in launchpad.fireworks.find({"spec.param_id": "set_wait"}, {"fw_id": 1}):
        launchpad.pause_fw(fw["fw_id"])
    rapidfire(launchpad, FWorker(), strm_lvl="ERROR")

    with Store.from_launchpad(launchpad) as store:
        s = campaign_status(launchpad, store, "camp")
    stages = {x.param_id: x for x in s.sets}
    assert stages["set_ok"].stage == "done"
    assert stages["set_bad"].stage == "failed"
    assert "aa-produce" in stages["set_bad"].detail
    assert stages["set_wait"].stage == "waiting"
    assert len(s.failed) == 1
    assert "could not convert string to float" in s.failed[0]["reason"]
    assert s.fw_states["COMPLETED"] == 4 + 2
    text = format_status(s)
    assert "failed 1" in text and "done 1" in text and "mdrun exploded" in text


def test_status_during_ibi(launchpad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fws = chain("c2", "s1", ["aa-build", "cg-ibi"])
    fws[1].spec["ibi_iteration"] = 4
    launchpad.add_wf(Workflow(fws, name="c2"))
    rapidfire(launchpad, FWorker(), nlaunches=1, strm_lvl="ERROR")
    with Store.from_launchpad(launchpad) as st:
        s = campaign_status(launchpad, st, "c2")
    assert s.sets[0].stage == "IBI iteration 4"
    assert len(s.queued) == 1


def test_set_stage_rules_without_a_database():
    """An active Firework wins over a stored unconverged potential (a rerun); held sets
    say why they wait; a running launch counts until now."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from cgflow.orchestration.status import _launch_seconds, _set_status

    def fw(stage, state, **spec):
        return {"state": state, "spec": {"cgflow_stage": stage, **spec}}

    unconverged = SimpleNamespace(converged=False, reason="stagnated")
    rerun = [fw("aa-produce", "COMPLETED"), fw("cg-ibi", "RUNNING", ibi_iteration=3)]
    assert _set_status("p", "p", rerun, unconverged).stage == "IBI iteration 3"
    ended = [fw("aa-produce", "COMPLETED"), fw("cg-ibi", "COMPLETED"),
             fw("cg-production", "COMPLETED")]
    st = _set_status("p", "p", ended, unconverged)
    assert (st.stage, st.detail) == ("unconverged", "stagnated")
    held = [fw("aa-build", "COMPLETED"), fw("aa-equilibrate", "PAUSED")]
    st = _set_status("p", "p", held, None)
    assert (st.stage, st.detail) == ("waiting", "1 PAUSED")
    assert _launch_seconds({"runtime_secs": 12.5}) == 12.5
    began = (datetime.now(UTC) - timedelta(seconds=90)).replace(tzinfo=None)
    running = {"runtime_secs": None, "state_history": [{"state": "RUNNING", "created_on": began}]}
    assert 89 < _launch_seconds(running, running=True) < 120
    # a run that stopped pinging (lost, or archived by a rerun) counts up to its last ping
    running["state_history"][0]["updated_on"] = began + timedelta(seconds=30)
    assert _launch_seconds(running) == 30.0
