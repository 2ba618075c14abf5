"""The IBI convergence monitor on synthetic histories, and its Custodian handler."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from monty.json import MontyDecoder

from cgflow.errors import InvalidInputError
from cgflow.ibi.monitor import (
    DECISION_FILE,
    HISTORY_FILE,
    IBIMonitor,
    IBIMonitorSettings,
    IterationMetrics,
    assess_history,
    read_decision,
    read_history,
    write_history,
)
from cgflow.jobs.ibi import IBIConvergenceHandler

#: RDF-only judgement keeps the synthetic scores easy to read: score = rdf / 0.02.
RDF_ONLY = {"rdf_tolerance": 0.02, "pressure_tolerance_bar": None}


def hist(rdf: list[float], *, factor: float = 1.0, sampling: float = 100.0,
         pressure: float = 0.0, **extra) -> list[IterationMetrics]:
    return [IterationMetrics(iteration=i, rdf_deviation=v, pressure_deviation_bar=pressure,
                             update_factor=factor, sampling_ps=sampling, **extra)
            for i, v in enumerate(rdf)]


def first_problem(rdf: list[float], settings=None):
    """Feed a history iteration by iteration; the first decision that is not a plain
    continue, and the iteration after which it came."""
    mon = IBIMonitor(settings if settings is not None else RDF_ONLY)
    for m in hist(rdf):
        dec = mon.record(m)
        if dec.diagnosis != "none":
            return m.iteration, dec
    return None, mon.assess()


def test_converging_history_converges_at_the_first_iteration_within_tolerance():
    rdf = [0.2, 0.1, 0.05, 0.03, 0.018, 0.017]
    pressures = [200.0, 100.0, 60.0, 40.0, 30.0, 20.0]
    mon = IBIMonitor()  # default: RDF and pressure judged
    decisions = []
    for i, (g, p) in enumerate(zip(rdf, pressures, strict=True)):
        decisions.append(mon.record({"iteration": i, "rdf_deviation": g,
                                     "pressure_deviation_bar": p, "update_factor": 1.0,
                                     "sampling_ps": 100.0}))
    assert [d.action for d in decisions[:4]] == ["continue"] * 4
    assert all(d.diagnosis == "none" and d.update_factor == 1.0 for d in decisions[:4])
    assert decisions[3].next_iteration == 4
    assert decisions[4].action == "converged" and decisions[4].best_iteration == 4
    assert "0.018" in decisions[4].reason and "+30 bar" in decisions[4].reason
    # the pressure alone keeps a good RDF from converging
    d = assess_history(hist([0.01], pressure=-80.0))
    assert d.action == "continue" and d.best_score == pytest.approx(0.01 / 0.02 + 80 / 50)
    # at the tolerance is not within it (as IterationResult.converged)
    assert assess_history(hist([0.02]), RDF_ONLY).action == "continue"


def test_divergence_is_caught_damped_and_restarted_from_the_best():
    it, d = first_problem([0.1, 0.06, 0.05, 0.08, 0.12])
    assert it == 4 and d.action == "continue" and d.diagnosis == "divergence"
    assert d.update_factor == 0.5 and d.sampling_ps == 100.0
    assert d.restart_from_iteration == 2 and d.best_iteration == 2
    assert d.corrections_used == 1 and d.corrections_left == 3
    assert "rose over the last 3 iterations" in d.reason and "damping" in d.reason
    # a rise that stays below 1.5 x the best is not a divergence
    assert first_problem([0.1, 0.06, 0.05, 0.055, 0.06])[1].diagnosis != "divergence"


def test_after_a_correction_the_new_regime_gets_time():
    h = hist([0.1, 0.06, 0.05, 0.08, 0.12])
    d = assess_history(h, RDF_ONLY)
    h.append(IterationMetrics(rdf_deviation=0.11, pressure_deviation_bar=0.0,
                              **d.next_metrics()))
    assert h[-1].correction == "divergence" and h[-1].restarted_from == 2
    d2 = assess_history(h, RDF_ONLY)
    assert d2.diagnosis == "none" and d2.update_factor == 0.5 and d2.corrections_used == 1


def test_oscillation_is_caught_and_damped():
    it, d = first_problem([0.1, 0.06, 0.08, 0.055, 0.075, 0.056, 0.074])
    assert d.diagnosis == "oscillation" and it == 6
    assert d.update_factor == 0.5 and d.restart_from_iteration == 3
    assert "up and down" in d.reason
    # alternating but steadily improving is progress, not oscillation
    it2, d2 = first_problem([0.2, 0.12, 0.14, 0.09, 0.1, 0.065, 0.07, 0.045])
    assert d2.diagnosis == "none" and it2 is None


def test_stagnation_lengthens_the_sampling_up_to_the_cap():
    it, d = first_problem([0.1, 0.06, 0.05, 0.0495, 0.0498, 0.0497])
    assert it == 5 and d.diagnosis == "stagnation"
    assert d.sampling_ps == 200.0 and d.update_factor == 1.0 and d.restart_from_iteration is None
    assert "no improvement by more than 5 %" in d.reason
    # at the cap (4 x the first sampling) there is nothing left to try
    h = hist([0.1, 0.06, 0.05], sampling=100.0) + [
        IterationMetrics(iteration=3 + i, rdf_deviation=v, pressure_deviation_bar=0.0,
                         update_factor=1.0, sampling_ps=400.0, correction=c)
        for i, (v, c) in enumerate([(0.0495, "stagnation"), (0.0498, None), (0.0497, None)])]
    d = assess_history(h, RDF_ONLY)
    assert d.action == "unconverged" and d.diagnosis == "stagnation"
    assert "sampling is at its cap (400 ps)" in d.reason and d.best_iteration == 3


def test_damping_floor_falls_back_to_longer_sampling():
    d = assess_history(hist([0.1, 0.06, 0.05, 0.08, 0.12], factor=0.06), RDF_ONLY)
    assert d.diagnosis == "divergence" and d.update_factor == 0.06
    assert d.sampling_ps == 200.0 and "minimum" in d.reason


def test_spent_corrections_end_unconverged_with_the_reason():
    rdf = [0.1, 0.06, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.0499, 0.0498, 0.0497]
    h = hist(rdf)
    # iterations 3, 5, 7, 8 ran under corrections: 4 of 4 spent
    h = [m.model_copy(update={"correction": "stagnation"}) if m.iteration in (3, 5, 7, 8)
         else m for m in h]
    d = assess_history(h, {**RDF_ONLY, "max_corrections": 4})
    assert d.action == "unconverged" and d.diagnosis == "stagnation"
    assert "corrections spent (4 of 4)" in d.reason and d.corrections_left == 0
    assert d.best_iteration == 10
    # inferred corrections (no 'correction' field): each doubling of the sampling counts
    h2 = hist([0.1, 0.06, 0.05])
    for i, (v, smp) in enumerate([(0.0499, 200.0), (0.0498, 400.0), (0.0498, 400.0),
                                  (0.0497, 400.0)], start=3):
        h2.append(IterationMetrics(iteration=i, rdf_deviation=v, pressure_deviation_bar=0.0,
                                   update_factor=1.0, sampling_ps=smp))
    d2 = assess_history(h2, {**RDF_ONLY, "max_corrections": 2})
    assert d2.action == "unconverged" and "corrections spent (2 of 2)" in d2.reason


def test_max_iterations_ends_unconverged():
    rdf = [0.2 * 0.85**i for i in range(6)]  # steady progress, never within tolerance
    d = assess_history(hist(rdf), {**RDF_ONLY, "max_iterations": 6})
    assert d.action == "unconverged" and d.diagnosis == "max_iterations"
    assert d.best_iteration == 5 and "after 6 iterations" in d.reason
    d5 = assess_history(hist(rdf[:5]), {**RDF_ONLY, "max_iterations": 6})
    assert d5.action == "continue" and d5.diagnosis == "none"


def test_bad_histories_and_settings_name_the_field():
    with pytest.raises(InvalidInputError, match="no iteration yet"):
        assess_history([])
    with pytest.raises(InvalidInputError, match="'iteration': must increase"):
        assess_history(hist([0.1, 0.2])[::-1])
    with pytest.raises(InvalidInputError, match="rdf_deviation"):
        assess_history([{"iteration": 0, "rdf_deviation": float("nan"),
                         "pressure_deviation_bar": 0.0, "update_factor": 1.0,
                         "sampling_ps": 10.0}])
    with pytest.raises(InvalidInputError, match="damping"):
        assess_history(hist([0.1]), {"damping": 1.5})
    with pytest.raises(InvalidInputError, match="has no next iteration"):
        assess_history(hist([0.01]), RDF_ONLY).next_metrics()


def test_settings_from_an_ibi_spec():
    spec = SimpleNamespace(rdf_tolerance=0.03, pressure_tolerance_bar=80.0,
                           pressure_correction=False, max_iterations=None)
    st = IBIMonitorSettings.from_ibi_spec(spec, max_iterations=8, window=4)
    assert (st.rdf_tolerance, st.pressure_tolerance_bar, st.max_iterations, st.window) == (
        0.03, None, 8, 4)
    assert st.infer_corrections


def test_with_an_adaptive_factor_only_marked_corrections_count():
    from cgflow.ibi.settings import IBISettings

    st = IBIMonitorSettings.from_ibi_spec(IBISettings(), max_iterations=30)
    assert not st.infer_corrections and st.pressure_tolerance_bar == 50.0
    # the loop halves its own factor twice: not a correction of the monitor's
    h = [IterationMetrics(iteration=i, rdf_deviation=v, pressure_deviation_bar=0.0,
                          update_factor=f, sampling_ps=100.0)
         for i, (v, f) in enumerate([(0.1, 1.0), (0.06, 1.0), (0.07, 0.5), (0.05, 0.25)])]
    d = assess_history(h, st)
    assert d.corrections_used == 0 and d.diagnosis == "none"
    # metrics from an IterationResult-like object
    res = SimpleNamespace(iteration=4, rdf_deviation=0.04, pressure_deviation_bar=-12.0,
                          factor=0.375)
    m = IterationMetrics.from_result(res, 100.0, correction="stagnation")
    assert (m.update_factor, m.correction, m.sampling_ps) == (0.375, "stagnation", 100.0)
    with pytest.raises(InvalidInputError, match="sampling_ps"):
        IterationMetrics.from_result(res, -1.0)


# --- the Custodian handler --------------------------------------------------------------


def test_handler_writes_the_decision_and_reports_corrections(tmp_path):
    h = IBIConvergenceHandler(settings=RDF_ONLY)
    write_history(tmp_path / HISTORY_FILE, hist([0.1, 0.06, 0.05, 0.08, 0.12]))
    assert h.check(tmp_path)
    out = h.correct(tmp_path)
    assert out["actions"][0]["action"]["_set"] == {
        "update_factor": 0.5, "sampling_ps": 100.0, "restart_from_iteration": 2}
    assert "divergence" in out["errors"][0]
    assert read_decision(tmp_path / DECISION_FILE).diagnosis == "divergence"


def test_handler_on_plain_converged_and_unconverged_histories(tmp_path):
    h = IBIConvergenceHandler(settings={**RDF_ONLY, "max_iterations": 3})
    write_history(tmp_path / HISTORY_FILE, hist([0.1, 0.06]))
    assert not h.check(tmp_path)
    assert read_decision(tmp_path / DECISION_FILE).action == "continue"
    write_history(tmp_path / HISTORY_FILE, hist([0.1, 0.06, 0.015]))
    assert not h.check(tmp_path)
    assert read_decision(tmp_path / DECISION_FILE).action == "converged"
    write_history(tmp_path / HISTORY_FILE, hist([0.1, 0.06, 0.05]))
    assert h.check(tmp_path)
    out = h.correct(tmp_path)
    assert out["actions"] == [] and "max_iterations 3" in out["errors"][0]


def test_handler_input_errors_and_serialisation(tmp_path):
    h = IBIConvergenceHandler()
    with pytest.raises(InvalidInputError, match="not found"):
        h.check(tmp_path)
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"iteration": 0}))
    with pytest.raises(InvalidInputError, match="expected a JSON list"):
        read_history(tmp_path / HISTORY_FILE)
    (tmp_path / HISTORY_FILE).write_text(json.dumps([{"iteration": 0, "rdf_deviation": 0.1}]))
    with pytest.raises(InvalidInputError, match="pressure_deviation_bar"):
        h.check(tmp_path)
    with pytest.raises(InvalidInputError, match="window"):
        IBIConvergenceHandler(settings={"window": 1})
    h2 = IBIConvergenceHandler(settings={"max_corrections": 2}, decision_file="d.json")
    back = MontyDecoder().process_decoded(json.loads(json.dumps(h2.as_dict())))
    assert isinstance(back, IBIConvergenceHandler) and back.settings == {"max_corrections": 2}
    assert back.decision_file == "d.json"
