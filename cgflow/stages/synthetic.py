"""Synthetic structure-potential pairs: sample a potential, simulate it, measure g(r) and P.

One pair is one CG sampling run of a potential of the family
(:class:`cgflow.ml.potential_family.PotentialFamily`) through the same machinery as an IBI
iteration (:func:`cgflow.stages.cg.run_iteration`: the LAMMPS table, data and input of
:mod:`cgflow.ibi.iteration`, LAMMPS under Custodian, the block-averaged RDF and pressure
on the IBI grid). The pair is what the learned inverse (:mod:`cgflow.ml.inverse`) trains
on: (U, g, P, density, T, mass).

The run needs an IBI target for its box and temperature; a synthetic run has no target
RDF, so a flat g = 1 stands in (the run's ``rdf_deviation`` against it is meaningless and
not kept) and the pressure correction is off (the IBI update computed after the run is
discarded).

A *synthetic campaign* (``kind: synthetic`` in a campaign spec, :class:`SyntheticSettings`)
runs the pairs of one seeded sample stream as Fireworks, a batch of pairs per Firework
(:func:`run_batch`: each pair stored in the job database as soon as it is made, so a
killed batch resumes where it stopped), and can end with the training of the learned
inverse on every stored pair (:func:`train_inverse`). The family is anchored on the
potentials shipped with cgflow (:data:`SHIPPED_ANCHORS`, the 53 IBI potentials of the
committed reference dataset) or on a dataset folder named in the spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cgflow.errors import InvalidInputError
from cgflow.ibi.iteration import ibi_grid
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import BEAD_MASS_G_MOL, IBISettings
from cgflow.ml.dataset import CampaignDataset
from cgflow.ml.inverse import StructureInverse
from cgflow.ml.potential_family import FamilySample, FamilySettings, PotentialFamily
from cgflow.presets import CGPreset
from cgflow.stages import cg as cg_stage

#: Temperature of the reference dataset's runs, K.
REFERENCE_TEMPERATURE_K = 298.15
#: The anchors shipped with cgflow (package data): the 53 converged IBI potentials of the
#: committed reference dataset (``data/reference``, 2,3,4-trimethylpentane, 298.15 K, the
#: grid of the ``tiny`` and ``reference`` CG presets) and their all-atom densities.
SHIPPED_ANCHORS = (Path(__file__).resolve().parents[1] / "ml" / "models"
                   / "family_anchors_234trimepe_298K.json")
#: Most pairs one synthetic campaign may ask for (one Firework per ``batch_size`` pairs).
MAX_PAIRS = 100_000


@dataclass
class SyntheticPair:
    """A potential and the structure and pressure it gives (GROMACS units).

    Attributes
    ----------
    r_nm, u_kj_mol
        The potential on the IBI grid (nm, kJ/mol).
    g, g_err
        RDF sampled with it on the same grid and its standard error (block averages).
    pressure_bar, pressure_err_bar
        CG pressure and its standard error, bar.
    density_kg_m3, temperature_k, mass_g_mol
        State point of the run.
    seed
        Seed of the LAMMPS run.
    wall_s
        Wall time of the pair (files, LAMMPS, analysis), s.
    """

    r_nm: np.ndarray
    u_kj_mol: np.ndarray
    g: np.ndarray
    g_err: np.ndarray
    pressure_bar: float
    pressure_err_bar: float
    density_kg_m3: float
    temperature_k: float
    mass_g_mol: float
    seed: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (arrays as lists)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SyntheticPair:
        """Inverse of :meth:`to_dict` (extra keys such as database ids are ignored)."""
        names = cls.__dataclass_fields__
        kw = {k: d[k] for k in names}
        for k in ("r_nm", "u_kj_mol", "g", "g_err"):
            kw[k] = np.asarray(kw[k], float)
        return cls(**kw)


def reference_anchors(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Anchor potentials of the family from a committed dataset folder
    (``dataset.npz`` and ``sets.json``, e.g. ``data/reference``).

    Returns
    -------
    r_nm, U, density_kg_m3
        Grid (nm), IBI potentials (n, G) in kJ/mol and the sets' AA mass densities.
    """
    ds = CampaignDataset.load_npz(Path(data_dir) / "dataset.npz")
    rows = {r["param_id"]: r for r in
            json.loads((Path(data_dir) / "sets.json").read_text())["sets"]}
    rho = np.array([float(rows[p]["density_kg_m3"]) for p in ds.param_ids.tolist()])
    return np.asarray(ds.r_nm, float), np.asarray(ds.U, float), rho


