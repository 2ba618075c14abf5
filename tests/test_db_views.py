"""The per-set view (:mod:`cgflow.db.views`): one join of parameter set, AA run, potential
and CG run, read by ``cgflow potentials``, ``cgflow dataset export``, ``cgflow campaign
results`` and the training data, so that they agree on a campaign's sets, reused ones
included."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cgflow.cli.campaign import results_table
from cgflow.cli.main import main
from cgflow.cli.potentials import select_potentials
from cgflow.db import views
from cgflow.db.store import Store
from cgflow.db.views import SetView, campaign_sets, one_per_parameter_set
from cgflow.ibi.potential import TabulatedPotential
from cgflow.params import OPLSAA_REFERENCE, SPACES
from cgflow.stages.dataset import set_rows
from cgflow.stages.train import training_records


def lj_potential(sigma: float = 0.6, eps: float = 3.0, r_cut: float = 1.2
                 ) -> TabulatedPotential:
    r = np.round(np.arange(0.1, r_cut + 1e-9, 0.01), 6)
    u = np.minimum(4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6), 200.0)
    u -= u[-1]
    s = np.clip((r_cut - r) / 0.1, 0, 1)
    return TabulatedPotential.from_energy(r, u * s * s * (3 - 2 * s))


def aa_results(d: float) -> dict:
    r = np.arange(0.005, 1.5, 0.01)
    lag = np.linspace(0.0, 10.0, 21)
    return {
        "density_kg_m3": 723.0, "density_err_kg_m3": 2.0, "pressure_bar": 0.0,
        "pressure_err_bar": 40.0, "temperature_k": 298.15, "temperature_err_k": 0.3,
        "box_length_nm": 2.56, "n_molecules": 64, "production_ps": 20.0,
        "rdf_r_nm": r.tolist(), "rdf_g": np.ones_like(r).tolist(), "rdf_n_frames": 50,
        "msd_lag_ps": lag.tolist(), "msd_nm2": (6 * d * lag).tolist(), "d_nm2_ps": d,
        "d_err_nm2_ps": 0.1 * d, "d_xyz_nm2_ps": [d] * 3, "d_fit_start_ps": 2.0,
        "d_fit_end_ps": 8.0,
    }


def run_set(store: Store, ps, campaign: str, preset: str = "tiny", *, aa: str = "completed",
            converged: bool | None = True, best_iteration: int = 2) -> None:
    """Store a set as a campaign's Fireworks do: parameter set, AA run, then (if
    ``converged`` is not None) the IBI potential and, when converged, the CG run."""
    store.upsert_parameter_set(ps, campaign, "narrow")
    run = store.start_aa_run(ps.id, campaign, preset, f"/nonexistent/{ps.id}/aa")
    if aa == "failed":
        store.fail_aa_run(run.id, "produce: mdrun crashed")
        return
    store.complete_aa_run(run.id, aa_results(1e-3), timings={"prod": {"wall_s": 10.0}})
    if converged is None:
        return
    pot = lj_potential()
    rdf = {"r_nm": pot.r_nm.tolist(), "g": np.ones_like(pot.r_nm).tolist(), "n_frames": 5}
    store.save_potential({
        "param_id": ps.id, "campaign": campaign, "preset": preset, "converged": converged,
        "reason": "converged" if converged else "stagnation", "n_iterations": 3,
        "best_iteration": best_iteration, "potential": pot.to_dict(), "target_rdf": rdf,
        "final_rdf": rdf, "metrics_history": [
            {"rdf_deviation": 0.1}, {"rdf_deviation": 0.05},
            {"rdf_deviation": 0.01, "pressure_deviation_bar": 3.0}]})
    if converged:
        store.save_cg_run({
            "param_id": ps.id, "campaign": campaign, "preset": preset, "status": "completed",
            "d_cg_nm2_ps": {"mean": 3e-3, "err": 1e-4}, "d_aa_nm2_ps": {"mean": 1e-3,
                                                                       "err": 1e-4},
            "alpha": {"mean": 3.0, "err": 0.2}})


def reuse_set(store: Store, ps, campaign: str, preset: str = "tiny") -> None:
    """What a later campaign's Fireworks do for a set already run: register it and link
    the completed AA run; the potential and CG run are skipped (they keep the earlier
    campaign's name)."""
    store.upsert_parameter_set(ps, campaign, "narrow")
    done = store.find_completed_aa_run(ps.id, preset)
    assert done is not None
    store.link_aa_run_to_campaign(done.id, campaign)


@pytest.fixture
def two_campaigns(launchpad):
    """``first``: a, b, c, the reference (preset tiny). ``second``: b reused from
    ``first``, its own d (converged), e (IBI unconverged) and f (AA failed), and the
    reference run again with another preset (small)."""
    a, b, c, d, e, f = SPACES["narrow"].sample(6, seed=11)
    with Store.from_launchpad(launchpad) as store:
        for ps in (a, b, c, OPLSAA_REFERENCE):
            run_set(store, ps, "first")
        reuse_set(store, b, "second")
        run_set(store, d, "second")
        run_set(store, e, "second", converged=False)
        run_set(store, f, "second", aa="failed")
        run_set(store, OPLSAA_REFERENCE, "second", preset="small")
    return launchpad, {"a": a.id, "b": b.id, "c": c.id, "d": d.id, "e": e.id, "f": f.id,
                       "ref": OPLSAA_REFERENCE.id}


def test_all_readers_agree_on_a_campaigns_sets_reused_included(two_campaigns,
                                                              launchpad_file, tmp_path,
                                                              capsys):
    launchpad, ids = two_campaigns
    every = {ids[k] for k in ("b", "d", "e", "f", "ref")}
    with_pot = {ids[k] for k in ("b", "d", "e", "ref")}
    converged = {ids[k] for k in ("b", "d", "ref")}
    with Store.from_launchpad(launchpad) as store:
        # the sets of the campaign: its own and b, reused from "first"
        assert {v.param_id for v in campaign_sets(store, "second")} == every
        rows = set_rows(store, "second")
        assert [r["param_id"] for r in rows] == [ids[k] for k in ("b", "ref", "d", "e", "f")]
        table = results_table(store, "second")
        assert {r["param_id"] for r in table} == every
        assert len(table) == len(every)  # the reference once, with second's preset
        pots = select_potentials(store, campaign="second")
        assert {p.doc.param_id for p in pots} == with_pot
        assert {p.doc.param_id for p in pots
                if p.doc.campaign == "first"} == {ids["b"]}  # made by the earlier campaign
        assert {(p.doc.param_id, p.doc.preset) for p in pots
                if p.doc.param_id == ids["ref"]} == {(ids["ref"], "small")}
        records = training_records(store, "second")
        assert {r["param_id"] for r in records} == converged
        assert len(records) == len(converged)
        assert {p.doc.param_id for p in select_potentials(store, campaign="second",
                                                          converged=True)} == converged
        assert {r["param_id"] for r in rows if r.get("ibi_converged")} == converged
        assert {r["param_id"] for r in table if r.get("ibi_converged")} == converged
        # a preset asked for: that preset's results of the campaign's sets, whichever
        # campaign made them (here the reference's tiny ones, made by "first")
        assert {r["param_id"] for r in training_records(store, "second", "small")} == \
            {ids["ref"]}
        assert {r["param_id"] for r in training_records(store, "second", "tiny")} == converged
        assert {r["param_id"] for r in set_rows(store, "second", "tiny")} == every
        # the earlier campaign is unchanged
        assert {r["param_id"] for r in training_records(store, "first")} == \
            {ids[k] for k in ("a", "b", "c", "ref")}
        # every potential in the database, both presets of the reference
        assert len(select_potentials(store)) == 7

    lp = str(launchpad_file)
    capsys.readouterr()
    assert main(["potentials", "list", "--campaign", "second", "-l", lp]) == 0
    listed = capsys.readouterr().out.splitlines()[1:]
    assert {line.split()[0] for line in listed} == with_pot
    assert main(["campaign", "results", "second", "--json", "-l", lp]) == 0
    assert {r["param_id"] for r in json.loads(capsys.readouterr().out)} == every
    assert main(["dataset", "export", "second", "-o", str(tmp_path / "data"), "-l", lp]) == 0
    summary = json.loads((tmp_path / "data" / "sets.json").read_text())
    assert {s["param_id"] for s in summary["sets"]} == every
    assert summary["n_converged"] == len(converged)


def test_views_join_by_set_and_preset(two_campaigns):
    launchpad, ids = two_campaigns
    with Store.from_launchpad(launchpad) as store:
        by_id = {v.param_id: v for v in campaign_sets(store, "second")}
        b = by_id[ids["b"]]
        assert b.preset == "tiny" and b.aa_run.status == "completed"
        assert b.potential.campaign == "first" and b.cg_run.campaign == "first"
        assert b.alpha == 3.0 and b.alpha_err == 0.2 and b.converged is True
        assert b.best_metrics == {"rdf_deviation": 0.01, "pressure_deviation_bar": 3.0}
        assert b.key == f"{ids['b']}-tiny" and b.label == ids["b"]
        assert b.params == store.get_parameter_set(ids["b"]).params
        ref = by_id[ids["ref"]]
        assert ref.label == "reference" and ref.preset == "small"
        f = by_id[ids["f"]]
        assert f.aa_run.status == "failed" and f.potential is None and f.alpha is None
        assert f.converged is None and f.best_metrics == {}
        # converged / preset filters
        assert {v.param_id for v in campaign_sets(store, "second", converged=False)} == \
            {ids["e"]}
        tiny = campaign_sets(store, "second", preset="tiny")
        assert {v.preset for v in tiny} == {"tiny"}
        assert next(v for v in tiny if v.param_id == ids["ref"]).potential.campaign == "first"
        # every set in the database: each stored (set, preset) once
        allv = campaign_sets(store)
        assert sorted((v.param_id, v.preset) for v in allv if v.potential is not None) == \
            sorted([(ids[k], "tiny") for k in ("a", "b", "c", "d", "e", "ref")]
                   + [(ids["ref"], "small")])
        assert {v.param_id for v in allv} == set(ids.values())


def test_views_batch_their_queries(two_campaigns, monkeypatch):
    """A few queries whatever the number of sets, each ``$in`` at most QUERY_CHUNK long;
    no lookup per set."""
    launchpad, _ = two_campaigns
    with Store.from_launchpad(launchpad) as store:
        expected = campaign_sets(store, "second")
        calls: list[tuple[str, int | None]] = []
        for name in ("parameter_sets", "aa_runs", "potentials", "cg_runs",
                     "get_parameter_set", "get_aa_run", "get_potential", "get_cg_run"):
            method = getattr(store, name)

            def spy(*args, _name=name, _method=method, **kwargs):
                ids = kwargs.get("param_ids")
                calls.append((_name, None if ids is None else len(list(ids))))
                return _method(*args, **kwargs)

            monkeypatch.setattr(store, name, spy)
        monkeypatch.setattr(views, "QUERY_CHUNK", 2)
        got = campaign_sets(store, "second")
    assert [(v.param_id, v.preset) for v in got] == [(v.param_id, v.preset) for v in expected]
    assert not [c for c in calls if c[0].startswith("get_")]
    assert all(n is not None and n <= 2 for name, n in calls if name != "parameter_sets")
    assert len([c for c in calls if c[0] == "potentials"]) == 3  # 5 sets in chunks of 2


def test_best_metrics_is_bounds_checked(store):
    """A best iteration beyond the metrics history falls back to the last iteration in
    every reader (it used to raise IndexError in ``cgflow campaign results``)."""
    (ps,) = SPACES["narrow"].sample(1, seed=2)
    run_set(store, ps, "c", best_iteration=7)
    (view,) = campaign_sets(store, "c")
    assert view.best_metrics == {"rdf_deviation": 0.01, "pressure_deviation_bar": 3.0}
    assert results_table(store, "c")[0]["rdf_deviation"] == 0.01
    assert set_rows(store, "c")[0]["rdf_deviation"] == 0.01
    assert SetView(param_id=ps.id, preset=None).best_metrics == {}


def test_one_view_per_parameter_set_prefers_the_completed_aa_run():
    from types import SimpleNamespace

    failed = SetView("p", "tiny", aa_run=SimpleNamespace(status="failed"))  # type: ignore[arg-type]
    done = SetView("p", "small", aa_run=SimpleNamespace(status="completed"))  # type: ignore[arg-type]
    other = SetView("q", None)
    assert one_per_parameter_set([failed, other, done]) == [done, other]
    assert one_per_parameter_set([done, failed]) == [done]
