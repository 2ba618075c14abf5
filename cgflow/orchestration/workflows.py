"""Campaign spec -> FireWorks Workflow.

Per parameter set, a chain of dependent Fireworks on one run directory::

    aa-build -> aa-equilibrate -> aa-produce -> aa-analyse
        [-> cg-ibi-000 (-> cg-ibi-001 -> ... added as detours) -> cg-production
         [-> cg-friction-01 (-> cg-friction-02 -> ... added as detours)]]

The CG part (``cg_stage: true`` in the spec) starts with the first IBI iteration; each
iteration adds the next one as a detour until the IBI monitor stops the loop. With
``friction: {enabled: true}`` the friction calibration follows the CG production, one
Firework per trial, each adding the next as a detour until D_CG(gamma) matches D_AA. A campaign
with the CG stage ends with one ``train-models`` Firework whose parents are the last
Firework of every branch (``_allow_fizzled_parents``: it runs when all have finished,
converged, unconverged or failed).

An active-learning campaign (``active:`` in the spec) starts with its first batch and
the step of round 1 (``active-round-01``, after every Firework of the batch); each round
step adds the sets it chose as new branches and the next round's step after them, and
the last one adds the ``train-models`` Firework instead
(:mod:`cgflow.orchestration.firetasks.active`), so training still comes last.

Every Firework's spec carries ``campaign``, ``param_id`` and ``cgflow_stage`` (for
``cgflow campaign status`` and plain queries of the ``fireworks`` collection), and
``_category`` (``cgflow`` by default) so FireWorkers can select them. The branches of
different parameter sets are independent: one that fails does not stop the others.

A campaign of several molecules (``molecules:``) has one branch per parameter set and
molecule (:meth:`~cgflow.orchestration.campaign.CampaignSpec.branches`), each with the
set's id on its molecule; their Fireworks also carry ``molecule`` (the molecule's name,
as the Fireworks of any molecule but the default do), and their labels and names name
it (``reference@n-hexane``), so that every branch is told apart.
"""

from __future__ import annotations

from typing import Any

from fireworks import Firework, Workflow

from cgflow.orchestration.campaign import CampaignSpec
from cgflow.orchestration.firetasks.aa import (
    AAAnalyseTask,
    AABuildTask,
    AAEquilibrateTask,
    AAProduceTask,
)
from cgflow.orchestration.firetasks.active import round_firework
from cgflow.orchestration.firetasks.cg import CGProductionTask, iteration_firework
from cgflow.orchestration.firetasks.friction import friction_firework
from cgflow.orchestration.firetasks.synthetic import synthetic_workflow
from cgflow.orchestration.firetasks.train import TrainModelsTask
from cgflow.orchestration.stage_names import (
    INHERITED_SPEC_KEYS,
    SPEC_MOLECULE,
    SPEC_STAGE,
    Stage,
)
from cgflow.params import OPLSAA_REFERENCE, ParameterSet
from cgflow.stages.cg import IterationPlan

AA_STEPS = (
    (Stage.AA_BUILD, AABuildTask),
    (Stage.AA_EQUILIBRATE, AAEquilibrateTask),
    (Stage.AA_PRODUCE, AAProduceTask),
    (Stage.AA_ANALYSE, AAAnalyseTask),
)


def label_for(ps: ParameterSet, set_id: str | None = None,
              molecule: str | None = None) -> str:
    """Short human label of a parameter set: ``reference`` or its id (``set_id``, the id
    on the campaign's molecule, when given), with ``@molecule`` when given (the branches
    of a campaign of several molecules)."""
    label = "reference" if ps.id == OPLSAA_REFERENCE.id else (set_id or ps.id)
    return f"{label}@{molecule}" if molecule else label


