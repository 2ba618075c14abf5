"""Bead trajectories: validation, .npz storage, GROMACS and LAMMPS readers."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import MDAnalysis
import numpy as np
import pytest

from cgflow.analysis import (
    BeadTrajectory,
    beads_from_gromacs,
    beads_from_lammps,
    iter_lammps_text_dump,
    load_beads_npz,
    read_lammps_data_atoms,
    save_beads_npz,
)
from cgflow.errors import InvalidInputError

DATA = Path(__file__).parent / "data" / "analysis"
WATER_MASS = 15.9994 + 2 * 1.008  # OPLS-AA SPC masses in the tpr


def _traj(n_frames=3, n_beads=4, box=2.0, seed=0) -> BeadTrajectory:
    rng = np.random.default_rng(seed)
    return BeadTrajectory(
        positions=rng.uniform(-box, 2 * box, size=(n_frames, n_beads, 3)),
        boxes=np.full((n_frames, 3), box),
        times=np.arange(n_frames) * 0.5,
        masses=np.full(n_beads, 114.23),
    )


# --- BeadTrajectory ------------------------------------------------------------------------


def test_positions_are_wrapped_into_the_box():
    traj = _traj()
    assert traj.positions.dtype == np.float64
    assert np.all(traj.positions >= 0.0) and np.all(traj.positions < 2.0)


def test_wrapping_keeps_minimum_image_geometry():
    raw = np.array([[[-0.1, 0.5, 4.3], [1.9, 0.5, 0.2]]])
    traj = BeadTrajectory(raw, np.array([[2.0, 2.0, 2.0]]), np.array([0.0]), np.ones(2))
    np.testing.assert_allclose(traj.positions[0, 0], [1.9, 0.5, 0.3], atol=1e-12)
    np.testing.assert_allclose(traj.positions[0, 1], [1.9, 0.5, 0.2], atol=1e-12)


def test_value_just_below_zero_wraps_below_box_length():
    raw = np.array([[[-1e-17, 0.0, 0.0]]])
    traj = BeadTrajectory(raw, np.array([[2.0, 2.0, 2.0]]), np.array([0.0]), np.ones(1))
    assert 0.0 <= traj.positions[0, 0, 0] < 2.0


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("boxes", np.full((3, 2), 2.0), "boxes"),
        ("times", np.array([0.0, 1.0, 1.0]), "times"),
        ("masses", np.ones(5), "masses"),
        ("boxes", np.array([[2.0, 2.0, 2.0], [2.0, -1.0, 2.0], [2.0, 2.0, 2.0]]), "boxes"),
        ("masses", np.array([1.0, 1.0, 0.0, 1.0]), "masses"),
    ],
)
def test_bad_fields_are_named(field, value, match):
    good = _traj()
    kwargs = {k: getattr(good, k) for k in ("positions", "boxes", "times", "masses")}
    kwargs[field] = value
    with pytest.raises(InvalidInputError, match=match):
        BeadTrajectory(**kwargs)


def test_select_by_time_and_stride():
    traj = _traj(n_frames=10)
    sub = traj.select(start_ps=1.0, end_ps=3.5, stride=2)
    np.testing.assert_allclose(sub.times, [1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError, match="start_ps"):
        traj.select(start_ps=100.0)


def test_mass_density_of_one_bead_per_cubic_nanometre():
    traj = BeadTrajectory(
        np.zeros((1, 8, 3)), np.full((1, 3), 2.0), np.zeros(1), np.full(8, 114.23)
    )
    # 114.23 g/mol per nm^3 = 114.23 / 6.02214076e23 g / 1e-21 cm^3 = 0.18968 g/cm^3
    np.testing.assert_allclose(traj.mass_densities_kg_m3, [189.682], rtol=1e-4)


def test_npz_round_trip(tmp_path):
    traj = _traj()
    path = save_beads_npz(traj, tmp_path / "beads")
    assert path.suffix == ".npz"
    back = load_beads_npz(path)
    for name in ("positions", "boxes", "times", "masses"):
        np.testing.assert_array_equal(getattr(back, name), getattr(traj, name))
    single = load_beads_npz(save_beads_npz(traj, tmp_path / "b32.npz", single_precision=True))
    np.testing.assert_allclose(single.positions, traj.positions, atol=1e-6)


def test_npz_missing_array_is_reported(tmp_path):
    np.savez(tmp_path / "bad.npz", positions=np.zeros((1, 1, 3)))
    with pytest.raises(InvalidInputError, match="boxes"):
        load_beads_npz(tmp_path / "bad.npz")


# --- GROMACS -------------------------------------------------------------------------------


def _write_fake_gromacs(tmp_path: Path, suffix: str = ".xtc"):
    """Three CH2 molecules (one residue each), some split by the periodic boundary.

    Returns the gro and xtc paths, expected COMs (F, 3, 3) nm, boxes (F, 3) nm and
    times (ps).
    """
    n_mol, per = 3, 3
    u = MDAnalysis.Universe.empty(
        n_mol * per, n_residues=n_mol, atom_resindex=np.repeat(np.arange(n_mol), per),
        trajectory=True,
    )
    u.add_TopologyAttr("names", ["C1", "H11", "H12"] * n_mol)
    u.add_TopologyAttr("resnames", ["MOL"] * n_mol)
    u.add_TopologyAttr("resids", np.arange(1, n_mol + 1))
    masses = np.array([12.011, 1.008, 1.008])
    shape = np.array([[0.0, 0.0, 0.0], [0.1, 0.05, 0.0], [-0.1, 0.05, 0.02]])  # nm
    centres = np.array([[0.02, 1.0, 1.0], [1.5, 2.49, 0.5], [1.0, 1.0, 2.48]])  # nm, near edges
    boxes = np.array([[2.5, 2.5, 2.5], [2.6, 2.55, 2.5], [2.45, 2.5, 2.52]])
    frames, expected = [], []
    for f, box in enumerate(boxes):
        moved = centres + 0.01 * f
        atoms = (moved[:, None, :] + shape[None, :, :]).reshape(-1, 3)
        com = moved + (masses @ shape) / masses.sum()
        expected.append(com % box)
        frames.append(atoms % box)  # every atom wrapped: molecules broken at the edges
    coords = np.stack(frames) * 10.0  # Angstrom for MDAnalysis
    dims = np.column_stack([boxes * 10.0, np.full((3, 3), 90.0)])
    u.load_new(coords, order="fac", dimensions=dims, dt=0.5)
    gro, xtc = tmp_path / "fake.gro", tmp_path / f"fake{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.atoms.write(str(gro))
        with MDAnalysis.Writer(str(xtc), u.atoms.n_atoms) as writer:
            for _ in u.trajectory:
                writer.write(u.atoms)
    return gro, xtc, np.stack(expected), boxes, np.arange(3) * 0.5


def _periodic_diff(a, b, box):
    d = a - b
    return d - box * np.round(d / box)


@pytest.mark.parametrize("suffix", [".xtc", ".trr"])
def test_gromacs_round_trip_with_gro_topology(tmp_path, suffix):
    gro, trajectory, expected, boxes, times = _write_fake_gromacs(tmp_path, suffix)
    traj = beads_from_gromacs(gro, trajectory)
    assert traj.positions.shape == (3, 3, 3)
    np.testing.assert_allclose(traj.boxes, boxes, atol=1e-3)
    np.testing.assert_allclose(traj.times, times, atol=1e-6)
    np.testing.assert_allclose(traj.masses, 12.011 + 2 * 1.008, rtol=1e-3)
    for f in range(3):
        diff = _periodic_diff(traj.positions[f], expected[f], traj.boxes[f])
        assert np.abs(diff).max() < 2e-3  # xtc precision is 1e-3 nm
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.gro", f"fake{suffix}"]


def test_gromacs_single_gro_frame(tmp_path):
    gro, _, expected, boxes, _ = _write_fake_gromacs(tmp_path)
    traj = beads_from_gromacs(gro, gro)
    assert traj.n_frames == 1 and traj.times[0] == 0.0
    np.testing.assert_allclose(traj.boxes[0], boxes[0], atol=1e-3)
    assert np.abs(_periodic_diff(traj.positions[0], expected[0], boxes[0])).max() < 2e-3


def test_gromacs_atom_count_mismatch(tmp_path):
    gro, xtc, *_ = _write_fake_gromacs(tmp_path)
    with pytest.raises(InvalidInputError, match="atoms"):
        beads_from_gromacs(DATA / "water.tpr", xtc)


def test_gromacs_start_ps_skips_frames(tmp_path):
    gro, xtc, _, boxes, _ = _write_fake_gromacs(tmp_path)
    traj = beads_from_gromacs(gro, xtc, start_ps=0.5)
    np.testing.assert_allclose(traj.times, [0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(traj.boxes, boxes[1:], atol=1e-3)
    with pytest.raises(InvalidInputError, match="start_ps"):
        beads_from_gromacs(gro, xtc, start_ps=5.0)


def test_gromacs_triclinic_box_is_rejected(tmp_path):
    u = MDAnalysis.Universe.empty(1, trajectory=True)
    u.add_TopologyAttr("names", ["C1"])
    u.add_TopologyAttr("resnames", ["MOL"])
    u.atoms.positions = np.zeros((1, 3))
    u.dimensions = [20.0, 20.0, 20.0, 90.0, 90.0, 60.0]
    gro = tmp_path / "tric.gro"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u.atoms.write(str(gro))
    with pytest.raises(InvalidInputError, match="triclinic"):
        beads_from_gromacs(gro, gro)


def test_gromacs_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidInputError, match="trajectory"):
        beads_from_gromacs(DATA / "water.tpr", tmp_path / "none.xtc")


def _water_universe(tmp_path: Path):
    """MDAnalysis universe of the shipped water run, on a copy of the xtc (MDAnalysis
    writes an offset index beside the trajectories it opens)."""
    xtc = tmp_path / "water.xtc"
    shutil.copy(DATA / "water.xtc", xtc)
    return MDAnalysis.Universe(str(DATA / "water.tpr"), str(xtc))


def test_gromacs_2022_tpr_water(tmp_path):
    """Real GROMACS 2022 output: molecules are split across the box in the xtc."""
    traj = beads_from_gromacs(DATA / "water.tpr", DATA / "water.xtc")
    assert traj.n_beads == 213 and traj.n_frames == 11
    np.testing.assert_allclose(traj.masses, WATER_MASS, rtol=1e-6)
    np.testing.assert_allclose(np.diff(traj.times), 0.05, atol=1e-6)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = _water_universe(tmp_path)
    oxygens = u.select_atoms("name OW")
    for f in (0, 10):
        u.trajectory[f]
        box = traj.boxes[f]
        ow = oxygens.positions / 10.0
        # the centre of mass of SPC water is 0.0065 nm from its oxygen
        dist = np.linalg.norm(_periodic_diff(traj.positions[f], ow, box), axis=1)
        assert dist.max() < 0.008 and dist.min() > 0.005
        reference = u.atoms.center_of_mass(compound="molecules", unwrap=True) / 10.0
        assert np.abs(_periodic_diff(traj.positions[f], reference, box)).max() < 1e-6


def test_gromacs_tpr_and_gro_topologies_agree(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u = _water_universe(tmp_path)
        gro = tmp_path / "water.gro"
        u.atoms.write(str(gro))
    from_tpr = beads_from_gromacs(DATA / "water.tpr", DATA / "water.xtc")
    from_gro = beads_from_gromacs(gro, DATA / "water.xtc")
    np.testing.assert_allclose(from_gro.masses, from_tpr.masses, rtol=1e-3)
    diff = _periodic_diff(from_gro.positions, from_tpr.positions, from_tpr.boxes[:, None, :])
    assert np.abs(diff).max() < 1e-4


def test_gromacs_boxes_match_energy_file():
    import pyedr

    traj = beads_from_gromacs(DATA / "water.tpr", DATA / "water.xtc")
    energies = pyedr.edr_to_dict(str(DATA / "water.edr"))
    idx = np.searchsorted(energies["Time"], traj.times - 1e-4)
    np.testing.assert_allclose(energies["Time"][idx], traj.times, atol=1e-4)
    np.testing.assert_allclose(energies["Box-X"][idx], traj.boxes[:, 0], atol=1e-5)


# --- LAMMPS --------------------------------------------------------------------------------


def _lammps_log_volumes() -> dict[int, float]:
    """Step -> volume (Angstrom^3) from the thermo output of the shipped LAMMPS log."""
    volumes, reading = {}, False
    for line in (DATA / "lj40.log").read_text().splitlines():
        if line.split()[:4] == ["Step", "Temp", "Press", "Volume"]:
            reading = True
            continue
        if reading:
            fields = line.split()
            if len(fields) != 4 or not fields[0].isdigit():
                reading = False
                continue
            volumes[int(fields[0])] = float(fields[3])
    return volumes


def test_lammps_data_atoms():
    atoms = read_lammps_data_atoms(DATA / "lj40.data")
    assert atoms.atom_style == "full"
    np.testing.assert_array_equal(atoms.ids, np.arange(1, 41))
    np.testing.assert_allclose(atoms.masses, 114.23)


@pytest.mark.parametrize("dump", ["lj40_wrapped", "lj40_scaled", "lj40_unwrapped"])
def test_lammps_text_dump_units(dump):
    traj = beads_from_lammps(DATA / "lj40.data", DATA / f"{dump}.lammpstrj", timestep_fs=5.0)
    assert traj.n_beads == 40 and traj.n_frames == 6
    # steps 0, 10, ... 50 at 5 fs = 0, 0.05, ... 0.25 ps
    np.testing.assert_allclose(traj.times, np.arange(6) * 0.05, atol=1e-12)
    volumes = _lammps_log_volumes()
    expected_nm3 = np.array([volumes[s] for s in range(0, 60, 10)]) / 1000.0  # A^3 -> nm^3
    np.testing.assert_allclose(traj.volumes_nm3, expected_nm3, rtol=1e-6)
    np.testing.assert_allclose(traj.boxes[0], 2.0)  # -5 to 15 Angstrom
    np.testing.assert_allclose(traj.masses, 114.23)


def test_lammps_dump_flavours_agree():
    ref = beads_from_lammps(DATA / "lj40.data", DATA / "lj40_wrapped.lammpstrj", timestep_fs=5.0)
    for name in ("lj40_scaled", "lj40_unwrapped"):
        other = beads_from_lammps(
            DATA / "lj40.data", DATA / f"{name}.lammpstrj", timestep_fs=5.0
        )
        diff = _periodic_diff(other.positions, ref.positions, ref.boxes[:, None, :])
        assert np.abs(diff).max() < 1e-5  # dumps carry 6 significant digits (Angstrom)


def test_lammps_first_frame_matches_data_file():
    """Step 0 of the dump is the configuration written to the data file (lo = -5 A)."""
    lines = (DATA / "lj40.data").read_text().splitlines()
    start = lines.index("Atoms # full") + 2
    rows = np.array([line.split() for line in lines[start : start + 40]], dtype=float)
    order = np.argsort(rows[:, 0])
    xyz_nm = (rows[order, 4:7] + 5.0) / 10.0  # shift to the box corner, Angstrom -> nm
    traj = beads_from_lammps(DATA / "lj40.data", DATA / "lj40_wrapped.lammpstrj", timestep_fs=5.0)
    diff = _periodic_diff(traj.positions[0], xyz_nm, traj.boxes[0])
    assert np.abs(diff).max() < 1e-5


def test_lammps_start_ps(tmp_path):
    traj = beads_from_lammps(
        DATA / "lj40.data", DATA / "lj40_wrapped.lammpstrj", timestep_fs=5.0, start_ps=0.1
    )
    np.testing.assert_allclose(traj.times, [0.1, 0.15, 0.2, 0.25])


def test_lammps_duplicate_step_is_read_once_and_backwards_steps_fail(tmp_path):
    text = (DATA / "lj40_wrapped.lammpstrj").read_text()
    frames = text.split("ITEM: TIMESTEP\n")[1:]
    joined = tmp_path / "joined.lammpstrj"
    joined.write_text("".join("ITEM: TIMESTEP\n" + f for f in frames[:3] + frames[2:]))
    traj = beads_from_lammps(DATA / "lj40.data", joined, timestep_fs=5.0)
    np.testing.assert_allclose(traj.times, np.arange(6) * 0.05)
    backwards = tmp_path / "backwards.lammpstrj"
    backwards.write_text("".join("ITEM: TIMESTEP\n" + f for f in frames[:3] + frames[:1]))
    with pytest.raises(InvalidInputError, match="steps must increase"):
        beads_from_lammps(DATA / "lj40.data", backwards, timestep_fs=5.0)


def test_lammps_dcd_round_trip(tmp_path):
    """A DCD as LAMMPS writes it: atoms in ID order, header istart/nsavc in steps."""
    from MDAnalysis.coordinates.DCD import DCDWriter

    rng = np.random.default_rng(3)
    n = 40
    boxes_a = np.array([[20.0, 20.0, 20.0], [20.5, 20.5, 20.5], [19.8, 19.8, 19.8]])
    coords_a = rng.uniform(-3.0, 23.0, size=(3, n, 3))
    u = MDAnalysis.Universe.empty(n, trajectory=True)
    dcd = tmp_path / "run.dcd"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with DCDWriter(str(dcd), n_atoms=n, istart=1000, nsavc=200) as writer:
            for x, box in zip(coords_a, boxes_a, strict=True):
                u.atoms.positions = x
                u.dimensions = [*box, 90.0, 90.0, 90.0]
                writer.write(u)
    traj = beads_from_lammps(DATA / "lj40.data", dcd, timestep_fs=2.0)
    np.testing.assert_allclose(traj.times, [2.0, 2.4, 2.8])  # (1000 + 200 k) * 2 fs
    np.testing.assert_allclose(traj.boxes, boxes_a / 10.0, rtol=1e-6)
    expected = (coords_a / 10.0) % (boxes_a[:, None, :] / 10.0)
    diff = _periodic_diff(traj.positions, expected, traj.boxes[:, None, :])
    assert np.abs(diff).max() < 1e-6
    with pytest.raises(InvalidInputError, match="atoms"):
        bad = tmp_path / "small.data"
        bad.write_text((DATA / "lj40.data").read_text().replace("40 atoms", "39 atoms"))
        beads_from_lammps(bad, dcd, timestep_fs=2.0)


def test_lammps_triclinic_dump_is_rejected(tmp_path):
    dump = tmp_path / "tric.lammpstrj"
    dump.write_text(
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\n"
        "ITEM: BOX BOUNDS xy xz yz pp pp pp\n0 10 2.0\n0 10 0\n0 10 0\n"
        "ITEM: ATOMS id x y z\n1 1 1 1\n"
    )
    with pytest.raises(InvalidInputError, match="triclinic"):
        list(iter_lammps_text_dump(dump))


def test_lammps_dump_without_coordinates_or_truncated(tmp_path):
    header = (
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\n"
        "ITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n0 10\n"
    )
    no_xyz = tmp_path / "vx.lammpstrj"
    no_xyz.write_text(header + "ITEM: ATOMS id vx vy vz\n1 0 0 0\n2 0 0 0\n")
    with pytest.raises(InvalidInputError, match="coordinate"):
        list(iter_lammps_text_dump(no_xyz))
    short = tmp_path / "short.lammpstrj"
    short.write_text(header + "ITEM: ATOMS id x y z\n1 0 0 0\n")
    with pytest.raises(InvalidInputError, match="truncated"):
        list(iter_lammps_text_dump(short))


def test_lammps_atoms_must_match_data_file(tmp_path):
    dump = tmp_path / "other.lammpstrj"
    dump.write_text(
        "ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n1\nITEM: BOX BOUNDS pp pp pp\n"
        "0 10\n0 10\n0 10\nITEM: ATOMS id x y z\n1 1 1 1\n"
    )
    with pytest.raises(InvalidInputError, match="differ"):
        beads_from_lammps(DATA / "lj40.data", dump, timestep_fs=5.0)


def test_lammps_bad_inputs_are_named(tmp_path):
    with pytest.raises(InvalidInputError, match="timestep_fs"):
        beads_from_lammps(DATA / "lj40.data", DATA / "lj40_wrapped.lammpstrj", timestep_fs=0.0)
    with pytest.raises(InvalidInputError, match="atom_style"):
        read_lammps_data_atoms(DATA / "lj40.data", atom_style="sphere")
    no_comment = tmp_path / "plain.data"
    no_comment.write_text(
        "x\n\n2 atoms\n1 atom types\n\n0 10 xlo xhi\n0 10 ylo yhi\n0 10 zlo zhi\n\n"
        "Masses\n\n1 72.0\n\nAtoms\n\n1 1 0.0 1.0 1.0 1.0\n2 1 0.0 2.0 2.0 2.0\n"
    )
    with pytest.raises(InvalidInputError, match="atom_style"):
        read_lammps_data_atoms(no_comment)
    atoms = read_lammps_data_atoms(no_comment, atom_style="charge")
    np.testing.assert_allclose(atoms.masses, [72.0, 72.0])
    no_mass = tmp_path / "nomass.data"
    no_mass.write_text(no_comment.read_text().replace("Atoms\n\n1 1", "Atoms\n\n1 2"))
    with pytest.raises(InvalidInputError, match="Masses"):
        read_lammps_data_atoms(no_mass, atom_style="charge")


def test_lammps_gzipped_text_dump(tmp_path):
    import gzip

    packed = tmp_path / "lj40.lammpstrj.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write((DATA / "lj40_wrapped.lammpstrj").read_text())
    plain = beads_from_lammps(DATA / "lj40.data", DATA / "lj40_wrapped.lammpstrj", timestep_fs=5.0)
    traj = beads_from_lammps(DATA / "lj40.data", packed, timestep_fs=5.0)
    np.testing.assert_array_equal(traj.positions, plain.positions)


def test_lammps_unreadable_dcd(tmp_path):
    bad = tmp_path / "bad.dcd"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(InvalidInputError, match="DCD"):
        beads_from_lammps(DATA / "lj40.data", bad, timestep_fs=5.0)
