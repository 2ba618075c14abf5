"""One round of an active-learning campaign: choose the next sets from the stored results.

An active campaign (``active:`` in its spec, :class:`ActiveSettings`) runs a space-filling
first batch, then rounds. After each batch, :func:`run_round` reads what the campaign has
stored so far (through :func:`cgflow.stages.train.aa_target_records` and
:func:`cgflow.stages.train.training_records`, i.e. :func:`cgflow.db.views.campaign_sets`:
every set with a completed all-atom run gives its parameters and target RDF g_t, every
converged set with a CG production its alpha), draws candidates from the campaign's
parameter space (:meth:`cgflow.params.ParameterSpace.sample`, a seed derived from the
campaign's seed, the acquisition seed and the round), asks
:func:`cgflow.ml.active_learning.select_batch` for the batch, and stores the round as one
:class:`cgflow.db.documents.ActiveRoundDoc`: the training set's ids, the inputs' hash, the
:class:`~cgflow.ml.active_learning.BatchSelection` (criterion, model state, score of every
choice) and the chosen sets. The document is written once (an insert, atomic); a round
whose document exists is not chosen again: :func:`run_round` returns the stored document,
so a rerun round step (a killed launcher) adds the same sets.

A round stops the campaign instead of choosing when the budget of sets or ``max_rounds``
is reached, when the largest predicted standard deviation of log(alpha) among the
candidates is below ``target_alpha_std``, or when too few sets have results to choose
from (fewer than :data:`MIN_TRAIN_SETS`, or too few for the criterion's model: the error
of :func:`~cgflow.ml.active_learning.select_batch`); the reason is stored.
:func:`replay_round` recomputes a stored round's choice from the stored results of its
training sets and says whether it is the same.

Nothing here knows of FireWorks: the round step
(:class:`cgflow.orchestration.firetasks.active.ActiveRoundTask`) turns the document into
new branches.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cgflow.db.documents import ActiveRoundDoc
from cgflow.db.store import Store
from cgflow.errors import InvalidInputError
from cgflow.ml.active_learning import AcquisitionSettings, BatchSelection, select_batch
from cgflow.params import FIELDS, ParameterSet, ParameterSpace, get_space
from cgflow.stages.train import aa_target_records, common_grid, training_records

#: Fewest sets with all-atom results a round chooses from (fewer: the round stops the
#: campaign, saying so).
MIN_TRAIN_SETS = 2
#: Criteria that need alpha, i.e. the CG stage.
ALPHA_CRITERIA = ("alpha_std", "combined")


class ActiveSettings(BaseModel):
    """The ``active:`` section of a campaign spec: rounds chosen by the models.

    ``initial_sets`` are sampled from the space as ``n_sets`` are in a plain campaign
    (``sampling``, ``seed``); then each round adds up to ``batch_size`` sets chosen by
    :func:`cgflow.ml.active_learning.select_batch`, for at most ``max_rounds`` rounds and
    until the campaign holds ``budget_sets`` sets (the reference and explicit sets
    included), or until the largest predicted standard deviation of log(alpha) among the
    candidates (about the relative std of alpha, :func:`max_alpha_std`) is below
    ``target_alpha_std``. ``acquisition`` is
    :class:`~cgflow.ml.active_learning.AcquisitionSettings` (criterion, number of
    candidates, diversity, seed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_sets: int = Field(ge=1, strict=True)
    batch_size: int = Field(ge=1, strict=True)
    max_rounds: int = Field(ge=1, strict=True)
    #: at most the campaign spec's MAX_N_SETS (checked by the spec)
    budget_sets: int = Field(ge=1, strict=True)
    target_alpha_std: float | None = Field(default=None, gt=0)
    acquisition: AcquisitionSettings = Field(default_factory=AcquisitionSettings)


@dataclass
class RoundInputs:
    """What a round chooses from: the training sets and the candidates.

    ``X`` (n, 19) GROMACS units in :data:`cgflow.params.FIELDS` order; ``alpha`` (n,)
    with NaN where a set has no alpha; ``g`` (n, n_r) the all-atom target RDFs on
    ``r_nm`` (nm); ``candidates`` the sampled parameter sets.
    """

    param_ids: list[str]
    X: np.ndarray
    alpha: np.ndarray
    g: np.ndarray | None
    r_nm: np.ndarray | None
    candidates: list[ParameterSet]

    @property
    def x_candidates(self) -> np.ndarray:
        """(n_candidates, 19) of the candidates."""
        return np.array([c.to_array() for c in self.candidates]).reshape(-1, len(FIELDS))

    def sha256(self) -> str:
        """Hash of the arrays the choice is made from (a replay checks it)."""
        h = hashlib.sha256()
        for a in (self.X, self.alpha, self.g, self.x_candidates):
            if a is not None:
                arr = np.ascontiguousarray(a, dtype=np.float64)
                h.update(str(arr.shape).encode())
                h.update(arr.tobytes())
        return h.hexdigest()


def candidate_seed(campaign_seed: int, acquisition_seed: int, round_index: int) -> int:
    """The sampling seed of a round's candidates (reproducible, different per round and
    from the initial batch's)."""
    seq = np.random.SeedSequence([campaign_seed, acquisition_seed, round_index, 13])
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def training_inputs(store: Store, campaign: str, preset: str,
                    only: list[str] | None = None) -> tuple[list[str], np.ndarray,
                                                            np.ndarray, np.ndarray | None,
                                                            np.ndarray | None]:
    """The stored results of ``campaign`` a round learns from.

    Every set with a completed all-atom run (its g_t), alpha where a converged CG run
    measured it (else NaN). ``only``: just these param ids, in this order (a replay).

    Returns
    -------
    param_ids, X, alpha, g, r_nm
    """
    from cgflow.ml.rdf_model import AATargets

    aa = aa_target_records(store, campaign, preset)
    alpha_of = {r["param_id"]: r.get("alpha") for r in training_records(store, campaign, preset)}
    if only is not None:
        by_id = {r["param_id"]: r for r in aa}
        missing = [p for p in only if p not in by_id]
        if missing:
            raise InvalidInputError(f"campaign {campaign!r}: no completed all-atom run of "
                                    f"training set(s) {missing} (preset {preset!r})")
        aa = [by_id[p] for p in only]
    ids = [r["param_id"] for r in aa]
    if not aa:
        return ids, np.zeros((0, len(FIELDS))), np.zeros(0), None, None
    r_nm = common_grid(aa)
    targets = AATargets.from_records(aa, r_nm, campaign=campaign)
    alpha = np.array([np.nan if alpha_of.get(p) is None else float(alpha_of[p]) for p in ids])
    return ids, targets.X, alpha, targets.g, r_nm


def round_inputs(store: Store, campaign: str, preset: str, space: ParameterSpace,
                 sampling: Literal["lhs", "uniform"], seed: int, n_candidates: int,
                 exclude: set[str], only: list[str] | None = None) -> RoundInputs:
    """The training data (:func:`training_inputs`) and ``n_candidates`` candidates drawn
    from ``space`` with ``seed``, minus the sets in ``exclude`` (already in the campaign)."""
    ids, X, alpha, g, r_nm = training_inputs(store, campaign, preset, only)
    cands = [c for c in space.sample(n_candidates, seed, sampling) if c.id not in exclude]
    return RoundInputs(ids, X, alpha, g, r_nm, cands)


def max_alpha_std(inputs: RoundInputs, settings: AcquisitionSettings,
                  bounds: tuple[np.ndarray, np.ndarray]) -> float | None:
    """The largest predicted standard deviation of log(alpha) (about the relative std of
    alpha) among the candidates: the ``alpha_std`` of the first choice of
    :func:`~cgflow.ml.active_learning.select_batch` with criterion ``alpha_std`` and no
    diversity factor (an extra fit of the alpha model, deterministic like the round's);
    ``None`` with fewer than 2 sets with alpha."""
    if int(np.isfinite(inputs.alpha).sum()) < 2:
        return None
    probe = settings.model_copy(update={"criterion": "alpha_std", "diversity_weight": 0.0,
                                        "batch_rule": "distance"})
    top = select_batch(inputs.X, inputs.alpha, None, inputs.x_candidates, 1, probe,
                       bounds=bounds)
    return float(top.choices[0].components["alpha_std"])


def run_round(store: Store, *, campaign: str, preset: str, space: ParameterSpace,
              sampling: Literal["lhs", "uniform"], campaign_seed: int, round_index: int,
              active: ActiveSettings, initial_param_ids: list[str]) -> ActiveRoundDoc:
    """Choose round ``round_index`` (1, 2, ...) of ``campaign`` and store it; or return
    the round's stored document if it exists (nothing is chosen again).

    Parameters
    ----------
    initial_param_ids
        The sets of the campaign's first batch (reference, explicit and sampled sets).

    Returns
    -------
    ActiveRoundDoc
        ``status`` ``chosen`` (``chosen`` lists the new sets, ``last`` whether the
        campaign ends after them) or ``stopped`` (``reason``).
    """
    if round_index < 1:
        raise InvalidInputError(f"field 'round': must be >= 1, got {round_index!r}")
    done = store.get_active_round(campaign, round_index)
    if done is not None:
        return done
    in_campaign = list(dict.fromkeys(initial_param_ids))
    for k in range(1, round_index):
        earlier = store.get_active_round(campaign, k)
        if earlier is None:
            raise InvalidInputError(f"campaign {campaign!r}: round {round_index} needs the "
                                    f"document of round {k}, which is not stored")
        in_campaign += [c.param_id for c in earlier.chosen if c.param_id not in in_campaign]
    acq = active.acquisition
    seed = candidate_seed(campaign_seed, acq.seed, round_index)
    base: dict[str, Any] = {"campaign": campaign, "round": round_index, "preset": preset,
                            "candidate_seed": seed, "campaign_param_ids": in_campaign,
                            "space": space.name, "sampling": sampling}
    remaining = active.budget_sets - len(in_campaign)
    if round_index > active.max_rounds or remaining <= 0:
        why = (f"max_rounds = {active.max_rounds} reached" if round_index > active.max_rounds
               else f"budget of {active.budget_sets} sets reached")
        return store.insert_active_round(dict(base, status="stopped", reason=why))
    inputs = round_inputs(store, campaign, preset, space, sampling, seed, acq.n_candidates,
                          set(in_campaign))
    base.update(train_param_ids=inputs.param_ids, inputs_sha256=inputs.sha256(),
                n_candidates=len(inputs.candidates),
                n_train_alpha=int(np.isfinite(inputs.alpha).sum()))
    # (combined leaves out a route with too few values: select_batch says so in its state)
    if len(inputs.param_ids) < MIN_TRAIN_SETS or (
            acq.criterion == "alpha_std" and base["n_train_alpha"] < MIN_TRAIN_SETS):
        what = "alpha" if len(inputs.param_ids) >= MIN_TRAIN_SETS else "all-atom results"
        return store.insert_active_round(dict(
            base, status="stopped",
            reason=(f"too few sets with {what} to choose from ({base['n_train_alpha']} with "
                    f"alpha, {len(inputs.param_ids)} with all-atom results; at least "
                    f"{MIN_TRAIN_SETS} needed)")))
    n = min(active.batch_size, remaining)
    bounds = (space.lows(), space.highs())
    try:
        selection = select_batch(inputs.X, inputs.alpha, inputs.g, inputs.x_candidates, n,
                                 acq, bounds=bounds)
    except InvalidInputError as exc:  # e.g. too few RDFs for the structure model
        return store.insert_active_round(dict(
            base, status="stopped", reason=f"the models cannot choose: {exc}"))
    top_std = max_alpha_std(inputs, acq, bounds)
    base.update(selection=selection.model_dump(mode="json"), max_alpha_std=top_std)
    if (active.target_alpha_std is not None and top_std is not None
            and top_std < active.target_alpha_std):
        return store.insert_active_round(dict(
            base, status="stopped",
            reason=(f"target uncertainty reached: largest predicted std of log(alpha) "
                    f"{top_std:.4g} < target_alpha_std {active.target_alpha_std:g}")))
    chosen = [inputs.candidates[c.candidate_index] for c in selection.choices]
    n_after = len(in_campaign) + len(chosen)
    last = round_index >= active.max_rounds or n_after >= active.budget_sets
    return store.insert_active_round(dict(
        base, status="chosen", last=last,
        chosen=[{"param_id": ps.id, "params": ps.model_dump()} for ps in chosen]))


@dataclass
class Replay:
    """A stored round recomputed: ``same`` when the inputs' hash and the chosen sets agree."""

    round: ActiveRoundDoc
    selection: BatchSelection
    inputs_match: bool
    chosen_match: bool

    @property
    def same(self) -> bool:
        """The replay chose what the round chose, from the same inputs."""
        return self.inputs_match and self.chosen_match


def replay_round(store: Store, campaign: str, round_index: int) -> Replay:
    """Recompute the choice of a stored round from the stored results of its training
    sets, and its candidates from its space, sampling and seed (see the module
    docstring).

    Raises
    ------
    InvalidInputError
        No such round, or a round that stopped before choosing.
    """
    doc = store.get_active_round(campaign, round_index)
    if doc is None:
        raise InvalidInputError(f"campaign {campaign!r}: no stored round {round_index}")
    if doc.selection is None:
        raise InvalidInputError(f"campaign {campaign!r}: round {round_index} chose nothing "
                                f"({doc.reason})")
    settings = doc.selection.settings
    exclude = set(doc.campaign_param_ids)
    space = get_space(doc.space)
    inputs = round_inputs(store, campaign, doc.preset, space, doc.sampling, doc.candidate_seed,
                          settings.n_candidates, exclude, only=list(doc.train_param_ids))
    selection = select_batch(inputs.X, inputs.alpha, inputs.g, inputs.x_candidates,
                             len(doc.selection.choices), settings,
                             bounds=(space.lows(), space.highs()))
    chosen = [inputs.candidates[c.candidate_index].id for c in selection.choices]
    stored = [c.param_id for c in doc.chosen] or [
        inputs.candidates[c.candidate_index].id for c in doc.selection.choices]
    return Replay(doc, selection, inputs.sha256() == doc.inputs_sha256, chosen == stored)
