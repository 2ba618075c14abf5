"""What cgflow survives: faults injected at random points, counted.

    .venv/bin/python benchmarks/faults.py                 # every fault, default trials
    .venv/bin/python benchmarks/faults.py --trials 5 --only submit_refused truncated_output

Each fault is a function ``fault(trials, rng, env) -> Tally`` that injects the fault
``trials`` times at random points and counts what happened:

``survived``
    cgflow noticed and ended in a sound state (nothing half-written, a clear error, a
    refused output, a Firework fizzled with a reason naming the cause).
``lost``
    something was left wrong: half a workflow in the database, a truncated output
    accepted, a set stored as converged that is not, a set that vanished.
``duplicated``
    the same work queued or run twice.

The faults (cheap ones; the ones that need long engine runs are in the test suite):

``bad_input``
    the table of hostile inputs of ``tests/test_bad_input.py`` (every command that reads a
    user file); counts inputs, clear errors, tracebacks and writes.
``fuzz_specs``, ``fuzz_parameter_sets``
    random campaign specs and parameter sets (hypothesis): only clear errors or valid
    results, never another exception.
``submit_refused``
    the database refuses the k-th write of a submission (k random): the campaign is in
    the database whole or not at all; submitting again then queues it once.
``submit_twice``
    the same campaign submitted 2-4 times: queued once.
``truncated_output``
    a finished LAMMPS IBI run (``tests/data/lammps_failures/finished_ibi``) with its log,
    RDF or pressure file cut at a random byte: the validator refuses it.
``ibi_monitor``
    IBI histories that diverge, oscillate or stagnate (random noise, random lengths):
    never stopped as converged.
``missing_engine``
    a campaign of two sets launched with ``CGFLOW_GMX=/nonexistent``: every set's first
    Firework fizzles with a reason naming the missing command, and the launcher goes on
    to the next set.
``missing_lammps``
    a LAMMPS run with ``CGFLOW_LMP=/nonexistent``: an engine error naming the command.
``fuzz_submit``
    random campaign specs through ``cgflow campaign submit``: queued (exit 0) or a clear
    error naming the file (exit 2) with nothing written.

Writes ``results/faults.{json,md}`` (with date and machine load); the README's table
comes from there. ``tests/test_faults_short.py`` runs a short version in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]
import figures  # noqa: E402 - benchmarks/ is on the path now


@dataclass
class Tally:
    """Counts of one fault."""

    trials: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.notes) < 5:
            self.notes.append(text[:300])


@dataclass
class Env:
    """Where faults run: a scratch folder and a job database (a URI with credentials)."""

    tmp: Path
    uri: str
    n_db: int = 0

    def launchpad(self) -> tuple[Any, Path]:
        """A reset LaunchPad on a new database, and its launchpad file."""
        import yaml
        from fireworks import LaunchPad

        self.n_db += 1
        name = f"cgflow_faults_{os.getpid()}_{self.n_db}"
        lp = LaunchPad(host=self.uri, name=name, uri_mode=True, strm_lvl="ERROR")
        lp.reset("", require_password=False)
        f = self.tmp / f"lp{self.n_db}.yaml"
        f.write_text(yaml.safe_dump({"host": self.uri, "name": name, "uri_mode": True,
                                     "strm_lvl": "ERROR"}))
        return lp, f

    def drop(self, lp: Any) -> None:
        lp.connection.drop_database(lp.name)
        lp.connection.close()


# --- bad input and fuzzing ---------------------------------------------------------------


def bad_input(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Every case of the hostile-input table (``trials`` is ignored: all cases run)."""
    import test_bad_input as bad

    lp, lp_file = env.launchpad()
    t = Tally()
    t.clear_errors = t.tracebacks = t.writes = 0  # type: ignore[attr-defined]
    try:
        for case in bad.CASES:
            work = env.tmp / f"bad{t.trials}"
            work.mkdir()
            got = bad.run_case(case, bad.Ctx(tmp=work, lp=lp_file))
            t.trials += 1
            says = all((got.file in got.message) if s == "{file}" else (s in got.message)
                       for s in case.says)
            clear = got.clear and says
            t.clear_errors += clear  # type: ignore[attr-defined]
            t.tracebacks += got.traceback or "unexpected error" in got.message  # type: ignore
            t.writes += bool(got.writes)  # type: ignore[attr-defined]
            if clear and not got.writes:
                t.survived += 1
            else:
                t.lost += bool(got.writes)
                t.note(f"{case.id}: exit {got.status}: {got.message.strip()[:200]}")
            shutil.rmtree(work, ignore_errors=True)
    finally:
        for st in bad._STORES.values():
            st.close()
        bad._STORES.clear()
        env.drop(lp)
    return t


