"""Store: round trips, indexes, all-or-nothing writes, run states, GridFS, launchpad files."""

from __future__ import annotations

import pytest
import yaml
from test_db_documents import flat_results

from cgflow.db.documents import AAResults, ModelDoc
from cgflow.db.store import (
    AA_RUNS,
    MODELS,
    PARAMETER_SETS,
    RunStateError,
    Store,
    StoredDocumentError,
    redact_uri,
)
from cgflow.errors import InvalidInputError
from cgflow.params import OPLSAA_REFERENCE
from cgflow.presets import get_aa_preset

TINY = get_aa_preset("tiny")
OTHER = OPLSAA_REFERENCE.model_copy(update={"bond_ctct_k": 200000.0})


def _started(store: Store, campaign: str = "c1", ps=OPLSAA_REFERENCE):
    store.upsert_parameter_set(ps, campaign, "narrow")
    return store.start_aa_run(ps.id, campaign, TINY, "/runs/x/tiny/aa",
                              gromacs_version="2022.5", fw_id=7)


def test_parameter_set_round_trip_and_two_campaigns_give_one_document(store):
    d1 = store.upsert_parameter_set(OPLSAA_REFERENCE, "c1", None)
    d2 = store.upsert_parameter_set(OPLSAA_REFERENCE, "c2", "narrow")
    d3 = store.upsert_parameter_set(OPLSAA_REFERENCE, "c1", "wide")
    assert store.db[PARAMETER_SETS].count_documents({}) == 1
    assert d3.campaigns == ["c1", "c2"]
    assert d3.space == "narrow"  # the first space recorded is kept
    assert d3.created_at == d1.created_at and d3.updated_at >= d2.updated_at
    got = store.get_parameter_set(OPLSAA_REFERENCE.id)
    assert got == d3 and got.parameter_set() == OPLSAA_REFERENCE
    assert got.created_at.tzinfo is not None
    store.upsert_parameter_set(OTHER, "c2")
    assert [d.param_id for d in store.parameter_sets("c2")] == [OPLSAA_REFERENCE.id, OTHER.id]
    assert store.param_ids("c1") == [OPLSAA_REFERENCE.id]
    assert store.get_parameter_set("0" * 16) is None


def test_bad_input_raises_before_any_write(store):
    with pytest.raises(InvalidInputError, match="field 'campaigns.0'"):
        store.upsert_parameter_set(OPLSAA_REFERENCE, "")
    with pytest.raises(InvalidInputError, match="expected a ParameterSet"):
        store.upsert_parameter_set(OPLSAA_REFERENCE.model_dump(), "c1")
    assert store.counts()[PARAMETER_SETS] == 0
    with pytest.raises(InvalidInputError, match="no such parameter set"):
        store.start_aa_run(OPLSAA_REFERENCE.id, "c1", TINY, "/runs/x")
    assert store.counts()[AA_RUNS] == 0

    run = _started(store)
    before = store.get_aa_run(run.id)
    bad = flat_results(density_kg_m3=float("nan"))
    with pytest.raises(InvalidInputError, match="field 'density_kg_m3'"):
        store.complete_aa_run(run.id, bad, timings={"prod": {"wall_s": 3.0}})
    with pytest.raises(InvalidInputError, match="field 'timings.prod.wall_s'"):
        store.complete_aa_run(run.id, flat_results(), timings={"prod": {"wall_s": -1}})
    with pytest.raises(InvalidInputError, match="field 'timings.nvt.speed'"):
        store.record_aa_stages(run.id, {"nvt": {"wall_s": 1.0, "speed": 3}})
    assert store.get_aa_run(run.id) == before  # untouched
    assert store.counts() == {PARAMETER_SETS: 1, AA_RUNS: 1, "ibi_iterations": 0,
                              "potentials": 0, "cg_runs": 0, "frictions": 0, MODELS: 0,
                              "validations": 0, "active_rounds": 0, "synthetic_pairs": 0}


