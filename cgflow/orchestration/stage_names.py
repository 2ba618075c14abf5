"""The names a campaign's Fireworks carry, in one place.

Every Firework's spec holds ``campaign``, ``param_id``, ``label`` and ``cgflow_stage``
(one of :class:`Stage`); an IBI iteration also holds ``ibi_iteration``, a friction
trial ``friction_trial``, an active-learning round step ``active_round``. The workflow
builder writes them, the Firetasks copy them into detours, and the status and progress
views read them.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """The stage a Firework runs (its ``spec.cgflow_stage``)."""

    AA_BUILD = "aa-build"
    AA_EQUILIBRATE = "aa-equilibrate"
    AA_PRODUCE = "aa-produce"
    AA_ANALYSE = "aa-analyse"
    CG_IBI = "cg-ibi"
    CG_PRODUCTION = "cg-production"
    CG_FRICTION = "cg-friction"
    TRAIN = "train"
    ACTIVE_ROUND = "active-round"
    SYNTHETIC_BATCH = "synthetic-batch"
    TRAIN_INVERSE = "train-inverse"

    @property
    def is_all_atom(self) -> bool:
        """True for the all-atom stages."""
        return self.value.startswith("aa-")


#: The all-atom stages of a parameter set, in order.
AA_STAGES = (Stage.AA_BUILD, Stage.AA_EQUILIBRATE, Stage.AA_PRODUCE, Stage.AA_ANALYSE)

#: Spec keys of a Firework (``fw.spec[...]``).
SPEC_CAMPAIGN = "campaign"
SPEC_PARAM_ID = "param_id"
SPEC_LABEL = "label"
SPEC_STAGE = "cgflow_stage"
SPEC_IBI_ITERATION = "ibi_iteration"
SPEC_FRICTION_TRIAL = "friction_trial"
SPEC_ACTIVE_ROUND = "active_round"
#: The molecule's name (Fireworks of a molecule other than the default, and of every
#: branch of a campaign of several molecules).
SPEC_MOLECULE = "molecule"
#: The spec keys a detour copies from the Firework that adds it (those it has).
INHERITED_SPEC_KEYS = (SPEC_CAMPAIGN, SPEC_PARAM_ID, SPEC_LABEL, SPEC_MOLECULE, "_category",
                       "_priority")
