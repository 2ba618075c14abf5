"""Bead trajectories: one bead per molecule (all-atom runs) or per atom (CG runs).

A :class:`BeadTrajectory` is the common input of :mod:`cgflow.analysis.rdf` and
:mod:`cgflow.analysis.diffusion`. It is built from

* a GROMACS run (:func:`beads_from_gromacs`): each molecule becomes one bead at its
  centre of mass, computed after making the molecule whole;
* a LAMMPS run (:func:`beads_from_lammps`): each LAMMPS atom is one bead, read from a
  DCD or text dump in ``units real`` (Angstrom, fs) and converted to nm and ps.

Units are GROMACS units throughout: nm, ps, g/mol.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgflow import units
from cgflow.analysis.lammps_files import iter_lammps_text_dump, read_lammps_data_atoms
from cgflow.errors import InvalidInputError

#: Tolerance (ps) when comparing frame times with ``start_ps``: trajectory times are
#: often stored in single precision (xtc), so 10.2 ps may read as 10.1999998 ps.
TIME_TOLERANCE_PS = 1.0e-3

#: Largest deviation (degrees) of a box angle from 90 that still counts as orthorhombic.
ANGLE_TOLERANCE_DEG = 1.0e-3

_NPZ_KEYS = ("positions", "boxes", "times", "masses")


def wrap_into_box(positions: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Wrap positions (F, N, 3) into ``[0, L)`` per frame for boxes (F, 3).

    Values that land exactly on ``L`` through rounding are mapped to 0, so the result
    is valid input for a periodic ``scipy.spatial.cKDTree``.
    """
    lengths = boxes[:, None, :]
    wrapped = positions - lengths * np.floor(positions / lengths)
    wrapped = np.where(wrapped >= lengths, wrapped - lengths, wrapped)
    return np.where(wrapped < 0.0, 0.0, wrapped)


@dataclass
class BeadTrajectory:
    """Positions of beads over time in an orthorhombic periodic box.

    Attributes
    ----------
    positions
        Bead positions (F, N, 3), float64, nm. Always wrapped into the box,
        ``0 <= x < L`` for each frame's box lengths: the constructor wraps whatever
        it is given. :func:`cgflow.analysis.diffusion.unwrap_positions` recovers
        continuous paths.
    boxes
        Box lengths (F, 3), nm, one orthorhombic box per frame (NPT boxes change).
    times
        Frame times (F,), ps, strictly increasing.
    masses
        Bead masses (N,), g/mol.

    Raises
    ------
    InvalidInputError
        If shapes disagree, a value is not finite, a box length or mass is not
        positive, or the times do not increase.
    """

    positions: np.ndarray
    boxes: np.ndarray
    times: np.ndarray
    masses: np.ndarray

    def __post_init__(self) -> None:
        positions = np.asarray(self.positions, dtype=np.float64)
        boxes = np.asarray(self.boxes, dtype=np.float64)
        times = np.asarray(self.times, dtype=np.float64)
        masses = np.asarray(self.masses, dtype=np.float64)
        if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] < 1:
            raise InvalidInputError(
                f"field 'positions': shape {positions.shape}: expected (F, N, 3) with F >= 1"
            )
        n_frames, n_beads, _ = positions.shape
        if n_beads < 1:
            raise InvalidInputError("field 'positions': no beads")
        if boxes.shape != (n_frames, 3):
            raise InvalidInputError(
                f"field 'boxes': shape {boxes.shape}: expected ({n_frames}, 3)"
            )
        if times.shape != (n_frames,):
            raise InvalidInputError(f"field 'times': shape {times.shape}: expected ({n_frames},)")
        if masses.shape != (n_beads,):
            raise InvalidInputError(f"field 'masses': shape {masses.shape}: expected ({n_beads},)")
        for name, arr in (
            ("positions", positions), ("boxes", boxes), ("times", times), ("masses", masses)
        ):
            if not np.all(np.isfinite(arr)):
                raise InvalidInputError(f"field '{name}': contains non-finite values")
        if np.any(boxes <= 0.0):
            raise InvalidInputError(
                f"field 'boxes': value {boxes.min()!r}: box lengths must be positive"
            )
        if np.any(masses <= 0.0):
            raise InvalidInputError(
                f"field 'masses': value {masses.min()!r}: masses must be positive"
            )
        if n_frames > 1 and np.any(np.diff(times) <= 0.0):
            k = int(np.argmax(np.diff(times) <= 0.0))
            raise InvalidInputError(
                f"field 'times': value {times[k + 1]!r} ps at frame {k + 1} does not "
                f"follow {times[k]!r} ps: times must increase"
            )
        self.positions = wrap_into_box(positions, boxes)
        self.boxes = boxes
        self.times = times
        self.masses = masses

    @property
    def n_frames(self) -> int:
        """Number of frames F."""
        return int(self.positions.shape[0])

    @property
    def n_beads(self) -> int:
        """Number of beads N."""
        return int(self.positions.shape[1])

    @property
    def volumes_nm3(self) -> np.ndarray:
        """Box volume of each frame (F,), nm^3."""
        return np.prod(self.boxes, axis=1)

    @property
    def mass_densities_kg_m3(self) -> np.ndarray:
        """Mass density of each frame (F,), kg/m^3 (total bead mass over box volume)."""
        return units.mass_density_kg_m3(float(self.masses.sum()), self.volumes_nm3)

    def select(
        self, *, start_ps: float | None = None, end_ps: float | None = None, stride: int = 1
    ) -> BeadTrajectory:
        """The frames with ``start_ps <= t <= end_ps`` (1 fs tolerance), every ``stride``-th.

        Raises
        ------
        InvalidInputError
            If ``stride < 1`` or no frame is left.
        """
        if stride < 1:
            raise InvalidInputError(f"field 'stride': value {stride!r}: must be >= 1")
        keep = np.ones(self.n_frames, dtype=bool)
        if start_ps is not None:
            keep &= self.times >= start_ps - TIME_TOLERANCE_PS
        if end_ps is not None:
            keep &= self.times <= end_ps + TIME_TOLERANCE_PS
        idx = np.flatnonzero(keep)[::stride]
        if idx.size == 0:
            raise InvalidInputError(
                f"fields 'start_ps'/'end_ps': values {start_ps!r}/{end_ps!r}: no frame "
                f"in the trajectory ({self.times[0]:g} to {self.times[-1]:g} ps)"
            )
        return BeadTrajectory(
            positions=self.positions[idx], boxes=self.boxes[idx],
            times=self.times[idx], masses=self.masses.copy(),
        )