def parameter_set_fireworks(
    spec: CampaignSpec, ps: ParameterSet, category: str = "cgflow", priority: int = 0,
    *, name_molecule: bool = False,
) -> list[Firework]:
    """The dependent Fireworks of one parameter set on the spec's ``molecule``, in order.

    ``priority`` is FireWorks' ``_priority`` (higher runs first): sets are prioritised in
    campaign order, so that the reference set and the early sets finish first.
    ``name_molecule`` puts the molecule's name into the label (a campaign of several).
    """
    set_id = spec.set_id(ps)
    label = label_for(ps, set_id, spec.molecule.name if name_molecule else None)
    task_params: dict[str, Any] = {
        "campaign": spec.name,
        "param_set": ps.model_dump(),
        "preset": spec.preset,
        "space": spec.space,
    }
    if not spec.molecule.is_default:
        task_params["molecule"] = spec.molecule.model_dump(mode="json")
    named = {SPEC_MOLECULE: spec.molecule.name} if (
        name_molecule or not spec.molecule.is_default) else {}
    if spec.preset_overrides:
        task_params["preset_overrides"] = spec.preset_overrides
    fws: list[Firework] = []
    for stage, task_cls in AA_STEPS:
        fw_spec = {
            "campaign": spec.name,
            "param_id": set_id,
            "label": label,
            SPEC_STAGE: stage.value,
            "_category": category,
            "_priority": priority,
            # FireWorks then gives the task its fw_id (stored with the AA run)
            "_add_launchpad_and_fw_id": True,
            **named,
        }
        fws.append(Firework(
            [task_cls(**task_params)],
            spec=fw_spec,
            name=f"{spec.name}:{label}:{stage}",
            parents=fws[-1:] or None,
        ))
    if spec.cg_stage:
        cg_params = dict(task_params, ibi=spec.ibi.model_dump())
        cg_params.pop("space", None)
        cg_params.pop("preset_overrides", None)
        base = {k: fws[-1].spec[k] for k in INHERITED_SPEC_KEYS if k in fws[-1].spec}
        first = iteration_firework(cg_params, base, IterationPlan(iteration=0))
        first.parents = [fws[-1]]
        fws.append(first)
        fws.append(Firework(
            [CGProductionTask(**cg_params)],
            spec=dict(base, **{SPEC_STAGE: Stage.CG_PRODUCTION.value}),
            name=f"{spec.name}:{label}:{Stage.CG_PRODUCTION.value}",
            parents=[first],
        ))
        if spec.friction.enabled:
            trial = friction_firework(dict(cg_params, friction=spec.friction.model_dump()),
                                      base, 1)
            trial.parents = [fws[-1]]
            fws.append(trial)
    return fws


def training_firework(spec: CampaignSpec, category: str = "cgflow",
                      parents: list[Firework] | None = None) -> Firework:
    """The campaign's final Firework: train the models after ``parents``, converged or
    not (fizzled parents allowed)."""
    return Firework(
        [TrainModelsTask(campaign=spec.name, preset=spec.preset, seed=spec.seed)],
        spec={"campaign": spec.name, "param_id": "", "label": "campaign",
              SPEC_STAGE: Stage.TRAIN.value, "_category": category,
              "_allow_fizzled_parents": True},
        name=f"{spec.name}:train-models", parents=parents)


def campaign_workflow(
    spec: CampaignSpec, sets: list[ParameterSet], category: str = "cgflow"
) -> Workflow:
    """The whole campaign as one Workflow (one independent branch per parameter set and
    molecule, :meth:`~cgflow.orchestration.campaign.CampaignSpec.branches`); a campaign
    of ``kind: synthetic`` is its batches of pairs
    (:func:`cgflow.orchestration.firetasks.synthetic.synthetic_workflow`)."""
    if spec.kind == "synthetic":
        return synthetic_workflow(spec, category)
    fws: list[Firework] = []
    leaves: list[Firework] = []
    branches = spec.branches(sets)
    for i, (one, ps) in enumerate(branches):
        branch = parameter_set_fireworks(one, ps, category, priority=len(branches) - i,
                                         name_molecule=spec.is_multi_molecule)
        fws.extend(branch)
        leaves.append(branch[-1])
    if spec.active is not None:
        # round 1 after the whole first batch; the rounds add the rest, training last
        fws.append(round_firework(spec, 1, [ps.id for ps in sets], category, leaves))
    elif spec.cg_stage:
        # the final training Firework: after every branch, converged or not
        fws.append(training_firework(spec, category, leaves))
    return Workflow(
        fws,
        name=f"cgflow:{spec.name}",
        metadata={
            "cgflow_campaign": spec.name,
            "n_sets": len(branches),
            "param_ids": [one.set_id(ps) for one, ps in branches],
            "molecules": [m.name for m in spec.campaign_molecules],
            "spec": spec.model_dump(mode="json"),
        },
    )