def reference_family(data_dir: Path, settings: FamilySettings | None = None
                     ) -> PotentialFamily:
    """The potential family anchored on a committed dataset (:func:`reference_anchors`)."""
    r, U, rho = reference_anchors(data_dir)
    return PotentialFamily(r, U, rho, settings=settings)


def shipped_anchors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anchors shipped with cgflow (:data:`SHIPPED_ANCHORS`): grid (nm), potentials
    (n, G) in kJ/mol, mass densities (n,) in kg/m^3."""
    d = json.loads(SHIPPED_ANCHORS.read_text())
    return (np.asarray(d["r_nm"], float), np.asarray(d["U"], float),
            np.asarray(d["density_kg_m3"], float))


class SyntheticSettings(BaseModel):
    """The ``synthetic:`` section of a campaign spec of ``kind: synthetic``.

    Pairs ``0 .. n_pairs - 1`` of the sample stream ``seed`` of the family
    (:class:`cgflow.ml.potential_family.PotentialFamily`, ranges ``family``: any field
    of :class:`~cgflow.ml.potential_family.FamilySettings`) anchored on ``anchors``
    (``shipped``, or a dataset folder with ``dataset.npz`` and ``sets.json`` such as
    ``data/reference``, made absolute when the spec is read), simulated at
    ``temperature_k`` with beads of ``mass_g_mol`` on the campaign preset's CG system,
    ``batch_size`` pairs per Firework. With ``train_inverse`` a last Firework trains the
    learned inverse (:class:`cgflow.ml.inverse.StructureInverse` with ``inverse_base``)
    on every stored pair of the campaign.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_pairs: int = Field(ge=1, le=MAX_PAIRS, strict=True)
    batch_size: int = Field(default=20, ge=1, le=1000, strict=True)
    seed: int = Field(default=1, ge=0, le=2**32 - 1, strict=True)
    anchors: str = "shipped"
    family: dict[str, Any] = Field(default_factory=dict)
    temperature_k: float = Field(default=REFERENCE_TEMPERATURE_K, gt=0, le=2000)
    mass_g_mol: float = Field(default=BEAD_MASS_G_MOL, gt=0, le=100_000)
    train_inverse: bool = True
    inverse_base: Literal["none", "hnc", "pmf"] = "none"

    @field_validator("family")
    @classmethod
    def _family(cls, v: dict[str, Any]) -> dict[str, Any]:
        known = {f.name for f in dataclasses.fields(FamilySettings)}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {unknown} (known: {sorted(known)})")
        if "bump_width_nm" in v:
            v = dict(v, bump_width_nm=tuple(v["bump_width_nm"]))
        try:
            FamilySettings(**v)
        except (InvalidInputError, TypeError) as exc:
            raise ValueError(str(exc).removeprefix("potential family: ")) from None
        return v

    @field_validator("anchors")
    @classmethod
    def _anchors(cls, v: str) -> str:
        if v == "shipped":
            return v
        folder = Path(v).expanduser().resolve()
        for name in ("dataset.npz", "sets.json"):
            if not (folder / name).is_file():
                raise ValueError(f"{v!r}: not 'shipped' and no {name} in {folder} (a "
                                 "dataset folder such as data/reference is expected)")
        return str(folder)

    @property
    def family_settings(self) -> FamilySettings:
        """The family's ranges."""
        return FamilySettings(**self.family)

    def anchors_sha256(self) -> str:
        """SHA-256 of the anchors' file (the shipped JSON, or the folder's dataset.npz)."""
        path = SHIPPED_ANCHORS if self.anchors == "shipped" else (
            Path(self.anchors) / "dataset.npz")
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def anchor_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The anchors' grid (nm), potentials (kJ/mol) and densities (kg/m^3)."""
        return (shipped_anchors() if self.anchors == "shipped"
                else reference_anchors(Path(self.anchors)))

    def make_family(self) -> PotentialFamily:
        """The potential family these settings sample."""
        return PotentialFamily(*self.anchor_arrays(), settings=self.family_settings)

    def batches(self) -> list[tuple[int, int]]:
        """``(start, n)`` of each batch, in order."""
        return [(s, min(self.batch_size, self.n_pairs - s))
                for s in range(0, self.n_pairs, self.batch_size)]

    def check_grid(self, cg_preset: CGPreset) -> None:
        """Refuse a preset whose IBI grid is not the anchors' grid.

        Raises
        ------
        InvalidInputError
            Naming the preset, its cutoff and the anchors' grid.
        """
        r = self.anchor_arrays()[0]
        grid = ibi_grid(synthetic_settings(cg_preset, self.temperature_k), cg_preset)
        if grid.shape != r.shape or not np.allclose(grid, r):
            raise InvalidInputError(
                f"preset {cg_preset.name!r}: its IBI grid ({grid[0]:g}-{grid[-1]:g} nm, "
                f"{grid.size} points; CG cutoff {cg_preset.rcut_nm} nm) is not the grid of "
                f"the anchors {self.anchors!r} ({r[0]:g}-{r[-1]:g} nm, {r.size} points): "
                "choose a preset with that cutoff or anchors on its grid")


