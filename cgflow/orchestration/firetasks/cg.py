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

from cgflow.errors import CgflowError
from cgflow.ibi.monitor import IterationMetrics
from cgflow.ibi.potential import TabulatedPotential
from cgflow.ibi.settings import IterationResult
from cgflow.orchestration.campaign import IBISpec
from cgflow.orchestration.firetasks.context import TaskContext
from cgflow.presets import get_cg_preset
from cgflow.stages import cg as cg_stage

_PARAMS = ["campaign", "param_set", "preset"]


def _target_and_settings(ctx: TaskContext, ibi: dict[str, Any], cg_preset):
    aa = ctx.store.get_aa_run(ctx.aa_run_id)
    if aa is None or aa.status != "completed" or aa.results is None:
        raise CgflowError(f"IBI of {ctx.param_id}: no completed all-atom run {ctx.aa_run_id}")
    target = cg_stage.target_from_aa_results(
        aa.results, aa.preset_settings.get("temperature_k", 298.15))
    settings = cg_stage.make_settings(IBISpec.model_validate(ibi or {}), target, cg_preset)
    return aa, target, settings


def iteration_firework(task_params: dict[str, Any], spec: dict[str, Any], iteration: int,
                       **corrections: Any) -> Firework:
    """The Firework of IBI iteration ``iteration`` (``corrections``: the monitor's
    ``update_factor``, ``sampling_ps``, ``restart_from``, ``correction``)."""
    params = dict(task_params, iteration=iteration,
                  **{k: v for k, v in corrections.items() if v is not None})
    fw_spec = dict(spec, cgflow_stage="cg-ibi", ibi_iteration=iteration)
    name = f"{spec['campaign']}:{spec.get('label', spec['param_id'])}:cg-ibi-{iteration:03d}"
    return Firework([IBIIterationTask(**params)], spec=fw_spec, name=name)


@explicit_serialize
class IBIIterationTask(FiretaskBase):
    """One IBI iteration; adds the next one as a detour until the monitor stops."""

    required_params = [*_PARAMS, "iteration"]
    optional_params = ["ibi", "update_factor", "sampling_ps", "restart_from", "correction",
                       "threads"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        with TaskContext.from_task(self, fw_spec) as ctx:
            return self._run(ctx, fw_spec)

    def _run(self, ctx: TaskContext, fw_spec: dict[str, Any]) -> FWAction:
        it = int(self["iteration"])
        cg_preset = get_cg_preset(ctx.preset_name)
        if it == 0:
            done = ctx.store.get_potential(ctx.param_id, ctx.preset_name)
            if done is not None and done.converged:
                return FWAction(stored_data={"skipped": f"potential {done.id} reused"})
            ctx.store.delete_ibi_iterations(ctx.param_id, ctx.preset_name)
        aa, target, settings = _target_and_settings(ctx, self.get("ibi"), cg_preset)
        settings, cg_preset = cg_stage.apply_corrections(
            settings, cg_preset, update_factor=self.get("update_factor"),
            sampling_ps=self.get("sampling_ps"))
        sampling = cg_preset.ibi_sampling_ps
        docs = ctx.store.ibi_iterations(ctx.param_id, ctx.preset_name) if it else []
        previous = None
        if it == 0:
            potential = cg_stage.initial_potential(target, settings, cg_preset)
        elif self.get("restart_from") is not None:
            src = next(d for d in docs if d.iteration == int(self["restart_from"]))
            potential = TabulatedPotential.from_dict(src.potential.model_dump())
        else:
            previous = IterationResult.from_dict(docs[-1].result)
            potential = previous.next_potential
        threads = int(self.get("threads") or cg_preset.threads)
        result, report = cg_stage.run_iteration(ctx.cg_dir, it, potential, target, settings,
                                                cg_preset, previous=previous, threads=threads)
        metrics = IterationMetrics.from_result(
            result, sampling, restarted_from=self.get("restart_from"),
            correction=self.get("correction"))
        ctx.store.save_ibi_iteration({
            "param_id": ctx.param_id, "campaign": ctx.campaign, "preset": ctx.preset_name,
            "iteration": it, "potential": potential.to_dict(),
            "rdf": {"r_nm": result.r_nm.tolist(), "g": result.g.tolist(),
                    "n_frames": cg_preset.n_blocks},
            "metrics": {"rdf_deviation": result.rdf_deviation,
                        "pressure_bar": result.pressure_bar,
                        "pressure_deviation_bar": result.pressure_deviation_bar},
            "update_factor": result.factor,
            "result": result.to_dict(), "monitor": metrics.model_dump(),
            "wall_s": report.wall_time_s, "corrections": report.corrections,
        })
        history = [IterationMetrics.model_validate(d.monitor) for d in docs if d.iteration < it]
        history.append(metrics)
        decision = cg_stage.decide(history, settings)
        if decision.action == "continue":
            nxt = decision.next_metrics()
            task_params = {k: self[k] for k in (*_PARAMS, "ibi", "threads") if k in self}
            spec = {k: fw_spec[k] for k in ("campaign", "param_id", "label", "_category",
                                            "_priority") if k in fw_spec}
            fw = iteration_firework(
                task_params, spec, nxt["iteration"], update_factor=nxt["update_factor"],
                sampling_ps=nxt["sampling_ps"], restart_from=nxt["restarted_from"],
                correction=nxt["correction"])
            return FWAction(detours=[fw], stored_data={
                "rdf_deviation": result.rdf_deviation,
                "pressure_deviation_bar": result.pressure_deviation_bar,
                "decision": decision.diagnosis})
        self._finish(ctx, target, decision, history)
        return FWAction(stored_data={"ibi": decision.action, "reason": decision.reason,
                                     "best_iteration": decision.best_iteration})

    @staticmethod
    def _finish(ctx: TaskContext, target, decision, history) -> None:
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
    optional_params = ["ibi", "threads"]

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
            ctx.store.save_cg_run({
                "param_id": ctx.param_id, "campaign": ctx.campaign, "preset": ctx.preset_name,
                "status": "completed", "run_dir": str(ctx.cg_dir / "production"),
                "d_cg_nm2_ps": {"mean": out["d_cg"], "err": out["d_cg_err"]},
                "d_aa_nm2_ps": {"mean": aa.results.d_nm2_ps, "err": aa.results.d_err_nm2_ps},
                "alpha": {"mean": out["alpha"], "err": out["alpha_err"]},
                "pressure_bar": {"mean": out["pressure_bar"], "err": out["pressure_err_bar"]},
                "timings": {"production": {"wall_s": out["wall_s"] or 0.0,
                                           "ns_per_day": out["ns_per_day"]}},
            })
            return FWAction(stored_data={"alpha": out["alpha"], "alpha_err": out["alpha_err"]})
