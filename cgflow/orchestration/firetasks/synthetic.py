"""Fireworks of a synthetic campaign (``kind: synthetic``): batches of structure-potential
pairs, then the learned inverse. Thin glue around :mod:`cgflow.stages.synthetic`.

The workflow (:func:`synthetic_workflow`) has one ``synthetic-batch`` Firework per batch
of the spec's ``synthetic.batch_size`` pairs, independent of each other, and, with
``synthetic.train_inverse``, a ``train-inverse`` Firework after all of them (fizzled
parents allowed: it trains on whatever pairs were stored). A batch stores each pair as
soon as it is made; a rerun batch (a lost run, a rerun after a failure) runs only the
pairs it had not stored. Run directories are ``<work root>/synthetic/<campaign>/<preset>/``.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize

from cgflow.db.store import Store
from cgflow.orchestration.firetasks.context import db_file_for, work_root_for
from cgflow.orchestration.stage_names import SPEC_STAGE, Stage
from cgflow.presets import get_cg_preset
from cgflow.stages import synthetic


def batch_id(start: int) -> str:
    """The ``param_id`` of a batch's Firework (what status views group by)."""
    return f"pairs-{start:06d}"


def synthetic_workflow(spec: Any, category: str = "cgflow") -> Workflow:
    """The Workflow of a campaign spec of ``kind: synthetic``
    (:class:`cgflow.orchestration.campaign.CampaignSpec`)."""
    s = spec.synthetic
    params = {"campaign": spec.name, "preset": spec.preset,
              "synthetic": s.model_dump(mode="json")}
    if spec.threads:
        params["threads"] = spec.threads
    batches = s.batches()
    fws = []
    for i, (start, n) in enumerate(batches):
        pid = batch_id(start)
        fws.append(Firework(
            [SyntheticBatchTask(start=start, n=n, **params)],
            spec={"campaign": spec.name, "param_id": pid, "label": pid,
                  SPEC_STAGE: Stage.SYNTHETIC_BATCH.value, "_category": category,
                  "_priority": len(batches) - i,
                  # FireWorks then gives the task its fw_id (stored with each pair)
                  "_add_launchpad_and_fw_id": True},
            name=f"{spec.name}:{pid}:{Stage.SYNTHETIC_BATCH.value}"))
    if s.train_inverse:
        fws.append(Firework(
            [TrainInverseTask(**params)],
            spec={"campaign": spec.name, "param_id": "", "label": "campaign",
                  SPEC_STAGE: Stage.TRAIN_INVERSE.value, "_category": category,
                  "_allow_fizzled_parents": True},
            name=f"{spec.name}:{Stage.TRAIN_INVERSE.value}", parents=list(fws)))
    return Workflow(fws, name=f"cgflow:{spec.name}", metadata={
        "cgflow_campaign": spec.name, "kind": "synthetic", "n_sets": len(batches),
        "n_pairs": s.n_pairs, "param_ids": [batch_id(b) for b, _ in batches],
        "spec": spec.model_dump(mode="json")})


@explicit_serialize
class SyntheticBatchTask(FiretaskBase):
    """Run and store one batch of synthetic pairs (pairs already stored are skipped)."""

    required_params = ["campaign", "preset", "synthetic", "start", "n"]
    optional_params = ["threads"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        settings = synthetic.SyntheticSettings.model_validate(self["synthetic"])
        preset = get_cg_preset(self["preset"])
        workdir = work_root_for(fw_spec) / "synthetic" / self["campaign"] / preset.name
        fw_id = getattr(self, "fw_id", None)
        with Store.from_launchpad_file(db_file_for(fw_spec)) as store:
            out = synthetic.store_batch(
                store, self["campaign"], preset, settings, int(self["start"]),
                int(self["n"]), workdir, fw_id=fw_id if isinstance(fw_id, int) else None,
                threads=int(self.get("threads") or preset.threads))
        return FWAction(stored_data=out)


@explicit_serialize
class TrainInverseTask(FiretaskBase):
    """Train the learned inverse on every stored pair of the campaign and store it."""

    required_params = ["campaign", "preset", "synthetic"]
    optional_params = ["threads"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        settings = synthetic.SyntheticSettings.model_validate(self["synthetic"])
        with Store.from_launchpad_file(db_file_for(fw_spec)) as store:
            out = synthetic.store_inverse(store, self["campaign"], settings, self["preset"])
        return FWAction(stored_data=out)
