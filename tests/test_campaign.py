"""Campaign specs: loading, validation errors, expansion into parameter sets."""

from pathlib import Path

import pytest

from cgflow.errors import InvalidInputError
from cgflow.orchestration.campaign import campaign_spec_from_text, load_campaign_spec
from cgflow.params import OPLSAA_REFERENCE

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.yaml")))
def test_shipped_specs_load(name):
    spec, sets = load_campaign_spec(WORKFLOWS / f"{name}.yaml")
    assert spec.name
    assert len({ps.id for ps in sets}) == len(sets)


def test_demo_includes_reference_and_is_reproducible():
    spec, sets = load_campaign_spec(WORKFLOWS / "demo.yaml")
    _, again = load_campaign_spec(WORKFLOWS / "demo.yaml")
    assert sets[0].id == OPLSAA_REFERENCE.id
    assert [s.id for s in sets] == [s.id for s in again]
    assert len(sets) == 1 + spec.n_sets


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("name: x\npreset: huge\n", ["field 'preset'", "'huge'"]),
        ("name: x\nn_sets: -2\n", ["field 'n_sets'", "-2"]),
        ("name: x\nsapce: wide\n", ["field 'sapce'", "unknown field"]),
        ("preset: demo\n", ["field 'name'", "missing"]),
        ("name: x\nspace: tight\n", ["field 'space'", "'tight'"]),
        ("name: 'bad name!'\n", ["field 'name'", "'bad name!'"]),
        ("name: x\nn_sets: [1\n", ["malformed YAML", "line"]),
        ("- just\n- a list\n", ["expected a mapping"]),
        ("name: x\nibi: {update_method: newton}\n", ["update_method", "'newton'"]),
    ],
)
def test_bad_specs_are_refused_with_field_and_value(text, fragments):
    with pytest.raises(InvalidInputError) as exc:
        campaign_spec_from_text(text, source="spec.yaml")
    for frag in fragments:
        assert frag in str(exc.value), str(exc.value)


def test_bad_explicit_parameter_set_names_index_and_field():
    d = OPLSAA_REFERENCE.model_dump()
    d["angle_ctctct_theta0"] = 185.0
    text = "name: x\nn_sets: 0\ninclude_reference: false\nparameter_sets:\n  - " + str(d)
    with pytest.raises(InvalidInputError) as exc:
        campaign_spec_from_text(text, source="spec.yaml")
    msg = str(exc.value)
    assert "parameter_sets[0]" in msg and "angle_ctctct_theta0" in msg and "185.0" in msg


def test_empty_campaign_refused():
    with pytest.raises(InvalidInputError, match="no parameter sets"):
        campaign_spec_from_text("name: x\nn_sets: 0\ninclude_reference: false\n")


def test_lammps_units_explicit_sets_are_converted():
    spec, sets = load_campaign_spec(WORKFLOWS / "explicit.yaml")
    assert spec.units == "lammps"
    assert sets[0].to_lammps()["bond_cthc_k"] == pytest.approx(400.0)
    assert sets[0].bond_ctct_k == pytest.approx(OPLSAA_REFERENCE.bond_ctct_k)


def test_ibi_method_reaches_the_ibi_settings():
    import numpy as np

    from cgflow.presets import get_cg_preset
    from cgflow.stages import cg as cg_stage

    spec, _ = campaign_spec_from_text(
        "name: x\nibi: {update_method: ihnc, pressure_factor: 0.5}\n", source="spec.yaml")
    r = np.round(np.arange(0.005, 1.6, 0.01), 6)
    target = cg_stage.make_target(rdf_r_nm=r, rdf_g=np.ones_like(r), density_kg_m3=700.0,
                                  pressure_bar=1.0, pressure_err_bar=5.0, temperature_k=298.15)
    settings = cg_stage.make_settings(spec.ibi, target, get_cg_preset("tiny"))
    assert settings.update_method == "ihnc" and settings.pressure_factor == 0.5
    default, _ = campaign_spec_from_text("name: x\n", source="spec.yaml")
    assert cg_stage.make_settings(default.ibi, target, get_cg_preset("tiny")).update_method == "ibi"


# --- every IBI setting is reachable from a campaign spec -----------------------------------

