"""The campaign report (``cgflow report CAMPAIGN -o DIR``): one static HTML page with its
figures beside it, from the database only.

Per set: the AA target and CG RDFs, the CG potential and its force, the IBI convergence
(RDF deviation and pressure deviation per iteration with the set's tolerances) and the
MSD with its fit window. For the campaign: density against experiment, D_CG against
D_AA and alpha with their errors, alpha's distribution, the models' parity plots with
their uncertainty, the closed-loop validations, and the failed and unconverged sets
with their reasons; whatever of these the campaign has. A sortable, copyable table per
section.

* :mod:`~cgflow.stages.report.data` reads (the per-set view
  :func:`cgflow.db.views.campaign_sets` and the store's queries);
* :mod:`~cgflow.stages.report.figures` draws (matplotlib, Agg);
* :mod:`~cgflow.stages.report.page` writes the HTML.

The page (``index.html``) is written last, through a temporary file, so a report folder
never holds a page whose figures are missing.

Speed on large campaigns: the per-set figures are most of the time (a fraction of a
second each). Their file names carry a hash of what they show (the documents' update
times, the state, the IBI history, :data:`FIGURE_VERSION`), so writing the report of a
running campaign again into the same folder redraws only the sets that changed (and
removes the figures of the previous run that no set uses any more); many figures to draw
are drawn by a few worker processes (:data:`PARALLEL_FROM` and more).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cgflow.errors import InvalidInputError
from cgflow.stages.report.data import ReportData, SetReport, read_report_data

__all__ = ["ReportResult", "read_report_data", "write_report", "write_report_files"]

#: Folder of the figures, beside the page.
FIGURES_DIR = "figures"
#: Part of every per-set figure's name: change it when the figure's drawing changes, so
#: that figures of an earlier version are redrawn.
FIGURE_VERSION = 2
#: From this many per-set figures to draw, worker processes draw them.
PARALLEL_FROM = 16
#: Most worker processes.
MAX_WORKERS = 4


@dataclass(frozen=True)
class ReportResult:
    """What :func:`write_report` wrote: the page, the figures it shows, how many of them
    were drawn now (the others were reused, see the module docstring), and the seconds
    spent reading the database and drawing."""

    page: Path
    figures: list[Path]
    n_drawn: int
    n_sets: int
    read_s: float
    draw_s: float


def write_report(store: Any, campaign: str, out_dir: str | Path, *,
                 spec: Mapping[str, Any] | None = None,
                 set_states: Mapping[str, tuple[str, str]] | None = None,
                 with_models: bool = True) -> ReportResult:
    """Read the campaign from ``store`` and write its report into ``out_dir``.

    ``spec`` and ``set_states``: see :func:`cgflow.stages.report.data.read_report_data`.

    Raises
    ------
    InvalidInputError
        When the campaign has no sets in the database, or ``out_dir`` exists and is not
        a folder.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"-o: value {str(out)!r}: exists and is not a folder")
    t0 = time.perf_counter()
    data = read_report_data(store, campaign, spec=spec, set_states=set_states,
                            with_models=with_models)
    t1 = time.perf_counter()
    result = write_report_files(data, out)
    return ReportResult(result.page, result.figures, result.n_drawn, result.n_sets, t1 - t0,
                        result.draw_s)


def write_report_files(data: ReportData, out_dir: Path) -> ReportResult:
    """Draw the figures of ``data`` and write the page into ``out_dir``."""
    from cgflow.stages.report import figures as fg
    from cgflow.stages.report.page import render_page

    t0 = time.perf_counter()
    fig_dir = out_dir / FIGURES_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def draw(name: str, fn: Any, *args: Any) -> str | None:
        path = fig_dir / f"{name}.png"
        if fn(*args, path):
            written.append(path)
            return f"{FIGURES_DIR}/{path.name}"
        path.unlink(missing_ok=True)  # an earlier report's, of what is not shown now
        return None

    figs = {
        "density": draw("density", fg.density_figure, data.sets),
        "diffusion": draw("diffusion", fg.diffusion_figure, data.sets),
        "alpha_distribution": draw("alpha_distribution", fg.alpha_distribution_figure,
                                   data.sets),
        "validation": draw("validation", fg.validation_figure, data.validations),
    }
    if data.models is not None:
        figs["alpha_parity"] = draw("alpha_parity", fg.alpha_parity_figure, data.models)
        figs["structure_parity"] = draw("structure_parity", fg.structure_parity_figure,
                                        data.models)
    set_figs = _draw_set_figures(data.sets, fig_dir, written)
    page = out_dir / "index.html"
    tmp = out_dir / f".index.html.{os.getpid()}.tmp"
    tmp.write_text(render_page(data, figs, set_figs), encoding="utf-8")
    os.replace(tmp, page)
    shown = [out_dir / f for f in [*figs.values(), *set_figs.values()] if f is not None]
    return ReportResult(page, shown, len(written), len(data.sets), 0.0,
                        time.perf_counter() - t0)


def set_figure_name(s: SetReport) -> str:
    """``set-<param_id>-<preset>-<hash>.png``: the hash changes with what the figure shows."""
    v = s.view
    stamp = [FIGURE_VERSION, v.param_id, v.preset, s.state, s.reason, s.rdf_tolerance,
             s.pressure_tolerance_bar, [list(vars(r).values()) for r in s.iterations]]
    stamp += [d.updated_at.isoformat() if d is not None else None
              for d in (v.aa_run, v.potential, v.cg_run)]
    digest = hashlib.sha256(json.dumps(stamp, default=str).encode()).hexdigest()[:12]
    return f"set-{v.key}-{digest}.png"


def _draw_one(item: tuple[SetReport, Path]) -> bool:
    from cgflow.stages.report.figures import set_figure

    return set_figure(*item)


def _draw_set_figures(sets: list[SetReport], fig_dir: Path,
                      written: list[Path]) -> dict[str, str | None]:
    names = {s.view.key: set_figure_name(s) for s in sets if s.stored}
    todo = [(s, fig_dir / names[s.view.key]) for s in sets
            if s.view.key in names and not (fig_dir / names[s.view.key]).is_file()]
    workers = min(MAX_WORKERS, os.cpu_count() or 1, len(todo))
    if len(todo) >= PARALLEL_FROM and workers > 1:
        # spawn: the workers must not inherit this process' database connection
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            done = list(ex.map(_draw_one, todo, chunksize=max(1, len(todo) // (4 * workers))))
    else:
        done = [_draw_one(item) for item in todo]
    written += [path for (_, path), ok in zip(todo, done, strict=True) if ok]
    keep = set(names.values())
    for old in fig_dir.glob("set-*.png"):  # figures of an earlier report no set uses now
        if old.name not in keep:
            old.unlink(missing_ok=True)
    return {key: f"{FIGURES_DIR}/{name}" if (fig_dir / name).is_file() else None
            for key, name in names.items()}