def test_aa_run_lifecycle_and_reuse(store):
    run = _started(store)
    assert run.status == "running" and run.attempts == 1 and run.campaigns == ["c1"]
    assert run.engine == {"gromacs_version": "2022.5"} and run.fw_id == 7
    assert run.preset_settings["n_molecules"] == TINY.n_molecules
    assert store.find_completed_aa_run(OPLSAA_REFERENCE.id, "tiny") is None

    run = store.record_aa_stages(run.id, {
        "em": {"wall_s": 2.0, "ns_per_day": None, "dt_ps": None,
               "corrections": [{"errors": ["LINCS"], "actions": ["dt/2"]}]},
        "nvt": {"wall_s": 5.0, "ns_per_day": 40.0, "dt_ps": 0.001, "corrections": []},
    })
    assert set(run.timings) == {"em", "nvt"} and run.total_wall_s == 7.0
    assert run.corrections == [{"stage": "em", "errors": ["LINCS"], "actions": ["dt/2"]}]

    # a failing step, then a rerun step that succeeds puts the run back to running
    run = store.fail_aa_run(run.id, "npt: mdrun exited with code 1")
    assert run.status == "failed" and "mdrun" in run.error and run.finished_at is not None
    run = store.record_aa_stages(run.id, {"npt": {"wall_s": 20.0, "ns_per_day": 43.0}})
    assert run.status == "running" and run.error is None and run.total_wall_s == 27.0

    done = store.complete_aa_run(run.id, flat_results(), timings={"prod": {"wall_s": 30.0}},
                                 engine={"threads": 1})
    assert done.status == "completed" and done.error is None
    assert isinstance(done.results, AAResults)
    assert done.results == AAResults.from_flat(flat_results())  # exact round trip
    assert done.total_wall_s == 57.0 and done.engine == {"gromacs_version": "2022.5",
                                                         "threads": 1}
    assert store.find_completed_aa_run(OPLSAA_REFERENCE.id, TINY) == done
    assert store.find_completed_aa_run(OPLSAA_REFERENCE.id, "demo") is None

    # completed is final
    with pytest.raises(RunStateError, match="already completed"):
        store.complete_aa_run(run.id, flat_results())
    with pytest.raises(RunStateError, match="already completed"):
        store.fail_aa_run(run.id, "late failure")
    with pytest.raises(RunStateError, match="already completed.*force=True"):
        store.start_aa_run(OPLSAA_REFERENCE.id, "c2", TINY, "/runs/y")
    assert store.get_aa_run(run.id) == done

    # another campaign reuses it
    store.upsert_parameter_set(OPLSAA_REFERENCE, "c2")
    linked = store.link_aa_run_to_campaign(done.id, "c2")
    assert linked.campaigns == ["c1", "c2"] and linked.campaign == "c1"
    assert [r.id for r in store.aa_runs(campaign="c2")] == [done.id]
    assert [r.id for r in store.aa_runs(campaign="c1", status="completed")] == [done.id]
    assert store.aa_runs(campaign="c1", status="failed") == []
    assert store.aa_runs(param_ids=[OTHER.id]) == []

    # force re-runs it from scratch
    again = store.start_aa_run(OPLSAA_REFERENCE.id, "c2", TINY, "/runs/y", force=True)
    assert again.status == "running" and again.results is None and again.attempts == 2
    assert again.timings == {} and again.campaign == "c2" and again.campaigns == ["c1", "c2"]
    assert again.created_at == done.created_at


def test_run_state_errors_for_unknown_runs_and_ids(store):
    with pytest.raises(InvalidInputError, match="no such AA run"):
        store.fail_aa_run("0" * 16 + ":tiny", "x")
    store.upsert_parameter_set(OPLSAA_REFERENCE, "c1")
    with pytest.raises(InvalidInputError, match="field 'run_id'"):
        store.start_aa_run(OPLSAA_REFERENCE.id, "c1", TINY, "/r", run_id="abc:tiny")
    run = store.start_aa_run(OPLSAA_REFERENCE.id, "c1", TINY, "/r",
                             run_id=f"{OPLSAA_REFERENCE.id}:tiny")
    failed = store.fail_aa_run(run.id, "x" * 30_000)
    assert len(failed.error) < 20_100 and failed.error.startswith("...")


