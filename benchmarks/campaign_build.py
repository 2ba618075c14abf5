"""Memory and time of ``cgflow campaign build`` against the number of sampled sets.

Runs ``cgflow campaign build SPEC -o wf.yaml`` as its own process for each ``n_sets``
(a spec of the narrow space with the CG stage, the largest workflow a spec makes: six
Fireworks per set and a final training Firework), and records the wall time, the peak
resident memory of that process (``os.wait4``), the size of the file written, the number
of Fireworks and the BSON size of the workflow document (MongoDB refuses documents of
more than 16 MiB). A build refused with a clear message (exit status 2) is recorded as
such.

    .venv/bin/python benchmarks/campaign_build.py                     # 100, 1000, 10000
    .venv/bin/python benchmarks/campaign_build.py --sizes 100 20000

Writes ``results/campaign_build.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import figures
from _common import cpu_model, home_env, load_average

HERE = Path(__file__).resolve().parent
CGFLOW = Path(sys.executable).with_name("cgflow")


def workflow_bson_bytes(spec_file: Path) -> tuple[int, int]:
    """(Fireworks, BSON bytes of the workflow document) of a spec's workflow, built here
    as ``cgflow campaign build`` builds it (reading its YAML back would take longer than
    the build)."""
    import bson

    from cgflow.orchestration.submit import load_spec
    from cgflow.orchestration.workflows import campaign_workflow

    wf = campaign_workflow(*load_spec(spec_file))
    return len(wf.fws), len(bson.encode(wf.to_db_dict()))


def build_once(n_sets: int, work: Path) -> dict:
    """One ``cgflow campaign build`` of ``n_sets`` sets in its own process."""
    spec = work / f"bench{n_sets}.yaml"
    spec.write_text(f"name: bench{n_sets}\nspace: narrow\nn_sets: {n_sets}\nseed: 1\n"
                    "preset: tiny\ncg_stage: true\n")
    out = work / f"wf{n_sets}.yaml"
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(CGFLOW), "campaign", "build", str(spec), "-o", str(out)],  # noqa: S603
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=home_env(work / "home"))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    row = {"n_sets": n_sets, "exit_status": os.waitstatus_to_exitcode(status),
           "wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
           "message": (stdout or stderr).strip().splitlines()[-1][:300] if (stdout or stderr)
           else ""}
    if row["exit_status"] == 0:
        row["file_mib"] = round(out.stat().st_size / 2**20, 2)
        row["fireworks"], wf_bytes = workflow_bson_bytes(spec)
        row["workflow_document_mib"] = round(wf_bytes / 2**20, 2)
        out.unlink()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "campaign_build.json")
    args = ap.parse_args()
    load_before = load_average()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cgflow-build-bench-") as tmp:
        for n in args.sizes:
            row = build_once(n, Path(tmp))
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
              "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                          "load_before": load_before, "load_after": load_average()},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# `cgflow campaign build` against n_sets", "",
             f"{result['date']}, {result['machine']['cpu']}, {result['machine']['cores']} "
             f"cores, load {load_before} before, {result['machine']['load_after']} after. "
             "Narrow space, CG stage on (6 Fireworks per set + training).", "",
             "| n_sets | exit | wall s | peak RSS MiB | Fireworks | file MiB | "
             "workflow document MiB (limit 16) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['n_sets']} | {r['exit_status']} | {r['wall_s']} | "
                     f"{r['peak_rss_mib']} | {r.get('fireworks', '-')} | "
                     f"{r.get('file_mib', '-')} | {r.get('workflow_document_mib', '-')} |")
    refused = [r for r in rows if r["exit_status"] != 0]
    for r in refused:
        lines.append(f"\nn_sets = {r['n_sets']}: {r['message']}")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    figures.draw("campaign_build", args.out)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
