"""The report's figures, drawn with matplotlib's Agg backend into PNG files.

One figure per set (:func:`set_figure`: RDFs, potential and force, IBI convergence,
MSDs) and one per campaign-wide quantity (density against experiment, D_AA against
D_CG, alpha, the models' parity plots, the closed-loop validation). Every function takes
what :mod:`cgflow.stages.report.data` read and a path, draws, saves and closes its
figure, and returns whether it drew anything (``False``: nothing to show, no file).

Units on the axes: r in nm, U in kJ/mol, F = -dU/dr in kJ/mol/nm, pressure in bar, lag
time in ps, MSD in nm^2, density in g/cm^3, D in 1e-9 m^2/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402

from cgflow.stages.report.data import (  # noqa: E402
    EXPERIMENTAL_DENSITY_G_CM3,
    ModelReport,
    SetReport,
)
from cgflow.units import density_kg_m3_to_g_cm3, diffusion_nm2_ps_to_m2_s  # noqa: E402

#: Resolution of the saved PNGs (dots per inch).
DPI = 90
#: Colours: AA (target), CG, and the tolerance / experiment lines.
AA_COLOUR, CG_COLOUR, REF_COLOUR, TEST_COLOUR = "#1f4e79", "#d95f02", "#555555", "#7b3294"
#: Potentials are drawn up to this energy above their minimum (the wall is cut), kJ/mol.
U_SPAN_KJ_MOL = 12.0
#: zlib compression of the PNGs (1: fast, files a little larger).
PNG_COMPRESSION = 1


def _save(fig: Any, path: Path) -> bool:
    fig.savefig(path, dpi=DPI, pil_kwargs={"compress_level": PNG_COMPRESSION})
    plt.close(fig)
    return True


def _d_1e9(x: float | None) -> float | None:
    """nm^2/ps -> 1e-9 m^2/s."""
    return None if x is None else diffusion_nm2_ps_to_m2_s(x) * 1e9


def _plain_log_ticks(axis: Any) -> None:
    """Tick labels of a log axis as plain numbers (no mathtext: faster to draw)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _nothing(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color=REF_COLOUR, fontsize=9, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# --- one set -------------------------------------------------------------------------------


def set_figure(s: SetReport, path: Path) -> bool:
    """RDFs, potential and force, IBI convergence and MSDs of one set (2 x 2 panels).

    The per-set figures are most of a large campaign's report time, so they are drawn
    lean: a fixed layout (constrained layout would draw each figure twice), titles at a
    fixed height (no search for room above the twin axes), few ticks, no minor ticks.
    """
    fig, axes = plt.subplots(2, 2, figsize=(10.0, 6.6))
    fig.subplots_adjust(left=0.075, right=0.915, bottom=0.08, top=0.9, wspace=0.42,
                        hspace=0.38)
    fig.suptitle(f"{s.label}  ({s.view.preset or 'no preset'}): {s.state}", fontsize=11)
    _rdf_panel(axes[0, 0], s)
    _potential_panel(axes[0, 1], s)
    _convergence_panel(axes[1, 0], s)
    _msd_panel(axes[1, 1], s)
    for ax in fig.axes:
        _lean(ax)
    return _save(fig, path)


def _lean(ax: Any) -> None:
    """Few ticks, no minor ticks, the title at a fixed height (cheaper to draw)."""
    from matplotlib.ticker import AutoLocator, MaxNLocator, NullLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())
        if isinstance(axis.get_major_locator(), AutoLocator):  # not one set on purpose
            axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    title = ax.get_title()
    if title:
        ax.set_title(title, fontsize=10, y=1.0, pad=5)


