"""The live view of a running campaign: per set its stage and each IBI iteration's RDF
and pressure deviation as it finishes, sets done / total and an estimate of the time left.

``cgflow launch`` and ``cgflow demo`` show it while ``rlaunch`` runs
(:class:`ProgressPrinter`); ``cgflow campaign status NAME --watch`` refreshes the same
view from the database for a campaign that runs elsewhere (:func:`watch_campaign`).

What is read
------------
The stage of every set is :func:`cgflow.orchestration.status.campaign_status`'s (the one
place that decides it); the IBI iterations of a set come from the store
(:meth:`cgflow.db.store.Store.ibi_iterations`), read only when the set's IBI stage moved
on since the last read, so a refresh of a campaign of hundreds of sets costs what the
status costs plus a few queries.

What is shown
-------------
On a terminal: the events (stage changes, finished IBI iterations with D and dP) scroll
above a ``tqdm`` progress bar of the whole campaign (sets done / total, per cent done,
the time left). Elsewhere (a log, a pipe, a batch job's output): the same events as
plain lines, and a summary line whenever a set finishes and at least every
:data:`SUMMARY_EVERY_S` seconds.

Time left (an estimate)
-----------------------
Each set's progress is its place in its chain of Fireworks: the four all-atom stages,
then (with the CG stage) the IBI iterations and the CG production. The number of IBI
iterations a set will need is not known in advance: it is taken as the mean of the sets
whose IBI has finished, else half the iteration limit. The campaign's fraction done
``f`` is the mean over its sets (a finished set counts 1, failed and unconverged ones
too), and the time left is ``T (1 - f) / f / n`` with ``T`` the run time of all
launches so far and ``n`` the Fireworks running now (at least 1). *Approximation:* every
Firework is taken to cost the campaign's mean Firework time, although all-atom stages
are longer than IBI iterations; early in a campaign (all-atom stages first) the
estimate is therefore pessimistic, and it improves as sets finish.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cgflow.orchestration.stage_names import AA_STAGES

#: Stages (of :mod:`cgflow.orchestration.status`) in which a set has nothing left to run.
FINISHED_STAGES = ("done", "failed", "unconverged")
#: IBI iterations expected of a set before any set's IBI has finished, as a fraction of the
#: iteration limit.
DEFAULT_IBI_FRACTION = 0.5
#: Seconds between two summary lines when the output is not a terminal.
SUMMARY_EVERY_S = 60.0
_AA_STEPS = [s.value[3:] for s in AA_STAGES]  # build, equilibrate, produce, analyse


@dataclass(frozen=True)
class IterationPoint:
    """What one finished IBI iteration measured."""

    iteration: int
    rdf_deviation: float | None
    pressure_deviation_bar: float | None


@dataclass(frozen=True)
class SetProgress:
    """Where one parameter set is.

    ``stage`` and ``detail`` are those of :class:`cgflow.orchestration.status.SetStatus`
    (``AA produce`` / ``RUNNING``, ``IBI iteration 3``, ``CG production``, ``done``,
    ``failed``, ``unconverged`` with its reason, ``waiting``); ``iterations`` the finished
    IBI iterations read so far.
    """

    param_id: str
    label: str
    stage: str
    detail: str = ""
    iterations: tuple[IterationPoint, ...] = ()

    @property
    def finished(self) -> bool:
        """Nothing is left to run for this set."""
        return self.stage in FINISHED_STAGES

    @property
    def ibi_iteration(self) -> int | None:
        """The IBI iteration under way, if the set is in IBI."""
        if self.stage.startswith("IBI iteration "):
            return int(self.stage.rsplit(" ", 1)[1])
        return None


@dataclass(frozen=True)
class CampaignProgress:
    """One snapshot of a campaign's progress (see the module docstring for the estimate).

    Attributes
    ----------
    campaign
        Its name.
    sets
        One :class:`SetProgress` per parameter set, in the status' order.
    cg_stage
        Whether the campaign runs IBI and CG production after the all-atom stage.
    expected_ibi_iterations
        IBI iterations expected per set (for the fraction done).
    n_running
        Fireworks running now.
    time_spent_s
        Run time of all launches so far, s.
    """

    campaign: str
    sets: list[SetProgress]
    cg_stage: bool
    expected_ibi_iterations: float
    n_running: int = 0
    time_spent_s: float = 0.0

    @property
    def n_total(self) -> int:
        """Parameter sets of the campaign."""
        return len(self.sets)

    @property
    def n_finished(self) -> int:
        """Sets with nothing left to run (done, failed or unconverged)."""
        return sum(s.finished for s in self.sets)

    def stage_counts(self) -> Counter:
        """Sets per stage, with the all-atom steps and the IBI iterations folded."""
        return Counter(_stage_group(s.stage) for s in self.sets)

    def set_fraction(self, s: SetProgress) -> float:
        """How far ``s`` is through its chain of Fireworks, 0..1."""
        if s.finished:
            return 1.0
        n_aa = len(_AA_STEPS)
        total = n_aa + (self.expected_ibi_iterations + 1.0 if self.cg_stage else 0.0)
        if s.stage.startswith("AA "):
            step = s.stage[3:]
            pos = float(_AA_STEPS.index(step)) if step in _AA_STEPS else 0.0
        elif s.ibi_iteration is not None:
            # an iteration past the expectation: the set is (nearly) through IBI
            pos = n_aa + min(float(s.ibi_iteration), self.expected_ibi_iterations)
        elif s.stage == "CG production":
            pos = n_aa + self.expected_ibi_iterations
        else:  # waiting (held) or unknown
            pos = 0.0
        return min(pos / total, 1.0) if total > 0 else 0.0

    @property
    def fraction(self) -> float:
        """Fraction of the campaign's work done, 0..1 (mean over its sets)."""
        if not self.sets:
            return 0.0
        return sum(self.set_fraction(s) for s in self.sets) / len(self.sets)

    @property
    def eta_s(self) -> float | None:
        """Estimated seconds left; ``None`` before anything has run (or when all is done
        but nothing was timed)."""
        f = self.fraction
        if f >= 1.0:
            return 0.0
        if f <= 0.0 or self.time_spent_s <= 0.0:
            return None
        return self.time_spent_s * (1.0 - f) / f / max(1, self.n_running)


