#!/usr/bin/env bash
# Install what cgflow needs on a Debian machine, idempotently:
#   - Debian packages: gromacs, lammps (and votca when CGFLOW_WITH_VOTCA=1, for benchmarks)
#   - a virtual environment in .venv with torch==2.13.0 (CPU) and cgflow[embedded,dev]
# Re-running on a machine that is already set up takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

need_apt=()
command -v gmx >/dev/null 2>&1 || need_apt+=(gromacs)
command -v lmp >/dev/null 2>&1 || need_apt+=(lammps)
if [ "${CGFLOW_WITH_VOTCA:-0}" = "1" ]; then
  command -v csg_inverse >/dev/null 2>&1 || need_apt+=(votca)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating virtual environment .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.cgflow-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing Python packages into .venv (torch 2.13.0 CPU first, pinned)"
  # pip's and setuptools' own chatter goes to a log, shown only when an install fails
  log=.venv/pip-install.log
  : > "$log"
  pipq() { .venv/bin/pip install -q "$@" >>"$log" 2>&1 || { cat "$log"; echo "[setup] pip install $* failed (log: $log)" >&2; exit 1; }; }
  pipq --upgrade pip
  # torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
  pipq torch==2.13.0
  pipq -e ".[embedded,dev]"
  .venv/bin/python -c "import torch, fireworks, custodian, MDAnalysis, cgflow; assert torch.__version__.startswith('2.13.0'), torch.__version__"
  echo "$want" > "$stamp"
fi