def synthetic_settings(cg_preset: CGPreset, temperature_k: float = REFERENCE_TEMPERATURE_K
                       ) -> IBISettings:
    """IBI settings of a synthetic run: the campaign defaults on the preset's cutoff,
    without pressure correction."""
    return IBISettings(temperature_k=temperature_k, cutoff_nm=cg_preset.rcut_nm,
                       pressure_correction=False)


def run_pair(sample: FamilySample, workdir: Path, cg_preset: CGPreset, *, seed: int,
             temperature_k: float = REFERENCE_TEMPERATURE_K,
             mass_g_mol: float = BEAD_MASS_G_MOL, threads: int = 1,
             keep_files: bool = False) -> SyntheticPair:
    """Simulate one potential of the family and return the pair.

    ``workdir`` is the run directory (removed afterwards unless ``keep_files``).

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way the Custodian handlers cannot correct.
    cgflow.errors.InvalidInputError
        When the sample's grid is not the preset's IBI grid or the box cannot hold the
        cutoff.
    """
    t0 = time.time()
    settings = synthetic_settings(cg_preset, temperature_k)
    r = np.asarray(sample.r_nm, float)
    target = cg_stage.make_target(rdf_r_nm=r, rdf_g=np.ones_like(r),
                                  density_kg_m3=sample.density_kg_m3, pressure_bar=0.0,
                                  pressure_err_bar=0.0, temperature_k=temperature_k)
    target = dataclasses.replace(target, mass_g_mol=float(mass_g_mol))
    potential = TabulatedPotential.from_energy(r, sample.u_kj_mol)
    workdir = Path(workdir)
    result, _ = cg_stage.run_iteration(workdir, 0, potential, target, settings, cg_preset,
                                       previous=None, threads=threads, seed=seed)
    if not keep_files:
        shutil.rmtree(workdir, ignore_errors=True)
    return SyntheticPair(r_nm=result.r_nm, u_kj_mol=potential.u_kj_mol, g=result.g,
                         g_err=result.g_err, pressure_bar=result.pressure_bar,
                         pressure_err_bar=result.pressure_err_bar,
                         density_kg_m3=sample.density_kg_m3, temperature_k=temperature_k,
                         mass_g_mol=float(mass_g_mol), seed=seed,
                         wall_s=round(time.time() - t0, 3))


def pair_seed(seed: int, index: int) -> int:
    """LAMMPS seed of pair ``index`` of the sample stream ``seed``."""
    return (seed * 100003 + index) % 900_000_000 + 1