def _rdf_panel(ax: Any, s: SetReport) -> None:
    aa, pot, cg = s.aa, s.view.potential, s.view.cg_run
    target = pot.target_rdf if pot is not None else (aa.rdf if aa is not None else None)
    if target is None:
        _nothing(ax, "no all-atom RDF yet")
        return
    ax.plot(target.r_nm, target.g, color=AA_COLOUR, lw=2.0, label="AA target")
    if pot is not None and pot.final_rdf is not None:
        it = pot.best_iteration if pot.best_iteration is not None else pot.n_iterations - 1
        ax.plot(pot.final_rdf.r_nm, pot.final_rdf.g, color=CG_COLOUR, lw=1.3, ls="--",
                label=f"CG, IBI iteration {it}")
    if cg is not None and cg.rdf is not None:
        ax.plot(cg.rdf.r_nm, cg.rdf.g, color=CG_COLOUR, lw=0.8, alpha=0.6,
                label="CG production")
    ax.axhline(1.0, color=REF_COLOUR, lw=0.5)
    ax.set_xlabel("r / nm")
    ax.set_ylabel("g(r)")
    ax.set_title("bead RDF", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper right")


def _potential_panel(ax: Any, s: SetReport) -> None:
    pot = s.view.potential
    if pot is None:
        _nothing(ax, "no IBI potential yet")
        return
    r = np.asarray(pot.potential.r_nm)
    u = np.asarray(pot.potential.u_kj_mol)
    f = np.asarray(pot.potential.f_kj_mol_nm)
    shown = u <= u.min() + U_SPAN_KJ_MOL
    first = int(np.argmax(shown))
    ax.plot(r[first:], u[first:], color=CG_COLOUR, lw=1.8, label="U(r)")
    ax.axhline(0.0, color=REF_COLOUR, lw=0.5)
    ax.set_xlabel("r / nm")
    ax.set_ylabel("U / kJ mol⁻¹", color=CG_COLOUR)
    ax.set_title(f"CG pair potential ({'converged' if pot.converged else 'not converged'})",
                 fontsize=10)
    twin = ax.twinx()
    fs = f[first:]
    twin.plot(r[first:], fs, color=AA_COLOUR, lw=1.0, ls=":", label="F = -dU/dr")
    lim = max(float(np.abs(fs).max()) if fs.size else 1.0, 1e-6)
    twin.set_ylim(-lim * 1.05, lim * 1.05)
    twin.set_ylabel("F / kJ mol⁻¹ nm⁻¹", color=AA_COLOUR)
    lines = ax.get_lines()[:1] + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, frameon=False,
              loc="upper right")