# --- .npz storage ------------------------------------------------------------------------


def save_beads_npz(traj: BeadTrajectory, path: Path, *, single_precision: bool = False) -> Path:
    """Write a bead trajectory to a compressed ``.npz`` file and return its path.

    Parameters
    ----------
    traj
        The trajectory.
    path
        Output file; numpy appends ``.npz`` if the name lacks it.
    single_precision
        Store positions as float32 (half the size; about 1e-7 relative precision,
        finer than the 1e-3 nm of an xtc file). Read back as float64 either way.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    positions = traj.positions.astype(np.float32) if single_precision else traj.positions
    np.savez_compressed(
        path, positions=positions, boxes=traj.boxes, times=traj.times, masses=traj.masses
    )
    return path


def load_beads_npz(path: Path) -> BeadTrajectory:
    """Read a bead trajectory written by :func:`save_beads_npz`.

    Raises
    ------
    InvalidInputError
        If the file is missing or lacks one of the arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"field 'path': value '{path}': file not found")
    with np.load(path) as data:
        missing = [k for k in _NPZ_KEYS if k not in data.files]
        if missing:
            raise InvalidInputError(
                f"bead file {path}: array(s) {missing} missing (has {sorted(data.files)})"
            )
        return BeadTrajectory(**{k: data[k].astype(np.float64) for k in _NPZ_KEYS})


# --- GROMACS -------------------------------------------------------------------------------


def _check_orthorhombic(dimensions: np.ndarray | None, source: str, frame: int) -> None:
    if dimensions is None:
        raise InvalidInputError(f"{source}: frame {frame} has no periodic box")
    angles = np.asarray(dimensions[3:6], dtype=np.float64)
    if np.any(np.abs(angles - 90.0) > ANGLE_TOLERANCE_DEG):
        raise InvalidInputError(
            f"{source}: frame {frame} has a triclinic box (angles {angles.tolist()} deg); "
            "only orthorhombic boxes are supported"
        )