def run_pairs(family: PotentialFamily, n: int, seed: int, workdir: Path,
              cg_preset: CGPreset, *, start: int = 0, threads: int = 1
              ) -> list[SyntheticPair]:
    """Pairs ``start .. start + n - 1`` of the family's sample stream of ``seed``.

    Sample ``j`` is the ``j``-th of ``family.sample(start + n, seed)`` and runs with the
    LAMMPS seed :func:`pair_seed` ``(seed, j)``, so batches of one stream can run
    anywhere and in any order and give the same pairs.
    """
    samples = family.sample(start + n, seed)[start:]
    return [run_pair(s, Path(workdir) / f"pair_{start + k:05d}", cg_preset,
                     seed=pair_seed(seed, start + k), threads=threads)
            for k, s in enumerate(samples)]


def run_batch(settings: SyntheticSettings, cg_preset: CGPreset, start: int, n: int,
              workdir: Path, *, done: Iterable[int] = (),
              on_pair: Callable[[int, SyntheticPair, FamilySample], None] | None = None,
              threads: int = 1) -> list[int]:
    """Run the pairs ``start .. start + n - 1`` of a synthetic campaign that are not in
    ``done``, one by one, handing each to ``on_pair(index, pair, sample)`` as soon as
    it is made (the Firetask stores it there).

    Returns
    -------
    list of int
        The indices run now.
    """
    done = set(done)
    todo = [j for j in range(start, start + n) if j not in done]
    if not todo:
        return []
    samples = settings.make_family().sample(start + n, settings.seed)
    for j in todo:
        pair = run_pair(samples[j], Path(workdir) / f"pair_{j:05d}", cg_preset,
                        seed=pair_seed(settings.seed, j), temperature_k=settings.temperature_k,
                        mass_g_mol=settings.mass_g_mol, threads=threads)
        if on_pair is not None:
            on_pair(j, pair, samples[j])
    return todo


def pairs_arrays(pairs: list[dict[str, Any]], source: str = "synthetic pairs"
                 ) -> dict[str, np.ndarray]:
    """Stored pairs (dicts with the fields of :class:`SyntheticPair`) as the arrays of
    ``benchmarks/results/synthetic_pairs.npz``: ``r_nm`` (G,) and per pair ``u_kj_mol``,
    ``g``, ``g_err`` (n, G), ``pressure_bar``, ``pressure_err_bar``, ``density_kg_m3``,
    ``temperature_k``, ``mass_g_mol``, ``seed``, ``wall_s`` (n,).

    Raises
    ------
    InvalidInputError
        Without pairs, or when the pairs are on different grids.
    """
    if not pairs:
        raise InvalidInputError(f"{source}: no synthetic pairs stored")
    r = np.asarray(pairs[0]["r_nm"], float)
    for p in pairs[1:]:
        if len(p["r_nm"]) != r.size or not np.allclose(p["r_nm"], r):
            raise InvalidInputError("synthetic pairs: not all on one grid (pairs of "
                                    "different presets); export one preset at a time")
    out: dict[str, np.ndarray] = {"r_nm": r}
    for k in ("u_kj_mol", "g", "g_err", "pressure_bar", "pressure_err_bar",
              "density_kg_m3", "temperature_k", "mass_g_mol", "seed", "wall_s"):
        if k == "seed":  # a stored pair names it lammps_seed
            out[k] = np.array([p.get("seed", p.get("lammps_seed")) for p in pairs], np.int64)
        else:
            out[k] = np.array([p[k] for p in pairs], float)
    return out


def write_pairs(pairs: list[dict[str, Any]], path: str | Path, source: str = "pairs"
                ) -> dict[str, Any]:
    """Write pairs (:func:`pairs_arrays`) to an ``.npz`` file, written whole or not at
    all (a temporary file renamed).

    Raises
    ------
    InvalidInputError
        Without pairs (naming ``source``), or pairs on different grids.
    """
    a = pairs_arrays(pairs, source)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial.npz")
    np.savez_compressed(tmp, **a)
    tmp.replace(path)
    return {"n_pairs": int(a["g"].shape[0]), "r_nm_range": [float(a["r_nm"][0]),
                                                           float(a["r_nm"][-1])]}


