"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``, so
this folder is on ``sys.path``)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def child_cpu_s() -> float:
    """User + system CPU seconds of waited-for child processes so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def self_cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for children so far."""
    return self_cpu_s() + child_cpu_s()


def cpu_model() -> str | None:
    """The CPU model from /proc/cpuinfo (or platform's guess; None if unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


@contextlib.contextmanager
def data_folder(folders: Sequence[Path]) -> Iterator[Path]:
    """One export folder for the data of ``folders`` (exports of campaigns with the same
    preset): the folder itself when there is one, else their merge
    (:func:`cgflow.stages.dataset.merge_exports`) in a temporary folder, removed on exit."""
    if len(folders) == 1:
        yield Path(folders[0])
        return
    from cgflow.stages.dataset import merge_exports

    folder = Path(tempfile.mkdtemp(prefix="cgflow_bench_data_"))
    try:
        merge_exports(list(folders), folder, name="merged")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def data_label(folders: Sequence[Path], root: Path) -> str:
    """The folders as the benchmarks print them: paths relative to ``root``, joined by +."""
    out = []
    for f in folders:
        f = Path(f).resolve()
        out.append(str(f.relative_to(root)) if f.is_relative_to(root) else str(f))
    return " + ".join(out)


def home_env(home: Path) -> dict[str, str]:
    """This environment pointed at a private cgflow home (never the user's ~/.cgflow)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FW_CONFIG_FILE", "CGFLOW_DB_FILE", "CGFLOW_WORK_ROOT")}
    env["CGFLOW_HOME"] = str(home)
    env["CGFLOW_WORK_ROOT"] = str(home / "runs")
    return env


def write_results(out: Path, results: dict, markdown: str, figure: str | None = None) -> None:
    """Write a benchmark's results: ``out`` (JSON), the Markdown summary beside it
    (``.md``) and, if ``figure`` names one in ``figures.py``, its plot (``.png``); then
    print the summary."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown)
    if figure is not None:
        import figures

        figures.draw(figure, out)
    print()
    print(markdown)
