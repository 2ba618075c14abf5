"""The report's HTML page: sections of figures and tables, no network needed to view it.

Images are PNG files beside the page (``figures/``), linked relatively, so the folder
can be copied or archived as it is. Every table can be sorted by clicking a column
header and copied as tab-separated text with its "copy" button (a few lines of inline
JavaScript, no library); the page also works without JavaScript (the tables are plain
HTML).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cgflow.stages.report.data import EXPERIMENTAL_DENSITY_G_CM3, ReportData, SetReport
from cgflow.units import density_kg_m3_to_g_cm3, diffusion_nm2_ps_to_m2_s

#: Above this many sets, the per-set figures load only when scrolled to (``loading=lazy``).
LAZY_IMAGES_ABOVE = 40

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1f4e79;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;opacity:.85;font-size:13px}
nav{background:#e8eef4;padding:6px 24px;font-size:13px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#1f4e79;text-decoration:none}
main{padding:8px 24px 40px;max-width:1400px}
section{margin:22px 0;padding:4px 0 10px;border-bottom:1px solid #ddd}
h2{font-size:18px;color:#1f4e79;margin:10px 0}h3{font-size:15px;margin:8px 0}
figure{margin:10px 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
figcaption{font-size:12px;color:#555;max-width:900px}
table{border-collapse:collapse;font-size:12px;background:#fff;margin:6px 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#eef2f6;cursor:pointer;user-select:none}th.sorted-up:after{content:" \\25B2"}
th.sorted-down:after{content:" \\25BC"}
td.l,th.l{text-align:left}
td.reason{white-space:normal;text-align:left;min-width:260px;max-width:560px}
.state-done{color:#1a7f37}.state-failed{color:#c62828;font-weight:600}
.state-unconverged{color:#b26a00;font-weight:600}
button.copy{font-size:11px;margin:2px 0;cursor:pointer}
.note{font-size:13px;color:#444;max-width:1000px}
.counts span{display:inline-block;margin-right:16px;font-size:14px}
details{margin:6px 0;background:#fff;border:1px solid #ddd;padding:4px 10px}
summary{cursor:pointer;font-size:14px}
"""

# Sorting (numbers by their data-v value, else text) and copying of the tables.
_JS = """
document.querySelectorAll("table.data").forEach(function(t){
  var head=t.tHead.rows[0];
  Array.prototype.forEach.call(head.cells,function(th,col){
    th.addEventListener("click",function(){
      var up=!th.classList.contains("sorted-up");
      Array.prototype.forEach.call(head.cells,function(c){c.classList.remove("sorted-up","sorted-down");});
      th.classList.add(up?"sorted-up":"sorted-down");
      var rows=Array.prototype.slice.call(t.tBodies[0].rows);
      function key(r){var c=r.cells[col];var v=c.getAttribute("data-v");
        return v===null?c.textContent.trim():(v===""?NaN:parseFloat(v));}
      rows.sort(function(a,b){var x=key(a),y=key(b);
        if(typeof x==="number"&&typeof y==="number"){
          if(isNaN(x))return 1;if(isNaN(y))return -1;return up?x-y:y-x;}
        return up?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});
    });
  });
});
document.querySelectorAll("button.copy").forEach(function(b){
  b.addEventListener("click",function(){
    var t=document.getElementById(b.getAttribute("data-table"));
    var text=Array.prototype.map.call(t.rows,function(r){
      return Array.prototype.map.call(r.cells,function(c){
        return c.textContent.trim();}).join("\\t");
    }).join("\\n");
    var a=document.createElement("textarea");a.value=text;document.body.appendChild(a);
    a.select();try{document.execCommand("copy");b.textContent="copied";}
    catch(e){b.textContent="select the table to copy";}
    document.body.removeChild(a);
  });
});
"""


def esc(x: Any) -> str:
    """HTML-escaped text of ``x``."""
    return html.escape(str(x), quote=True)


@dataclass(frozen=True)
class Column:
    """A table column: header, how to get a cell from a row, and whether it is text."""

    head: str
    cell: Callable[[Any], tuple[str, float | None]]
    text: bool = False
    cls: str = ""