#: A valid non-default value of every field of IBISettings (a new field must be added here).
NON_DEFAULT_IBI = {
    "temperature_k": 298.15,  # set explicitly: must equal the AA preset's (checked below)
    "cutoff_nm": 1.0, "grid_dr_nm": 0.02, "r_min_nm": 0.2, "table_spacing_nm": 0.002,
    "update_method": "ihnc", "initial_guess": "hnc", "ihnc_start_iteration": 2,
    "inverse_model": "inverse_model.json",
    "acceleration": "anderson", "anderson_memory": 2, "anderson_max_coefficient": 1.5,
    "hnc_s_min": 0.5, "update_factor": 0.7, "adaptive_factor": False, "factor_min": 0.2,
    "factor_max": 0.9, "g_min": 0.05, "smoothing_window": 7, "switch_width_nm": 0.05,
    "pressure_correction": False, "pressure_method": "simple", "pressure_factor": 0.5,
    "pressure_drift_weight": 0.3, "pressure_max_amplitude_kt": 0.5, "rdf_tolerance": 0.03,
    "pressure_tolerance_bar": 80.0, "max_iterations": 7,
    "monitor": {"window": 4, "max_corrections": 2, "damping": 0.3},
}


def _flat_target(pressure_err_bar: float = 5.0):
    import numpy as np

    from cgflow.stages import cg as cg_stage

    r = np.round(np.arange(0.005, 1.6, 0.01), 6)
    return cg_stage.make_target(rdf_r_nm=r, rdf_g=np.ones_like(r), density_kg_m3=700.0,
                                pressure_bar=1.0, pressure_err_bar=pressure_err_bar,
                                temperature_k=298.15)


def _ibi_firework_settings(spec_text: str):
    """The resolved IBI settings of the first IBI Firework of a campaign spec, as the
    Firetask makes them (its stored ``ibi`` parameter, then make_settings)."""
    from cgflow.ibi.settings import IBISettings
    from cgflow.orchestration.workflows import campaign_workflow
    from cgflow.presets import get_cg_preset
    from cgflow.stages import cg as cg_stage

    spec, sets = campaign_spec_from_text(spec_text, source="spec.yaml")
    wf = campaign_workflow(spec, sets)
    fw = next(f for f in wf.fws if f.spec.get("cgflow_stage") == "cg-ibi")
    stored = fw.to_dict()["spec"]["_tasks"][0]["ibi"]  # what the database holds
    return cg_stage.make_settings(IBISettings.model_validate(stored), _flat_target(),
                                  get_cg_preset(spec.preset))


def test_the_table_of_ibi_settings_covers_every_field():
    from cgflow.ibi.settings import IBISettings

    assert set(NON_DEFAULT_IBI) == set(IBISettings.model_fields)


@pytest.mark.parametrize("field", sorted(NON_DEFAULT_IBI))
def test_every_ibi_setting_reaches_the_cg_stage(field):
    import yaml

    from cgflow.stages import cg as cg_stage

    value = NON_DEFAULT_IBI[field]
    text = yaml.safe_dump({"name": "x", "preset": "tiny", "cg_stage": True,
                           "ibi": {field: value}})
    settings = _ibi_firework_settings(text)
    if field == "monitor":
        mon = cg_stage.monitor_settings(settings)
        assert (mon.window, mon.max_corrections, mon.damping) == (4, 2, 0.3)
    else:
        assert getattr(settings, field) == value


def test_an_unknown_ibi_key_fails_naming_it():
    with pytest.raises(InvalidInputError, match="ibi.pressure_metod"):
        campaign_spec_from_text("name: x\nibi: {pressure_metod: simple}\n", source="s.yaml")
    with pytest.raises(InvalidInputError, match="ibi.monitor.windoww"):
        campaign_spec_from_text("name: x\nibi: {monitor: {windoww: 3}}\n", source="s.yaml")
    with pytest.raises(InvalidInputError, match="ibi.pressure_method.*'newton'"):
        campaign_spec_from_text("name: x\nibi: {pressure_method: newton}\n", source="s.yaml")


def test_an_ibi_temperature_other_than_the_all_atom_one_is_refused():
    with pytest.raises(InvalidInputError, match="ibi.temperature_k = 310"):
        campaign_spec_from_text("name: x\npreset: tiny\nibi: {temperature_k: 310}\n",
                                source="s.yaml")


