"""The ``cgflow`` command: the front door to the job database, campaigns and results.

Subcommands::

    cgflow db start|stop|status|env     embedded job database (SecantusDB)
    cgflow campaign build SPEC -o wf.yaml   write a workflow file for `lpad add`
    cgflow campaign submit SPEC         validate and queue a campaign
    cgflow campaign results NAME        table of a campaign's results
    cgflow launch                       run queued Fireworks (rlaunch rapidfire)
    cgflow params check FILE            validate a parameter set file
    cgflow demo                         the README's main job, end to end
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from cgflow.errors import CgflowError, InvalidInputError

REPO_WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def _print(msg: str = "") -> None:
    print(msg, flush=True)


# --- database ---------------------------------------------------------------------------


def _server():
    from cgflow.db.server import EmbeddedServer

    return EmbeddedServer()


def cmd_db(args: argparse.Namespace) -> int:
    from cgflow.orchestration.fw_configs import fw_config_dir, write_embedded_configs

    server = _server()
    if args.action == "start":
        uri = server.start()
        lp = write_embedded_configs(uri)
        _print(f"embedded job database running at {uri}")
        _print(f"launchpad file: {lp}")
        fw_config = lp.parent / "FW_config.yaml"
        _print(f"for plain lpad/rlaunch/qlaunch: export FW_CONFIG_FILE={fw_config}")
    elif args.action == "stop":
        server.stop()
        _print("embedded job database stopped")
    elif args.action == "status":
        st = server.status()
        if st.running:
            _print(f"running: pid {st.pid}, {st.uri}")
        else:
            _print("not running")
        _print(f"data: {st.data_dir}")
        return 0 if st.running else 3
    elif args.action == "env":
        _print(f"export FW_CONFIG_FILE={fw_config_dir() / 'FW_config.yaml'}")
        _print(f"export CGFLOW_DB_FILE={fw_config_dir() / 'my_launchpad.yaml'}")
    return 0


def _launchpad_file(args: argparse.Namespace) -> Path:
    """The launchpad file: -l, else the embedded server's (started if needed)."""
    if getattr(args, "launchpad", None):
        return Path(args.launchpad)
    from cgflow.orchestration.fw_configs import write_embedded_configs

    uri = _server().start()
    return write_embedded_configs(uri)


def _is_embedded(lp_file: Path) -> bool:
    from cgflow.db.launcher_lock import is_embedded

    host = (yaml.safe_load(lp_file.read_text()) or {}).get("host", "")
    return is_embedded(str(host))


def _embedded_guard(lp_file: Path):
    """The one-launcher lock when ``lp_file`` is the embedded server, else a no-op."""
    import contextlib

    if _is_embedded(lp_file):
        from cgflow.db.launcher_lock import exclusive_launcher

        return exclusive_launcher(lp_file)
    return contextlib.nullcontext()


# --- campaigns ------------------------------------------------------------------------------


def _load_spec(path: str):
    from cgflow.orchestration.campaign import load_campaign_spec

    p = Path(path)
    if not p.exists() and (REPO_WORKFLOWS / path).exists():
        p = REPO_WORKFLOWS / path
    if not p.exists() and (REPO_WORKFLOWS / f"{path}.yaml").exists():
        p = REPO_WORKFLOWS / f"{path}.yaml"
    return load_campaign_spec(p)


def cmd_campaign_build(args: argparse.Namespace) -> int:
    from cgflow.orchestration.workflows import campaign_workflow

    spec, sets = _load_spec(args.spec)
    wf = campaign_workflow(spec, sets, category=args.category)
    out = Path(args.output)
    wf.to_file(str(out))
    _print(f"campaign {spec.name}: {len(sets)} parameter set(s), {len(wf.fws)} Fireworks "
           f"-> {out} (queue it with: lpad add {out})")
    return 0


