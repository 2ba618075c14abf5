#!/usr/bin/env bash
# Set up (if needed) and run the demo campaign end to end on the embedded job database.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/cgflow demo "$@"