def _fuzz(trials: int, check: Callable[[Any], str], strategy: Any) -> Tally:
    """Run ``check`` on ``trials`` examples of ``strategy``; it returns "ok", "clear" or
    a failure note."""
    from hypothesis import HealthCheck, given, settings

    t = Tally()

    @settings(max_examples=trials, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(example: Any) -> None:
        t.trials += 1
        outcome = check(example)
        if outcome in ("ok", "clear"):
            t.survived += 1
        else:
            t.lost += 1
            t.note(outcome)

    run()
    return t


def spec_strategy() -> Any:
    """Random campaign specs: sensible keys with hostile values, and random keys."""
    from hypothesis import strategies as st

    values = st.recursive(
        st.none() | st.booleans() | st.integers(-10**30, 10**30) | st.floats()
        | st.text(max_size=20), lambda c: st.lists(c, max_size=3)
        | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
    keys = st.sampled_from(["name", "space", "n_sets", "seed", "sampling", "preset", "units",
                            "include_reference", "parameter_sets", "ibi", "cg_stage",
                            "threads", "description"]) | st.text(max_size=10)
    base = st.fixed_dictionaries({"name": st.just("fuzz")})
    return st.tuples(base, st.dictionaries(keys, values, max_size=5)).map(
        lambda ab: {**ab[0], **ab[1]})


def fuzz_specs(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random campaign specs: a valid spec or an InvalidInputError, nothing else."""
    import yaml

    from cgflow.errors import InvalidInputError
    from cgflow.orchestration.campaign import campaign_spec_from_text

    def check(spec: dict) -> str:
        try:
            text = yaml.safe_dump(spec)
        except Exception:  # noqa: BLE001 - not representable as YAML: not an input
            return "ok"
        if "n_sets" in spec and isinstance(spec["n_sets"], int) and spec["n_sets"] > 50:
            spec = {**spec, "n_sets": 50}  # keep each example quick
            text = yaml.safe_dump(spec)
        try:
            campaign_spec_from_text(text, "fuzz.yaml")
            return "ok"
        except InvalidInputError as exc:
            return "clear" if "fuzz.yaml" in str(exc) else f"unnamed source: {exc}"
        except Exception as exc:  # noqa: BLE001 - what the fuzzing looks for
            return f"{type(exc).__name__}: {exc} for {spec!r}"

    return _fuzz(trials, check, spec_strategy())


def fuzz_parameter_sets(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random parameter sets (the 19 fields with hostile values): a valid set or an
    InvalidInputError naming a field."""
    from hypothesis import strategies as st

    from cgflow.errors import InvalidInputError
    from cgflow.params import FIELDS, OPLSAA_REFERENCE, parameter_set_from_mapping

    ref = OPLSAA_REFERENCE.model_dump()
    value = (st.floats() | st.integers(-10**400, 10**400) | st.booleans() | st.none()
             | st.text(max_size=6) | st.lists(st.floats(), max_size=2))
    changes = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), value,
                              min_size=1, max_size=4)
    strategy = st.tuples(changes, st.sampled_from(["gromacs", "lammps"]))

    def check(example: tuple[dict, str]) -> str:
        ch, units = example
        values = {**ref, **ch}
        try:
            parameter_set_from_mapping(values, units_system=units, source="fuzz")
            return "ok"
        except InvalidInputError as exc:
            return "clear" if "field '" in str(exc) else f"no field named: {exc}"
        except Exception as exc:  # noqa: BLE001
            return f"{type(exc).__name__}: {exc} for {ch!r}"

    return _fuzz(trials, check, strategy)


def fuzz_submit(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Random campaign specs submitted through the command line: queued whole (exit 0)
    or refused with a clear error (exit 2) and nothing written."""
    import test_bad_input as bad
    import yaml
    from hypothesis import strategies as st

    from cgflow.cli.main import main as cgflow_main

    lp, lp_file = env.launchpad()
    n = {"i": 0}

    def check(spec: dict) -> str:
        if isinstance(spec.get("n_sets"), int) and spec["n_sets"] > 3:
            spec = {**spec, "n_sets": 3}  # keep each example quick
        try:
            text = yaml.safe_dump(spec)
        except Exception:  # noqa: BLE001 - not representable as YAML: not an input
            return "ok"
        n["i"] += 1
        f = env.tmp / f"fuzz{n['i']}.yaml"
        f.write_text(text)
        before = bad.db_snapshot(lp_file)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = cgflow_main(["campaign", "submit", str(f), "-l", str(lp_file)])
            except BaseException as exc:  # noqa: BLE001 - a traceback
                return f"{type(exc).__name__}: {exc} for {spec!r}"
        after = bad.db_snapshot(lp_file)
        if status == 2 and after == before and str(f) in err.getvalue():
            return "clear"
        if status == 0:
            return "ok"
        return f"exit {status}, writes {after != before}: {err.getvalue()[:200]}"

    try:
        return _fuzz(trials, check, spec_strategy() | st.just({"name": "fuzz-valid",
                                                                 "n_sets": 1}))
    finally:
        for store in bad._STORES.values():
            store.close()
        bad._STORES.clear()
        env.drop(lp)


# --- the database refuses a submission ---------------------------------------------------

_SPEC = "name: faults\nspace: narrow\nn_sets: 2\nseed: 5\npreset: tiny\ncg_stage: true\n"


def _campaign_state(lp: Any, campaign: str) -> tuple[int, int, int]:
    """(Fireworks of the campaign, its workflows, Fireworks its workflows name)."""
    fws = lp.fireworks.count_documents({"spec.campaign": campaign})
    wfs = list(lp.workflows.find({"metadata.cgflow_campaign": campaign}, {"nodes": 1}))
    named = sum(len(w["nodes"]) for w in wfs)
    return fws, len(wfs), named


def submit_refused(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """The k-th write of a submission fails; then the campaign is submitted again."""
    import pymongo.collection

    from cgflow.orchestration.submit import SubmitError, submit_campaign

    spec = env.tmp / "faults.yaml"
    spec.write_text(_SPEC)
    t = Tally()
    writes = ("insert_one", "insert_many", "update_one", "find_one_and_update",
              "delete_many", "replace_one", "find_one_and_replace")
    originals = {w: getattr(pymongo.collection.Collection, w) for w in writes}
    t.refused_submissions = 0  # type: ignore[attr-defined]
    for _ in range(trials):
        lp, lp_file = env.launchpad()
        k = int(rng.integers(1, 6))  # 4 writes to these collections per submission; 5: none fails
        calls = {"n": 0}

        def failing(name: str, k: int = k, calls: dict = calls) -> Callable[..., Any]:
            def call(self: Any, *a: Any, **kw: Any) -> Any:
                if self.name in ("fireworks", "workflows", "fw_id_assigner"):
                    calls["n"] += 1
                    if calls["n"] == k:
                        raise pymongo.errors.AutoReconnect(f"fault: write {k} refused")
                return originals[name](self, *a, **kw)
            return call

        t.trials += 1
        try:
            for w in writes:
                setattr(pymongo.collection.Collection, w, failing(w))
            try:
                submit_campaign(spec, lp_file)
                failed = False
            except SubmitError:
                failed = True
            except Exception as exc:  # noqa: BLE001 - a failure before any write
                failed = True
                t.note(f"write {k}: {type(exc).__name__}: {exc}")
        finally:
            for w, f in originals.items():
                setattr(pymongo.collection.Collection, w, f)
        t.refused_submissions += failed  # type: ignore[attr-defined]
        fws, wfs, named = _campaign_state(lp, "faults")
        whole = (fws, wfs) == (0, 0) or (wfs == 1 and fws == named)
        # a second submission must queue the campaign exactly once
        try:
            submit_campaign(spec, lp_file)
        except Exception as exc:  # noqa: BLE001
            if "already queued" not in str(exc):
                t.note(f"resubmit after write {k}: {type(exc).__name__}: {exc}")
        fws2, wfs2, named2 = _campaign_state(lp, "faults")
        if not whole or fws2 != named2:
            t.lost += 1
            t.note(f"write {k} (failed={failed}): {fws} Fireworks, {wfs} workflows")
        elif wfs2 > 1:
            t.duplicated += 1
        else:
            t.survived += 1
        env.drop(lp)
    return t


def submit_twice(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """The same campaign submitted 2-4 times in a row (as a user retrying would)."""
    from cgflow.orchestration.submit import AlreadyQueuedError, submit_campaign

    spec = env.tmp / "twice.yaml"
    spec.write_text(_SPEC)
    t = Tally()
    for _ in range(trials):
        lp, lp_file = env.launchpad()
        t.trials += 1
        for _ in range(int(rng.integers(2, 5))):
            with contextlib.suppress(AlreadyQueuedError):
                submit_campaign(spec, lp_file)
        fws, wfs, named = _campaign_state(lp, "faults")
        if wfs == 1 and fws == named:
            t.survived += 1
        elif wfs > 1:
            t.duplicated += 1
        else:
            t.lost += 1
        env.drop(lp)
    return t


# --- engine outputs and IBI decisions ----------------------------------------------------


def truncated_output(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A finished IBI run with one output cut at a random byte: refused."""
    from cgflow.jobs.lammps.job import LammpsOutputValidator

    src = REPO / "tests" / "data" / "lammps_failures" / "finished_ibi"
    t = Tally()
    assert not LammpsOutputValidator().check(str(src)), "the canned run must pass as it is"
    for i in range(trials):
        d = env.tmp / f"trunc{i}"
        shutil.copytree(src, d)
        name = str(rng.choice(["log.lammps", "rdf.dat", "pressure.dat"]))
        data = (d / name).read_bytes()
        cut = int(rng.integers(0, len(data)))
        (d / name).write_bytes(data[:cut])
        v = LammpsOutputValidator()
        t.trials += 1
        if v.check(str(d)):
            t.survived += 1
        else:
            t.lost += 1
            t.note(f"{name} cut at byte {cut} of {len(data)} was accepted")
        shutil.rmtree(d)
    return t


def _history(kind: str, n: int, rng: np.random.Generator) -> list[dict]:
    """An IBI history of ``n`` iterations that diverges, oscillates or stagnates."""
    d0 = float(rng.uniform(0.05, 0.3))
    out = []
    for i in range(n):
        if kind == "diverge":
            d = d0 * (1.0 + 0.3 * i) * float(rng.uniform(0.95, 1.05))
        elif kind == "oscillate":
            d = d0 * (1.0 + 0.5 * (i % 2)) * float(rng.uniform(0.97, 1.03))
        else:  # stagnate above the tolerance
            d = d0 * float(rng.uniform(0.99, 1.01))
        out.append({"iteration": i, "rdf_deviation": d,
                    "pressure_deviation_bar": float(rng.normal(0, 300)),
                    "update_factor": 1.0, "sampling_ps": 20.0})
    return out


def ibi_monitor(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Failing IBI histories, assessed after every iteration: never converged."""
    from cgflow.ibi.monitor import assess_history

    t = Tally()
    for _ in range(trials):
        kind = str(rng.choice(["diverge", "oscillate", "stagnate"]))
        hist = _history(kind, int(rng.integers(3, 40)), rng)
        t.trials += 1
        decisions = [assess_history(hist[:i]) for i in range(1, len(hist) + 1)]
        if any(dec.action == "converged" for dec in decisions):
            t.lost += 1
            t.note(f"{kind} history of {len(hist)} stopped as converged")
        else:
            t.survived += 1
    return t


def missing_engine(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """Two sets launched with a GROMACS command that does not exist."""
    cgflow = Path(sys.executable).with_name("cgflow")
    t = Tally()
    for i in range(trials):
        lp, lp_file = env.launchpad()
        spec = env.tmp / f"noengine{i}.yaml"
        spec.write_text(f"name: noengine{i}\nspace: narrow\nn_sets: 1\nseed: {i}\n"
                        "preset: tiny\nthreads: 1\n")
        run_env = dict(os.environ, CGFLOW_GMX="/nonexistent/gmx",
                       CGFLOW_WORK_ROOT=str(env.tmp / f"runs{i}"))
        subprocess.run([str(cgflow), "campaign", "submit", str(spec), "-l", str(lp_file)],  # noqa: S603
                       check=True, env=run_env, capture_output=True)
        proc = subprocess.run([str(cgflow), "launch", "-l", str(lp_file)],  # noqa: S603
                              env=run_env, capture_output=True, text=True, timeout=600)
        t.trials += 1
        firsts = list(lp.fireworks.find({"spec.campaign": f"noengine{i}",
                                         "spec.cgflow_stage": "aa-build"}))
        reasons = []
        for fw in firsts:
            launch = lp.launches.find_one({"fw_id": fw["fw_id"]}, sort=[("launch_id", -1)])
            exc = ((launch or {}).get("action") or {}).get("stored_data", {}).get(
                "_exception", {})
            reasons.append(str(exc.get("_stacktrace", "")))
        n_launches = [lp.launches.count_documents({"fw_id": fw["fw_id"]}) for fw in firsts]
        named = all("/nonexistent/gmx" in r for r in reasons)
        states = {fw["state"] for fw in firsts}
        if len(firsts) == 2 and states == {"FIZZLED"} and named:
            t.survived += 1
            if max(n_launches) > 1:
                t.duplicated += 1
        else:
            t.lost += 1
            t.note(f"states {states}, reasons name the command: {named}, launch exit "
                   f"{proc.returncode}: {proc.stdout[-200:]} {reasons[:1]}")
        env.drop(lp)
    return t


def missing_lammps(trials: int, rng: np.random.Generator, env: Env) -> Tally:
    """A LAMMPS run of the canned IBI inputs with ``CGFLOW_LMP=/nonexistent/lmp``: an
    EngineError naming the command (what a CG Firework fizzles with), no output written."""
    from cgflow.errors import EngineError
    from cgflow.jobs.lammps.job import run_lammps

    src = REPO / "tests" / "data" / "lammps_failures" / "finished_ibi"
    t = Tally()
    saved = os.environ.get("CGFLOW_LMP")
    os.environ["CGFLOW_LMP"] = "/nonexistent/lmp"
    try:
        for i in range(trials):
            d = env.tmp / f"nolmp{i}"
            shutil.copytree(src, d, ignore=shutil.ignore_patterns(
                "log.lammps", "rdf.dat", "pressure.dat", "final.data", "lammps.out"))
            t.trials += 1
            try:
                run_lammps(d, resume=False)
                t.lost += 1
                t.note("run_lammps returned without LAMMPS")
            except EngineError as exc:
                if "/nonexistent/lmp" in str(exc) and not (d / "log.lammps").exists():
                    t.survived += 1
                else:
                    t.lost += 1
                    t.note(str(exc))
    finally:
        if saved is None:
            os.environ.pop("CGFLOW_LMP", None)
        else:
            os.environ["CGFLOW_LMP"] = saved
    return t


FAULTS: dict[str, tuple[Callable[[int, np.random.Generator, Env], Tally], int]] = {
    "bad_input": (bad_input, 1),
    "fuzz_specs": (fuzz_specs, 300),
    "fuzz_parameter_sets": (fuzz_parameter_sets, 300),
    "submit_refused": (submit_refused, 30),
    "submit_twice": (submit_twice, 10),
    "truncated_output": (truncated_output, 100),
    "ibi_monitor": (ibi_monitor, 200),
    "missing_engine": (missing_engine, 2),
    "missing_lammps": (missing_lammps, 3),
    "fuzz_submit": (fuzz_submit, 40),
}


@contextlib.contextmanager
def scratch_database(uri: str | None):
    """``uri``, else an embedded server of its own in a temporary home (stopped after)."""
    if uri:
        yield uri
        return
    from conftest import free_tcp_port

    from cgflow.db.server import EmbeddedServer

    home = Path(tempfile.mkdtemp(prefix="cgflow-faults-db-"))
    server = EmbeddedServer(home=home, port=free_tcp_port(), log_level="WARNING")
    server.start(wait_s=60)
    try:
        yield server.client_uri() if hasattr(server, "client_uri") else server.uri
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_faults(names: list[str], trials: int | None, seed: int, uri: str | None
               ) -> dict[str, dict[str, Any]]:
    """Run the faults ``names``; returns name -> tally (as a dict)."""
    rng = np.random.default_rng(seed)
    out = {}
    with tempfile.TemporaryDirectory(prefix="cgflow-faults-") as tmp, \
            scratch_database(uri) as db_uri:
        for name in names:
            fn, default = FAULTS[name]
            work = Path(tmp) / name
            work.mkdir()
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                tally = fn(trials or default, rng, Env(tmp=work, uri=db_uri))
            out[name] = {**vars(tally), "wall_s": round(time.perf_counter() - t0, 1)}
            print(json.dumps({name: out[name]}), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=sorted(FAULTS), default=list(FAULTS))
    ap.add_argument("--trials", type=int, help="trials per fault (default: each fault's own)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--uri", help="a MongoDB URI to use instead of an embedded server")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "faults.json")
    args = ap.parse_args()
    from _common import cpu_model, load_average

    load_before = load_average()
    results = run_faults(args.only, args.trials, args.seed, args.uri)
    doc = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "seed": args.seed,
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                       "load_before": load_before, "load_after": load_average()},
           "faults": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    write_markdown(doc, args.out.with_suffix(".md"))
    figures.draw("faults", args.out)
    print(args.out.with_suffix(".md").read_text())


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    """The Markdown summary of a result document of :func:`main`."""
    results, m = doc["faults"], doc["machine"]
    lines = ["# Fault injection (`benchmarks/faults.py`)", "",
             f"{doc['date']}, seed {doc['seed']}, {m['cpu']}, {m['cores']} cores, load "
             f"{m['load_before']} before, {m['load_after']} after.", "",
             "| fault | trials | survived | lost | duplicated | wall s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['trials']} | {r['survived']} | {r['lost']} | "
                     f"{r['duplicated']} | {r['wall_s']} |")
    if "bad_input" in results:
        r = results["bad_input"]
        lines += ["", "Bad input: "
                  f"{r['trials']} inputs tried, {r['clear_errors']} clear errors, "
                  f"{r['tracebacks']} tracebacks, {r['writes']} with writes."]
    if "submit_refused" in results:
        r = results["submit_refused"]
        lines += ["", f"Submissions refused by the injected fault: {r['refused_submissions']} "
                  f"of {r['trials']} (in the others the failing write came after the "
                  "submission's last one: a control)."]
    for name, r in results.items():
        for note in r["notes"]:
            lines.append(f"- {name}: {note}")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
