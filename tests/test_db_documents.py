"""Document schemas: validation, ids, units layout, flat results conversion (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from cgflow.db.documents import (
    SCHEMA_VERSION,
    AAResults,
    AARunDoc,
    CGRunDoc,
    IBIIterationDoc,
    ModelDoc,
    ParameterSetDoc,
    PotentialDoc,
    RDFData,
    finite_or_none,
)
from cgflow.errors import InvalidInputError
from cgflow.params import OPLSAA_REFERENCE


def flat_results(**overrides) -> dict:
    """AA results in the flat layout of the AA analysis."""
    r = np.linspace(0.01, 1.5, 150)
    lag = np.linspace(0.0, 5.0, 26)
    data = {
        "density_kg_m3": 697.3, "density_err_kg_m3": 1.2, "pressure_bar": 3.0,
        "pressure_err_bar": 25.0, "temperature_k": 298.2, "temperature_err_k": 0.3,
        "box_length_nm": 2.67, "n_molecules": 64, "production_ps": 10.0,
        "rdf_r_nm": r.tolist(), "rdf_g": (1.0 + np.exp(-((r - 0.6) / 0.1) ** 2)).tolist(),
        "rdf_n_frames": 51, "msd_lag_ps": lag.tolist(), "msd_nm2": (6e-3 * lag).tolist(),
        "d_nm2_ps": 1.0e-3, "d_err_nm2_ps": 1.0e-4, "d_xyz_nm2_ps": [1.1e-3, 0.9e-3, 1.0e-3],
        "d_fit_start_ps": 1.0, "d_fit_end_ps": 4.0, "yeh_hummer_nm2_ps": 2.0e-4,
        "d_corrected_nm2_ps": 1.2e-3, "viscosity_pa_s": 4.5e-4,
    }
    data.update(overrides)
    return data


def test_parameter_set_doc_from_parameter_set():
    doc = ParameterSetDoc.from_parameter_set(OPLSAA_REFERENCE, "c1", "narrow")
    raw = doc.to_mongo()
    assert raw["_id"] == doc.param_id == OPLSAA_REFERENCE.id
    assert raw["units"] == "gromacs" and raw["campaigns"] == ["c1"]
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["created_at"].tzinfo is not None
    assert doc.parameter_set() == OPLSAA_REFERENCE
    assert raw["params"]["bond_ctct_r0"] == pytest.approx(0.1529)  # nm, GROMACS units


def test_parameter_set_doc_rejects_a_wrong_id_and_bad_params():
    good = ParameterSetDoc.from_parameter_set(OPLSAA_REFERENCE).to_mongo()
    other = OPLSAA_REFERENCE.model_copy(update={"bond_ctct_k": 200000.0})
    with pytest.raises(InvalidInputError, match="is not the id of params"):
        ParameterSetDoc.validated({**good, "params": other.model_dump()})
    with pytest.raises(InvalidInputError, match="_id .* does not match"):
        ParameterSetDoc.validated({**good, "_id": "f" * 16})
    bad = {**good["params"], "bond_ctct_k": -1.0}
    with pytest.raises(InvalidInputError, match="bond_ctct_k"):
        ParameterSetDoc.validated({**good, "params": bad})
    with pytest.raises(InvalidInputError, match="field 'param_id'"):
        ParameterSetDoc.validated({**good, "param_id": "XYZ", "_id": "XYZ"})


def test_datetimes_are_utc_with_millisecond_precision():
    naive = datetime(2024, 5, 1, 12, 0, 0, 123456)
    doc = ParameterSetDoc.from_parameter_set(OPLSAA_REFERENCE)
    doc2 = ParameterSetDoc.validated({**doc.to_mongo(), "created_at": naive,
                                      "updated_at": naive.replace(
                                          tzinfo=timezone(timedelta(hours=2)))})
    assert doc2.created_at == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert doc2.updated_at == datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_schema_version_from_the_future_is_refused():
    raw = ParameterSetDoc.from_parameter_set(OPLSAA_REFERENCE).to_mongo()
    with pytest.raises(InvalidInputError, match="upgrade cgflow"):
        ParameterSetDoc.validated({**raw, "schema_version": SCHEMA_VERSION + 1})


def test_aa_results_from_flat_layout_nests_arrays_and_keeps_units():
    res = AAResults.from_flat(flat_results())
    assert res.density_kg_m3 == 697.3 and res.density_err_kg_m3 == 1.2
    assert res.rdf.n_frames == 51 and len(res.rdf.r_nm) == 150
    assert res.msd.lag_ps[-1] == 5.0
    assert res.diffusion.fit_start_ps == 1.0 and res.diffusion.fit_end_ps == 4.0
    assert res.d_nm2_ps == 1.0e-3 and res.d_err_nm2_ps == 1.0e-4
    assert AAResults.model_validate(res.model_dump()) == res


@pytest.mark.parametrize(("change", "field"), [
    ({"density_kg_m3": float("nan")}, "density_kg_m3"),
    ({"density_kg_m3": -5.0}, "density_kg_m3"),
    ({"rdf_g": [1.0, 2.0]}, "rdf"),
    ({"msd_lag_ps": [0.0] * 26}, "msd"),
    ({"d_xyz_nm2_ps": [1e-3, 1e-3]}, "diffusion.d_xyz_nm2_ps"),
    ({"d_fit_end_ps": 0.5}, "diffusion"),
    ({"pressure_err_bar": float("inf")}, "pressure_err_bar"),
    ({"unknown_quantity": 1.0}, "unknown_quantity"),
])
def test_aa_results_reject_bad_values_naming_the_field(change, field):
    with pytest.raises(InvalidInputError) as info:
        AAResults.from_flat(flat_results(**change))
    assert f"field '{field}" in str(info.value)


def test_rdf_must_be_increasing_and_non_negative():
    with pytest.raises(ValueError, match="strictly increasing"):
        RDFData(r_nm=[0.1, 0.1, 0.2], g=[0, 1, 1], n_frames=1)
    with pytest.raises(ValueError, match="g must be >= 0"):
        RDFData(r_nm=[0.1, 0.2], g=[-0.1, 1.0], n_frames=1)


def test_aa_run_doc_status_rules_and_id():
    base = {"param_id": OPLSAA_REFERENCE.id, "campaign": "c1", "preset": "tiny",
            "run_dir": "/tmp/run"}
    doc = AARunDoc.validated(base)
    assert doc.id == f"{OPLSAA_REFERENCE.id}:tiny" and doc.campaigns == ["c1"]
    assert doc.status == "running"
    with pytest.raises(InvalidInputError, match="completed run needs results"):
        AARunDoc.validated({**base, "status": "completed"})
    with pytest.raises(InvalidInputError, match="failed run needs an error"):
        AARunDoc.validated({**base, "status": "failed"})
    with pytest.raises(InvalidInputError, match="field 'preset'"):
        AARunDoc.validated({**base, "preset": "a:b"})
    with pytest.raises(InvalidInputError, match="field 'campaign'"):
        AARunDoc.validated({**base, "campaign": "$where"})
    done = AARunDoc.validated({**base, "status": "completed",
                               "results": AAResults.from_flat(flat_results()).model_dump(),
                               "corrections": [{"handler": object(), "actions": [1]}]})
    assert isinstance(done.corrections[0]["handler"], str)  # made JSON/BSON-safe


def test_later_stage_documents_have_natural_ids_and_accept_extras():
    pid = OPLSAA_REFERENCE.id
    table = {"r_nm": [0.3, 0.4, 0.5], "u_kj_mol": [5.0, -1.0, 0.0],
             "f_kj_mol_nm": [90.0, 5.0, 0.0]}
    rdf = {"r_nm": [0.3, 0.4, 0.5], "g": [0.0, 1.5, 1.0], "n_frames": 10}
    it = IBIIterationDoc.validated({"param_id": pid, "campaign": "c", "preset": "tiny",
                                    "iteration": 3, "potential": table, "rdf": rdf,
                                    "metrics": {"rdf_deviation": 0.02, "pressure_bar": None},
                                    "update_factor": 0.5, "n_beads": 343})
    assert it.id == f"{pid}:tiny:3" and it.to_mongo()["n_beads"] == 343
    pot = PotentialDoc.validated({"param_id": pid, "campaign": "c", "preset": "tiny",
                                  "converged": True, "reason": "rdf_deviation < 0.01",
                                  "n_iterations": 4, "best_iteration": 3, "potential": table,
                                  "target_rdf": rdf})
    assert pot.id == f"{pid}:tiny"
    with pytest.raises(InvalidInputError, match="same length"):
        PotentialDoc.validated({**pot.to_mongo(), "potential": {**table, "u_kj_mol": [1.0, 2.0]}})
    cg = CGRunDoc.validated({"param_id": pid, "campaign": "c", "preset": "tiny",
                             "alpha": {"mean": 4.2, "err": 0.3},
                             "d_cg_nm2_ps": {"mean": 4.2e-3, "err": 3e-4}})
    assert cg.id == f"{pid}:tiny" and cg.alpha.mean == 4.2
    with pytest.raises(InvalidInputError, match="needs alpha"):
        CGRunDoc.validated({"param_id": pid, "campaign": "c", "preset": "tiny"})
    model = ModelDoc.validated({"name": "gp-alpha", "campaign": "c", "kind": "gp",
                                "metadata": {"r2": 0.9, "features": ["bond_ctct_k"]}})
    assert model.id == "c:gp-alpha"


def test_finite_or_none():
    assert finite_or_none(None) is None
    assert finite_or_none(float("nan")) is None
    assert finite_or_none(np.float64(2.5)) == 2.5
