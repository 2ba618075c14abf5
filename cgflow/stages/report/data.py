"""What the campaign report shows, read from the database: one :class:`SetReport` per set
(the per-set view of :func:`cgflow.db.views.campaign_sets`, its IBI history and
tolerances, its state and reason), the models' predictions on the campaign's own sets,
the closed-loop validations and an active campaign's rounds.

Nothing here writes; every read goes through :class:`cgflow.db.store.Store` and
:mod:`cgflow.db.views`. A set's IBI history is the ``metrics_history`` of its stored
potential (one entry per iteration); only sets whose IBI has not ended (no potential
yet) have their iterations read with :meth:`~cgflow.db.store.Store.ibi_iterations`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cgflow.db.documents import ValidationDoc
from cgflow.db.views import SetView, campaign_sets
from cgflow.errors import CgflowError, InvalidInputError

#: Experimental density of liquid 2,3,4-trimethylpentane, g/cm^3, by temperature in C
#: (CRC Handbook of Chemistry and Physics: 0.7191 at 20 C; about 0.715 at 25 C with the
#: thermal expansion of about -0.0009 g/cm^3/K).
EXPERIMENTAL_DENSITY_G_CM3 = {20.0: 0.7191, 25.0: 0.715}


@dataclass(frozen=True)
class IterationRow:
    """One IBI iteration: RDF deviation D, CG pressure and its deviation from the AA
    pressure (bar)."""

    iteration: int
    rdf_deviation: float | None
    pressure_bar: float | None
    pressure_deviation_bar: float | None


@dataclass(frozen=True)
class SetReport:
    """One set of the campaign as the report shows it.

    Attributes
    ----------
    view
        The joined documents (:class:`cgflow.db.views.SetView`).
    state
        ``done``, ``unconverged``, ``failed``, ``AA running``, ``IBI iteration n``,
        ``CG production``, ``waiting`` (or the campaign status' stage when it was given).
    reason
        Why a set failed or did not converge (empty otherwise).
    iterations
        The IBI history, by iteration.
    rdf_tolerance, pressure_tolerance_bar
        The set's convergence tolerances (the campaign's ``ibi`` section resolved for
        the set as its CG stage resolves it), when its AA run completed.
    """

    view: SetView
    state: str
    reason: str = ""
    iterations: tuple[IterationRow, ...] = ()
    rdf_tolerance: float | None = None
    pressure_tolerance_bar: float | None = None

    @property
    def label(self) -> str:
        """``reference`` or the parameter-set id."""
        return self.view.label

    @property
    def stored(self) -> bool:
        """Whether anything of the set is stored (else it has not started)."""
        v = self.view
        return bool(v.aa_run or v.potential or v.cg_run or self.iterations)

    @property
    def aa(self) -> Any:
        """The AA results (:class:`cgflow.db.documents.AAResults`), if completed."""
        run = self.view.aa_run
        return run.results if run is not None else None


@dataclass
class ModelReport:
    """The campaign's models: their status and metrics, and their predictions on the
    campaign's converged sets (``is_test``: held out of their training).

    ``alpha_*`` arrays are over the sets with a measured alpha; ``u_*`` over the grid
    points of the held-out sets (the training sets when none was held out), kJ/mol.
    """

    status: str
    message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    param_ids: list[str] = field(default_factory=list)
    alpha_observed: np.ndarray | None = None
    alpha_observed_err: np.ndarray | None = None
    alpha_predicted: np.ndarray | None = None
    alpha_std: np.ndarray | None = None
    is_test: np.ndarray | None = None
    u_ibi: np.ndarray | None = None
    u_predicted: np.ndarray | None = None
    u_r_nm: np.ndarray | None = None
    u_from_test: bool = False


@dataclass
class ReportData:
    """Everything :func:`cgflow.stages.report.write_report` puts on the page."""

    campaign: str
    sets: list[SetReport]
    models: ModelReport | None
    validations: list[ValidationDoc]
    spec: dict[str, Any]
    generated_utc: str
    #: the rounds of an active-learning campaign (ActiveRoundDoc), in order
    rounds: list[Any] = field(default_factory=list)


def _iteration_rows(history: list[Mapping[str, Any]]) -> tuple[IterationRow, ...]:
    return tuple(IterationRow(k, m.get("rdf_deviation"), m.get("pressure_bar"),
                              m.get("pressure_deviation_bar")) for k, m in enumerate(history))


def _tolerances(view: SetView, ibi: Any) -> tuple[float | None, float | None]:
    """The set's tolerances as its CG stage resolves them
    (:func:`cgflow.stages.cg.make_settings`)."""
    aa = view.aa_run.results if view.aa_run is not None else None
    if aa is None or ibi is None or view.preset is None:
        return (ibi.rdf_tolerance if ibi is not None else None), None
    from cgflow.presets import get_cg_preset
    from cgflow.stages.cg import make_settings, target_from_aa_results

    try:
        settings = make_settings(ibi, target_from_aa_results(aa, aa.temperature_k),
                                 get_cg_preset(view.preset))
    except (InvalidInputError, ValueError, IndexError):
        return ibi.rdf_tolerance, ibi.pressure_tolerance_bar
    return settings.rdf_tolerance, settings.pressure_tolerance_bar


def _state(view: SetView, cg_stage: bool, n_iterations: int) -> tuple[str, str]:
    aa, pot, cg = view.aa_run, view.potential, view.cg_run
    if aa is None:
        return ("waiting", "") if pot is None else ("done" if pot.converged else "unconverged",
                                                    "" if pot.converged else pot.reason)
    if aa.status == "failed":
        return "failed", f"all-atom run: {aa.error}"
    if aa.status == "running":
        return "AA running", ""
    if pot is None:
        if not cg_stage and n_iterations == 0:
            return "done", ""
        return f"IBI iteration {n_iterations}", ""
    if not pot.converged:
        return "unconverged", pot.reason
    if cg is None:
        return "CG production", ""
    if cg.status == "failed":
        return "failed", f"CG production: {cg.error}"
    if cg.status == "running":
        return "CG production", ""
    return "done", ""


def read_report_data(store: Any, campaign: str, *, spec: Mapping[str, Any] | None = None,
                     set_states: Mapping[str, tuple[str, str]] | None = None,
                     with_models: bool = True) -> ReportData:
    """Read what the report of ``campaign`` shows.

    Parameters
    ----------
    store
        A :class:`cgflow.db.store.Store`.
    campaign
        The campaign.
    spec
        The campaign's spec as stored with its workflow (its ``ibi`` section gives the
        tolerances, ``cg_stage`` whether IBI is to come); ``None``: IBI defaults.
    set_states
        param_id -> (stage, reason) of the campaign status
        (:func:`cgflow.orchestration.status.campaign_status`), when the campaign's
        Fireworks are in this database: it names the stage of sets under way and the
        reason of a failed Firework, and the sets that have not started (nothing stored
        yet) are listed too. Without it the state comes from the documents.
    with_models
        Whether to load the campaign's models and predict its sets (the parity plots).

    Raises
    ------
    InvalidInputError
        When the database has no set of ``campaign``.
    """
    from cgflow.ibi.settings import IBISettings

    spec = dict(spec or {})
    views = campaign_sets(store, campaign)
    if not views and not set_states:
        raise InvalidInputError(f"campaign {campaign!r}: no parameter sets in this database")
    try:
        ibi = IBISettings.model_validate(spec.get("ibi") or {})
    except ValueError:
        ibi = IBISettings()
    cg_stage = bool(spec.get("cg_stage", any(v.potential is not None for v in views)))
    sets = []
    for v in views:
        if v.preset is None and spec.get("preset"):  # nothing stored yet: the campaign's
            v = dataclasses.replace(v, preset=str(spec["preset"]))
        if v.potential is not None:
            rows = _iteration_rows(v.potential.metrics_history)
        elif v.aa_run is not None and v.aa_run.status == "completed" and v.preset and cg_stage:
            rows = tuple(IterationRow(d.iteration, d.metrics.get("rdf_deviation"),
                                      d.metrics.get("pressure_bar"),
                                      d.metrics.get("pressure_deviation_bar"))
                         for d in store.ibi_iterations(v.param_id, v.preset))
        else:
            rows = ()
        state, reason = _state(v, cg_stage, len(rows))
        if set_states and v.param_id in set_states:
            st, why = set_states[v.param_id]
            if st == "failed" or state not in ("done", "unconverged", "failed"):
                state, reason = st, (why or reason)
        rdf_tol, p_tol = _tolerances(v, ibi)
        sets.append(SetReport(v, state, reason, rows, rdf_tol, p_tol))
    known = {v.param_id for v in views}
    for pid, (st, why) in (set_states or {}).items():  # queued sets: nothing stored yet
        if pid not in known:
            sets.append(SetReport(SetView(param_id=pid, preset=spec.get("preset")), st, why,
                                  (), ibi.rdf_tolerance, None))
    models = read_models(store, campaign, sets) if with_models else None
    return ReportData(campaign=campaign, sets=sets, models=models,
                      validations=store.validations(models_campaign=campaign), spec=spec,
                      generated_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                      rounds=store.active_rounds(campaign))


def read_models(store: Any, campaign: str, sets: list[SetReport]) -> ModelReport | None:
    """The campaign's models and their predictions on its converged sets; ``None`` when
    it never trained."""
    from cgflow.stages.train import STATUS_MODEL, load_campaign_models

    status = store.get_model(campaign, STATUS_MODEL)
    if status is None:
        return None
    meta = dict(status.metadata)
    if meta.get("status") != "trained":
        return ModelReport(status=str(meta.get("status", "unknown")),
                           message=str(meta.get("message", "")), metadata=meta)
    try:
        models = load_campaign_models(store, campaign)
    except CgflowError as exc:
        return ModelReport(status="unreadable", message=str(exc), metadata=meta)
    structure_doc = store.get_model(campaign, "structure")
    if structure_doc is not None:
        meta = {**dict(structure_doc.metadata), **meta}
    trained = set(models.metadata.get("train_param_ids") or [])
    rows = [s for s in sets if s.view.converged and s.view.params is not None]
    out = ModelReport(status="trained", message=str(meta.get("message", "")), metadata=meta)
    if not rows:
        return out
    from cgflow.params import parameter_set_from_mapping

    X = np.array([parameter_set_from_mapping(s.view.params).to_array() for s in rows])
    is_test = np.array([s.view.param_id not in trained for s in rows])
    with_alpha = np.array([s.view.alpha is not None for s in rows])
    if with_alpha.any():
        mean, std = models.alpha.predict(X[with_alpha], return_std=True)
        out.alpha_observed = np.array([s.view.alpha for s, ok in zip(rows, with_alpha,
                                                                     strict=True) if ok])
        out.alpha_observed_err = np.array([s.view.alpha_err or 0.0 for s, ok in
                                           zip(rows, with_alpha, strict=True) if ok])
        out.alpha_predicted, out.alpha_std = np.asarray(mean), np.asarray(std)
        out.is_test = is_test[with_alpha]
        out.param_ids = [s.view.param_id for s, ok in zip(rows, with_alpha, strict=True) if ok]
    pick = is_test if is_test.any() else ~is_test
    r = np.asarray(models.structure.r_nm, float)
    u_pred = np.asarray(models.structure.predict(X[pick]), float)
    u_ibi = np.array([np.interp(r, s.view.potential.potential.r_nm,
                                s.view.potential.potential.u_kj_mol)
                      for s, p in zip(rows, pick, strict=True) if p])
    out.u_r_nm, out.u_predicted, out.u_ibi = r, u_pred, u_ibi
    out.u_from_test = bool(is_test.any())
    return out
