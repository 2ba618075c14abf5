"""The friction calibration of one parameter set: D_CG(gamma) = D_AA, after CG production.

Plain functions on run directories, like :mod:`cgflow.stages.cg`, and one step like its
IBI loop: :func:`run_friction_step` runs the trial a :class:`FrictionPlan` asks for (a CG
production of the set's IBI potential with a friction thermostat, LAMMPS under Custodian
with :func:`cgflow.jobs.lammps.job.run_lammps`, in ``cg_dir/friction/trial_NN``), reads
D_CG(gamma), the pressure and the RDF, compares the structure with the frictionless run
and asks :func:`cgflow.ibi.friction.assess_trials` what comes next. A campaign runs each
trial as its own Firework (:mod:`cgflow.orchestration.firetasks.friction`, the next
trial added as a detour); :func:`run_friction` runs the same steps in one process
(benchmarks, tests).

The frictionless reference (:class:`FrictionReference`) is the set's CG production: its
D_CG(0) and pressure as stored, and the RDF it sampled (:func:`reference_rdf`; a
production made before productions sampled the RDF falls back to the best IBI
iteration's RDF, sampled with the same potential: the structure does not depend on the
thermostat).

Nothing here knows of FireWorks or of the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cgflow.db.documents import finite_or_none
from cgflow.engines.lammps import RDF_FILE, langevin_damp_fs
from cgflow.errors import InvalidInputError
from cgflow.ibi import friction as fr
from cgflow.ibi.iteration import cutoff_nm, read_sampled_rdf
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.production import finish_production, prepare_production
from cgflow.ibi.settings import IBISettings, IBITarget
from cgflow.jobs.lammps.job import run_lammps
from cgflow.presets import CGPreset


@dataclass(frozen=True)
class FrictionReference:
    """The frictionless CG run a calibration starts from.

    Attributes
    ----------
    d_nm2_ps, d_err_nm2_ps
        D_CG(0) and its standard error, nm^2/ps.
    pressure_bar, pressure_err_bar
        Its pressure, bar.
    temperature_k
        Its mean temperature, K (None if unknown).
    r_nm, g, g_err
        Its RDF (bin centres, mean, block standard error).
    source
        Where the RDF comes from (``production`` or ``ibi-iteration-N``).
    """

    d_nm2_ps: float
    d_err_nm2_ps: float
    pressure_bar: float
    pressure_err_bar: float
    r_nm: np.ndarray
    g: np.ndarray
    g_err: np.ndarray
    source: str
    temperature_k: float | None = None

    def point(self) -> fr.FrictionPoint:
        """The point gamma = 0 of the calibration."""
        return fr.FrictionPoint(0.0, self.d_nm2_ps, self.d_err_nm2_ps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN errors as None)."""
        return {"d_nm2_ps": self.d_nm2_ps, "d_err_nm2_ps": self.d_err_nm2_ps,
                "pressure_bar": self.pressure_bar,
                "pressure_err_bar": finite_or_none(self.pressure_err_bar),
                "rdf": {"r_nm": self.r_nm.tolist(), "g": self.g.tolist(),
                        "g_err": [finite_or_none(x) for x in self.g_err]},
                "source": self.source, "temperature_k": finite_or_none(self.temperature_k)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrictionReference:
        """Inverse of :meth:`to_dict`."""
        rdf = d["rdf"]
        return cls(d_nm2_ps=float(d["d_nm2_ps"]), d_err_nm2_ps=float(d["d_err_nm2_ps"] or 0.0),
                   pressure_bar=float(d["pressure_bar"]),
                   pressure_err_bar=_nan(d.get("pressure_err_bar")),
                   r_nm=np.asarray(rdf["r_nm"], float), g=np.asarray(rdf["g"], float),
                   g_err=np.array([_nan(x) for x in rdf["g_err"]]), source=str(d["source"]),
                   temperature_k=d.get("temperature_k"))


def _nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def reference_rdf(production_dir: str | Path | None,
                  fallback: tuple[np.ndarray, np.ndarray, np.ndarray, str] | None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The frictionless RDF: the one the production in ``production_dir`` sampled, else
    ``fallback`` ``(r_nm, g, g_err, source)``.

    Raises
    ------
    InvalidInputError
        When neither is available.
    """
    if production_dir is not None:
        d = Path(production_dir)
        if (d / RDF_FILE).exists() or any(d.glob(RDF_FILE + ".part*")):
            r, g, err = read_sampled_rdf(d)
            return r, g, err, "production"
    if fallback is None:
        raise InvalidInputError(f"friction calibration: no RDF of the frictionless run "
                                f"(none in {production_dir}, no IBI iteration given)")
    r, g, err, source = fallback
    return np.asarray(r, float), np.asarray(g, float), np.asarray(err, float), source


@dataclass(frozen=True)
class FrictionPlan:
    """A trial to run: its number (from 1) and its friction gamma (1/ps)."""

    trial: int
    friction_per_ps: float

    def __post_init__(self) -> None:
        if self.trial < 1:
            raise InvalidInputError(f"friction trial: field 'trial': value {self.trial!r}: "
                                    "must be >= 1")
        if not (math.isfinite(self.friction_per_ps) and self.friction_per_ps > 0):
            raise InvalidInputError(f"friction trial {self.trial}: field 'friction_per_ps': "
                                    f"value {self.friction_per_ps!r}: must be a finite "
                                    "number > 0")


def trial_dir(cg_dir: Path, trial: int) -> Path:
    """Run directory of friction trial ``trial``."""
    return Path(cg_dir) / "friction" / f"trial_{trial:02d}"


def trial_point(record: dict[str, Any]) -> fr.FrictionPoint:
    """The (gamma, D, error) of a stored trial record."""
    return fr.FrictionPoint(float(record["friction_per_ps"]), float(record["d_nm2_ps"]),
                            float(record.get("d_err_nm2_ps") or 0.0))


def run_trial(
    cg_dir: Path, plan: FrictionPlan, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, friction: fr.FrictionSettings,
    reference: FrictionReference, *, threads: int = 1, seed: int | None = None,
) -> dict[str, Any]:
    """One trial: a CG production with the friction thermostat at ``plan.friction_per_ps``.

    Returns
    -------
    dict
        The trial record: ``trial``, ``friction_per_ps``, ``langevin_damp_fs`` (Langevin)
        or ``dpd_gamma_g_mol_ps`` (DPD), ``d_nm2_ps``, ``d_err_nm2_ps``, ``pressure_bar``,
        ``pressure_err_bar``, ``temperature_k``, ``rdf`` (``r_nm``, ``g``, ``g_err``),
        ``structure_check`` (:func:`cgflow.ibi.friction.structure_check` against the
        frictionless run), ``wall_s``, ``corrections``, ``run_dir``.

    Raises
    ------
    cgflow.errors.EngineError
        When LAMMPS fails in a way its handlers cannot correct (or lacks DPD-BASIC for
        the DPD thermostat).
    """
    gamma = plan.friction_per_ps
    lang, dpd = 0.0, 0.0
    if friction.thermostat == "langevin":
        lang = gamma
    else:
        dpd = fr.dpd_pair_friction(gamma, mass_g_mol=target.mass_g_mol,
                                   density_nm3=target.number_density_nm3, r_nm=reference.r_nm,
                                   g=reference.g, rcut_nm=cutoff_nm(settings, cg_preset))
    seed = fr.FRICTION_SEED_BASE + plan.trial if seed is None else seed
    prep = prepare_production(trial_dir(cg_dir, plan.trial), potential, target, settings,
                              cg_preset, seed=seed, threads=threads,
                              thermostat=friction.thermostat, friction_per_ps=lang,
                              dpd_gamma_g_mol_ps=dpd, production_ps=friction.trial_ps)
    report = run_lammps(prep.workdir, prep.input_file.name, settings=prep.lammps_settings,
                        threads=threads)
    prod = finish_production(prep.workdir)
    if prod.rdf_r_nm is None:
        raise InvalidInputError(f"friction trial {plan.trial}: the run in {prep.workdir} "
                                "sampled no RDF")
    check = fr.structure_check(
        prod.rdf_r_nm, prod.rdf_g, prod.rdf_g_err, reference.r_nm, reference.g,
        reference.g_err, pressure_bar=prod.pressure_bar, pressure_err_bar=prod.pressure_err_bar,
        pressure0_bar=reference.pressure_bar, pressure0_err_bar=reference.pressure_err_bar,
        sigma=friction.check_sigma, temperature_k=finite_or_none(prod.temperature_k),
        temperature0_k=reference.temperature_k)
    d = prod.diffusion
    rec: dict[str, Any] = {
        "trial": plan.trial, "friction_per_ps": gamma, "thermostat": friction.thermostat,
        "d_nm2_ps": d.d_nm2_ps, "d_err_nm2_ps": finite_or_none(d.d_err_nm2_ps) or 0.0,
        "pressure_bar": prod.pressure_bar,
        "pressure_err_bar": finite_or_none(prod.pressure_err_bar),
        "temperature_k": finite_or_none(prod.temperature_k),
        "duration_ps": finite_or_none(prod.duration_ps),
        "rdf": {"r_nm": prod.rdf_r_nm.tolist(), "g": prod.rdf_g.tolist(),
                "g_err": [finite_or_none(x) for x in prod.rdf_g_err]},
        "structure_check": check.to_dict(),
        "wall_s": float(report.wall_time_s or 0.0), "corrections": report.corrections,
        "run_dir": str(prep.workdir),
    }
    if friction.thermostat == "langevin":
        rec["langevin_damp_fs"] = langevin_damp_fs(gamma)
    else:
        rec["dpd_gamma_g_mol_ps"] = dpd
    return rec


@dataclass
class FrictionStep:
    """One trial of the calibration and what follows it."""

    plan: FrictionPlan
    trial: dict[str, Any]
    decision: fr.FrictionDecision


def start_calibration(reference: FrictionReference, target: IBITarget, settings: IBISettings,
                      friction: fr.FrictionSettings, *, d_aa_nm2_ps: float,
                      d_aa_err_nm2_ps: float | None) -> fr.FrictionDecision:
    """The decision before any trial (:func:`cgflow.ibi.friction.start`)."""
    return fr.start(reference.d_nm2_ps, reference.d_err_nm2_ps, d_aa_nm2_ps, d_aa_err_nm2_ps,
                    friction, temperature_k=settings.temperature_k,
                    mass_g_mol=target.mass_g_mol)


def run_friction_step(
    cg_dir: Path, plan: FrictionPlan, potential: TabulatedPotential, target: IBITarget,
    settings: IBISettings, cg_preset: CGPreset, friction: fr.FrictionSettings,
    reference: FrictionReference, *, d_aa_nm2_ps: float, d_aa_err_nm2_ps: float | None,
    trials: list[dict[str, Any]], threads: int = 1,
) -> FrictionStep:
    """Run the trial ``plan`` asks for and decide what comes next.

    ``trials`` are the records of the trials before this one, in order (empty for trial
    1); a record of a trial numbered ``plan.trial`` or later is ignored (a rerun).
    """
    before = [t for t in trials if int(t["trial"]) < plan.trial]
    rec = run_trial(cg_dir, plan, potential, target, settings, cg_preset, friction,
                    reference, threads=threads)
    decision = fr.assess_trials(
        reference.point(), [trial_point(t) for t in [*before, rec]], d_aa_nm2_ps,
        d_aa_err_nm2_ps, friction, temperature_k=settings.temperature_k,
        mass_g_mol=target.mass_g_mol)
    return FrictionStep(plan=plan, trial=rec, decision=decision)


def calibration_fields(
    decision: fr.FrictionDecision | None, trials: list[dict[str, Any]],
    reference: FrictionReference, friction: fr.FrictionSettings, *, target: IBITarget,
    settings: IBISettings, d_aa_nm2_ps: float, d_aa_err_nm2_ps: float | None,
    first_estimate_per_ps: float | None,
) -> dict[str, Any]:
    """The fields of the stored calibration (:class:`cgflow.db.documents.FrictionDoc`,
    less the set's ids) after ``trials``; ``decision`` None or ``continue``: still
    running."""
    running = decision is None or decision.action == "continue"
    out: dict[str, Any] = {
        "status": "running" if running else decision.action,
        "converged": None if running else decision.action == "converged",
        "reason": decision.reason if decision is not None else "started",
        "thermostat": friction.thermostat, "tolerance": friction.tolerance,
        "temperature_k": settings.temperature_k, "mass_g_mol": target.mass_g_mol,
        "d_aa_nm2_ps": {"mean": d_aa_nm2_ps, "err": finite_or_none(d_aa_err_nm2_ps)},
        "d_cg0_nm2_ps": {"mean": reference.d_nm2_ps, "err": reference.d_err_nm2_ps},
        "first_estimate_per_ps": first_estimate_per_ps,
        "n_trials": len(trials), "trials": trials, "reference": reference.to_dict(),
        "best_trial": None if running else decision.best_trial,
    }
    if running or decision.best_trial is None:
        return out
    points = [trial_point(t) for t in trials]
    if decision.best_trial == 0:  # no friction needed: the frictionless run itself
        out.update({
            "friction_per_ps": {"mean": 0.0, "err": None}, "langevin_damp_fs": None,
            "d_cg_nm2_ps": {"mean": reference.d_nm2_ps, "err": reference.d_err_nm2_ps},
            "pressure_bar": {"mean": reference.pressure_bar,
                             "err": finite_or_none(reference.pressure_err_bar)},
            "structure_check": {"passed": True, "rdf_passed": True, "pressure_passed": True,
                                "rdf_deviation": 0.0, "rdf_noise": None,
                                "pressure_deviation_bar": 0.0, "pressure_noise_bar": None,
                                "sigma": friction.check_sigma,
                                "notes": ["no friction: the frictionless run itself"]},
        })
        return out
    chosen = trials[decision.best_trial - 1]
    point = points[decision.best_trial - 1]
    err = fr.friction_uncertainty(reference.point(), points, point, d_aa_nm2_ps,
                                  d_aa_err_nm2_ps, temperature_k=settings.temperature_k,
                                  mass_g_mol=target.mass_g_mol)
    out.update({
        "friction_per_ps": {"mean": point.friction_per_ps, "err": finite_or_none(err)},
        "langevin_damp_fs": chosen.get("langevin_damp_fs"),
        "dpd_gamma_g_mol_ps": chosen.get("dpd_gamma_g_mol_ps"),
        "d_cg_nm2_ps": {"mean": point.d_nm2_ps, "err": point.d_err_nm2_ps},
        "pressure_bar": {"mean": chosen["pressure_bar"], "err": chosen.get("pressure_err_bar")},
        "structure_check": chosen["structure_check"],
        "rdf": {"r_nm": chosen["rdf"]["r_nm"], "g": [max(0.0, x) for x in chosen["rdf"]["g"]],
                "n_frames": 0},
        "run_dir": chosen.get("run_dir"),
    })
    return out


@dataclass
class FrictionOutcome:
    """A calibration run to its end by :func:`run_friction`."""

    decision: fr.FrictionDecision
    first: fr.FrictionDecision
    steps: list[FrictionStep] = field(default_factory=list)

    @property
    def trials(self) -> list[dict[str, Any]]:
        """The trial records, in order."""
        return [s.trial for s in self.steps]


def run_friction(
    cg_dir: Path, potential: TabulatedPotential, target: IBITarget, settings: IBISettings,
    cg_preset: CGPreset, friction: fr.FrictionSettings, reference: FrictionReference, *,
    d_aa_nm2_ps: float, d_aa_err_nm2_ps: float | None, threads: int = 1,
) -> FrictionOutcome:
    """The calibration in one process: the campaign's steps (:func:`run_friction_step`)
    until converged or unconverged."""
    first = start_calibration(reference, target, settings, friction, d_aa_nm2_ps=d_aa_nm2_ps,
                              d_aa_err_nm2_ps=d_aa_err_nm2_ps)
    out = FrictionOutcome(decision=first, first=first)
    decision = first
    while decision.action == "continue":
        plan = FrictionPlan(decision.trial, float(decision.next_friction_per_ps))
        step = run_friction_step(cg_dir, plan, potential, target, settings, cg_preset,
                                 friction, reference, d_aa_nm2_ps=d_aa_nm2_ps,
                                 d_aa_err_nm2_ps=d_aa_err_nm2_ps, trials=out.trials,
                                 threads=threads)
        out.steps.append(step)
        decision = step.decision
    out.decision = decision
    return out