def _stage_group(stage: str) -> str:
    if stage.startswith("AA "):
        return "AA"
    if stage.startswith("IBI"):
        return "IBI"
    return stage


def format_duration(seconds: float | None) -> str:
    """``about 40 s`` / ``about 12 min`` / ``about 2.5 h``; ``unknown`` for ``None``."""
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"about {max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _metric(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


# --- reading ---------------------------------------------------------------------------------


class ProgressReader:
    """Reads :class:`CampaignProgress` snapshots of one campaign, caching what it can.

    The IBI iterations of a set are read again only when its stage changed since the last
    read (and at the first read only for sets in IBI: a finished set's history is the
    report's, not the live view's).
    """

    def __init__(self, launchpad: Any, store: Any, campaign: str) -> None:
        self.lp = launchpad
        self.store = store
        self.campaign = campaign
        self._spec: dict[str, Any] | None = None
        self._iterations: dict[str, tuple[str, tuple[IterationPoint, ...]]] = {}

    def _campaign_spec(self) -> dict[str, Any]:
        if self._spec is None:
            from cgflow.db.fw_queries import campaign_spec

            self._spec = campaign_spec(self.lp, self.campaign)
        return self._spec

    def campaign_preset(self) -> str | None:
        """The CG preset of the campaign's stored spec (None when no spec is stored)."""
        preset = self._campaign_spec().get("preset")
        return preset if isinstance(preset, str) else None

    def _max_iterations(self) -> int:
        spec = self._campaign_spec()
        limit = (spec.get("ibi") or {}).get("max_iterations")
        if limit:
            return int(limit)
        from cgflow.errors import InvalidInputError
        from cgflow.presets import get_cg_preset

        try:
            return get_cg_preset(spec.get("preset", "tiny")).max_ibi_iterations
        except InvalidInputError:
            return 10

    def _points(self, preset: str, pid: str) -> tuple[IterationPoint, ...]:
        docs = self.store.ibi_iterations(pid, preset)
        return tuple(IterationPoint(d.iteration, d.metrics.get("rdf_deviation"),
                                    d.metrics.get("pressure_deviation_bar")) for d in docs)

    def read(self) -> CampaignProgress:
        """A snapshot of the campaign now."""
        from cgflow.orchestration.status import campaign_status

        status = campaign_status(self.lp, self.store, self.campaign)
        spec = self._campaign_spec()
        cg_stage = bool(spec.get("cg_stage"))
        preset = spec.get("preset")
        sets = []
        for st in status.sets:
            cached = self._iterations.get(st.param_id)
            if cached is None or cached[0] != st.stage:
                was_ibi = cached is not None and cached[0].startswith("IBI")
                if cg_stage and preset and (st.stage.startswith("IBI") or was_ibi):
                    points = self._points(preset, st.param_id)
                    if st.stage.startswith("IBI iteration "):
                        # only those before the current one: a rerun's iteration 0 has not
                        # yet deleted the stored iterations of an earlier IBI of the set
                        now = int(st.stage.rsplit(" ", 1)[1])
                        points = tuple(p for p in points if p.iteration < now)
                else:
                    points = cached[1] if cached is not None else ()
                self._iterations[st.param_id] = (st.stage, points)
            sets.append(SetProgress(st.param_id, st.label, st.stage, st.detail,
                                    self._iterations[st.param_id][1]))
        finished_ibi = [len(s.iterations) for s in sets
                        if s.iterations and (s.finished or s.stage == "CG production")]
        limit = self._max_iterations()
        expected = (sum(finished_ibi) / len(finished_ibi) if finished_ibi
                    else DEFAULT_IBI_FRACTION * limit)
        return CampaignProgress(
            campaign=self.campaign, sets=sets, cg_stage=cg_stage,
            expected_ibi_iterations=max(1.0, float(expected)),
            n_running=len(status.running), time_spent_s=status.time_spent_s)


