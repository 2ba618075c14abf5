"""What the IBI loop should do next: converge, continue, correct itself or give up.

The IBI loop runs one iteration per step (one Firework); after each iteration the
orchestration asks :func:`assess_history` (or an :class:`IBIMonitor`) for an
:class:`IBIDecision` from the metrics of all iterations so far. Everything here is pure
(no FireWorks, no Custodian); :func:`read_history` and :func:`write_decision` are the file
protocol of :class:`cgflow.jobs.ibi.IBIConvergenceHandler`, the same decision as a
Custodian error handler that reads ``ibi_history.json`` from an iteration's directory
and writes ``ibi_decision.json``.

Convergence and the score
-------------------------
An iteration has converged when ``rdf_deviation < rdf_tolerance`` and
``|pressure_deviation_bar| < pressure_tolerance_bar`` (the RDF alone when
``pressure_tolerance_bar`` is None), as :attr:`cgflow.ibi.settings.IterationResult.converged`.
Progress is judged by one number per iteration, its *score* (lower is better)::

    score = rdf_deviation / rdf_tolerance + |pressure_deviation_bar| / pressure_tolerance_bar

(the RDF term alone without pressure tolerance). The *best* iteration is the first
converged one, else the one with the lowest score (the earliest on ties); its potential
is the parameter set's IBI potential.

Diagnoses and corrections
-------------------------
Only the iterations since the last correction (the current *segment*) are diagnosed, so
that a correction gets time to act. With ``k = window`` (default 3):

=============  ==================================================  ============================
diagnosis      recognised when                                     correction
=============  ==================================================  ============================
divergence     the score rose at each of the last ``k - 1`` steps  halve the update factor
               and ends above ``divergence_factor`` (1.5) times    (``damping``) and restart
               the best score                                      from the best iteration's
                                                                   potential
oscillation    over the last ``oscillation_window`` (6) scores     the same as divergence
               the differences change sign at least
               ``min_sign_changes`` (3) times, and the best score
               of the window's second half does not improve on
               its first half by more than
               ``stagnation_improvement`` (5 %)
stagnation     none of the last ``k`` scores improves on the best  double the sampling time
               score before them by more than                      (``sampling_growth``) up to
               ``stagnation_improvement`` (5 %)                    ``max_sampling_factor`` (4)
                                                                   times the first iteration's
=============  ==================================================  ============================

Divergence takes precedence over oscillation, oscillation over stagnation. When the
update factor cannot be damped any further (below ``min_update_factor``, 0.05) a
divergence or oscillation lengthens the sampling instead (noisy RDFs make the updates
erratic); when no correction is possible, or ``max_corrections`` (4) corrections were
already applied, the parameter set ends *unconverged* with the diagnosis as the reason.
After ``max_iterations`` iterations without convergence it also ends unconverged.

Corrections are counted from the history itself, so the decision depends on nothing
but the history and the settings. An iteration that ran under a correction should carry
the decision's diagnosis in ``correction`` (:meth:`IBIDecision.next_metrics` gives the
fields to record); when no entry of the history sets ``correction`` and
``infer_corrections`` is on, corrections are inferred instead: an iteration that ran
with a smaller update factor or a longer sampling time than the one before it, or that
restarted from an earlier iteration's potential (``restarted_from``), marks one. Loops
that adapt the update factor on their own (``IBISettings.adaptive_factor``) must set
``correction`` and turn ``infer_corrections`` off (:meth:`IBIMonitorSettings.from_ibi_spec`
does), or their own reductions would count as corrections.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cgflow.errors import InvalidInputError, format_validation_error

HISTORY_FILE = "ibi_history.json"
DECISION_FILE = "ibi_decision.json"

Diagnosis = Literal["none", "converged", "divergence", "oscillation", "stagnation",
                    "max_iterations"]


class IterationMetrics(BaseModel):
    """Metrics of one IBI iteration.

    Attributes
    ----------
    iteration
        Index of the iteration (0 for the initial potential).
    rdf_deviation
        :func:`cgflow.ibi.metrics.rdf_deviation` of the iteration's CG RDF (>= 0).
    pressure_deviation_bar
        CG pressure minus the target pressure, bar.
    update_factor
        Update factor used by this iteration's potential update (> 0).
    sampling_ps
        Length of this iteration's CG sampling run, ps (> 0).
    restarted_from
        Iteration whose potential this iteration started from, when it was not the
        previous iteration's update (a restart from the best potential); else None.
    correction
        Diagnosis of the correction this iteration ran under (``"divergence"``,
        ``"oscillation"`` or ``"stagnation"``), else None.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    iteration: int = Field(ge=0)
    rdf_deviation: float = Field(ge=0)
    pressure_deviation_bar: float
    update_factor: float = Field(gt=0)
    sampling_ps: float = Field(gt=0)
    restarted_from: int | None = Field(default=None, ge=0)
    correction: Literal["divergence", "oscillation", "stagnation"] | None = None

    @field_validator("rdf_deviation", "pressure_deviation_bar", "update_factor", "sampling_ps")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError(f"must be finite, got {v!r}")
        return v

    @classmethod
    def from_result(cls, result: Any, sampling_ps: float, *, restarted_from: int | None = None,
                    correction: str | None = None) -> IterationMetrics:
        """Metrics of an :class:`cgflow.ibi.settings.IterationResult` (its ``iteration``,
        ``rdf_deviation``, ``pressure_deviation_bar`` and ``factor``) sampled for
        ``sampling_ps``.

        Raises
        ------
        InvalidInputError
            Naming a field whose value is invalid.
        """
        values = {"iteration": result.iteration, "rdf_deviation": result.rdf_deviation,
                  "pressure_deviation_bar": result.pressure_deviation_bar,
                  "update_factor": result.factor, "sampling_ps": sampling_ps,
                  "restarted_from": restarted_from, "correction": correction}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidInputError(format_validation_error(exc, "IBI iteration metrics")) \
                from None


