"""Firetasks of the coarse-grained stage: IBI iterations as dynamic Fireworks, then CG
production. Thin glue between :mod:`cgflow.stages.cg` and the store.

Each IBI iteration is its own Firework. It reads the AA target and the previous
iteration from the database, runs one iteration, stores it (potential, RDF, metrics), and
asks the IBI monitor what to do next: ``continue`` adds the next iteration as a detour
(so the CG production Firework stays after the last iteration), ``converged`` or
``unconverged`` stores the parameter set's potential document with its history, its best
iteration and the reason. The production Firework runs the CG production with a
converged potential; an unconverged set is left marked so, and the campaign goes on.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize

from cgflow.errors import CgflowError, write_failure
from cgflow.ibi.monitor import IterationMetrics
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import IBISettings, IterationResult
from cgflow.orchestration.firetasks.context import TaskContext
from cgflow.orchestration.stage_names import (
    INHERITED_SPEC_KEYS,
    SPEC_IBI_ITERATION,
    SPEC_STAGE,
    Stage,
)
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage

_PARAMS = ["campaign", "param_set", "preset"]


def _target_and_settings(ctx: TaskContext, ibi: dict[str, Any], cg_preset):
    aa = ctx.store.get_aa_run(ctx.aa_run_id)
    if aa is None or aa.status != "completed" or aa.results is None:
        raise CgflowError(f"IBI of {ctx.param_id}: no completed all-atom run {ctx.aa_run_id}")
    target = cg_stage.target_from_aa_run(aa, ctx.molecule)
    settings = cg_stage.make_settings(IBISettings.model_validate(ibi or {}), target, cg_preset)
    return aa, target, settings


def iteration_firework(task_params: dict[str, Any], spec: dict[str, Any],
                       plan: cg_stage.IterationPlan) -> Firework:
    """The Firework of the IBI iteration ``plan`` (its index and the monitor's
    corrections)."""
    params = dict(task_params, **plan.to_dict())
    fw_spec = dict(spec, **{SPEC_STAGE: Stage.CG_IBI.value, SPEC_IBI_ITERATION: plan.iteration})
    name = (f"{spec['campaign']}:{spec.get('label', spec['param_id'])}:"
            f"{Stage.CG_IBI.value}-{plan.iteration:03d}")
    return Firework([IBIIterationTask(**params)], spec=fw_spec, name=name)


@explicit_serialize
class IBIIterationTask(FiretaskBase):
    """One step of the IBI loop (:func:`cgflow.stages.cg.run_ibi_step`); adds the next
    one as a detour until the monitor stops."""

    required_params = [*_PARAMS, "iteration"]
    optional_params = ["ibi", "update_factor", "sampling_ps", "restart_from", "correction",
                       "threads", "molecule"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with TaskContext.from_task(self, fw_spec) as ctx:
            try:
                return self._run(ctx, fw_spec)
            except OSError as exc:  # a write of cgflow's own failed (full disk, read-only)
                raise CgflowError(f"IBI iteration {self['iteration']} of {ctx.param_id}: "
                                  f"{write_failure(exc, ctx.cg_dir)}") from exc

    def _plan(self) -> cg_stage.IterationPlan:
        return cg_stage.IterationPlan(
            iteration=int(self["iteration"]), update_factor=self.get("update_factor"),
            sampling_ps=self.get("sampling_ps"), restart_from=self.get("restart_from"),
            correction=self.get("correction"))

    def _run(self, ctx: TaskContext, fw_spec: dict[str, Any]) -> FWAction:
        plan = self._plan()
        it = plan.iteration
        cg_preset = get_cg_preset(ctx.preset_name)
        if it == 0:
            done = ctx.store.get_potential(ctx.param_id, ctx.preset_name)
            if done is not None and done.converged:
                return FWAction(stored_data={"skipped": f"potential {done.id} reused"})
            ctx.store.delete_ibi_iterations(ctx.param_id, ctx.preset_name)
        aa, target, settings = _target_and_settings(ctx, self.get("ibi"), cg_preset)
        docs = ctx.store.ibi_iterations(ctx.param_id, ctx.preset_name) if it else []
        before = [d for d in docs if d.iteration < it]
        threads = int(self.get("threads") or cg_preset.threads)
        step = cg_stage.run_ibi_step(
            ctx.cg_dir, plan, target, settings, cg_preset,
            results=[IterationResult.from_dict(d.result) for d in before],
            history=[IterationMetrics.model_validate(d.monitor) for d in before],
            threads=threads)
        result, decision = step.result, step.decision
        ctx.store.save_ibi_iteration({
            "param_id": ctx.param_id, "campaign": ctx.campaign, "preset": ctx.preset_name,
            "iteration": it, "potential": step.potential.to_dict(),
            "rdf": {"r_nm": result.r_nm.tolist(), "g": result.g.tolist(),
                    "n_frames": cg_preset.n_blocks},
            "metrics": {"rdf_deviation": result.rdf_deviation,
                        "pressure_bar": result.pressure_bar,
                        "pressure_deviation_bar": result.pressure_deviation_bar},
            "update_factor": result.factor,
            "result": result.to_dict(), "monitor": step.metrics.model_dump(),
            "wall_s": step.report.wall_time_s, "corrections": step.report.corrections,
        })
        if decision.action == "continue":
            task_params = {k: self[k] for k in (*_PARAMS, "ibi", "threads", "molecule")
                           if k in self}
            spec = {k: fw_spec[k] for k in INHERITED_SPEC_KEYS if k in fw_spec}
            fw = iteration_firework(task_params, spec, cg_stage.IterationPlan.after(decision))
            return FWAction(detours=[fw], stored_data={
                "rdf_deviation": result.rdf_deviation,
                "pressure_deviation_bar": result.pressure_deviation_bar,
                "decision": decision.diagnosis})
        self._finish(ctx, target, decision)
        return FWAction(stored_data={"ibi": decision.action, "reason": decision.reason,
                                     "best_iteration": decision.best_iteration})

    @staticmethod
    def _finish(ctx: TaskContext, target, decision) -> None:
        docs = ctx.store.ibi_iterations(ctx.param_id, ctx.preset_name)
        best = next(d for d in docs if d.iteration == decision.best_iteration)
        best.is_best = True
        ctx.store.save_ibi_iteration(best)
        ctx.store.save_potential({
            "param_id": ctx.param_id, "campaign": ctx.campaign, "preset": ctx.preset_name,
            "converged": decision.action == "converged", "reason": decision.reason,
            "n_iterations": len(docs), "best_iteration": decision.best_iteration,
            "potential": best.potential.model_dump(),
            "target_rdf": {"r_nm": target.r_nm.tolist(), "g": target.g.tolist(),
                           "n_frames": 0},
            "final_rdf": best.rdf.model_dump(),
            "metrics_history": [dict(d.metrics) for d in docs],
            "diagnosis": decision.diagnosis,
        })


@explicit_serialize
class CGProductionTask(FiretaskBase):
    """CG production with the converged potential: D_CG and alpha, stored."""

    required_params = list(_PARAMS)
    optional_params = ["ibi", "threads", "molecule"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with TaskContext.from_task(self, fw_spec) as ctx:
            cg_preset = get_cg_preset(ctx.preset_name)
            pot = ctx.store.get_potential(ctx.param_id, ctx.preset_name)
            if pot is None or not pot.converged:
                why = pot.reason if pot is not None else "no IBI potential stored"
                return FWAction(stored_data={"skipped": f"IBI unconverged: {why}"})
            done = ctx.store.get_cg_run(ctx.param_id, ctx.preset_name)
            if done is not None and done.status == "completed":
                return FWAction(stored_data={"skipped": f"CG run {done.id} reused"})
            aa, target, settings = _target_and_settings(ctx, self.get("ibi"), cg_preset)
            potential = TabulatedPotential.from_dict(pot.potential.model_dump())
            threads = int(self.get("threads") or cg_preset.threads)
            out = cg_stage.run_cg_production(
                ctx.cg_dir, potential, target, settings, cg_preset,
                d_aa_nm2_ps=aa.results.d_nm2_ps, d_aa_err_nm2_ps=aa.results.d_err_nm2_ps,
                threads=threads)
            ctx.store.save_cg_run({"param_id": ctx.param_id, "campaign": ctx.campaign,
                                   "preset": ctx.preset_name, **out})
            return FWAction(stored_data={"alpha": out["alpha"]["mean"],
                                         "alpha_err": out["alpha"]["err"]})
