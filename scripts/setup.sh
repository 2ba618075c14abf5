#!/usr/bin/env bash
# Install what cgflow needs on a Debian machine, idempotently:
#   - Debian packages: gromacs, lammps (and votca when CGFLOW_WITH_VOTCA=1, for benchmarks)
#   - optional Debian packages: chromium (the report's browser test; CGFLOW_WITH_BROWSER=0
#     leaves it out); an optional package that cannot be installed only prints a line
#   - a virtual environment in .venv with torch==2.13.0 (CPU) and cgflow[embedded,dev]
# Re-running on a machine that is already set up takes a second or two. apt's and pip's
# own output goes to logs, shown only when an install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

need_apt=()
command -v gmx >/dev/null 2>&1 || need_apt+=(gromacs)
command -v lmp >/dev/null 2>&1 || need_apt+=(lammps)
if [ "${CGFLOW_WITH_VOTCA:-0}" = "1" ]; then
  command -v csg_inverse >/dev/null 2>&1 || need_apt+=(votca)
fi
optional_apt=()
if [ "${CGFLOW_WITH_BROWSER:-1}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
    || optional_apt+=(chromium)
fi
if [ $((${#need_apt[@]} + ${#optional_apt[@]})) -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  aptlog=$(mktemp -t cgflow-apt.XXXXXX)
  aptq() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get -y -q "$@" >>"$aptlog" 2>&1; }
  all_apt=("${need_apt[@]}" "${optional_apt[@]}")
  echo "[setup] installing Debian packages: ${all_apt[*]}"
  aptq update || true  # a failing mirror is reported by the install that needs it
  if [ ${#need_apt[@]} -gt 0 ] && ! aptq install "${need_apt[@]}"; then
    cat "$aptlog"
    echo "[setup] apt-get install ${need_apt[*]} failed (log: $aptlog)" >&2
    exit 1
  fi
  keep_log=0
  for pkg in "${optional_apt[@]}"; do
    if ! aptq install "$pkg"; then
      echo "[setup] optional Debian package $pkg not installed (log: $aptlog)"
      keep_log=1
    fi
  done
  [ "$keep_log" = 1 ] || rm -f "$aptlog"
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