class MonitorThresholds(BaseModel):
    """Thresholds of the monitor's diagnoses and corrections (see the module docstring);
    the ``monitor:`` part of a campaign's ``ibi:`` section
    (:attr:`cgflow.ibi.settings.IBISettings.monitor`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: k: iterations looked at for divergence (k - 1 rises) and stagnation.
    window: int = Field(default=3, ge=2)
    divergence_factor: float = Field(default=1.5, gt=1)
    oscillation_window: int = Field(default=6, ge=4)
    min_sign_changes: int = Field(default=3, ge=2)
    #: relative improvement (x) below which there is no progress.
    stagnation_improvement: float = Field(default=0.05, gt=0, lt=1)
    #: update factor multiplier of a damping correction.
    damping: float = Field(default=0.5, gt=0, lt=1)
    min_update_factor: float = Field(default=0.05, gt=0)
    #: sampling time multiplier of a lengthening correction.
    sampling_growth: float = Field(default=2.0, gt=1)
    #: longest sampling, as a multiple of the first iteration's sampling time.
    max_sampling_factor: float = Field(default=4.0, ge=1)
    max_corrections: int = Field(default=4, ge=0)


class IBIMonitorSettings(MonitorThresholds):
    """Everything the IBI monitor judges by: the thresholds and the convergence criteria
    (see the module docstring for their use)."""

    #: converged when rdf_deviation <= this ...
    rdf_tolerance: float = Field(default=0.02, gt=0)
    #: ... and |pressure deviation| <= this (bar); None: the pressure is not judged.
    pressure_tolerance_bar: float | None = Field(default=50.0, gt=0)
    max_iterations: int = Field(default=30, ge=1)
    #: infer applied corrections from changes of the history when none is marked.
    infer_corrections: bool = True

    @classmethod
    def from_ibi_spec(cls, spec: Any, *, max_iterations: int | None = None,
                      **overrides: Any) -> IBIMonitorSettings:
        """Settings from an IBI spec or :class:`cgflow.ibi.settings.IBISettings`.

        Reads ``monitor`` (the thresholds), ``rdf_tolerance``, ``pressure_tolerance_bar``,
        ``pressure_correction``, ``max_iterations`` and ``adaptive_factor`` when present.
        ``max_iterations`` is used when the spec leaves it unset (e.g. the preset's
        ``max_ibi_iterations``). Without pressure correction the pressure is not judged;
        with an adaptive factor corrections are not inferred (see the module docstring).
        """
        thresholds = getattr(spec, "monitor", None)
        values: dict[str, Any] = (thresholds.model_dump()
                                  if isinstance(thresholds, MonitorThresholds) else {})
        for name in ("rdf_tolerance", "pressure_tolerance_bar"):
            if getattr(spec, name, None) is not None:
                values[name] = getattr(spec, name)
        if getattr(spec, "pressure_correction", True) is False:
            values["pressure_tolerance_bar"] = None
        if getattr(spec, "adaptive_factor", False) is True:
            values["infer_corrections"] = False
        n = getattr(spec, "max_iterations", None) or max_iterations
        if n is not None:
            values["max_iterations"] = n
        values.update(overrides)
        return make_settings(values)


def make_settings(values: dict[str, Any] | IBIMonitorSettings | None) -> IBIMonitorSettings:
    """Validate monitor settings; :class:`InvalidInputError` names a bad field and value."""
    if isinstance(values, IBIMonitorSettings):
        return values
    try:
        return IBIMonitorSettings.model_validate(values or {})
    except ValidationError as exc:
        raise InvalidInputError(format_validation_error(exc, "IBI monitor settings")) from None


class IBIDecision(BaseModel):
    """What the IBI loop should do after the latest iteration.

    Attributes
    ----------
    action
        ``"continue"``, ``"converged"`` or ``"unconverged"`` (stop without convergence).
    diagnosis
        ``"none"`` (plain continue), ``"converged"``, ``"divergence"``,
        ``"oscillation"``, ``"stagnation"`` or ``"max_iterations"``.
    reason
        One or two sentences for people.
    best_iteration, best_score
        The best iteration (the first converged one, else the lowest score; see the
        module docstring) and its score.
    next_iteration
        Index of the next iteration (``continue`` only).
    update_factor, sampling_ps
        Settings of the next iteration (``continue`` only).
    restart_from_iteration
        Start the next iteration from this iteration's potential instead of the latest
        update (``continue`` after a divergence or oscillation), else None.
    corrections_used, corrections_left
        Corrections applied so far (including this decision's) and still allowed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["continue", "converged", "unconverged"]
    diagnosis: Diagnosis
    reason: str
    best_iteration: int
    best_score: float
    next_iteration: int | None = None
    update_factor: float | None = None
    sampling_ps: float | None = None
    restart_from_iteration: int | None = None
    corrections_used: int = 0
    corrections_left: int = 0

    @property
    def is_correction(self) -> bool:
        """True for a ``continue`` that changes the settings or restarts from the best."""
        return self.action == "continue" and self.diagnosis != "none"

    def next_metrics(self) -> dict[str, Any]:
        """Fields of :class:`IterationMetrics` that the next iteration should record
        (``iteration``, ``update_factor``, ``sampling_ps``, ``restarted_from``,
        ``correction``); the measured deviations are added after it ran.

        Raises
        ------
        InvalidInputError
            If the decision is not ``continue``.
        """
        if self.action != "continue":
            raise InvalidInputError(f"IBI decision: field 'action': {self.action!r} has no "
                                    "next iteration")
        return {"iteration": self.next_iteration, "update_factor": self.update_factor,
                "sampling_ps": self.sampling_ps, "restarted_from": self.restart_from_iteration,
                "correction": self.diagnosis if self.is_correction else None}


# --- the assessment ---------------------------------------------------------------------


def score(m: IterationMetrics, settings: IBIMonitorSettings) -> float:
    """The score of one iteration (see the module docstring; lower is better)."""
    s = m.rdf_deviation / settings.rdf_tolerance
    if settings.pressure_tolerance_bar is not None:
        s += abs(m.pressure_deviation_bar) / settings.pressure_tolerance_bar
    return s


def is_converged(m: IterationMetrics, settings: IBIMonitorSettings) -> bool:
    """Both deviations strictly within tolerance (the pressure only if judged)."""
    return m.rdf_deviation < settings.rdf_tolerance and (
        settings.pressure_tolerance_bar is None
        or abs(m.pressure_deviation_bar) < settings.pressure_tolerance_bar)


def _correction_marks(hist: list[IterationMetrics], infer: bool) -> list[int]:
    """Indices of the iterations that ran under a correction (see the module docstring)."""
    if not infer or any(m.correction is not None for m in hist):
        return [i for i, m in enumerate(hist) if m.correction is not None]
    return [i for i in range(1, len(hist))
            if hist[i].update_factor < hist[i - 1].update_factor * (1 - 1e-9)
            or hist[i].sampling_ps > hist[i - 1].sampling_ps * (1 + 1e-9)
            or hist[i].restarted_from is not None]


def _coerce(history: Sequence[IterationMetrics | dict]) -> list[IterationMetrics]:
    out = []
    for k, h in enumerate(history):
        if isinstance(h, IterationMetrics):
            out.append(h)
            continue
        try:
            out.append(IterationMetrics.model_validate(h))
        except ValidationError as exc:
            raise InvalidInputError(format_validation_error(exc, f"IBI history entry {k}")) \
                from None
    if not out:
        raise InvalidInputError("IBI history: no iteration yet (need at least one)")
    for a, b in zip(out, out[1:], strict=False):
        if b.iteration <= a.iteration:
            raise InvalidInputError(f"IBI history: field 'iteration': must increase, got "
                                    f"{b.iteration!r} after {a.iteration!r}")
    return out


def _diagnose(seg: list[float], before: list[float], st: IBIMonitorSettings,
              best: float) -> tuple[str, str] | None:
    """(diagnosis, explanation) for the scores of the current segment, or None."""
    k = st.window
    if len(seg) >= k:
        last = seg[-k:]
        rises = all(b > a for a, b in zip(last, last[1:], strict=False))
        if rises and last[-1] > st.divergence_factor * best:
            return "divergence", (f"the score rose over the last {k} iterations "
                                  f"({' -> '.join(f'{v:.3g}' for v in last)}) to more than "
                                  f"{st.divergence_factor:g} times the best ({best:.3g})")
    m = st.oscillation_window
    if len(seg) >= m:
        win = seg[-m:]
        d = [b - a for a, b in zip(win, win[1:], strict=False)]
        changes = sum(1 for a, b in zip(d, d[1:], strict=False) if a * b < 0)
        first, second = min(win[: m // 2]), min(win[m // 2:])
        if changes >= st.min_sign_changes and second > (1 - st.stagnation_improvement) * first:
            return "oscillation", (f"the score went up and down {changes} times over the last "
                                   f"{m} iterations without net progress (best "
                                   f"{first:.3g} then {second:.3g})")
    if len(seg) >= k and before:
        ref = min(before)
        recent = min(seg[-k:])
        if recent > (1 - st.stagnation_improvement) * ref:
            return "stagnation", (f"no improvement by more than "
                                  f"{100 * st.stagnation_improvement:g} % over the last {k} "
                                  f"iterations (best of them {recent:.3g}, best before "
                                  f"{ref:.3g})")
    return None


def assess_history(
    history: Sequence[IterationMetrics | dict], settings: IBIMonitorSettings | dict | None = None,
) -> IBIDecision:
    """Decide what the IBI loop does after the latest iteration of ``history``.

    Parameters
    ----------
    history
        Metrics of all iterations so far, in order (dicts are validated).
    settings
        Thresholds (defaults: :class:`IBIMonitorSettings`).

    Returns
    -------
    IBIDecision

    Raises
    ------
    InvalidInputError
        On an empty history, a malformed entry or iterations that do not increase.
    """
    st = make_settings(settings)
    hist = _coerce(history)
    scores = [score(m, st) for m in hist]
    converged = [i for i, m in enumerate(hist) if is_converged(m, st)]
    b = converged[0] if converged else min(range(len(hist)), key=lambda i: scores[i])
    best, best_it = scores[b], hist[b].iteration
    latest = hist[-1]
    marks = _correction_marks(hist, st.infer_corrections)
    used = len(marks)
    common = {"best_iteration": best_it, "best_score": best}

    if converged:
        return IBIDecision(
            action="converged", diagnosis="converged", corrections_used=used,
            corrections_left=max(0, st.max_corrections - used),
            reason=(f"converged at iteration {best_it}: RDF deviation "
                    f"{hist[b].rdf_deviation:.4g} (tolerance {st.rdf_tolerance:g})"
                    + ("" if st.pressure_tolerance_bar is None else
                       f", pressure deviation {hist[b].pressure_deviation_bar:+.4g} bar "
                       f"(tolerance {st.pressure_tolerance_bar:g} bar)")), **common)
    if len(hist) >= st.max_iterations:
        return IBIDecision(
            action="unconverged", diagnosis="max_iterations", corrections_used=used,
            corrections_left=max(0, st.max_corrections - used),
            reason=(f"not converged after {len(hist)} iterations (max_iterations "
                    f"{st.max_iterations}); best iteration {best_it} with score {best:.3g}"),
            **common)

    start = marks[-1] if marks else 0
    found = _diagnose(scores[start:], scores[: len(scores) - st.window], st, best)
    plain = {"next_iteration": latest.iteration + 1, "update_factor": latest.update_factor,
             "sampling_ps": latest.sampling_ps}
    if found is None:
        return IBIDecision(action="continue", diagnosis="none", corrections_used=used,
                           corrections_left=max(0, st.max_corrections - used),
                           reason=f"iteration {latest.iteration}: score {scores[-1]:.3g}, "
                                  f"best {best:.3g} (iteration {best_it}); continuing",
                           **plain, **common)
    diagnosis, why = found
    if used >= st.max_corrections:
        return IBIDecision(
            action="unconverged", diagnosis=diagnosis, corrections_used=used,
            corrections_left=0,
            reason=(f"{diagnosis}: {why}; corrections spent ({used} of "
                    f"{st.max_corrections}); best iteration {best_it} with score {best:.3g}"),
            **common)

    cap = hist[0].sampling_ps * st.max_sampling_factor
    longer = min(latest.sampling_ps * st.sampling_growth, cap)
    can_lengthen = longer > latest.sampling_ps * (1 + 1e-9)
    damped = latest.update_factor * st.damping
    can_damp = damped >= st.min_update_factor * (1 - 1e-9)
    change: dict[str, Any] | None = None
    if diagnosis in ("divergence", "oscillation"):
        if can_damp:
            change = {"update_factor": damped,
                      "restart_from_iteration": best_it if best_it != latest.iteration
                      else None}
            what = f"damping the update factor to {damped:.3g}"
            if change["restart_from_iteration"] is not None:
                what += f" and restarting from iteration {best_it}'s potential"
        elif can_lengthen:
            change = {"sampling_ps": longer, "restart_from_iteration":
                      best_it if best_it != latest.iteration else None}
            what = (f"update factor already at its minimum; lengthening the sampling to "
                    f"{longer:.4g} ps")
    elif can_lengthen:
        change = {"sampling_ps": longer}
        what = f"lengthening the sampling to {longer:.4g} ps"
    if change is None:
        limit = ("the update factor is at its minimum and the sampling at its cap"
                 if diagnosis != "stagnation" else
                 f"the sampling is at its cap ({cap:.4g} ps)")
        return IBIDecision(
            action="unconverged", diagnosis=diagnosis, corrections_used=used,
            corrections_left=max(0, st.max_corrections - used),
            reason=(f"{diagnosis}: {why}; no correction left: {limit}; best iteration "
                    f"{best_it} with score {best:.3g}"), **common)
    return IBIDecision(
        action="continue", diagnosis=diagnosis, corrections_used=used + 1,
        corrections_left=st.max_corrections - used - 1,
        reason=f"{diagnosis}: {why}; {what}",
        **{**plain, **change}, **common)


class IBIMonitor:
    """Accumulates iteration metrics and assesses them (see :func:`assess_history`).

    Parameters
    ----------
    settings
        Thresholds (a dict is validated).
    history
        Metrics of earlier iterations, if any.
    """

    def __init__(self, settings: IBIMonitorSettings | dict | None = None,
                 history: Sequence[IterationMetrics | dict] = ()) -> None:
        self.settings = make_settings(settings)
        self.history: list[IterationMetrics] = _coerce(history) if history else []

    def record(self, metrics: IterationMetrics | dict) -> IBIDecision:
        """Add one iteration's metrics and return the decision after it."""
        new = _coerce([*self.history, metrics])
        decision = assess_history(new, self.settings)
        self.history = new
        return decision

    def assess(self) -> IBIDecision:
        """The decision after the latest recorded iteration."""
        return assess_history(self.history, self.settings)


# --- files (the protocol of the Custodian handler, cgflow.jobs.ibi) ------------------------


def read_history(path: str | Path) -> list[IterationMetrics]:
    """Read an ``ibi_history.json`` (a JSON list of :class:`IterationMetrics` dicts).

    Raises
    ------
    InvalidInputError
        If the file is missing, not JSON, not a list, or holds a bad entry.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"IBI history file {path} not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"IBI history file {path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise InvalidInputError(f"IBI history file {path}: expected a JSON list of iterations, "
                                f"got {type(data).__name__}")
    return _coerce(data)


def write_history(path: str | Path, history: Sequence[IterationMetrics]) -> Path:
    """Write metrics as an ``ibi_history.json``."""
    path = Path(path)
    path.write_text(json.dumps([m.model_dump() for m in history], indent=1) + "\n")
    return path


def write_decision(path: str | Path, decision: IBIDecision) -> Path:
    """Write a decision as JSON (``ibi_decision.json``)."""
    path = Path(path)
    path.write_text(decision.model_dump_json(indent=1) + "\n")
    return path


def read_decision(path: str | Path) -> IBIDecision:
    """Read a decision written by :func:`write_decision`."""
    return IBIDecision.model_validate_json(Path(path).read_text())
