"""Read-only views that join cgflow's stored documents: one :class:`SetView` per set.

A *set* of a campaign is a parameter set run with a preset: its
:class:`~cgflow.db.documents.ParameterSetDoc`, and the
:class:`~cgflow.db.documents.AARunDoc`, :class:`~cgflow.db.documents.PotentialDoc`,
:class:`~cgflow.db.documents.CGRunDoc` and :class:`~cgflow.db.documents.FrictionDoc`
stored for that parameter set and preset.
:func:`campaign_sets` is the one place where these documents are joined; the results
table (``cgflow campaign results``), the dataset export (``cgflow dataset export``), the
training data (:func:`cgflow.stages.train.training_records`) and ``cgflow potentials``
all read it, so they agree on which sets a campaign has.

Reused sets
-----------
A campaign reuses what an earlier campaign already ran for the same parameter set and
preset: its Fireworks skip the work, the AA run gets the campaign added to its
``campaigns``, and the potential and CG run keep the earlier campaign's name. The sets
of a campaign are therefore those of :meth:`~cgflow.db.store.Store.param_ids` (its
parameter sets, its own and reused alike), and their documents are looked up by
parameter set and preset, whichever campaign made them.

Which presets
-------------
With ``preset`` given, that preset. Without it, the presets the campaign ran the set
with: those of the AA runs whose ``campaigns`` name it and of the potentials and CG runs
it made. A set for which the campaign has no such document (results stored without the
AA stage, e.g. imported or synthetic ones) has every preset stored for it. Without a
campaign, every preset stored for the set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cgflow.db.documents import AARunDoc, CGRunDoc, FrictionDoc, ParameterSetDoc, PotentialDoc
from cgflow.molecule.registry import DEFAULT_MOLECULE
from cgflow.molecule.structure import TRIMETHYLPENTANE_SMILES
from cgflow.params import OPLSAA_REFERENCE

#: Largest ``$in`` list of one query (a long ``$in`` is slow on the embedded server).
QUERY_CHUNK = 250

#: Label of the OPLS-AA reference parameter set in tables.
REFERENCE_LABEL = "reference"


@dataclass(frozen=True, slots=True)
class SetView:
    """One parameter set run with one preset, and what is stored for it.

    Attributes
    ----------
    param_id
        The parameter-set id.
    preset
        The preset name; ``None`` for a set with nothing stored (no preset asked for).
    parameter_set
        Its parameter-set document (``None`` only for results whose parameter set is
        not in the database, which only a view of every set can show).
    aa_run, potential, cg_run, friction
        The AA run, the IBI potential, the CG production run and the friction
        calibration of ``param_id`` with ``preset``, whichever campaign made them, or
        ``None``.
    """

    param_id: str
    preset: str | None
    parameter_set: ParameterSetDoc | None = None
    aa_run: AARunDoc | None = None
    potential: PotentialDoc | None = None
    cg_run: CGRunDoc | None = None
    friction: FrictionDoc | None = None

    @property
    def label(self) -> str:
        """``"reference"`` for the OPLS-AA reference set (on any molecule), else the
        parameter-set id."""
        if self.param_id == OPLSAA_REFERENCE.id:
            return REFERENCE_LABEL
        ps = self.parameter_set
        if ps is not None and ps.molecule is not None and ps.parameter_set() == OPLSAA_REFERENCE:
            return REFERENCE_LABEL
        return self.param_id

    @property
    def molecule(self) -> str:
        """Name of the molecule the set runs on, from its parameter-set document or its
        AA run (2,3,4-trimethylpentane, the default, when they name none)."""
        for doc in (self.parameter_set, self.aa_run):
            m = getattr(doc, "molecule", None)
            if m is not None:
                return m.name
        return DEFAULT_MOLECULE

    @property
    def molecule_smiles(self) -> str:
        """Canonical SMILES of the molecule the set runs on (that of the default when its
        documents name none)."""
        for doc in (self.parameter_set, self.aa_run):
            m = getattr(doc, "molecule", None)
            if m is not None:
                return m.smiles
        return TRIMETHYLPENTANE_SMILES

    @property
    def key(self) -> str:
        """``<param_id>-<preset>`` (file stem of the set's exported files)."""
        return f"{self.param_id}-{self.preset}"

    @property
    def params(self) -> dict[str, float] | None:
        """The 19 parameters (GROMACS units), if the parameter set is stored."""
        return dict(self.parameter_set.params) if self.parameter_set is not None else None

    @property
    def converged(self) -> bool | None:
        """Whether IBI converged; ``None`` without a potential."""
        return self.potential.converged if self.potential is not None else None

    @property
    def best_metrics(self) -> dict[str, float | None]:
        """The metrics of the IBI iteration whose potential was kept.

        Those of ``best_iteration`` when it indexes ``metrics_history``, else (no best
        iteration recorded, or one beyond the history) those of the last iteration;
        ``{}`` without a potential or history.
        """
        pot = self.potential
        if pot is None or not pot.metrics_history:
            return {}
        hist = pot.metrics_history
        best = pot.best_iteration
        return dict(hist[best] if best is not None and best < len(hist) else hist[-1])

    @property
    def alpha(self) -> float | None:
        """The acceleration factor D_CG / D_AA of the CG run, if measured."""
        cg = self.cg_run
        return cg.alpha.mean if cg is not None and cg.alpha is not None else None

    @property
    def alpha_err(self) -> float | None:
        """The standard error of :attr:`alpha`, if known."""
        cg = self.cg_run
        return cg.alpha.err if cg is not None and cg.alpha is not None else None

    @property
    def gamma(self) -> float | None:
        """The calibrated friction gamma (1/ps) of a converged calibration, else None."""
        f = self.friction
        return f.gamma_per_ps if f is not None and f.converged else None

    @property
    def gamma_err(self) -> float | None:
        """The uncertainty of :attr:`gamma`, if known."""
        f = self.friction
        return (f.friction_per_ps.err if f is not None and f.converged
                and f.friction_per_ps is not None else None)


def chunks(ids: Sequence[str], size: int | None = None) -> Iterator[list[str]]:
    """``ids`` in consecutive lists of at most ``size`` (default :data:`QUERY_CHUNK`), for
    ``$in`` queries."""
    size = size or QUERY_CHUNK
    for k in range(0, len(ids), size):
        yield list(ids[k:k + size])


def campaign_sets(store: Any, campaign: str | None = None, preset: str | None = None,
                  converged: bool | None = None) -> list[SetView]:
    """The sets of ``campaign``, its own and reused alike (see the module docstring).

    Parameters
    ----------
    store
        A :class:`cgflow.db.store.Store`.
    campaign
        The campaign; ``None``: every parameter set in the database (and any stored
        result whose parameter set is missing).
    preset
        Only this preset. A parameter set with nothing stored for it still gets a view
        (all documents ``None``), unless ``converged`` is given.
    converged
        Only sets whose potential has this ``converged`` (so only sets with a
        potential).

    Returns
    -------
    list of SetView
        In parameter-set order (oldest first), a parameter set's presets in the order
        their first document was stored; a parameter set without any stored result has
        one view (preset ``preset``).
    """
    sets = store.parameter_sets(campaign=campaign)
    if campaign is None:
        pots = store.potentials(converged=converged)
        if converged is None:
            aa_runs = store.aa_runs(preset=preset)
            cg_runs = store.cg_runs()
            frictions = store.frictions()
        else:
            ids = sorted({p.param_id for p in pots})
            aa_runs = _chunked(ids, lambda c: store.aa_runs(preset=preset, param_ids=c))
            cg_runs = _chunked(ids, lambda c: store.cg_runs(param_ids=c))
            frictions = _chunked(ids, lambda c: store.frictions(param_ids=c))
    else:
        ids = [s.param_id for s in sets]
        pots = _chunked(ids, lambda c: store.potentials(converged=converged, param_ids=c))
        if converged is not None:  # the other documents only of sets that can be shown
            with_pot = {p.param_id for p in pots}
            ids = [i for i in ids if i in with_pot]
        aa_runs = _chunked(ids, lambda c: store.aa_runs(preset=preset, param_ids=c))
        cg_runs = _chunked(ids, lambda c: store.cg_runs(param_ids=c))
        frictions = _chunked(ids, lambda c: store.frictions(param_ids=c))
    if preset is not None:
        pots = [p for p in pots if p.preset == preset]
        cg_runs = [c for c in cg_runs if c.preset == preset]
        frictions = [f for f in frictions if f.preset == preset]

    aa_by = {(r.param_id, r.preset): r for r in aa_runs}
    pot_by = {(p.param_id, p.preset): p for p in pots}
    cg_by = {(c.param_id, c.preset): c for c in cg_runs}
    friction_by = {(f.param_id, f.preset): f for f in frictions}
    first_stored: dict[str, dict[str, datetime]] = defaultdict(dict)  # param_id, preset
    own: dict[str, set[str]] = defaultdict(set)  # presets the campaign ran a set with
    for d in [*aa_runs, *pots, *cg_runs]:
        seen = first_stored[d.param_id]
        seen[d.preset] = min(seen.get(d.preset, d.created_at), d.created_at)
        made_by = d.campaigns if isinstance(d, AARunDoc) else [d.campaign]
        if campaign is not None and campaign in made_by:
            own[d.param_id].add(d.preset)

    by_id = {s.param_id: s for s in sets}
    order = [s.param_id for s in sets]
    if campaign is None:  # results whose parameter set is not stored, oldest first
        orphans = {pid: min(t.values()) for pid, t in first_stored.items() if pid not in by_id}
        order += sorted(orphans, key=lambda pid: (orphans[pid], pid))

    views = []
    for pid in order:
        stored = first_stored.get(pid, {})
        if preset is not None:
            presets: list[str | None] = [preset]
        else:
            chosen = own.get(pid) or set(stored)
            presets = [*sorted(chosen, key=lambda p: (stored[p], p))] or [None]
        for name in presets:
            key = (pid, name or "")
            view = SetView(param_id=pid, preset=name, parameter_set=by_id.get(pid),
                           aa_run=aa_by.get(key), potential=pot_by.get(key),
                           cg_run=cg_by.get(key), friction=friction_by.get(key))
            if converged is None or (view.potential is not None
                                     and view.potential.converged == converged):
                views.append(view)
    return views


def one_per_parameter_set(views: Iterable[SetView]) -> list[SetView]:
    """One view per parameter set, in first-seen order: of a parameter set run with
    several presets, the one whose AA run completed (else one with an AA run, else one
    with a potential, else the first)."""
    best: dict[str, SetView] = {}
    for v in views:
        cur = best.get(v.param_id)
        if cur is None or _completeness(v) > _completeness(cur):
            best[v.param_id] = v
    return list(best.values())


def _completeness(view: SetView) -> tuple[bool, bool, bool]:
    aa = view.aa_run
    return (aa is not None and aa.status == "completed", aa is not None,
            view.potential is not None)


def _chunked(ids: Sequence[str], query: Callable[[list[str]], list[Any]]) -> list[Any]:
    out: list[Any] = []
    for chunk in chunks(ids):
        out += query(chunk)
    return out
