"""``cgflow potentials``: selection by filters, and exported tables that LAMMPS runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from plain_lammps import run_snippet_in_plain_lammps

from cgflow.cli.potentials import export_potential, parse_where, select_potentials
from cgflow.errors import InvalidInputError
from cgflow.ibi.potential import TabulatedPotential
from cgflow.params import OPLSAA_REFERENCE, SPACES


def lj_potential(sigma=0.6, eps=3.0, r_cut=1.2):
    r = np.round(np.arange(0.1, r_cut + 1e-9, 0.01), 6)
    u = 4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6)
    u = np.minimum(u, 200.0)
    u -= u[-1]
    s = np.clip((r_cut - r) / 0.1, 0, 1)
    return TabulatedPotential.from_energy(r, u * s * s * (3 - 2 * s))


def store_set(store, ps, campaign, converged, alpha):
    store.upsert_parameter_set(ps, campaign, "narrow")
    pot = lj_potential()
    rdf = {"r_nm": pot.r_nm.tolist(), "g": np.ones_like(pot.r_nm).tolist(), "n_frames": 5}
    store.save_potential({
        "param_id": ps.id, "campaign": campaign, "preset": "tiny", "converged": converged,
        "reason": "converged" if converged else "stagnation", "n_iterations": 3,
        "best_iteration": 2, "potential": pot.to_dict(), "target_rdf": rdf, "final_rdf": rdf,
        "metrics_history": [{"rdf_deviation": 0.1}, {"rdf_deviation": 0.05},
                            {"rdf_deviation": 0.01, "pressure_deviation_bar": 3.0}],
    })
    if alpha is not None:
        store.save_cg_run({
            "param_id": ps.id, "campaign": campaign, "preset": "tiny", "status": "completed",
            "d_cg_nm2_ps": {"mean": alpha * 1e-3, "err": 1e-4},
            "d_aa_nm2_ps": {"mean": 1e-3, "err": 1e-4},
            "alpha": {"mean": alpha, "err": 0.2},
        })


@pytest.fixture
def populated(store):
    a, b = SPACES["narrow"].sample(2, seed=5)
    store_set(store, OPLSAA_REFERENCE, "c1", True, 3.0)
    store_set(store, a, "c1", False, None)
    store_set(store, b, "c2", True, 6.0)
    return store, a, b


def test_filters(populated):
    store, a, b = populated
    ids = lambda rows: sorted(r.doc.param_id for r in rows)  # noqa: E731
    assert ids(select_potentials(store)) == sorted([OPLSAA_REFERENCE.id, a.id, b.id])
    assert ids(select_potentials(store, campaign="c1")) == sorted([OPLSAA_REFERENCE.id, a.id])
    assert ids(select_potentials(store, converged=False)) == [a.id]
    assert ids(select_potentials(store, alpha=(4.0, 10.0))) == [b.id]
    k = OPLSAA_REFERENCE.bond_cthc_k
    where = parse_where([f"bond_cthc_k={k - 1}:{k + 1}"])
    assert ids(select_potentials(store, where=where)) == [OPLSAA_REFERENCE.id]


def test_bad_filters_name_the_value():
    with pytest.raises(InvalidInputError, match="'bond_ctck_k'"):
        parse_where(["bond_ctck_k=1:2"])
    with pytest.raises(InvalidInputError, match="'abc'"):
        parse_where(["bond_ctct_k=abc"])


@pytest.mark.engine
@pytest.mark.skipif(shutil.which("lmp") is None, reason="LAMMPS (lmp) not installed")
def test_exported_table_runs_in_plain_lammps(populated, tmp_path: Path):
    store, *_ = populated
    row = select_potentials(store, campaign="c1", converged=True)[0]
    files = export_potential(row, tmp_path)
    names = {f.suffix for f in files}
    assert {".table", ".pair", ".xvg", ".pot", ".dat"} <= names
    snippet = next(f for f in files if f.name.endswith(".in.pair")).read_text()
    run_snippet_in_plain_lammps(snippet, tmp_path)
