"""Firetask of the friction calibration: one trial per Firework, the next added as a
detour. Thin glue between :mod:`cgflow.stages.friction` and the store.

The first Firework (trial 1) reads the set's converged IBI potential and its CG
production (D_CG(0), pressure; the RDF the production sampled, else the best IBI
iteration's), decides whether a friction is needed at all and runs the first trial at
the first estimate. Every trial stores the calibration document (``frictions``) with
all trials so far; ``continue`` adds the next trial as a detour (so the training
Firework stays after the last trial), ``converged`` or ``unconverged`` stores the final
document. A rerun of trial k keeps the stored trials before k and runs k again.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize

from cgflow.engines.lammps import require_packages
from cgflow.errors import CgflowError
from cgflow.ibi.friction import FrictionSettings
from cgflow.ibi.potential import TabulatedPotential
from cgflow.orchestration.firetasks.cg import _target_and_settings
from cgflow.orchestration.firetasks.context import TaskContext
from cgflow.orchestration.stage_names import (
    INHERITED_SPEC_KEYS,
    SPEC_FRICTION_TRIAL,
    SPEC_STAGE,
    Stage,
)
from cgflow.presets import get_cg_preset
from cgflow.stages import friction as fstage

_PARAMS = ["campaign", "param_set", "preset"]


def friction_firework(task_params: dict[str, Any], spec: dict[str, Any], trial: int,
                      friction_per_ps: float | None = None) -> Firework:
    """The Firework of friction trial ``trial`` (gamma ``friction_per_ps``; None for the
    first, which decides it)."""
    params = dict(task_params, trial=trial)
    if friction_per_ps is not None:
        params["friction_per_ps"] = float(friction_per_ps)
    fw_spec = dict(spec, **{SPEC_STAGE: Stage.CG_FRICTION.value, SPEC_FRICTION_TRIAL: trial})
    name = (f"{spec['campaign']}:{spec.get('label', spec['param_id'])}:"
            f"{Stage.CG_FRICTION.value}-{trial:02d}")
    return Firework([FrictionTrialTask(**params)], spec=fw_spec, name=name)


def _reference(ctx: TaskContext, cg_run: Any, best_iteration: int | None
               ) -> fstage.FrictionReference:
    fallback = None
    if best_iteration is not None:
        its = [d for d in ctx.store.ibi_iterations(ctx.param_id, ctx.preset_name)
               if d.iteration == best_iteration]
        if its and its[0].result:
            res = its[0].result
            fallback = (res["r_nm"], res["g"],
                        [float("nan") if x is None else x for x in res["g_err"]],
                        f"ibi-iteration-{best_iteration}")
    r, g, g_err, source = fstage.reference_rdf(cg_run.run_dir, fallback)
    return fstage.FrictionReference(
        d_nm2_ps=cg_run.d_cg_nm2_ps.mean, d_err_nm2_ps=cg_run.d_cg_nm2_ps.err or 0.0,
        pressure_bar=cg_run.pressure_bar.mean if cg_run.pressure_bar else float("nan"),
        pressure_err_bar=(cg_run.pressure_bar.err or float("nan")) if cg_run.pressure_bar
        else float("nan"),
        r_nm=r, g=g, g_err=g_err, source=source,
        temperature_k=(cg_run.engine or {}).get("temperature_k"))


@explicit_serialize
class FrictionTrialTask(FiretaskBase):
    """One trial of the friction calibration (:func:`cgflow.stages.friction.run_friction_step`);
    adds the next one as a detour until converged or unconverged."""

    required_params = [*_PARAMS, "trial"]
    optional_params = ["ibi", "friction", "friction_per_ps", "threads", "molecule"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with TaskContext.from_task(self, fw_spec) as ctx:
            return self._run(ctx, fw_spec)

    def _run(self, ctx: TaskContext, fw_spec: dict[str, Any]) -> FWAction:
        k = int(self["trial"])
        fs = FrictionSettings.model_validate(self.get("friction") or {})
        cg_preset = get_cg_preset(ctx.preset_name)
        pot = ctx.store.get_potential(ctx.param_id, ctx.preset_name)
        cg = ctx.store.get_cg_run(ctx.param_id, ctx.preset_name)
        if pot is None or not pot.converged:
            return FWAction(stored_data={"skipped": "IBI unconverged: no friction to "
                                                    "calibrate"})
        if cg is None or cg.status != "completed" or cg.d_cg_nm2_ps is None:
            return FWAction(stored_data={"skipped": "no completed CG production"})
        doc = ctx.store.get_friction(ctx.param_id, ctx.preset_name)
        if k == 1 and doc is not None and doc.status != "running" \
                and doc.thermostat == fs.thermostat:
            return FWAction(stored_data={"skipped": f"friction calibration {doc.id} reused"})
        aa, target, settings = _target_and_settings(ctx, self.get("ibi"), cg_preset)
        d_aa, d_aa_err = aa.results.d_nm2_ps, aa.results.d_err_nm2_ps
        if k == 1:
            require_packages(fs.thermostat)
            reference = _reference(ctx, cg, pot.best_iteration)
            first = fstage.start_calibration(reference, target, settings, fs,
                                             d_aa_nm2_ps=d_aa, d_aa_err_nm2_ps=d_aa_err)
            estimate = first.next_friction_per_ps
            before: list[dict[str, Any]] = []
            if first.action != "continue":
                self._save(ctx, first, [], reference, fs, target, settings, d_aa, d_aa_err,
                           None)
                return FWAction(stored_data={"friction": first.action,
                                             "reason": first.reason})
            gamma = float(first.next_friction_per_ps)
        else:
            if doc is None:
                raise CgflowError(f"friction trial {k} of {ctx.param_id}: no stored "
                                  "calibration to continue")
            reference = fstage.FrictionReference.from_dict(doc.reference)
            estimate = doc.first_estimate_per_ps
            before = [t for t in doc.trials if int(t["trial"]) < k]
            gamma = float(self["friction_per_ps"])
        potential = TabulatedPotential.from_dict(pot.potential.model_dump())
        threads = int(self.get("threads") or cg_preset.threads)
        step = fstage.run_friction_step(
            ctx.cg_dir, fstage.FrictionPlan(k, gamma), potential, target, settings, cg_preset,
            fs, reference, d_aa_nm2_ps=d_aa, d_aa_err_nm2_ps=d_aa_err, trials=before,
            threads=threads)
        trials = [*before, step.trial]
        self._save(ctx, step.decision, trials, reference, fs, target, settings, d_aa, d_aa_err,
                   estimate)
        decision = step.decision
        data = {"friction_per_ps": gamma, "d_nm2_ps": step.trial["d_nm2_ps"],
                "decision": decision.action}
        if decision.action == "continue":
            task_params = {k_: self[k_] for k_ in (*_PARAMS, "ibi", "friction", "threads",
                                                   "molecule") if k_ in self}
            spec = {k_: fw_spec[k_] for k_ in INHERITED_SPEC_KEYS if k_ in fw_spec}
            fw = friction_firework(task_params, spec, decision.trial,
                                   decision.next_friction_per_ps)
            return FWAction(detours=[fw], stored_data=data)
        return FWAction(stored_data={**data, "reason": decision.reason})

    @staticmethod
    def _save(ctx: TaskContext, decision, trials, reference, fs, target, settings, d_aa,
              d_aa_err, estimate) -> None:
        ctx.store.save_friction({
            "param_id": ctx.param_id, "campaign": ctx.campaign, "preset": ctx.preset_name,
            **fstage.calibration_fields(decision, trials, reference, fs, target=target,
                                        settings=settings, d_aa_nm2_ps=d_aa,
                                        d_aa_err_nm2_ps=d_aa_err,
                                        first_estimate_per_ps=estimate),
        })