def _molecule_index(atoms) -> np.ndarray:
    """Molecule number of each atom: tpr molecules, else bonded fragments, else residues."""
    if hasattr(atoms, "molnums"):
        return np.asarray(atoms.molnums)
    if hasattr(atoms, "bonds") and len(atoms.bonds) > 0:
        return np.asarray(atoms.fragindices)
    return np.asarray(atoms.resindices)


def _box_lengths_from_matrix(box: np.ndarray, source: str, frame: int) -> np.ndarray:
    """Diagonal of a GROMACS box matrix (nm); InvalidInputError if it is triclinic."""
    box = np.asarray(box, dtype=np.float64)
    off_diagonal = box - np.diag(np.diag(box))
    if np.any(np.abs(off_diagonal) > 1e-6 * np.abs(np.diag(box)).max()):
        raise InvalidInputError(
            f"{source}: frame {frame} has a triclinic box (box vectors "
            f"{box.tolist()} nm); only orthorhombic boxes are supported"
        )
    return np.diag(box).copy()


def _gromacs_frames(universe, trajectory: Path, n_atoms: int):
    """Yield (time ps, box lengths nm (3,), positions nm (N, 3)) of each frame.

    ``.xtc`` and ``.trr`` are read in sequence with MDAnalysis' low-level XDR readers,
    which, unlike its trajectory readers, leave no offset-index file next to the
    trajectory; other formats go through the universe's own reader.
    """
    source = f"trajectory {trajectory}"
    suffix = trajectory.suffix.lower()
    if suffix in (".xtc", ".trr"):
        from MDAnalysis.lib.formats.libmdaxdr import TRRFile, XTCFile

        xdr_file = XTCFile if suffix == ".xtc" else TRRFile
        try:
            handle = xdr_file(str(trajectory))
            file_atoms = handle.n_atoms
        except Exception as exc:  # the XDR readers raise several types on bad files
            raise InvalidInputError(
                f"field 'trajectory': value '{trajectory}': not a readable {suffix} file: {exc}"
            ) from exc
        with handle:
            if file_atoms != n_atoms:
                raise InvalidInputError(
                    f"field 'trajectory': value '{trajectory}': {file_atoms} atoms, the "
                    f"topology has {n_atoms}"
                )
            for k, frame in enumerate(handle):
                if suffix == ".trr" and not frame.hasx:
                    continue  # a trr frame may hold only velocities or forces
                box = _box_lengths_from_matrix(frame.box, source, k)
                yield float(frame.time), box, np.asarray(frame.x, dtype=np.float64)
        return
    with warnings.catch_warnings():
        # a single .gro frame has no time step: MDAnalysis warns and uses t = 0
        warnings.filterwarnings("ignore", message="Reader has no dt information")
        for ts in universe.trajectory:
            _check_orthorhombic(ts.dimensions, source, ts.frame)
            yield (
                float(ts.time),
                units.angstrom_to_nm(np.asarray(ts.dimensions[:3], dtype=np.float64)),
                units.angstrom_to_nm(np.asarray(ts.positions, dtype=np.float64)),
            )