def submit_campaign(spec_path: str, lp_file: Path, category: str = "cgflow") -> tuple[Any, list]:
    """Validate a spec and add its workflow to the LaunchPad of ``lp_file``.

    The spec is validated completely before anything is written to the database.
    """
    from fireworks import LaunchPad

    from cgflow.db.store import Store
    from cgflow.orchestration.workflows import campaign_workflow

    spec, sets = _load_spec(spec_path)
    wf = campaign_workflow(spec, sets, category=category)
    lp = LaunchPad.from_file(str(lp_file))
    with _embedded_guard(lp_file):
        ensure_launchpad_initialised(lp)
        with Store.from_launchpad(lp) as store:
            store.ensure_indexes()
        lp.add_wf(wf)
    return spec, sets


def ensure_launchpad_initialised(lp: Any) -> None:
    """Initialise a LaunchPad database that has never been used (no id counters, no
    Fireworks); a database already in use is left untouched but for cgflow's index on
    ``spec.campaign`` (created if missing)."""
    if lp.fw_id_assigner.find_one({}) is None and lp.fireworks.count_documents({}) == 0:
        lp.reset("", require_password=False)
    # cgflow finds a campaign's Fireworks by spec.campaign (status, progress)
    lp.fireworks.create_index("spec.campaign", name="cgflow_campaign")


def cmd_campaign_submit(args: argparse.Namespace) -> int:
    lp_file = _launchpad_file(args)
    spec, sets = submit_campaign(args.spec, lp_file, args.category)
    _print(f"queued campaign {spec.name}: {len(sets)} parameter set(s) on {lp_file}")
    return 0


def cmd_campaign_status(args: argparse.Namespace) -> int:
    from fireworks import LaunchPad

    from cgflow.db.store import Store
    from cgflow.orchestration.status import campaign_status, format_status

    lp = LaunchPad.from_file(str(_launchpad_file(args)))
    with Store.from_launchpad(lp) as store:
        status = campaign_status(lp, store, args.name)
    if not status.sets:
        raise InvalidInputError(f"campaign {args.name!r}: no Fireworks in this database")
    _print(format_status(status))
    return 0


def cmd_potentials(args: argparse.Namespace) -> int:
    from cgflow.cli.potentials import cmd_potentials as run
    from cgflow.db.store import Store

    with Store.from_launchpad_file(str(_launchpad_file(args))) as store:
        return run(args, store)


