"""``cgflow report``: the campaign report, rendered in a real (headless) browser.

The campaign is stored through the store as its Fireworks store it: the OPLS-AA
reference with a real IBI run in LAMMPS (tiny preset: target RDF sampled from a known
LJ potential, then IBI from its potential of mean force, then a CG production), nine
synthetic converged sets (:mod:`cgflow.ml.synthetic`) with their models trained on
them, an unconverged set, a set still in IBI, a set whose AA run failed, one whose
Firework FIZZLED (reason from FireWorks), and a closed-loop validation.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fireworks import Firework, FWorker, PyTask, ScriptTask, Workflow
from fireworks.core.rocket_launcher import rapidfire

from cgflow.cli.main import main
from cgflow.db.store import Store
from cgflow.errors import InvalidInputError
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import IBISettings
from cgflow.ml.synthetic import synthetic_campaign
from cgflow.params import OPLSAA_REFERENCE, SPACES, ParameterSet
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage
from cgflow.stages.report import set_figure_name, write_report
from cgflow.stages.report.data import read_report_data

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CAMPAIGN = "rep"
#: The campaign's ibi section (stored with its workflow, as a submitted campaign's is).
IBI = {"rdf_tolerance": 0.04, "pressure_tolerance_bar": 150.0, "max_iterations": 3}


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


def lj(sigma: float = 0.6, eps: float = 3.0, r_cut: float = 1.2) -> TabulatedPotential:
    r = np.round(np.arange(0.1, r_cut + 1e-9, 0.01), 6)
    u = np.minimum(4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6), 200.0)
    u -= u[-1]
    s = np.clip((r_cut - r) / 0.1, 0, 1)
    return TabulatedPotential.from_energy(r, u * s * s * (3 - 2 * s))


def aa_results(r, g, d, density=723.0, pressure=0.0, seed=0):
    lag = np.linspace(0.0, 5.0, 26)
    rng = np.random.default_rng(seed)
    msd = 6 * d * lag + 0.002 * (1 - np.exp(-lag / 0.3)) + rng.normal(0, 2e-4, lag.size)
    return {
        "density_kg_m3": density, "density_err_kg_m3": 2.5, "pressure_bar": pressure,
        "pressure_err_bar": 60.0, "temperature_k": 298.15, "temperature_err_k": 0.4,
        "box_length_nm": 2.56, "n_molecules": 64, "production_ps": 10.0,
        "rdf_r_nm": list(map(float, r)), "rdf_g": list(map(float, np.maximum(g, 0))),
        "rdf_n_frames": 50, "msd_lag_ps": lag.tolist(), "msd_nm2": np.maximum(msd, 0).tolist(),
        "d_nm2_ps": d, "d_err_nm2_ps": 0.08 * d, "d_xyz_nm2_ps": [d] * 3,
        "d_fit_start_ps": 1.0, "d_fit_end_ps": 4.0,
    }


def store_real_reference(store: Store, work: Path) -> None:
    """The reference set with a real IBI in LAMMPS and, if it converged, its production."""
    preset = get_cg_preset("tiny")
    dummy = cg_stage.make_target(rdf_r_nm=np.arange(0.005, 1.25, 0.01),
                                 rdf_g=np.ones(125), density_kg_m3=723.0, pressure_bar=0.0,
                                 pressure_err_bar=0.0, temperature_k=298.15)
    sampled, _ = cg_stage.run_iteration(work / "target", 0, lj(), dummy,
                                        cg_stage.make_settings(None, dummy, preset), preset,
                                        previous=None, seed=7)
    ps = OPLSAA_REFERENCE
    store.upsert_parameter_set(ps, CAMPAIGN, "narrow")
    run = store.start_aa_run(ps.id, CAMPAIGN, "tiny", str(work / "aa"))
    store.complete_aa_run(run.id, aa_results(sampled.r_nm, sampled.g, 1.2e-3,
                                             pressure=sampled.pressure_bar),
                          timings={"production": {"wall_s": 30.0}})
    aa = store.get_aa_run(run.id).results
    target = cg_stage.target_from_aa_results(aa, aa.temperature_k)
    settings = cg_stage.make_settings(IBISettings.model_validate(IBI), target, preset)
    out = cg_stage.run_ibi(target, settings, preset, work / "cg")
    for step in out.steps:
        r = step.result
        store.save_ibi_iteration({
            "param_id": ps.id, "campaign": CAMPAIGN, "preset": "tiny", "iteration": r.iteration,
            "potential": step.potential.to_dict(),
            "rdf": {"r_nm": r.r_nm.tolist(), "g": r.g.tolist(), "n_frames": 5},
            "metrics": {"rdf_deviation": r.rdf_deviation, "pressure_bar": r.pressure_bar,
                        "pressure_deviation_bar": r.pressure_deviation_bar}})
    docs = store.ibi_iterations(ps.id, "tiny")
    best = next(s for s in out.steps if s.result.iteration == out.decision.best_iteration)
    store.save_potential({
        "param_id": ps.id, "campaign": CAMPAIGN, "preset": "tiny", "converged": out.converged,
        "reason": out.decision.reason, "n_iterations": len(docs),
        "best_iteration": out.decision.best_iteration, "potential": best.potential.to_dict(),
        "target_rdf": {"r_nm": target.r_nm.tolist(), "g": target.g.tolist(), "n_frames": 0},
        "final_rdf": {"r_nm": best.result.r_nm.tolist(), "g": best.result.g.tolist(),
                      "n_frames": 5},
        "metrics_history": [dict(d.metrics) for d in docs]})
    if out.converged:
        prod = cg_stage.run_cg_production(work / "cg", best.potential, target, settings, preset,
                                          d_aa_nm2_ps=aa.d_nm2_ps,
                                          d_aa_err_nm2_ps=aa.d_err_nm2_ps)
        store.save_cg_run({"param_id": ps.id, "campaign": CAMPAIGN, "preset": "tiny", **prod})


def store_synthetic(store: Store, n: int) -> list[str]:
    """``n`` converged sets of a synthetic campaign, stored as the CG stage stores them."""
    ds = synthetic_campaign(n, seed=3, campaign=CAMPAIGN)
    rng = np.random.default_rng(1)
    for i in range(n):
        ps = ParameterSet.from_array(ds.X[i])
        store.upsert_parameter_set(ps, CAMPAIGN, "narrow")
        run = store.start_aa_run(ps.id, CAMPAIGN, "tiny", f"/nonexistent/{ps.id}")
        store.complete_aa_run(run.id, aa_results(ds.r_nm, ds.g_target[i], float(ds.d_aa[i]),
                                                 density=rng.uniform(690, 760), seed=i),
                              timings={"production": {"wall_s": 20.0}})
        pot = TabulatedPotential.from_energy(ds.r_nm, ds.U[i])
        rdf = {"r_nm": ds.r_nm.tolist(), "g": ds.g_target[i].tolist(), "n_frames": 5}
        hist = [{"rdf_deviation": 0.2 / (k + 1) ** 1.5, "pressure_bar": 300.0 / (k + 1),
                 "pressure_deviation_bar": 300.0 / (k + 1) - 20} for k in range(4)]
        store.save_potential({
            "param_id": ps.id, "campaign": CAMPAIGN, "preset": "tiny", "converged": True,
            "reason": "converged at iteration 3", "n_iterations": 4, "best_iteration": 3,
            "potential": pot.to_dict(), "target_rdf": rdf, "final_rdf": rdf,
            "metrics_history": hist})
        store.save_cg_run({
            "param_id": ps.id, "campaign": CAMPAIGN, "preset": "tiny", "status": "completed",
            "d_cg_nm2_ps": {"mean": float(ds.d_cg[i]), "err": float(ds.d_cg_err[i])},
            "d_aa_nm2_ps": {"mean": float(ds.d_aa[i]), "err": float(ds.d_aa_err[i])},
            "alpha": {"mean": float(ds.alpha[i]), "err": float(ds.alpha_err[i])}})
    return [str(p) for p in ds.param_ids]


def store_troubled(store: Store, launchpad) -> dict[str, str]:
    """An unconverged set, one in IBI, one with a failed AA run, one whose Firework
    FIZZLED; the campaign's workflow (spec in its metadata) holds the last one's
    Fireworks."""
    unconv, in_ibi, failed, fizzled = SPACES["narrow"].sample(4, seed=21)
    pot = lj(0.62)
    r = np.arange(0.005, 1.25, 0.01)
    g = np.interp(r, pot.r_nm, np.exp(-pot.u_kj_mol / 2.479), left=0.0)
    for ps in (unconv, in_ibi, failed, fizzled):
        store.upsert_parameter_set(ps, CAMPAIGN, "narrow")
        run = store.start_aa_run(ps.id, CAMPAIGN, "tiny", f"/nonexistent/{ps.id}")
        if ps is failed:
            store.fail_aa_run(run.id, "produce: gmx mdrun failed after 3 attempts (LINCS)")
            continue
        if ps is fizzled:
            continue  # the AA run never finished: its Firework FIZZLED
        store.complete_aa_run(run.id, aa_results(r, g, 1.5e-3), timings={})
    rdf = {"r_nm": r.tolist(), "g": g.tolist(), "n_frames": 5}
    store.save_potential({
        "param_id": unconv.id, "campaign": CAMPAIGN, "preset": "tiny", "converged": False,
        "reason": "not converged after 3 iterations (max_iterations 3); best iteration 1",
        "n_iterations": 3, "best_iteration": 1, "potential": pot.to_dict(), "target_rdf": rdf,
        "final_rdf": rdf, "metrics_history": [
            {"rdf_deviation": 0.2, "pressure_bar": 400.0, "pressure_deviation_bar": 400.0},
            {"rdf_deviation": 0.08, "pressure_bar": 90.0, "pressure_deviation_bar": 90.0},
            {"rdf_deviation": 0.11, "pressure_bar": 30.0, "pressure_deviation_bar": 30.0}]})
    for k, d in enumerate((0.15, 0.07)):
        store.save_ibi_iteration({
            "param_id": in_ibi.id, "campaign": CAMPAIGN, "preset": "tiny", "iteration": k,
            "potential": pot.to_dict(), "rdf": rdf,
            "metrics": {"rdf_deviation": d, "pressure_bar": 50.0 / (k + 1),
                        "pressure_deviation_bar": 50.0 / (k + 1)}})
    spec = {"campaign": CAMPAIGN, "param_id": fizzled.id, "label": fizzled.id}
    build = Firework([ScriptTask.from_str("true")], name=f"{CAMPAIGN}:{fizzled.id}:aa-build",
                     spec={**spec, "cgflow_stage": "aa-build"})
    produce = Firework([PyTask(func="builtins.float", args=["mdrun exploded: LINCS warnings"])],
                       name=f"{CAMPAIGN}:{fizzled.id}:aa-produce", parents=[build],
                       spec={**spec, "cgflow_stage": "aa-produce"})
    launchpad.add_wf(Workflow([build, produce], name=f"cgflow:{CAMPAIGN}", metadata={
        "cgflow_campaign": CAMPAIGN, "spec": {"name": CAMPAIGN, "preset": "tiny",
                                              "space": "narrow", "cg_stage": True, "ibi": IBI}}))
    rapidfire(launchpad, FWorker(), strm_lvl="ERROR")
    return {"unconverged": unconv.id, "in_ibi": in_ibi.id, "failed": failed.id,
            "fizzled": fizzled.id}


@pytest.fixture
def campaign(launchpad, tmp_path, monkeypatch):
    from cgflow.stages.train import load_campaign_models, train_campaign_models

    monkeypatch.chdir(tmp_path)
    with Store.from_launchpad(launchpad) as store:
        store_real_reference(store, tmp_path / "runs")
        synthetic = store_synthetic(store, 9)
        ids = store_troubled(store, launchpad)
        out = train_campaign_models(store, CAMPAIGN, seed=0)
        assert out["status"] == "trained", out
        models = load_campaign_models(store, CAMPAIGN)
        unseen = next(p for p in synthetic if p not in models.metadata["train_param_ids"])
        store.save_validation({
            "models_campaign": CAMPAIGN, "models_dataset_hash": models.metadata["dataset_hash"],
            "param_id": unseen, "preset": "tiny", "alpha_pred": 2.1, "alpha_std": 0.3,
            "d_aa": 1e-3, "d_aa_err": 1e-4,
            "structure": {"rdf_deviation": 0.06, "d_cg": 2.5e-3, "d_rescaled": 1.19e-3,
                          "d_rescaled_rel_error": 0.19},
            "dynamics": {"rdf_deviation": 0.2, "d_cg": 0.9e-3, "d_rel_error": -0.1}})
    return launchpad, ids, synthetic


CHECK_SCRIPT = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target && e.target !== window ? (e.target.src || e.target.tagName) : "";
  window.__errors.push(String(e.message || ("failed to load " + t)));
}, true);
(function () {
  var error = console.error;
  console.error = function () { window.__errors.push("console.error: " +
    Array.prototype.join.call(arguments, " ")); error.apply(console, arguments); };
})();
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.getAttribute("src"); });
  var t = document.getElementById("sets-table");
  var col = Array.prototype.map.call(t.tHead.rows[0].cells,
                                     function (c) { return c.textContent; }).indexOf("alpha");
  t.tHead.rows[0].cells[col].click();
  var sorted = Array.prototype.map.call(t.tBodies[0].rows, function (r) {
    return r.cells[col].getAttribute("data-v"); });
  document.querySelector('button.copy[data-table="sets-table"]').click();
  var out = document.createElement("pre");
  out.id = "cgflow-check";
  out.textContent = JSON.stringify({images: imgs.length, broken: broken,
    errors: window.__errors, alpha_sorted: sorted,
    widths: imgs.map(function (i) { return i.naturalWidth; })});
  document.body.appendChild(out);
});
</script>"""