def beads_from_gromacs(
    topology: Path, trajectory: Path, *, start_ps: float = 0.0
) -> BeadTrajectory:
    """Centre-of-mass beads, one per molecule, from a GROMACS run.

    Parameters
    ----------
    topology
        A ``.tpr`` (GROMACS 2022 run input; molecules and masses are exact) or a
        ``.gro`` (molecules = residues; masses guessed by MDAnalysis from the element
        that each atom name implies, e.g. ``C1`` -> carbon).
    trajectory
        ``.xtc`` or ``.trr`` with the same atoms (read in sequence; nothing is written
        beside them), or another file MDAnalysis reads with the topology, such as
        the ``.gro`` itself for a single frame.
    start_ps
        Frames earlier than this time (ps) are skipped.

    Returns
    -------
    BeadTrajectory
        Bead positions in nm (wrapped into the box), boxes in nm, times in ps,
        bead masses (molecular masses) in g/mol.

    Notes
    -----
    Molecules are made whole by taking every atom at the minimum image of its offset
    from the first atom of its molecule. This is exact when every atom lies within
    half a box length of that first atom, which holds for a small molecule such as
    234TriMePe (longest atom-atom distance about 0.7 nm) in any box that can hold
    a liquid simulation (a few nm).

    Raises
    ------
    InvalidInputError
        On a missing or unreadable file, atom counts that differ, atoms without a
        known mass, a triclinic or missing box, or no frame at or after ``start_ps``.
    """
    from MDAnalysis import Universe

    topology, trajectory = Path(topology), Path(trajectory)
    for name, path in (("topology", topology), ("trajectory", trajectory)):
        if not path.is_file():
            raise InvalidInputError(f"field '{name}': value '{path}': file not found")
    xdr = trajectory.suffix.lower() in (".xtc", ".trr")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            universe = Universe(str(topology)) if xdr else Universe(str(topology), str(trajectory))
    except Exception as exc:  # MDAnalysis raises many types for unreadable input
        raise InvalidInputError(
            f"fields 'topology'/'trajectory': values '{topology}'/'{trajectory}': "
            f"MDAnalysis cannot read them: {exc}"
        ) from exc

    atoms = universe.atoms
    atom_masses = np.asarray(atoms.masses, dtype=np.float64)
    if np.any(atom_masses <= 0.0):
        unknown = sorted(set(atoms.names[atom_masses <= 0.0].tolist()))
        raise InvalidInputError(
            f"field 'topology': value '{topology}': no mass known for atom name(s) {unknown}"
        )
    mol = _molecule_index(atoms)
    order = np.argsort(mol, kind="stable")
    mol_sorted = mol[order]
    starts = np.flatnonzero(np.r_[True, mol_sorted[1:] != mol_sorted[:-1]])
    counts = np.diff(np.r_[starts, mol_sorted.size])
    first_of_atom = np.repeat(order[starts], counts)
    m_sorted = atom_masses[order]
    bead_masses = np.add.reduceat(m_sorted, starts)

    positions: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    times: list[float] = []
    for time_ps, box, x in _gromacs_frames(universe, trajectory, atoms.n_atoms):
        if time_ps < start_ps - TIME_TOLERANCE_PS:
            continue
        anchor = x[first_of_atom]
        offset = x[order] - anchor
        offset -= box * np.round(offset / box)
        com = anchor[starts] + np.add.reduceat(m_sorted[:, None] * offset, starts) / (
            bead_masses[:, None]
        )
        positions.append(com)
        boxes.append(box)
        times.append(time_ps)
    if not positions:
        raise InvalidInputError(
            f"field 'start_ps': value {start_ps!r}: no frame of {trajectory} at or after it"
        )
    return BeadTrajectory(
        positions=np.stack(positions), boxes=np.stack(boxes),
        times=np.asarray(times), masses=bead_masses,
    )


# --- LAMMPS --------------------------------------------------------------------------------