def test_a_concurrent_change_is_detected(store):
    run = _started(store)
    stale_copy = store.get_aa_run(run.id)
    store.record_aa_stages(run.id, {"em": {"wall_s": 1.0}})
    with pytest.raises(RunStateError, match="changed while being updated"):
        store._replace_aa_run(stale_copy, stale_copy)


def test_ensure_indexes_creates_them_once(store):
    made = store.ensure_indexes()
    assert store.ensure_indexes() == made  # idempotent
    info = store.db[AA_RUNS].index_information()
    assert {"param_id_preset", "campaigns_status", "status"} <= set(info)
    assert info["campaigns_status"]["key"] == [("campaigns", 1), ("status", 1)]
    ibi = store.db["ibi_iterations"].index_information()
    assert ibi["param_id_preset_iteration"].get("unique") is True
    assert "campaigns" in store.db[PARAMETER_SETS].index_information()


def test_ibi_potential_and_cg_documents_round_trip(store):
    pid = OPLSAA_REFERENCE.id
    table = {"r_nm": [0.3, 0.4, 0.5], "u_kj_mol": [5.0, -1.0, 0.0],
             "f_kj_mol_nm": [90.0, 5.0, 0.0]}
    rdf = {"r_nm": [0.3, 0.4, 0.5], "g": [0.0, 1.5, 1.0], "n_frames": 10}
    for it in (1, 0, 2):
        store.save_ibi_iteration({"param_id": pid, "campaign": "c", "preset": "tiny",
                                  "iteration": it, "potential": table, "rdf": rdf,
                                  "metrics": {"rdf_deviation": 0.1 / (it + 1)},
                                  "update_factor": 0.2, "is_best": it == 2})
    its = store.ibi_iterations(pid, "tiny")
    assert [i.iteration for i in its] == [0, 1, 2] and its[2].is_best
    assert its[0].potential.u_kj_mol == [5.0, -1.0, 0.0]
    first = its[1]
    resaved = store.save_ibi_iteration({**first.to_mongo(), "update_factor": 0.4})
    assert resaved.update_factor == 0.4 and resaved.created_at == first.created_at
    assert store.db["ibi_iterations"].count_documents({}) == 3

    pot = store.save_potential({"param_id": pid, "campaign": "c", "preset": "tiny",
                                "converged": True, "reason": "converged", "n_iterations": 3,
                                "best_iteration": 2, "potential": table, "target_rdf": rdf,
                                "metrics_history": [i.metrics for i in its]})
    assert store.get_potential(pid, "tiny") == pot
    assert store.potentials(campaign="c", converged=True) == [pot]
    assert store.potentials(converged=False) == []

    cg = store.save_cg_run({"param_id": pid, "campaign": "c", "preset": "tiny",
                            "run_dir": "/runs/cg", "alpha": {"mean": 4.1, "err": 0.2},
                            "d_cg_nm2_ps": {"mean": 4.1e-3, "err": 2e-4}, "n_beads": 343})
    assert store.get_cg_run(pid, "tiny") == cg and cg.model_extra == {"n_beads": 343}
    assert store.cg_runs(campaign="c", status="completed") == [cg]
    assert store.delete_ibi_iterations(pid, "tiny") == 3
    assert store.ibi_iterations(pid, "tiny") == []
    with pytest.raises(InvalidInputError, match="needs alpha"):
        store.save_cg_run({"param_id": pid, "campaign": "c", "preset": "demo"})
    assert store.get_cg_run(pid, "demo") is None


