#!/usr/bin/env bash
# Set up (if needed) and run cgflow's test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -ra --durations=15 "$@"
