"""Firetasks of the all-atom stage: thin glue between :mod:`cgflow.stages.aa` and the store.

Each task resolves its context, calls one step of :mod:`cgflow.stages.aa`, records what
happened in the ``aa_runs`` document, and returns an ``FWAction``. An engine failure that
Custodian could not correct marks the run ``failed`` with the reason and is re-raised, so
that FireWorks marks the Firework FIZZLED (never swallowed).

A parameter set whose all-atom run with the same preset is already completed in the
database (from this or another campaign) is not run again: the build task links it to
this campaign and tells the following tasks, through ``update_spec``, to skip.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, FWAction, explicit_serialize

from cgflow.errors import CgflowError, write_failure
from cgflow.orchestration.firetasks.context import TaskContext
from cgflow.presets import AAPreset, get_aa_preset
from cgflow.stages import aa as aa_stage

REUSED_KEY = "cgflow_aa_reused"


def _preset(task: dict[str, Any]) -> AAPreset:
    preset = get_aa_preset(task["preset"])
    overrides = task.get("preset_overrides") or {}
    return preset.model_copy(update=overrides) if overrides else preset


def _reports_to_timings(reports) -> dict[str, dict[str, Any]]:
    return {
        r.stage: {
            "wall_s": r.wall_s,
            "ns_per_day": r.ns_per_day,
            "dt_ps": r.final_dt_ps,
            "corrections": [dict(c) for c in r.corrections],
        }
        for r in reports
    }


def _skip(run_id: str) -> FWAction:
    """Skip a step of a reused run, passing the flag on to the next Firework."""
    return FWAction(update_spec={REUSED_KEY: run_id},
                    stored_data={"skipped": f"all-atom run {run_id} reused"})


class _AAStep(FiretaskBase):
    """Common run logic: skip when reused, record timings, mark failures."""

    required_params = ["campaign", "param_set", "preset"]
    optional_params = ["preset_overrides", "space", "molecule"]
    step: str = ""

    def _do(self, ctx: TaskContext, preset: AAPreset):  # pragma: no cover - abstract
        raise NotImplementedError

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        if fw_spec.get(REUSED_KEY):
            return _skip(fw_spec[REUSED_KEY])
        with TaskContext.from_task(self, fw_spec) as ctx:
            return self._run_step(ctx, _preset(self))

    def _run_step(self, ctx: TaskContext, preset: AAPreset) -> FWAction:
        try:
            reports = self._do(ctx, preset)
        except CgflowError as exc:
            ctx.store.fail_aa_run(ctx.aa_run_id, f"{self.step}: {exc}")
            raise
        except OSError as exc:  # a write of cgflow's own failed (full disk, read-only)
            reason = f"{self.step}: {write_failure(exc, ctx.aa_dir)}"
            ctx.store.fail_aa_run(ctx.aa_run_id, reason)
            raise CgflowError(reason) from exc
        ctx.store.record_aa_stages(ctx.aa_run_id, _reports_to_timings(reports))
        return FWAction(stored_data={"stages": [r.stage for r in reports]})


@explicit_serialize
class AABuildTask(_AAStep):
    """Register the parameter set, reuse a completed run, else build and minimise."""

    step = "build"

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        preset = _preset(self)
        with TaskContext.from_task(self, fw_spec) as ctx:
            ctx.store.upsert_parameter_set(ctx.param_set, ctx.campaign, self.get("space"),
                                           molecule=ctx.molecule)
            done = ctx.store.find_completed_aa_run(ctx.param_id, preset.name)
            if done is not None:
                ctx.store.link_aa_run_to_campaign(done.id, ctx.campaign)
                return FWAction(update_spec={REUSED_KEY: done.id},
                                stored_data={"reused": done.id})
            from cgflow.engines.gromacs import gromacs_version

            current = ctx.store.get_aa_run(ctx.aa_run_id)
            if current is None or current.status != "running":
                ctx.store.start_aa_run(
                    run_id=ctx.aa_run_id, param_id=ctx.param_id, campaign=ctx.campaign,
                    preset=preset, run_dir=str(ctx.aa_dir), gromacs_version=gromacs_version(),
                    molecule=ctx.molecule.summary(),
                    # FireWorks gives the task its fw_id (_add_launchpad_and_fw_id)
                    fw_id=fw_id if isinstance(fw_id := getattr(self, "fw_id", None), int)
                    else None,
                )
            return self._run_step(ctx, preset)

    def _do(self, ctx: TaskContext, preset: AAPreset):
        return aa_stage.build(ctx.aa_dir, ctx.param_set, preset, molecule=ctx.molecule)


@explicit_serialize
class AAEquilibrateTask(_AAStep):
    """NVT and NPT equilibration."""

    step = "equilibrate"

    def _do(self, ctx: TaskContext, preset: AAPreset):
        return aa_stage.equilibrate(ctx.aa_dir, ctx.param_set, preset)


@explicit_serialize
class AAProduceTask(_AAStep):
    """NPT production."""

    step = "produce"

    def _do(self, ctx: TaskContext, preset: AAPreset):
        return aa_stage.produce(ctx.aa_dir, ctx.param_set, preset)


@explicit_serialize
class AAAnalyseTask(FiretaskBase):
    """Analyse the production run and store the results; the run becomes ``completed``."""

    required_params = ["campaign", "param_set", "preset"]
    optional_params = ["preset_overrides", "space", "molecule"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        if fw_spec.get(REUSED_KEY):
            return _skip(fw_spec[REUSED_KEY])
        preset = _preset(self)
        with TaskContext.from_task(self, fw_spec) as ctx:
            stored = ctx.store.get_aa_run(ctx.aa_run_id)
            if stored is not None and stored.status == "completed" and stored.results:
                # a rerun of an analysis whose results were stored before its Firework
                # failed (a lost run, a killed launcher): the stored results stand
                results = stored.results
                return FWAction(stored_data={
                    "density_kg_m3": results.density_kg_m3, "d_nm2_ps": results.d_nm2_ps,
                    "already_stored": True})
            try:
                results = aa_stage.analyse(ctx.aa_dir, preset)
            except (CgflowError, OSError, ValueError) as exc:
                ctx.store.fail_aa_run(ctx.aa_run_id, f"analyse: {exc}")
                raise
            ctx.store.complete_aa_run(ctx.aa_run_id, results)
        return FWAction(stored_data={
            "density_kg_m3": results.density_kg_m3,
            "d_nm2_ps": results.d_nm2_ps,
        })