def train_inverse(pairs: list[dict[str, Any]], base: str = "none") -> StructureInverse:
    """The learned inverse (:class:`cgflow.ml.inverse.StructureInverse`, with pressure)
    fitted on stored pairs (:func:`pairs_arrays`)."""
    a = pairs_arrays(pairs)
    return StructureInverse(base=base).fit(
        a["r_nm"], a["g"], a["density_kg_m3"], a["temperature_k"], a["mass_g_mol"],
        a["u_kj_mol"], a["pressure_bar"])


# --- a synthetic campaign's steps (the store in, the Firetasks are glue) -------------------

#: Name of the learned inverse a synthetic campaign stores (``models`` collection).
INVERSE_MODEL = "structure-inverse"


def store_batch(store: Any, campaign: str, preset: CGPreset, settings: SyntheticSettings,
                start: int, n: int, workdir: Path, *, fw_id: int | None = None,
                threads: int = 1) -> dict[str, Any]:
    """Run one batch of a synthetic campaign and store each pair as soon as it is made
    (:meth:`cgflow.db.store.Store.save_synthetic_pair`); pairs already stored (a rerun
    batch) are not run again.

    Returns
    -------
    dict
        ``ran`` (indices run now), ``stored`` (pairs of the batch stored in all) and
        ``wall_s`` (median wall time of the pairs run now, s; None if none ran).
    """
    from cgflow.db.documents import SyntheticPairDoc

    done = [j for j in store.synthetic_pair_indices(campaign) if start <= j < start + n]
    anchors_sha = settings.anchors_sha256()
    walls: list[float] = []

    def keep(index: int, pair: SyntheticPair, sample: FamilySample) -> None:
        d = pair.to_dict()
        seed = d.pop("seed")
        store.save_synthetic_pair(SyntheticPairDoc(
            campaign=campaign, index=index, preset=preset.name, stream_seed=settings.seed,
            lammps_seed=seed, anchor=sample.anchor, anchors=settings.anchors,
            anchors_sha256=anchors_sha, family=settings.family, fw_id=fw_id, **d))
        walls.append(pair.wall_s)

    ran = run_batch(settings, preset, start, n, workdir, done=done, on_pair=keep,
                    threads=threads)
    return {"ran": ran, "stored": len(done) + len(ran),
            "wall_s": float(np.median(walls)) if walls else None}


def store_inverse(store: Any, campaign: str, settings: SyntheticSettings,
                  preset: str | None = None) -> dict[str, Any]:
    """Train the learned inverse on every stored pair of ``campaign`` and store it as the
    model :data:`INVERSE_MODEL` of the campaign (weights: the model's JSON, as
    :meth:`cgflow.ml.inverse.StructureInverse.save` writes it).

    Returns
    -------
    dict
        ``status`` (``trained``, or ``too-few-pairs`` with ``message``) and ``n_pairs``.
    """
    from cgflow import __version__

    docs = store.synthetic_pairs(campaign, preset)
    if len(docs) < 3:
        msg = (f"campaign {campaign!r}: {len(docs)} stored synthetic pair(s); the inverse "
               "needs at least 3")
        store.save_model({"campaign": campaign, "name": INVERSE_MODEL, "kind": "status",
                          "metadata": {"status": "too-few-pairs", "message": msg,
                                       "n_pairs": len(docs)}})
        return {"status": "too-few-pairs", "message": msg, "n_pairs": len(docs)}
    pairs = [d.model_dump() for d in docs]
    model = train_inverse(pairs, base=settings.inverse_base)
    blob = json.dumps(model.to_dict()).encode()
    store.save_model({
        "campaign": campaign, "name": INVERSE_MODEL, "kind": "structure-inverse",
        "metadata": {"n_pairs": len(docs), "base": settings.inverse_base,
                     "preset": docs[0].preset, "temperature_k": settings.temperature_k,
                     "mass_g_mol": settings.mass_g_mol, "anchors": settings.anchors,
                     "indices": [d.index for d in docs], "cgflow_version": __version__,
                     "r_nm_range": [docs[0].r_nm[0], docs[0].r_nm[-1]]}}, blob=blob)
    return {"status": "trained", "n_pairs": len(docs)}