def table(table_id: str, columns: Sequence[Column], rows: Sequence[Any]) -> str:
    """A sortable, copyable table: each cell is (shown text, sort value or None)."""
    out = [f'<button class="copy" data-table="{esc(table_id)}">copy table</button>',
           f'<table class="data" id="{esc(table_id)}"><thead><tr>']
    out += [f'<th class="{"l" if c.text else ""}">{esc(c.head)}</th>' for c in columns]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for c in columns:
            shown, value = c.cell(row)
            cls = c.cls or ("l" if c.text else "")
            attr = "" if c.text else f' data-v="{"" if value is None else f"{value:.10g}"}"'
            out.append(f'<td class="{cls}"{attr}>{shown}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _num(value: float | None, fmt: str, err: float | None = None) -> tuple[str, float | None]:
    if value is None:
        return "-", None
    text = format(value, fmt) + (f" &plusmn; {format(err, fmt)}" if err is not None else "")
    return text, float(value)


def figure(src: str | None, caption: str, *, lazy: bool = False, width: int | None = None
           ) -> str:
    """An image with its caption ('' when the figure was not drawn)."""
    if src is None:
        return ""
    load = ' loading="lazy"' if lazy else ""
    w = f' style="max-width:{width}px"' if width else ""
    return (f'<figure><img src="{esc(src)}" alt="{esc(caption)}"{load}{w}>'
            f"<figcaption>{caption}</figcaption></figure>")


def _d(x: float | None) -> float | None:
    return None if x is None else diffusion_nm2_ps_to_m2_s(x) * 1e9


def _best(s: SetReport, key: str) -> float | None:
    value = s.view.best_metrics.get(key)
    return None if value is None else float(value)


def _state_cell(s: SetReport) -> tuple[str, None]:
    group = s.state if s.state in ("done", "failed", "unconverged") else "running"
    return f'<span class="state-{group}">{esc(s.state)}</span>', None


def _set_link(s: SetReport) -> tuple[str, None]:
    return f'<a href="#set-{esc(s.view.key)}">{esc(s.label)}</a>', None


SET_COLUMNS = (
    Column("set", _set_link, text=True),
    Column("preset", lambda s: (esc(s.view.preset or "-"), None), text=True),
    Column("state", _state_cell, text=True),
    Column("density g/cm3", lambda s: _num(
        density_kg_m3_to_g_cm3(s.aa.density_kg_m3) if s.aa else None, ".4f",
        density_kg_m3_to_g_cm3(s.aa.density_err_kg_m3) if s.aa and s.aa.density_err_kg_m3
        is not None else None)),
    Column("P_AA bar", lambda s: _num(s.aa.pressure_bar if s.aa else None, ".0f",
                                      s.aa.pressure_err_bar if s.aa else None)),
    Column("D_AA 1e-9 m2/s", lambda s: _num(_d(s.aa.d_nm2_ps) if s.aa else None, ".3f",
                                            _d(s.aa.d_err_nm2_ps) if s.aa else None)),
    Column("IBI it.", lambda s: _num(len(s.iterations) if s.iterations else None, "d")),
    Column("RDF dev D", lambda s: _num(_best(s, "rdf_deviation") if s.view.potential
                                       else None, ".4f")),
    Column("D tol.", lambda s: _num(s.rdf_tolerance, "g")),
    Column("dP bar", lambda s: _num(_best(s, "pressure_deviation_bar") if s.view.potential
                                    else None, "+.0f")),
    Column("dP tol. bar", lambda s: _num(s.pressure_tolerance_bar, ".0f")),
    Column("D_CG 1e-9 m2/s", lambda s: _num(
        _d(s.view.cg_run.d_cg_nm2_ps.mean) if s.view.cg_run and s.view.cg_run.d_cg_nm2_ps
        else None, ".2f",
        _d(s.view.cg_run.d_cg_nm2_ps.err) if s.view.cg_run and s.view.cg_run.d_cg_nm2_ps
        else None)),
    Column("alpha", lambda s: _num(s.view.alpha, ".2f", s.view.alpha_err)),
    Column("reason", lambda s: (esc(s.reason), None), text=True, cls="reason"),
)


def _counts(sets: Sequence[SetReport]) -> str:
    c = Counter("running" if s.state not in ("done", "failed", "unconverged", "waiting")
                else s.state for s in sets)
    parts = [f"<span><b>{len(sets)}</b> sets</span>"]
    parts += [f'<span class="state-{k}"><b>{v}</b> {esc(k)}</span>'
              for k, v in sorted(c.items())]
    return '<p class="counts">' + "".join(parts) + "</p>"


def _models_section(data: ReportData, figs: dict[str, str | None]) -> str:
    m = data.models
    if m is None:
        return ('<p class="note">This campaign has not trained models (the final training '
                "Firework has not run, or the campaign has no CG stage).</p>")
    if m.status != "trained":
        return (f'<p class="note">No models: {esc(m.status)}: {esc(m.message)}</p>')
    meta = m.metadata
    rows = []
    for block_name, block in (("cross-validation mean", meta.get("cv_mean") or {}),
                              ("held-out test", meta.get("test") or {})):
        if not block:
            continue
        s, d = block.get("structure") or {}, block.get("dynamics") or {}
        a, rf = block.get("alpha") or {}, block.get("alpha_random_forest") or {}
        rows.append({"split": block_name, "u_well": s.get("rmse_well"),
                     "u_sampled": s.get("rmse_sampled"), "dyn_well": d.get("rmse_well"),
                     "a_rmse": a.get("rmse"), "a_r2": a.get("r2"),
                     "a_cov": a.get("coverage_1sigma"), "rf_rmse": rf.get("rmse"),
                     "rf_r2": rf.get("r2")})

    def n(key: str, fmt: str) -> Callable[[dict], tuple[str, float | None]]:
        return lambda r: _num(r[key] if isinstance(r[key], float | int) else None, fmt)

    cols = (Column("split", lambda r: (esc(r["split"]), None), text=True),
            Column("structure U RMSE well kJ/mol", n("u_well", ".3f")),
            Column("structure U RMSE sampled kJ/mol", n("u_sampled", ".3f")),
            Column("dynamics U RMSE well kJ/mol", n("dyn_well", ".3f")),
            Column("alpha GP RMSE", n("a_rmse", ".3f")), Column("alpha GP R2", n("a_r2", ".2f")),
            Column("GP 1-sigma coverage", n("a_cov", ".2f")),
            Column("alpha random forest RMSE", n("rf_rmse", ".3f")),
            Column("random forest R2", n("rf_r2", ".2f")))
    trained_on = meta.get("n_sets", "?")
    out = [f'<p class="note">Trained on {esc(trained_on)} converged sets (data hash '
           f'{esc(str(meta.get("dataset_hash", ""))[:12])}, source '
           f'{esc(meta.get("data_source", "database"))}). The held-out sets are those the '
           "models did not see.</p>", table("models-table", cols, rows)]
    out.append(figure(figs.get("alpha_parity"), "Acceleration factor: GP prediction with its "
                      "1-sigma interval against the measured alpha (with its error), for "
                      "the campaign's converged sets; the line is parity."))
    out.append(figure(figs.get("structure_parity"), "Structure-preserving model: predicted "
                      "against IBI potential on the grid (up to 12 kJ/mol above the well), "
                      "coloured by r; the band is the cross-validated RMSE."))
    out.append('<p class="note">Learning curves are not part of a campaign\'s training: '
               "<code>benchmarks/ml/learning_curve.py</code> draws them for a dataset "
               "(<code>cgflow dataset export</code>).</p>")
    return "".join(out)


def _validation_section(data: ReportData, figs: dict[str, str | None]) -> str:
    if not data.validations:
        return ('<p class="note">No closed-loop validation stored for this campaign\'s models '
                "(<code>cgflow validate --campaign NAME</code> runs one).</p>")

    def rel(x: float | None) -> tuple[str, float | None]:
        return _num(None if x is None else 100 * x, "+.0f")

    cols = (Column("set", lambda v: (esc(v.param_id), None), text=True),
            Column("preset", lambda v: (esc(v.preset), None), text=True),
            Column("alpha predicted", lambda v: _num(v.alpha_pred, ".2f", v.alpha_std)),
            Column("RDF dev D (structure)", lambda v: _num(v.structure.get("rdf_deviation"),
                                                           ".3f")),
            Column("D_CG/alpha vs D_AA %", lambda v: rel(v.structure.get("d_rescaled_rel_error"))),
            Column("dynamics D_CG vs D_AA %",
                   lambda v: rel((v.dynamics or {}).get("d_rel_error"))),
            Column("warnings", lambda v: (esc("; ".join(v.warnings)), None), text=True,
                   cls="reason"))
    return (table("validation-table", cols, data.validations)
            + figure(figs.get("validation"), "Closed loop: each predicted potential simulated "
                     "as the CG stage runs one, against the set's all-atom results."))


def _rounds_section(data: ReportData) -> str:
    """One row per round of an active-learning campaign (what
    ``cgflow campaign rounds`` prints)."""
    def ids(doc: Any) -> tuple[str, None]:
        return esc(", ".join(c.param_id for c in doc.chosen) or doc.reason), None

    cols = (Column("round", lambda d: _num(d.round, "d")),
            Column("status", lambda d: (esc(d.status), None), text=True),
            Column("criterion", lambda d: (esc(d.selection.criterion if d.selection else "-"),
                                           None), text=True),
            Column("trained on", lambda d: _num(len(d.train_param_ids), "d")),
            Column("with alpha", lambda d: _num(d.n_train_alpha, "d")),
            Column("candidates", lambda d: _num(d.n_candidates, "d")),
            Column("max std log(alpha)", lambda d: _num(d.max_alpha_std, ".3f")),
            Column("chosen sets (or why it stopped)", ids, text=True, cls="reason"))
    return (table("rounds-table", cols, data.rounds)
            + '<p class="note">Each round chose its sets from candidates drawn from the '
            "parameter space with the models trained on the results stored before it "
            "(<code>cgflow campaign rounds NAME --replay</code> recomputes the choice).</p>")


def _problems(sets: Sequence[SetReport]) -> str:
    bad = [s for s in sets if s.state in ("failed", "unconverged")]
    if not bad:
        return '<p class="note">No failed or unconverged set.</p>'
    cols = (Column("set", _set_link, text=True), Column("state", _state_cell, text=True),
            Column("IBI it.", lambda s: _num(len(s.iterations) if s.iterations else None, "d")),
            Column("reason", lambda s: (esc(s.reason or "not recorded"), None), text=True,
                   cls="reason"))
    return table("problems-table", cols, bad)


def _set_section(s: SetReport, src: str | None, lazy: bool, open_: bool) -> str:
    facts = []
    v = s.view
    if v.aa_run is not None:
        facts.append(f"AA run {esc(v.aa_run.status)}"
                     + (f", {v.aa_run.total_wall_s:.0f} s" if v.aa_run.total_wall_s else ""))
    if v.potential is not None:
        facts.append(f"IBI: {esc(v.potential.reason)}")
    if s.reason and s.state in ("failed",):
        facts.append(f"failure: {esc(s.reason)}")
    if not s.stored:
        facts.append("nothing stored yet")
    body = figure(src, "Left to right, top to bottom: the AA target RDF and the CG RDF of "
                  "the kept IBI iteration; the CG pair potential and its force; the RDF "
                  "deviation D and the pressure deviation per IBI iteration with the "
                  "tolerances; the AA MSD with its fit window (and the CG diffusion).",
                  lazy=lazy)
    return (f'<details id="set-{esc(v.key)}"{" open" if open_ else ""}><summary>'
            f"<b>{esc(s.label)}</b> ({esc(v.preset or '-')}): {_state_cell(s)[0]}"
            f"{' &mdash; ' + '; '.join(facts) if facts else ''}</summary>{body}</details>")


def render_page(data: ReportData, figs: dict[str, str | None],
                set_figs: dict[str, str | None]) -> str:
    """The whole page. ``figs``: figure name -> relative path (None: not drawn);
    ``set_figs``: set key -> relative path of its figure."""
    spec = data.spec
    ibi = spec.get("ibi") or {}
    facts = [f"{k} {esc(spec[k])}" for k in ("preset", "space", "n_sets", "sampling", "seed")
             if k in spec]
    if "cg_stage" in spec:
        facts.append("CG stage" if spec["cg_stage"] else "all-atom only")
    if ibi:
        facts.append(f"IBI tolerances D {esc(ibi.get('rdf_tolerance'))}, dP "
                     f"{esc(ibi.get('pressure_tolerance_bar'))} bar (at least the AA pressure "
                     "error per set)")
    lazy = len(data.sets) > LAZY_IMAGES_ABOVE
    exp = ", ".join(f"{v:g} g/cm<sup>3</sup> at {t:g} C" for t, v in
                    sorted(EXPERIMENTAL_DENSITY_G_CM3.items()))
    sections = [
        ("overview", "Sets", _counts(data.sets) + (f'<p class="note">{"; ".join(facts)}.</p>'
                                                  if facts else "")
         + table("sets-table", SET_COLUMNS, data.sets)
         + '<p class="note">Errors are standard errors (block averages, fits). D: RDF '
         "deviation of the kept IBI iteration; dP = P_CG - P_AA. Click a header to sort, "
         "a set to see its figures.</p>"),
        ("problems", "Failed and unconverged sets", _problems(data.sets)),
        ("density", "Density", figure(figs.get("density"), f"All-atom density of each set "
                                      f"with its error; experiment: {exp} (CRC Handbook).")),
        ("dynamics", "Dynamics", figure(figs.get("diffusion"), "Left: D_CG against D_AA with "
                                        "their errors (dotted: constant alpha). Right: alpha "
                                        "per set.")
         + figure(figs.get("alpha_distribution"), "Distribution of alpha over the campaign.")
         or '<p class="note">No CG production finished yet.</p>'),
        *([("rounds", "Active-learning rounds", _rounds_section(data))] if data.rounds
          else []),
        ("models", "Models", _models_section(data, figs)),
        ("validation", "Closed-loop validation", _validation_section(data, figs)),
        ("per-set", "Per set", "".join(_set_section(s, set_figs.get(s.view.key), lazy,
                                                    open_=len(data.sets) <= 3)
                                       for s in data.sets)),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2>{content}</section>'
                   for sid, title, content in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>cgflow report: {esc(data.campaign)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>Campaign {esc(data.campaign)}</h1><p>cgflow report, made "
        f"{esc(data.generated_utc)} from the job database; 2,3,4-trimethylpentane, one CG "
        f"bead per molecule.</p></header><nav>{nav}</nav><main>{body}</main>"
        f"<script>{_JS}</script></body></html>\n")