def test_model_blobs_round_trip_through_gridfs(store):
    blob = bytes(range(256)) * 5000  # 1.28 MB: several GridFS chunks
    model = store.save_model({"name": "mlp", "campaign": "c", "kind": "mlp",
                              "metadata": {"features": 19, "r2": 0.93}}, blob)
    assert model.gridfs_id and model.blob_size == len(blob) and len(model.blob_sha256) == 64
    assert store.get_model_blob(model.gridfs_id) == blob
    assert store.get_model("c", "mlp") == model and store.models(kind="mlp") == [model]

    # metadata update without a blob keeps the weights
    meta = store.save_model({"name": "mlp", "campaign": "c", "kind": "mlp",
                             "metadata": {"r2": 0.95}})
    assert meta.gridfs_id == model.gridfs_id and meta.metadata == {"r2": 0.95}
    # new weights replace the old blob, which is deleted
    new = store.save_model(meta, b"new weights")
    assert store.get_model_blob(new.gridfs_id) == b"new weights"
    with pytest.raises(InvalidInputError, match="no such model blob"):
        store.get_model_blob(model.gridfs_id)
    with pytest.raises(InvalidInputError, match="no such model blob"):
        store.get_model_blob("not-an-id")
    assert store.db["model_blobs.files"].count_documents({}) == 1

    with pytest.raises(InvalidInputError, match="field 'kind'"):
        store.save_model({"name": "bad", "campaign": "c", "kind": ""}, b"x")
    assert store.db["model_blobs.files"].count_documents({}) == 1  # no orphan blob
    key = store.put_model_blob(b"raw", "raw.bin", {"k": 1})
    assert store.get_model_blob(key) == b"raw" and store.delete_model_blob(key)
    assert not store.delete_model_blob(key)
    assert isinstance(ModelDoc.validated(new.to_mongo()), ModelDoc)


def test_a_corrupt_stored_document_is_reported(store):
    store.db[AA_RUNS].insert_one({"_id": "x:tiny", "param_id": "x"})
    with pytest.raises(StoredDocumentError, match="aa_runs document 'x:tiny'"):
        store.get_aa_run("x:tiny")


def test_store_from_launchpad_files(mongo_uri, tmp_path, monkeypatch):
    lp = tmp_path / "lp.yaml"
    lp.write_text(yaml.safe_dump({"host": mongo_uri, "name": "cgft_lpfile", "uri_mode": True,
                                  "mongoclient_kwargs": {"serverSelectionTimeoutMS": 5000}}))
    with Store.from_launchpad_file(lp) as st:
        st.ping()
        assert st.db_name == "cgft_lpfile"
        st.client.drop_database("cgft_lpfile")

    secret = tmp_path / "secret.yaml"
    secret.write_text(yaml.safe_dump({"host": "localhost", "port": 27017, "name": "cgflow",
                                      "username": "cgflow", "password": "s3cr3t-pw",
                                      "authsource": "admin"}))
    st = Store.from_launchpad_file(secret)
    assert "s3cr3t-pw" not in repr(st) and "(authenticated)" in repr(st)
    st.close()

    monkeypatch.setenv("CGFLOW_DB_USERNAME", "envuser")
    monkeypatch.setenv("CGFLOW_DB_PASSWORD", "env-pw")
    nocreds = tmp_path / "nocreds.yaml"
    nocreds.write_text(yaml.safe_dump({"host": "localhost", "port": 27017, "name": "cgflow"}))
    st = Store.from_launchpad_file(nocreds)
    assert "(authenticated)" in repr(st) and "env-pw" not in repr(st)
    st.close()

    for bad, match in ((["a", "b"], "expected a mapping"), ("host: [", "not valid YAML")):
        f = tmp_path / "bad.yaml"
        f.write_text(bad if isinstance(bad, str) else yaml.safe_dump(bad))
        with pytest.raises(InvalidInputError, match=match):
            Store.from_launchpad_file(f)


def test_uris_are_redacted_in_messages():
    assert redact_uri("mongodb://u:pw@h:1/db") == "mongodb://***@h:1/db"
    assert redact_uri("mongodb://h:1/db") == "mongodb://h:1/db"
    st = Store.from_uri("mongodb://user:topsecret@127.0.0.1:1/?serverSelectionTimeoutMS=200",
                        db_name="x")
    assert "topsecret" not in repr(st)
    with pytest.raises(Exception) as info:
        st.ping()
    assert "topsecret" not in str(info.value) and "cannot reach the job database" in str(
        info.value)
    st.close()