def render(browser: str, page: Path) -> tuple[dict, str]:
    """Open a copy of ``page`` with the check script in headless Chromium; returns the
    check's result and the browser's log."""
    probe = page.with_name("check.html")
    text = page.read_text()
    probe.write_text(text.replace("<head>", "<head>" + CHECK_SCRIPT, 1))
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                        "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
                        "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="cgflow-check">(.*?)</pre>', r.stdout, re.S)
    assert m, f"no check result in the DOM (rc {r.returncode}):\n{r.stderr[-3000:]}"
    probe.unlink()
    return json.loads(html.unescape(m.group(1))), r.stderr


def screenshot(browser: str, page: Path, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / name
    shot.unlink(missing_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1300,2800",
                    "--virtual-time-budget=15000", page.as_uri()],
                   capture_output=True, text=True, timeout=180)
    return shot


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_report_of_a_small_campaign_renders_in_a_browser(campaign, launchpad_file, tmp_path,
                                                        capsys):
    launchpad, ids, synthetic = campaign
    out = tmp_path / "report"
    assert main(["report", CAMPAIGN, "-o", str(out), "-l", str(launchpad_file)]) == 0
    said = capsys.readouterr().out
    assert f"report of campaign {CAMPAIGN}: 14 sets" in said
    page = (out / "index.html").read_text()

    # what the page says: every set, states and reasons from the documents and FireWorks
    for pid in [OPLSAA_REFERENCE.id, *synthetic, *ids.values()]:
        assert f'id="set-{pid}-tiny"' in page, pid
    assert "not converged after 3 iterations (max_iterations 3); best iteration 1" in page
    assert "all-atom run: produce: gmx mdrun failed after 3 attempts (LINCS)" in page
    assert "could not convert string to float: &#x27;mdrun exploded: LINCS warnings&#x27;" in page
    assert "IBI iteration 2" in page  # the set still in IBI: two iterations finished
    with Store.from_launchpad(launchpad) as store:
        data = read_report_data(store, CAMPAIGN, spec={"ibi": IBI, "cg_stage": True})
    states = {s.view.param_id: s for s in data.sets}
    assert states[ids["unconverged"]].state == "unconverged"
    assert states[ids["failed"]].state == "failed"
    assert states[ids["in_ibi"]].state == "IBI iteration 2"
    assert [r.rdf_deviation for r in states[ids["in_ibi"]].iterations] == [0.15, 0.07]
    ref = states[OPLSAA_REFERENCE.id]
    assert ref.rdf_tolerance == 0.04
    assert ref.pressure_tolerance_bar == 150.0  # the AA pressure error (60) is smaller
    assert 1 <= len(ref.iterations) <= 3 and ref.state in ("done", "unconverged")
    # the models: predictions on the converged sets, held-out ones marked
    m = data.models
    assert m is not None and m.status == "trained"
    assert m.alpha_predicted.shape == m.alpha_observed.shape == m.alpha_std.shape
    assert m.is_test.any() and not m.is_test.all()
    assert np.all(m.alpha_std > 0) and m.u_predicted.shape == m.u_ibi.shape
    for name in ("density", "diffusion", "alpha_distribution", "alpha_parity",
                 "structure_parity", "validation"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name
        assert f'src="figures/{name}.png"' in page
    assert len(list((out / "figures").glob("set-*.png"))) == 14

    # in a real browser: every image loads, no script error, the tables sort
    browser = chromium()
    if browser is None:
        pytest.skip("no chromium binary found (Debian package 'chromium'): the page was "
                    "checked without a browser only")
    check, log = render(browser, out / "index.html")
    assert check["images"] == 14 + 6, check
    assert check["broken"] == [] and check["errors"] == [], check
    assert min(check["widths"]) >= 400
    alphas = [float(v) for v in check["alpha_sorted"] if v]
    assert len(alphas) >= 9 and alphas == sorted(alphas)
    assert not re.search(r"Uncaught|CONSOLE.*(Error|error)", log), log[-3000:]
    shot = screenshot(browser, out / "index.html", "report-small-campaign.png")
    assert shot.stat().st_size > 50_000
    print(f"screenshot of the report: {shot}")

    # written again: the unchanged sets' figures are reused, not drawn again
    assert main(["report", CAMPAIGN, "-o", str(out), "-l", str(launchpad_file)]) == 0
    assert "14 unchanged, " in capsys.readouterr().out


def test_a_campaign_without_sets_or_a_file_as_folder_is_refused(store, tmp_path):
    with pytest.raises(InvalidInputError, match="campaign 'nothing': no parameter sets"):
        write_report(store, "nothing", tmp_path / "r")
    store.upsert_parameter_set(OPLSAA_REFERENCE, "c", "narrow")
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match="-o: value .*file.*not a folder"):
        write_report(store, "c", f)