def _dcd_frames(dump_file: Path, n_atoms: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(step, box lengths Angstrom (3,), positions Angstrom (N, 3)) of each DCD frame."""
    from MDAnalysis.coordinates.LAMMPS import DCDReader
    from MDAnalysis.lib.formats.libdcd import DCDFile

    with dump_file.open("rb") as handle:
        head = handle.read(8)
    if head[4:8] != b"CORD" or head[:4] not in (b"\x54\x00\x00\x00", b"\x00\x00\x00\x54"):
        raise InvalidInputError(
            f"field 'dump_file': value '{dump_file}': not a DCD file (no CORD header)"
        )
    frames = []
    with warnings.catch_warnings():
        # MDAnalysis announces a change of how DCD frames are copied; irrelevant here
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="DCDReader")
        try:
            reader = DCDReader(str(dump_file))
        except Exception as exc:  # MDAnalysis raises several types for a bad file
            raise InvalidInputError(
                f"field 'dump_file': value '{dump_file}': not a readable DCD file: {exc}"
            ) from exc
    with reader, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message="DCDReader")
        if reader.n_atoms != n_atoms:
            raise InvalidInputError(
                f"field 'dump_file': value '{dump_file}': {reader.n_atoms} atoms, "
                f"the data file has {n_atoms}"
            )
        with DCDFile(str(dump_file)) as raw:
            istart, nsavc = int(raw.header["istart"]), int(raw.header["nsavc"])
        for ts in reader:
            _check_orthorhombic(ts.dimensions, f"DCD {dump_file}", ts.frame)
            frames.append((
                istart + ts.frame * nsavc,
                np.asarray(ts.dimensions[:3], dtype=np.float64),
                np.asarray(ts.positions, dtype=np.float64),
            ))
    return frames


def _text_frames(dump_file: Path, ids: np.ndarray):
    """Yield (step, box lengths Angstrom, positions Angstrom) from a text dump."""
    for frame in iter_lammps_text_dump(dump_file):
        if frame.ids.shape != ids.shape or not np.array_equal(frame.ids, ids):
            raise InvalidInputError(
                f"field 'dump_file': value '{dump_file}': atoms at timestep "
                f"{frame.timestep} ({frame.ids.size}) differ from those of the data file "
                f"({ids.size})"
            )
        yield frame.timestep, frame.box_hi - frame.box_lo, frame.positions - frame.box_lo


def beads_from_lammps(
    data_file: Path,
    dump_file: Path,
    *,
    timestep_fs: float,
    start_ps: float = 0.0,
    atom_style: str | None = None,
) -> BeadTrajectory:
    """Beads from a LAMMPS run in ``units real``, one bead per LAMMPS atom.

    Parameters
    ----------
    data_file
        LAMMPS data file: bead masses come from its ``Masses`` section through each
        atom's type (see :func:`cgflow.analysis.lammps_files.read_lammps_data_atoms`).
    dump_file
        ``*.dcd``: a DCD dump (``dump dcd``; LAMMPS writes atoms in ID order, and the
        frame's step is ``istart + k * nsavc`` from the DCD header). Any other suffix:
        a text dump (``dump custom`` with ``id`` and ``x y z``, ``xu yu zu``,
        ``xs ys zs`` or ``xsu ysu zsu``; ``.gz`` allowed), whose atoms are matched to
        the data file by ID.
    timestep_fs
        The MD time step in fs; frame time = step * ``timestep_fs``, converted to ps.
    start_ps
        Frames earlier than this time (ps) are skipped.
    atom_style
        Atom style of the data file, if its ``Atoms`` header lacks the comment.

    Returns
    -------
    BeadTrajectory
        Positions in nm wrapped into the box (the dump's lower box corner becomes the
        origin for text dumps; for DCD, which stores no box origin, positions are
        wrapped about 0, a uniform shift that RDFs and MSDs do not see), boxes in nm,
        times in ps, masses in g/mol.

    Notes
    -----
    A frame whose step equals the previous frame's (the same step written twice, as
    when dump files of consecutive runs are joined) is read once.

    Raises
    ------
    InvalidInputError
        On missing or malformed files, atoms that do not match the data file, a
        triclinic box, a non-positive ``timestep_fs``, steps that go backwards, or no
        frame at or after ``start_ps``.
    """
    data_file, dump_file = Path(data_file), Path(dump_file)
    if not timestep_fs > 0.0:
        raise InvalidInputError(f"field 'timestep_fs': value {timestep_fs!r}: must be positive")
    atoms = read_lammps_data_atoms(data_file, atom_style=atom_style)
    if not dump_file.is_file():
        raise InvalidInputError(f"field 'dump_file': value '{dump_file}': file not found")
    if dump_file.suffix.lower() == ".dcd":
        frames = _dcd_frames(dump_file, atoms.ids.size)
    else:
        frames = _text_frames(dump_file, atoms.ids)

    positions: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    steps: list[int] = []
    last_step: int | None = None
    for step, box_a, x_a in frames:
        if last_step is not None and step == last_step:
            continue
        if last_step is not None and step < last_step:
            raise InvalidInputError(
                f"field 'dump_file': value '{dump_file}': step {step} follows step "
                f"{last_step}; steps must increase"
            )
        last_step = step
        time_ps = units.fs_to_ps(step * timestep_fs)
        if time_ps < start_ps - TIME_TOLERANCE_PS:
            continue
        steps.append(step)
        boxes.append(units.angstrom_to_nm(box_a))
        positions.append(units.angstrom_to_nm(x_a))
    if not positions:
        raise InvalidInputError(
            f"field 'start_ps': value {start_ps!r}: no frame of {dump_file} at or after it"
        )
    times = units.fs_to_ps(np.asarray(steps, dtype=np.float64) * timestep_fs)
    return BeadTrajectory(
        positions=np.stack(positions), boxes=np.stack(boxes), times=times, masses=atoms.masses
    )