# --- showing ---------------------------------------------------------------------------------


def progress_events(before: CampaignProgress | None, now: CampaignProgress) -> list[str]:
    """The lines that tell what happened between two snapshots (without a time stamp).

    Without ``before``: one line per set that is under way (not waiting to start, not
    finished), and the number of finished ones.
    """
    lines: list[str] = []
    old = {s.param_id: s for s in before.sets} if before is not None else {}
    for s in now.sets:
        prev = old.get(s.param_id)
        seen = {p.iteration for p in prev.iterations} if prev is not None else set()
        if before is not None or s.ibi_iteration is not None:
            for p in s.iterations:
                if p.iteration not in seen and (before is not None or p is s.iterations[-1]):
                    lines.append(f"{s.label:18s} IBI iteration {p.iteration} done: "
                                 f"D = {_metric(p.rdf_deviation, '.4f')}, "
                                 f"dP = {_metric(p.pressure_deviation_bar, '+.0f')} bar")
        if before is None:
            if not s.finished and not (s.stage == "AA build" and s.detail == "READY"):
                lines.append(_stage_line(s))
        elif prev is None or (prev.stage, prev.detail) != (s.stage, s.detail):
            lines.append(_stage_line(s))
    if before is None and now.n_finished:
        counts = Counter(s.stage for s in now.sets if s.finished)
        lines.append(f"{now.n_finished} set(s) already finished ("
                     + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    return lines


def _stage_line(s: SetProgress) -> str:
    return f"{s.label:18s} {s.stage:18s} {s.detail}".rstrip()


def summary_line(p: CampaignProgress) -> str:
    """``2/5 sets finished (AA 1, IBI 1, done 2, failed 1), 58 % done, about 12 min left``."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(p.stage_counts().items()))
    return (f"{p.n_finished}/{p.n_total} sets finished ({counts}), "
            f"{100 * p.fraction:.0f} % done, {format_duration(p.eta_s)} left")


class ProgressView:
    """Shows snapshots: events as lines, then a progress bar (a terminal) or a summary
    line (elsewhere; see the module docstring)."""

    def __init__(self, report: Callable[[str], None] = print, *, live: bool | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.report = report
        self.clock = clock
        self.t0 = clock()
        self.last: CampaignProgress | None = None
        self._last_summary = -1e18
        self._bar: Any = None

    def emit(self, line: str) -> None:
        """One line above the bar (a terminal), else to ``report``."""
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            self.report(line)

    def show(self, p: CampaignProgress) -> None:
        """Show what changed since the last snapshot and where the campaign is."""
        now = self.clock()
        stamp = f"[{_clock(now - self.t0)}]"
        for line in progress_events(self.last, p):
            self.emit(f"{stamp} {line}")
        finished_more = self.last is None or p.n_finished != self.last.n_finished
        self.last = p
        if self.live:
            self._show_bar(p)
        elif finished_more or now - self._last_summary >= SUMMARY_EVERY_S:
            self.report(f"{stamp} {summary_line(p)}")
            self._last_summary = now

    def _show_bar(self, p: CampaignProgress) -> None:
        from tqdm import tqdm

        counts = ", ".join(f"{k} {v}" for k, v in sorted(p.stage_counts().items()))
        text = (f"{p.n_finished}/{p.n_total} sets, {100 * p.fraction:.0f} %, "
                f"{format_duration(p.eta_s)} left ({counts})")
        fmt = "{desc} |{bar}| " + text.replace("{", "{{").replace("}", "}}")
        total = max(p.n_total, 1)
        if self._bar is None:
            # a terminal that reports no size (some pseudo-terminals) gets a fixed one
            size = ({"dynamic_ncols": True} if _columns(self.stream) > 0
                    else {"ncols": 100, "nrows": 24})
            self._bar = tqdm(total=total, initial=p.fraction * total, file=self.stream,
                             desc=p.campaign, bar_format=fmt, leave=True, **size)
            return
        self._bar.bar_format = fmt
        self._bar.total = total
        self._bar.n = p.fraction * total
        self._bar.refresh()

    def close(self) -> None:
        """End the bar (its last state stays on the terminal)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _columns(stream: TextIO) -> int:
    """Width of the terminal behind ``stream``; 0 when it has none or reports none."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return 0


class ProgressPrinter:
    """The live view of one campaign while ``rlaunch`` runs: :meth:`update` reads a
    snapshot and shows it (used by :func:`cgflow.orchestration.launcher.launch`)."""

    def __init__(self, launchpad: Any, campaign: str,
                 report: Callable[[str], None] = print, *, live: bool | None = None,
                 export_to: str | Path | None = None, export_preset: str | None = None,
                 ) -> None:
        from cgflow.db.store import Store
        from cgflow.orchestration.checkpoint import ExportCheckpoint, campaign_export

        self.store = Store.from_launchpad(launchpad)
        self.reader = ProgressReader(launchpad, self.store, campaign)
        self.view = ProgressView(report, live=live)
        self.checkpoint = None
        if export_to is not None:
            if export_preset is None:  # the campaign's own preset, as its spec stored it
                export_preset = self.reader.campaign_preset()
            self.checkpoint = ExportCheckpoint(
                campaign_export(self.store, campaign, export_to, export_preset), export_to,
                self.view.emit)

    def update(self, *, force_export: bool = False) -> CampaignProgress:
        """Read and show the campaign's progress now, and export it when ``export_to``
        is given and its finished sets changed (or ``force_export``:
        :class:`cgflow.orchestration.checkpoint.ExportCheckpoint`)."""
        snap = self.reader.read()
        self.view.show(snap)
        if self.checkpoint is not None:
            self.checkpoint.update(snap, force=force_export)
        return snap

    def finish(self) -> CampaignProgress:
        """The last update of a launch: the export made whether or not a set finished
        since the last one."""
        return self.update(force_export=True)

    def close(self) -> None:
        """End the view and close the store."""
        self.view.close()
        self.store.close()


def watch_campaign(launchpad: Any, store: Any, campaign: str, *, interval_s: float = 10.0,
                   report: Callable[[str], None] = print, live: bool | None = None,
                   max_updates: int | None = None,
                   sleep: Callable[[float], None] = time.sleep) -> CampaignProgress:
    """Refresh the view of ``campaign`` from the database every ``interval_s`` seconds
    until every set is finished (or ``max_updates`` refreshes); returns the last
    snapshot. Interrupting (Ctrl-C) ends the view and propagates."""
    view = ProgressView(report, live=live)
    reader = ProgressReader(launchpad, store, campaign)
    n = 0
    try:
        while True:
            snap = reader.read()
            view.show(snap)
            n += 1
            if (snap.sets and snap.n_finished == snap.n_total) or (
                    max_updates is not None and n >= max_updates):
                return snap
            sleep(interval_s)
    finally:
        view.close()
