"""``cgflow dataset merge``: export folders of several campaigns merged into one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cgflow.cli.main import main
from cgflow.errors import InvalidInputError
from cgflow.ml.dataset import CampaignDataset
from cgflow.params import FIELDS, SPACES
from cgflow.stages.dataset import merge_exports

UNITS = {"params": "GROMACS (nm, kJ/mol, degrees)", "D": "nm^2/ps"}


def _export(folder, campaign, sets, r, preset="reference", extra_rows=()):
    recs = [{"param_id": ps.id, "params": {f: getattr(ps, f) for f in FIELDS},
             "r_nm": r, "u_kj_mol": 2.0 - r, "g_target": np.ones_like(r), "d_aa": 1e-3,
             "d_aa_err": 1e-4, "d_cg": 3e-3, "d_cg_err": 1e-4, "alpha": 3.0,
             "alpha_err": 0.3} for ps in sets]
    ds = CampaignDataset.from_records(recs, r, campaign=campaign)
    folder.mkdir(parents=True)
    ds.save_npz(folder / "dataset.npz")
    rows = [{"param_id": ps.id, "ibi_converged": True} for ps in sets] + list(extra_rows)
    (folder / "sets.json").write_text(json.dumps({
        "campaign": campaign, "preset": preset, "n_sets": len(rows), "n_converged": len(ds),
        "dataset_hash": ds.content_hash(), "units": UNITS, "sets": rows}))
    return ds


def test_merge_writes_one_dataset_traced_to_its_campaigns(tmp_path, capsys):
    sets = SPACES["wide"].sample(5, seed=3)
    r = np.round(np.arange(0.10, 1.201, 0.01), 10)
    a = _export(tmp_path / "a", "ref", sets[:2], r,
                extra_rows=[{"param_id": "x", "ibi_converged": False}])
    b = _export(tmp_path / "b", "ref-b", sets[2:], r[:-10])
    rc = main(["dataset", "merge", str(tmp_path / "a"), str(tmp_path / "b"),
               "-o", str(tmp_path / "m")])
    assert rc == 0
    assert "ref+ref-b: 5 converged of 6 sets" in capsys.readouterr().out
    merged = CampaignDataset.load_npz(tmp_path / "m" / "dataset.npz")
    summary = json.loads((tmp_path / "m" / "sets.json").read_text())
    assert summary["dataset_hash"] == merged.content_hash()
    assert [s["campaign"] for s in summary["sources"]] == ["ref", "ref-b"]
    assert summary["sources"][0]["dataset_hash"] == a.content_hash()
    assert summary["sources"][1]["dataset_hash"] == b.content_hash()
    assert [row["campaign"] for row in summary["sets"]] == ["ref"] * 3 + ["ref-b"] * 3
    assert merged.param_ids.tolist() == [ps.id for ps in sets]
    assert merged.r_nm[-1] == pytest.approx(1.2)
    assert np.all(merged.U[2:, merged.r_nm > 1.1 + 1e-9] == 0.0)


def test_merge_refuses_mixed_presets_and_tampered_parts_without_writing(tmp_path):
    sets = SPACES["wide"].sample(4, seed=3)
    r = np.round(np.arange(0.10, 1.201, 0.01), 10)
    _export(tmp_path / "a", "ref", sets[:2], r)
    _export(tmp_path / "b", "big", sets[2:], r, preset="demo")
    with pytest.raises(InvalidInputError, match="field 'preset' differs"):
        merge_exports([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    _export(tmp_path / "c", "ref-c", sets[2:], r)
    summary = json.loads((tmp_path / "c" / "sets.json").read_text())
    summary["dataset_hash"] = "0" * 64
    (tmp_path / "c" / "sets.json").write_text(json.dumps(summary))
    with pytest.raises(InvalidInputError, match="does not match the dataset_hash"):
        merge_exports([tmp_path / "a", tmp_path / "c"], tmp_path / "m")
    with pytest.raises(InvalidInputError, match="at least two"):
        merge_exports([tmp_path / "a"], tmp_path / "m")
    with pytest.raises(InvalidInputError, match="missing"):
        merge_exports([tmp_path / "a", tmp_path / "nowhere"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