def cmd_models(args: argparse.Namespace) -> int:
    from cgflow.db.store import Store

    with Store.from_launchpad_file(str(_launchpad_file(args))) as store:
        if args.action == "train":
            from cgflow.orchestration.firetasks.train import train_campaign_models

            if not args.campaign:
                raise InvalidInputError("cgflow models train: --campaign is required")
            out = train_campaign_models(store, args.campaign, args.preset, args.seed,
                                        dataset=args.dataset)
            _print(f"campaign {args.campaign}: {out['status']}: "
                   f"{out.get('message') or ', '.join(out.get('models', []))}")
            return 0 if out["status"] == "trained" else 1
        docs = store.models(campaign=args.campaign)
        if args.action == "list":
            if not docs:
                _print("no models stored" + (f" for campaign {args.campaign!r}"
                                             if args.campaign else ""))
            for d in docs:
                m = d.metadata
                if d.kind == "status":
                    _print(f"{d.campaign:20s} {d.name:18s} {m.get('status', ''):18s} "
                           f"{m.get('message', '').splitlines()[0] if m.get('message') else ''}")
                else:
                    _print(f"{d.campaign:20s} {d.name:18s} {'trained':18s} "
                           f"{m.get('n_sets', '?')} sets, data {str(m.get('dataset_hash'))[:12]}, "
                           f"{d.blob_size or 0} bytes")
        else:
            for d in docs:
                if args.name and d.name != args.name:
                    continue
                _print(json.dumps(d.model_dump(mode="json"), indent=2, default=str))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cgflow.db.store import Store
    from cgflow.ml.predict import predict_potentials
    from cgflow.orchestration.firetasks.train import load_campaign_models
    from cgflow.params import parameter_set_from_mapping
    from cgflow.stages.predict import write_prediction

    values: dict[str, Any] = {}
    if args.file:
        path = Path(args.file)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInputError(f"{path}: cannot read parameter set: {exc}") from None
    for item in args.set or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--set: expected FIELD=VALUE, got {item!r}")
        try:
            values[k] = float(v)
        except ValueError:
            raise InvalidInputError(f"--set: field {k!r}: value {v!r} is not a number") from None
    ps = parameter_set_from_mapping(values, units_system=args.units,
                                    source=args.file or "command line")
    with Store.from_launchpad_file(str(_launchpad_file(args))) as store:
        models = load_campaign_models(store, args.campaign)
    t0 = time.perf_counter()
    pred = predict_potentials(models, ps)
    ms = (time.perf_counter() - t0) * 1e3
    files = write_prediction(pred, Path(args.output))
    for w in pred.out_of_space:
        print(f"warning: {w}", file=sys.stderr)
    _print(f"parameter set {ps.id}: predicted alpha = {pred.alpha:.3f} +- {pred.alpha_std:.3f} "
           f"({ms:.1f} ms)")
    for f in files:
        _print(f"wrote {f}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from cgflow.cli.validate import cmd_validate as run
    from cgflow.db.store import Store

    with Store.from_launchpad_file(str(_launchpad_file(args))) as store:
        return run(args, store)


def cmd_dataset_export(args: argparse.Namespace) -> int:
    from cgflow.db.store import Store
    from cgflow.stages.dataset import export_campaign

    with Store.from_launchpad_file(str(_launchpad_file(args))) as store:
        out = export_campaign(store, args.name, args.output, preset=args.preset)
    _print(f"campaign {args.name}: {out['n_converged']} converged of {out['n_sets']} sets, "
           f"dataset {out['dataset_hash'][:12]}")
    for f in out["files"]:
        _print(f"wrote {f}")
    return 0


def cmd_dataset_merge(args: argparse.Namespace) -> int:
    from cgflow.stages.dataset import merge_exports

    out = merge_exports(args.folders, args.output, name=args.name)
    _print(f"dataset {out['campaign']}: {out['n_converged']} converged of {out['n_sets']} "
           f"sets, dataset {out['dataset_hash'][:12]}")
    for f in out["files"]:
        _print(f"wrote {f}")
    return 0


def cmd_campaign_results(args: argparse.Namespace) -> int:
    from cgflow.db.store import Store

    lp_file = _launchpad_file(args)
    store = Store.from_launchpad_file(str(lp_file))
    rows = results_table(store, args.name)
    if args.json:
        _print(json.dumps(rows, indent=2))
    else:
        _print(format_results_table(rows))
    return 0


# --- launching and progress ---------------------------------------------------------------


def _rlaunch_cmd(lp_file: Path, fworker_file: Path | None) -> list[str]:
    exe = Path(sys.executable).with_name("rlaunch")
    cmd = [str(exe) if exe.exists() else "rlaunch", "-l", str(lp_file)]
    if fworker_file is not None:
        cmd += ["-w", str(fworker_file)]
    return cmd + ["rapidfire"]


def launch(lp_file: Path, *, campaign: str | None = None, fworker_file: Path | None = None,
           log_path: Path | None = None, poll_s: float = 5.0) -> int:
    """Run ``rlaunch rapidfire`` until nothing is ready, showing the campaign's progress.

    On the embedded server only one launcher may run at a time (the lock refuses a
    second one with a message pointing to MongoDB).
    """
    from fireworks import LaunchPad

    lp = LaunchPad.from_file(str(lp_file))
    env = dict(os.environ, CGFLOW_DB_FILE=str(lp_file))
    log_path = log_path or lp_file.parent / "rlaunch.log"
    with _embedded_guard(lp_file), open(log_path, "ab") as log:
        _print(f"launching (rlaunch rapidfire, log: {log_path})")
        launch_dir = lp_file.parent.parent / "launches"
        launch_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(_rlaunch_cmd(lp_file, fworker_file), stdout=log,  # noqa: S603
                                stderr=subprocess.STDOUT, env=env, cwd=launch_dir)
        watcher = ProgressPrinter(lp, campaign) if campaign else None
        while proc.poll() is None:
            if watcher:
                watcher.update()
            time.sleep(poll_s)
        if watcher:
            watcher.update()
    if proc.returncode != 0:
        _print(f"rlaunch exited with code {proc.returncode}; see {log_path}")
    return proc.returncode


class ProgressPrinter:
    """Prints a line whenever a Firework of the campaign changes state."""

    def __init__(self, launchpad: Any, campaign: str) -> None:
        self.lp = launchpad
        self.campaign = campaign
        self.seen: dict[int, str] = {}
        self.t0 = time.time()

    def update(self) -> None:
        from cgflow.db.fw_queries import campaign_fireworks

        fws = campaign_fireworks(self.lp, self.campaign)
        sets = {f.param_id for f in fws if f.param_id}
        n_sets = len(sets)
        done_sets = sets - {f.param_id for f in fws if f.state != "COMPLETED"}
        order = {"COMPLETED": 0, "FIZZLED": 1, "RUNNING": 2}
        for f in sorted(fws, key=lambda f: (order.get(f.state, 3), f.fw_id)):
            if self.seen.get(f.fw_id) != f.state and f.state in order:
                el = time.time() - self.t0
                stamp = f"{int(el // 3600):02d}:{int(el % 3600 // 60):02d}:{int(el % 60):02d}"
                _print(f"[{stamp}] {f.label:18s} {f.stage:15s} {f.state:10s} "
                       f"({len(done_sets)}/{n_sets} sets done)")
            self.seen[f.fw_id] = f.state


def cmd_launch(args: argparse.Namespace) -> int:
    lp_file = _launchpad_file(args)
    fworker = Path(args.fworker) if args.fworker else lp_file.parent / "my_fworker.yaml"
    return launch(lp_file, campaign=args.campaign,
                  fworker_file=fworker if fworker.exists() else None)


# --- results --------------------------------------------------------------------------------


def results_table(store: Any, campaign: str) -> list[dict[str, Any]]:
    """One row per parameter set of the campaign (all-atom results so far)."""
    from cgflow.params import OPLSAA_REFERENCE
    from cgflow.units import density_kg_m3_to_g_cm3, diffusion_nm2_ps_to_m2_s

    rows = []
    for run in store.aa_runs(campaign=campaign):
        row: dict[str, Any] = {
            "param_id": run.param_id,
            "label": "reference" if run.param_id == OPLSAA_REFERENCE.id else run.param_id,
            "status": run.status,
            "wall_s": run.total_wall_s,
        }
        r = run.results
        if r is not None:
            row.update({
                "density_g_cm3": density_kg_m3_to_g_cm3(r.density_kg_m3),
                "density_err_g_cm3": density_kg_m3_to_g_cm3(r.density_err_kg_m3),
                "d_aa_m2_s": diffusion_nm2_ps_to_m2_s(r.d_nm2_ps),
                "d_aa_err_m2_s": diffusion_nm2_ps_to_m2_s(r.d_err_nm2_ps),
                "pressure_bar": r.pressure_bar,
                "pressure_err_bar": r.pressure_err_bar,
            })
        pot = store.get_potential(run.param_id, run.preset)
        if pot is not None:
            best = (pot.metrics_history[pot.best_iteration]
                    if pot.best_iteration is not None and pot.metrics_history else {})
            row.update({"ibi_converged": pot.converged, "ibi_iterations": pot.n_iterations,
                        "rdf_deviation": best.get("rdf_deviation")})
        cg = store.get_cg_run(run.param_id, run.preset)
        if cg is not None and cg.alpha is not None:
            row.update({
                "d_cg_m2_s": diffusion_nm2_ps_to_m2_s(cg.d_cg_nm2_ps.mean),
                "d_cg_err_m2_s": diffusion_nm2_ps_to_m2_s(cg.d_cg_nm2_ps.err or 0.0),
                "alpha": cg.alpha.mean, "alpha_err": cg.alpha.err,
            })
        rows.append(row)
    return rows


def _pm(value: Any, err: Any, fmt: str, scale: float = 1.0) -> str:
    if value is None:
        return "-"
    e = f" +- {format(err * scale, fmt)}" if err is not None else ""
    return f"{format(value * scale, fmt)}{e}"


def format_results_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of :func:`results_table` rows (CG columns when any set has them).

    Units: density g/cm^3, D in 1e-9 m^2/s, wall time (all-atom stage) in s.
    """
    with_cg = any("ibi_iterations" in r for r in rows)
    head = (f"{'parameter set':18s} {'status':10s} {'density g/cm3':>17s} "
            f"{'D_AA 1e-9 m2/s':>15s} {'AA wall s':>9s}")
    if with_cg:
        head += (f" {'D_CG 1e-9 m2/s':>16s} {'alpha':>13s} {'IBI it':>6s} {'conv':>5s} "
                 f"{'RDF dev':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        dens = _pm(r.get("density_g_cm3"), r.get("density_err_g_cm3"), ".4f")
        d = _pm(r.get("d_aa_m2_s"), r.get("d_aa_err_m2_s"), ".3f", 1e9)
        wall = f"{r['wall_s']:.0f}" if r.get("wall_s") else "-"
        line = f"{r['label']:18s} {r['status']:10s} {dens:>17s} {d:>15s} {wall:>9s}"
        if with_cg:
            dcg = _pm(r.get("d_cg_m2_s"), r.get("d_cg_err_m2_s"), ".2f", 1e9)
            al = _pm(r.get("alpha"), r.get("alpha_err"), ".2f")
            it = str(r.get("ibi_iterations", "-"))
            conv = {True: "yes", False: "no"}.get(r.get("ibi_converged"), "-")
            dev = f"{r['rdf_deviation']:.4f}" if r.get("rdf_deviation") is not None else "-"
            line += f" {dcg:>16s} {al:>13s} {it:>6s} {conv:>5s} {dev:>8s}"
        lines.append(line)
    return "\n".join(lines)


# --- demo -------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from fireworks import LaunchPad

    from cgflow.db.fw_queries import campaign_workflow_states
    from cgflow.db.store import Store
    from cgflow.orchestration.fw_configs import write_embedded_configs

    server = _server()
    uri = server.start()
    lp_file = write_embedded_configs(uri)
    _print(f"[demo] embedded job database at {uri} (data kept in {server.status().data_dir})")
    spec, sets = submit_campaign(args.spec, lp_file)
    _print(f"[demo] queued campaign '{spec.name}': {len(sets)} parameter sets, preset "
           f"'{spec.preset}' ({spec.aa_preset.n_molecules} molecules, "
           f"{spec.aa_preset.production_ps:g} ps production each)")
    rc = launch(lp_file, campaign=spec.name, fworker_file=lp_file.parent / "my_fworker.yaml")
    lp = LaunchPad.from_file(str(lp_file))
    states = campaign_workflow_states(lp, spec.name)
    _print(f"[demo] workflow state: {states[-1] if states else 'unknown'}")
    store = Store.from_launchpad_file(str(lp_file))
    _print()
    _print(format_results_table(results_table(store, spec.name)))
    _print()
    _print(f"lpad: lpad -l {lp_file} get_wflows -d less")
    return 0 if rc == 0 and states and states[-1] == "COMPLETED" else 1


# --- parameters -------------------------------------------------------------------------------


def cmd_params_check(args: argparse.Namespace) -> int:
    from cgflow.params import parameter_set_from_mapping

    path = Path(args.file)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path}: malformed YAML: {exc}") from None
    ps = parameter_set_from_mapping(data, units_system=args.units, source=str(path))
    _print(f"valid parameter set, id {ps.id}")
    _print(ps.summary())
    return 0


# --- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cgflow", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the embedded job database")
    db.add_argument("action", choices=["start", "stop", "status", "env"])
    db.set_defaults(func=cmd_db)

    camp = sub.add_parser("campaign", help="build, submit and inspect campaigns")
    csub = camp.add_subparsers(dest="campaign_cmd", required=True)
    b = csub.add_parser("build", help="write a campaign's workflow file for `lpad add`")
    b.add_argument("spec")
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--category", default="cgflow")
    b.set_defaults(func=cmd_campaign_build)
    s = csub.add_parser("submit", help="validate and queue a campaign")
    s.add_argument("spec")
    s.add_argument("-l", "--launchpad")
    s.add_argument("--category", default="cgflow")
    s.set_defaults(func=cmd_campaign_submit)
    r = csub.add_parser("results", help="results of a campaign")
    r.add_argument("name")
    r.add_argument("-l", "--launchpad")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_campaign_results)

    st = csub.add_parser("status", help="stages, running/queued/failed Fireworks of a campaign")
    st.add_argument("name")
    st.add_argument("-l", "--launchpad")
    st.set_defaults(func=cmd_campaign_status)

    from cgflow.cli.potentials import add_parser as add_potentials

    add_potentials(sub, cmd_potentials)

    mo = sub.add_parser("models", help="models trained by a campaign's final Firework")
    mo.add_argument("action", choices=["list", "show", "train"],
                    help="train: (re)train a campaign's models now, as its final Firework does")
    mo.add_argument("name", nargs="?")
    mo.add_argument("--campaign")
    mo.add_argument("--preset", help="train: only sets run with this preset")
    mo.add_argument("--seed", type=int, default=0, help="train: seed of split and models")
    mo.add_argument("--dataset", help="train: from this exported dataset.npz (e.g. of "
                    "'cgflow dataset merge') instead of the campaign's stored sets; the "
                    "models are stored under --campaign")
    mo.add_argument("-l", "--launchpad")
    mo.set_defaults(func=cmd_models)

    pr = sub.add_parser("predict", help="CG potential tables and alpha from AA parameters")
    pr.add_argument("file", nargs="?", help="parameter set (YAML or JSON)")
    pr.add_argument("--set", action="append", metavar="FIELD=VALUE",
                    help="a parameter value (repeatable; overrides the file)")
    pr.add_argument("--units", choices=["gromacs", "lammps"], default="gromacs")
    pr.add_argument("--campaign", required=True, help="whose models to use")
    pr.add_argument("-o", "--output", default="prediction")
    pr.add_argument("-l", "--launchpad")
    pr.set_defaults(func=cmd_predict)

    from cgflow.cli.validate import add_parser as add_validate

    add_validate(sub, cmd_validate)

    ds = sub.add_parser("dataset", help="a campaign's results as files")
    dsub = ds.add_subparsers(dest="dataset_cmd", required=True)
    de = dsub.add_parser("export", help="write dataset.npz and sets.json of a campaign")
    de.add_argument("name")
    de.add_argument("-o", "--output", required=True)
    de.add_argument("--preset")
    de.add_argument("-l", "--launchpad")
    de.set_defaults(func=cmd_dataset_export)
    dm = dsub.add_parser("merge", help="merge exported folders (e.g. of several campaigns)")
    dm.add_argument("folders", nargs="+", help="folders written by 'cgflow dataset export'")
    dm.add_argument("-o", "--output", required=True)
    dm.add_argument("--name", help="name of the merged dataset (default: the campaigns "
                    "joined by '+')")
    dm.set_defaults(func=cmd_dataset_merge)

    la = sub.add_parser("launch", help="run queued Fireworks (rlaunch rapidfire)")
    la.add_argument("-l", "--launchpad")
    la.add_argument("-w", "--fworker")
    la.add_argument("--campaign", help="show progress of this campaign")
    la.set_defaults(func=cmd_launch)

    pa = sub.add_parser("params", help="parameter sets")
    psub = pa.add_subparsers(dest="params_cmd", required=True)
    c = psub.add_parser("check", help="validate a parameter set file (YAML or JSON)")
    c.add_argument("file")
    c.add_argument("--units", choices=["gromacs", "lammps"], default="gromacs")
    c.set_defaults(func=cmd_params_check)

    d = sub.add_parser("demo", help="run the demo campaign end to end on the embedded database")
    d.add_argument("--spec", default=str(REPO_WORKFLOWS / "demo.yaml"))
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cgflow`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InvalidInputError as exc:
        print(f"cgflow: invalid input: {exc}", file=sys.stderr)
        return 2
    except CgflowError as exc:
        print(f"cgflow: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