def test_pressure_method_simple_from_a_spec_changes_the_ibi_update(tmp_path):
    """``ibi: {pressure_method: simple}`` takes effect in the CG stage's update: the same
    canned LAMMPS run, finished with the settings the IBI Firework makes, gives VOTCA's
    'simple' ramp instead of the virial one."""
    import json
    import shutil

    import numpy as np

    from cgflow.ibi.iteration import (
        IBI_STATE_FILE,
        finish_iteration,
        read_sampled_pressure,
        read_sampled_rdf,
    )
    from cgflow.ibi.potential import TabulatedPotential, potential_grid, switching_function
    from cgflow.ibi.settings import IBITarget
    from cgflow.presets import CGPreset

    canned = Path(__file__).resolve().parent / "data" / "ibi" / "normal_run"
    preset = CGPreset(name="t", n_beads=216, equilibration_ps=1.0, ibi_sampling_ps=5.0,
                      production_ps=5.0, rcut_nm=1.2)
    r = potential_grid(0.1, 1.2, 0.01)
    u = 4 * 3.0 * ((0.6 / r) ** 12 - (0.6 / r) ** 6)
    pot = TabulatedPotential.from_energy(r, (u - u[-1]) * switching_function(r, 1.2, 0.1))
    amplitudes = {}
    for method in ("virial", "simple"):
        work = tmp_path / method
        shutil.copytree(canned, work)
        (work / IBI_STATE_FILE).write_text(json.dumps({"iteration": 3, "seed": 1,
                                                       "potential": pot.to_dict()}))
        rb, gb, _ = read_sampled_rdf(work)
        p, _ = read_sampled_pressure(work)
        target = IBITarget(r_nm=rb, g=gb, density_kg_m3=723.0, pressure_bar=p - 200.0,
                           temperature_k=298.15)
        settings = _ibi_firework_settings(
            f"name: x\npreset: tiny\ncg_stage: true\nibi: {{pressure_method: {method}}}\n")
        settings = settings.replace(cutoff_nm=1.2)  # the canned run's grid
        res = finish_iteration(work, target, settings, preset)
        amplitudes[method] = res.pressure_ramp_amplitude_kj_mol
    assert amplitudes["virial"] < 0 and amplitudes["simple"] < 0
    assert not np.isclose(amplitudes["virial"], amplitudes["simple"], rtol=1e-3)


def test_the_default_initial_guess_is_the_shipped_inverse_where_it_applies():
    from cgflow.ml.inverse import SHIPPED_INVERSE
    from cgflow.presets import get_cg_preset
    from cgflow.stages import cg as cg_stage

    spec, _ = campaign_spec_from_text("name: x\npreset: tiny\n", source="spec.yaml")
    assert spec.ibi.initial_guess == "auto"
    target = _flat_target()
    tiny = cg_stage.make_settings(spec.ibi, target, get_cg_preset("tiny"))
    assert tiny.initial_guess == "inverse" and tiny.inverse_model == str(SHIPPED_INVERSE)
    # a grid that begins with the inverse's and goes on (the demo preset's 1.5 nm cutoff)
    demo = cg_stage.make_settings(spec.ibi, target, get_cg_preset("demo"))
    assert demo.initial_guess == "inverse" and demo.cutoff_nm == 1.5
    # a grid the inverse does not cover (a shorter cutoff): the PMF
    short, _ = campaign_spec_from_text("name: x\nibi: {cutoff_nm: 1.0}\n", source="s.yaml")
    assert cg_stage.make_settings(short.ibi, target, get_cg_preset("tiny")).initial_guess \
        == "pmf"
    # another temperature: the PMF
    hot = cg_stage.make_target(rdf_r_nm=target.r_nm, rdf_g=target.g, density_kg_m3=700.0,
                               pressure_bar=1.0, pressure_err_bar=5.0, temperature_k=350.0)
    assert cg_stage.make_settings(spec.ibi, hot, get_cg_preset("tiny")).initial_guess == "pmf"
    # an explicit choice is kept
    pmf, _ = campaign_spec_from_text("name: x\nibi: {initial_guess: pmf}\n", source="s.yaml")
    assert cg_stage.make_settings(pmf.ibi, target, get_cg_preset("tiny")).initial_guess == "pmf"