def _convergence_panel(ax: Any, s: SetReport) -> None:
    rows = [r for r in s.iterations if r.rdf_deviation is not None]
    if not rows:
        _nothing(ax, "no IBI iteration yet")
        return
    it = [r.iteration for r in rows]
    ax.semilogy(it, [max(r.rdf_deviation, 1e-6) for r in rows], "o-", color=CG_COLOUR,
                ms=4, label="RDF deviation D")
    if s.rdf_tolerance is not None:
        ax.axhline(s.rdf_tolerance, color=CG_COLOUR, lw=0.8, ls="--",
                   label=f"D tolerance {s.rdf_tolerance:g}")
    best = s.view.potential.best_iteration if s.view.potential is not None else None
    if best is not None and best < len(s.iterations):
        b = s.iterations[best]
        if b.rdf_deviation is not None:
            ax.plot([best], [max(b.rdf_deviation, 1e-6)], "*", color="k", ms=10,
                    label="kept")
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("IBI iteration")
    ax.set_ylabel("D", color=CG_COLOUR)
    ax.set_title("IBI convergence", fontsize=10)
    dp = [(r.iteration, r.pressure_deviation_bar) for r in s.iterations
          if r.pressure_deviation_bar is not None]
    twin = ax.twinx()
    if dp:
        twin.plot(*zip(*dp, strict=True), "s-", color=AA_COLOUR, ms=3, lw=0.9,
                  label="P_CG - P_AA")
    if s.pressure_tolerance_bar is not None:
        tol = s.pressure_tolerance_bar
        twin.axhspan(-tol, tol, color=AA_COLOUR, alpha=0.08, label=f"|dP| <= {tol:.0f} bar")
    twin.axhline(0.0, color=AA_COLOUR, lw=0.4)
    twin.set_ylabel("dP / bar", color=AA_COLOUR)
    handles = ax.get_lines() + twin.get_lines()[:1] + twin.patches[:1]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=7, frameon=False,
              loc="upper right")
    ax.set_xticks(it if len(it) <= 15 else it[:: max(1, len(it) // 10)])


def _msd_panel(ax: Any, s: SetReport) -> None:
    aa, cg = s.aa, s.view.cg_run
    if aa is None:
        _nothing(ax, "no all-atom MSD yet")
        return
    lag = np.asarray(aa.msd.lag_ps)
    msd = np.asarray(aa.msd.msd_nm2)
    dif = aa.diffusion
    ax.plot(lag, msd, color=AA_COLOUR, lw=1.6, label="AA")
    ax.axvspan(dif.fit_start_ps, dif.fit_end_ps, color=AA_COLOUR, alpha=0.1,
               label=f"AA fit {dif.fit_start_ps:g}-{dif.fit_end_ps:g} ps")
    window = (lag >= dif.fit_start_ps) & (lag <= dif.fit_end_ps)
    if window.sum() >= 2:
        c = float(np.mean(msd[window] - 6 * dif.d_nm2_ps * lag[window]))
        ax.plot(lag[window], 6 * dif.d_nm2_ps * lag[window] + c, color="k", lw=0.8,
                label=f"6 D t + c, D = {_d_1e9(dif.d_nm2_ps):.3g}e-9 m²/s")
    if cg is not None and cg.msd is not None:
        ax.plot(cg.msd.lag_ps, cg.msd.msd_nm2, color=CG_COLOUR, lw=1.2, label="CG")
    elif cg is not None and cg.d_cg_nm2_ps is not None:
        ax.plot(lag, 6 * cg.d_cg_nm2_ps.mean * lag, color=CG_COLOUR, lw=1.0, ls="--",
                label=f"CG: 6 D_CG t, D_CG = {_d_1e9(cg.d_cg_nm2_ps.mean):.3g}e-9 m²/s")
    ax.set_xlabel("lag / ps")
    ax.set_ylabel("MSD / nm²")
    ax.set_title("mean squared displacement of the molecules", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="upper left")


# --- the campaign --------------------------------------------------------------------------


def _labels(sets: Sequence[SetReport]) -> list[str]:
    return [s.label if s.label == "reference" else s.label[:8] for s in sets]


def density_figure(sets: Sequence[SetReport], path: Path) -> bool:
    """Density of every set with its error, against experiment."""
    rows = [s for s in sets if s.aa is not None]
    if not rows:
        return False
    rows.sort(key=lambda s: s.aa.density_kg_m3)
    rho = np.array([density_kg_m3_to_g_cm3(s.aa.density_kg_m3) for s in rows])
    err = np.array([density_kg_m3_to_g_cm3(s.aa.density_err_kg_m3 or 0.0) for s in rows])
    fig, ax = plt.subplots(figsize=(max(6.0, min(14.0, 0.25 * len(rows) + 4)), 3.8),
                           layout="constrained")
    x = np.arange(len(rows))
    colours = [CG_COLOUR if s.label == "reference" else AA_COLOUR for s in rows]
    ax.errorbar(x, rho, yerr=err, fmt="none", ecolor=REF_COLOUR, elinewidth=0.8, capsize=2)
    ax.scatter(x, rho, c=colours, s=18, zorder=3)
    for (t_c, value), ls in zip(sorted(EXPERIMENTAL_DENSITY_G_CM3.items()), ("-", "--"),
                                strict=False):
        ax.axhline(value, color="k", lw=0.9, ls=ls, label=f"experiment {t_c:g} C: {value:g}")
    ax.set_ylabel("density / g cm⁻³")
    ax.set_xlabel("parameter sets, by density (orange: OPLS-AA reference)")
    if len(rows) <= 30:
        ax.set_xticks(x, _labels(rows), rotation=60, fontsize=7)
    else:
        ax.set_xticks([])
    ax.set_title("all-atom density against experiment (CRC Handbook)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _save(fig, path)


def diffusion_figure(sets: Sequence[SetReport], path: Path) -> bool:
    """D_CG against D_AA (lines of constant alpha) and alpha per set, with errors."""
    rows = [s for s in sets if s.view.alpha is not None and s.view.cg_run.d_cg_nm2_ps
            is not None and s.view.cg_run.d_aa_nm2_ps is not None]
    if not rows:
        return False
    d_aa = np.array([_d_1e9(s.view.cg_run.d_aa_nm2_ps.mean) for s in rows])
    d_aa_e = np.array([_d_1e9(s.view.cg_run.d_aa_nm2_ps.err or 0.0) for s in rows])
    d_cg = np.array([_d_1e9(s.view.cg_run.d_cg_nm2_ps.mean) for s in rows])
    d_cg_e = np.array([_d_1e9(s.view.cg_run.d_cg_nm2_ps.err or 0.0) for s in rows])
    alpha = np.array([s.view.alpha for s in rows])
    alpha_e = np.array([s.view.alpha_err or 0.0 for s in rows])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained")
    a1.errorbar(d_aa, d_cg, xerr=d_aa_e, yerr=d_cg_e, fmt="o", ms=4, color=CG_COLOUR,
                ecolor=REF_COLOUR, elinewidth=0.7, capsize=2)
    lo = max(min(d_aa.min(), d_cg.min()) * 0.5, 1e-3)
    hi = max(d_aa.max(), d_cg.max()) * 2.0
    grid = np.array([lo, hi])
    for a in (1, 2, 5, 10, 20, 50):
        a1.plot(grid, a * grid, color=REF_COLOUR, lw=0.5, ls=":")
        if lo < hi / a:
            a1.text(hi / a, hi, f" alpha={a}", fontsize=7, color=REF_COLOUR, va="top",
                    rotation=35)
    a1.set_xscale("log")
    a1.set_yscale("log")
    _plain_log_ticks(a1.xaxis)
    _plain_log_ticks(a1.yaxis)
    a1.set_xlim(lo, hi)
    a1.set_ylim(lo, hi * 1.05)
    a1.set_xlabel("D_AA / 1e-9 m² s⁻¹")
    a1.set_ylabel("D_CG / 1e-9 m² s⁻¹")
    a1.set_title("CG against AA self-diffusion", fontsize=10)
    order = np.argsort(alpha)
    x = np.arange(len(rows))
    a2.errorbar(x, alpha[order], yerr=alpha_e[order], fmt="o", ms=4, color=CG_COLOUR,
                ecolor=REF_COLOUR, elinewidth=0.7, capsize=2)
    a2.set_ylabel("alpha = D_CG / D_AA")
    a2.set_xlabel("parameter sets, by alpha")
    if len(rows) <= 30:
        a2.set_xticks(x, [_labels(rows)[i] for i in order], rotation=60, fontsize=7)
    else:
        a2.set_xticks([])
    a2.set_title("acceleration factor per set", fontsize=10)
    return _save(fig, path)


def alpha_distribution_figure(sets: Sequence[SetReport], path: Path) -> bool:
    """Histogram of alpha over the campaign (log-spaced bins)."""
    alpha = np.array([s.view.alpha for s in sets if s.view.alpha is not None
                      and s.view.alpha > 0])
    if alpha.size == 0:
        return False
    fig, ax = plt.subplots(figsize=(6.0, 3.6), layout="constrained")
    lo, hi = alpha.min(), alpha.max()
    if hi / lo < 1.2:
        bins: Any = np.linspace(lo * 0.9, hi * 1.1, 6)
    else:
        bins = np.geomspace(lo * 0.95, hi * 1.05, int(np.clip(np.sqrt(alpha.size) * 2, 5, 40)))
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
    ax.hist(alpha, bins=bins, color=CG_COLOUR, edgecolor="white")
    ax.axvline(float(np.median(alpha)), color="k", lw=0.9,
               label=f"median {np.median(alpha):.3g} ({alpha.size} sets)")
    ax.set_xlabel("alpha = D_CG / D_AA")
    ax.set_ylabel("sets")
    ax.set_title("distribution of the acceleration factor", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    return _save(fig, path)


def alpha_parity_figure(m: ModelReport, path: Path) -> bool:
    """Predicted against measured alpha with the GP's 1-sigma interval, training and
    held-out sets apart."""
    if m.alpha_predicted is None or m.alpha_observed is None or m.alpha_observed.size == 0:
        return False
    obs, pred, std = m.alpha_observed, m.alpha_predicted, m.alpha_std
    test = m.is_test if m.is_test is not None else np.zeros(obs.size, bool)
    fig, ax = plt.subplots(figsize=(5.6, 5.0), layout="constrained")
    lo = float(min(obs.min(), (pred - std).min(), obs.min())) * 0.9
    hi = float(max(obs.max(), (pred + std).max())) * 1.1
    lo = max(lo, 1e-3)
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    for sel, colour, name in ((~test, CG_COLOUR, "training sets"),
                              (test, TEST_COLOUR, "held-out sets")):
        if sel.any():
            ax.errorbar(obs[sel], pred[sel], xerr=m.alpha_observed_err[sel], yerr=std[sel],
                        fmt="o", ms=4, color=colour, ecolor=colour, elinewidth=0.7,
                        alpha=0.85, capsize=2, label=f"{name} ({int(sel.sum())}), +-1 sigma")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("alpha measured (CG production)")
    ax.set_ylabel("alpha predicted (GP)")
    ax.set_title("acceleration-factor model: parity", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _save(fig, path)


def structure_parity_figure(m: ModelReport, path: Path) -> bool:
    """Predicted against IBI potential values on the grid (held-out sets), with the band
    of the cross-validated RMSE of the sampled region."""
    if m.u_predicted is None or m.u_ibi is None or m.u_ibi.size == 0:
        return False
    u_ibi, u_pred = m.u_ibi.ravel(), m.u_predicted.ravel()
    shown = u_ibi <= np.nanmin(u_ibi) + U_SPAN_KJ_MOL
    r = np.broadcast_to(m.u_r_nm, m.u_ibi.shape).ravel()[shown]
    u_ibi, u_pred = u_ibi[shown], u_pred[shown]
    fig, ax = plt.subplots(figsize=(5.6, 5.0), layout="constrained")
    lo = float(min(u_ibi.min(), u_pred.min())) - 0.5
    hi = float(max(u_ibi.max(), u_pred.max())) + 0.5
    grid = np.array([lo, hi])
    rmse = ((m.metadata.get("cv_mean") or {}).get("structure") or {}).get("rmse_sampled")
    if isinstance(rmse, float):
        ax.fill_between(grid, grid - rmse, grid + rmse, color=REF_COLOUR, alpha=0.15,
                        label=f"+- CV RMSE (sampled region) {rmse:.2f} kJ/mol")
    ax.plot(grid, grid, color="k", lw=0.8)
    sc = ax.scatter(u_ibi, u_pred, c=r, s=6, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="r / nm")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    which = "held-out" if m.u_from_test else "training"
    ax.set_xlabel("U from IBI / kJ mol⁻¹")
    ax.set_ylabel("U predicted / kJ mol⁻¹")
    ax.set_title(f"structure model: parity on {which} sets ({m.u_ibi.shape[0]})", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return _save(fig, path)


def validation_figure(validations: Sequence[Any], path: Path) -> bool:
    """Closed-loop validation: per set the RDF deviation of the predicted structure
    potential, and the relative errors of the rescaled and dynamics-route mobilities."""
    if not validations:
        return False
    labels = [v.param_id[:8] for v in validations]
    d_rdf = [v.structure.get("rdf_deviation") for v in validations]
    rescaled = [v.structure.get("d_rescaled_rel_error") for v in validations]
    dyn = [(v.dynamics or {}).get("d_rel_error") for v in validations]
    x = np.arange(len(validations))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11.0, 3.8), layout="constrained")
    a1.bar(x, [np.nan if d is None else d for d in d_rdf], color=CG_COLOUR)
    a1.set_ylabel("RDF deviation D of the predicted potential")
    a1.set_title("structure route: simulated RDF against the AA target", fontsize=10)
    a2.axhline(0.0, color="k", lw=0.6)
    a2.plot(x, [np.nan if e is None else 100 * e for e in rescaled], "o", color=CG_COLOUR,
            label="structure route: D_CG / alpha_pred vs D_AA")
    if any(e is not None for e in dyn):
        a2.plot(x, [np.nan if e is None else 100 * e for e in dyn], "s", color=TEST_COLOUR,
                label="dynamics route: D_CG vs D_AA")
    a2.set_ylabel("relative error / %")
    a2.set_title("mobility against the AA D", fontsize=10)
    a2.legend(fontsize=8, frameon=False)
    for ax in (a1, a2):
        ax.set_xticks(x, labels, rotation=60, fontsize=7)
    return _save(fig, path)