def test_an_all_atom_campaign_and_figure_names_follow_the_data(store, tmp_path):
    """Without IBI the sets are done after their AA run; the page has no CG figures, and
    a set's figure gets a new name when its documents change."""
    a, b = SPACES["narrow"].sample(2, seed=4)
    r = np.arange(0.005, 1.25, 0.01)
    g = np.where(r < 0.45, 0.0, 1.0)
    for ps in (a, b):
        store.upsert_parameter_set(ps, "aa-only", "narrow")
        run = store.start_aa_run(ps.id, "aa-only", "tiny", f"/nonexistent/{ps.id}")
        if ps is a:
            store.complete_aa_run(run.id, aa_results(r, g, 1e-3), timings={})
    res = write_report(store, "aa-only", tmp_path / "r", spec={"cg_stage": False})
    page = res.page.read_text()
    data = read_report_data(store, "aa-only", spec={"cg_stage": False})
    assert [s.state for s in data.sets] == ["done", "AA running"]
    assert not (tmp_path / "r" / "figures" / "diffusion.png").exists()
    assert "No CG production finished yet" in page and "has not trained models" in page
    assert res.n_drawn == len(res.figures) == 3  # density and the two sets
    before = set_figure_name(data.sets[1])
    store.complete_aa_run(f"{b.id}:tiny", aa_results(r, g, 2e-3), timings={})
    after = read_report_data(store, "aa-only", spec={"cg_stage": False}).sets[1]
    assert set_figure_name(after) != before and after.state == "done"
    res = write_report(store, "aa-only", tmp_path / "r", spec={"cg_stage": False})
    assert res.n_drawn == 2  # the density and b's figure; a's is reused
    assert sorted(p.name for p in (tmp_path / "r" / "figures").glob("set-*.png")) == sorted(
        [set_figure_name(data.sets[0]), set_figure_name(after)])
