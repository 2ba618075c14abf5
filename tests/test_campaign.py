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
