"""The round step of an active-learning campaign: thin glue around
:func:`cgflow.stages.active.run_round`.

The step runs after every Firework of a batch's branches (finished in any way: its spec
allows fizzled parents). It chooses the round (or finds it stored: a rerun step adds the
same sets) and returns ``FWAction(additions=...)``: the chosen sets' branches, built by
:func:`cgflow.orchestration.workflows.parameter_set_fireworks` as in any campaign (a set
already run with the preset is reused, not simulated again), followed by the next
round's step, or by the campaign's training Firework after the last round. A round that
stops the campaign adds the training Firework alone. The training Firework thus always
comes last: it is added by the round after which nothing is chosen.
"""

from __future__ import annotations

from typing import Any

from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize

from cgflow.db.store import Store
from cgflow.orchestration.campaign import CampaignSpec
from cgflow.orchestration.firetasks.context import db_file_for
from cgflow.orchestration.stage_names import SPEC_ACTIVE_ROUND, SPEC_STAGE, Stage
from cgflow.stages.active import run_round


def round_firework(spec: CampaignSpec, round_index: int, initial_param_ids: list[str],
                   category: str = "cgflow", parents: list[Firework] | None = None
                   ) -> Firework:
    """The Firework of round ``round_index`` of an active campaign, after ``parents``."""
    task = ActiveRoundTask(campaign_spec=spec.model_dump(mode="json"), round=round_index,
                           initial_param_ids=list(initial_param_ids), category=category)
    return Firework(
        [task],
        spec={"campaign": spec.name, "param_id": "", "label": "campaign",
              SPEC_STAGE: Stage.ACTIVE_ROUND.value, SPEC_ACTIVE_ROUND: round_index,
              "_category": category, "_allow_fizzled_parents": True,
              "_priority": 1000},
        name=f"{spec.name}:{Stage.ACTIVE_ROUND.value}-{round_index:02d}", parents=parents)


def round_additions(spec: CampaignSpec, doc: Any, initial_param_ids: list[str],
                    category: str = "cgflow") -> Workflow | None:
    """What a round adds: the chosen sets' branches and the next round's step (or the
    training Firework after the last round; the training Firework alone when the round
    stopped the campaign). A campaign without the CG stage has no training Firework:
    ``None`` when a round that stopped adds nothing."""
    from cgflow.orchestration.workflows import parameter_set_fireworks, training_firework

    fws: list[Firework] = []
    leaves: list[Firework] = []
    chosen = [c.parameter_set() for c in doc.chosen]
    for i, ps in enumerate(chosen):
        branch = parameter_set_fireworks(spec, ps, category, priority=len(chosen) - i)
        fws.extend(branch)
        leaves.append(branch[-1])
    if doc.status == "chosen" and not doc.last:
        fws.append(round_firework(spec, doc.round + 1, initial_param_ids, category, leaves))
    elif spec.cg_stage:
        fws.append(training_firework(spec, category, leaves or None))
    if not fws:
        return None
    return Workflow(fws, name=f"cgflow:{spec.name}:round-{doc.round:02d}")


@explicit_serialize
class ActiveRoundTask(FiretaskBase):
    """Choose the next sets of an active campaign and add their branches."""

    required_params = ["campaign_spec", "round", "initial_param_ids"]
    optional_params = ["category"]

    def run_task(self, fw_spec: dict[str, Any]) -> FWAction:
        spec = CampaignSpec.model_validate(self["campaign_spec"])
        if spec.active is None:
            raise ValueError(f"campaign {spec.name!r}: a round step needs an active: section")
        initial = list(self["initial_param_ids"])
        with Store.from_launchpad_file(db_file_for(fw_spec)) as store:
            doc = run_round(store, campaign=spec.name, preset=spec.preset,
                            space=spec.parameter_space, sampling=spec.sampling,
                            campaign_seed=spec.seed, round_index=int(self["round"]),
                            active=spec.active, initial_param_ids=initial)
        wf = round_additions(spec, doc, initial, self.get("category") or "cgflow")
        return FWAction(additions=[wf] if wf is not None else [], stored_data={
            "round": doc.round, "status": doc.status, "reason": doc.reason,
            "chosen": [c.param_id for c in doc.chosen], "max_alpha_std": doc.max_alpha_std})
