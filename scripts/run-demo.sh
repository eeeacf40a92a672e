#!/usr/bin/env bash
# Set everything up and serve the demo commune on the embedded default (SQLite in ./var):
# system packages, virtual environment, migrations, demo data, then every process the commune
# needs (`loaxa up`: the console and the API on port 8000, the scheduler, and the stream hub on
# port 8001), stopped together.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export LOAXA_DATA_DIR=${LOAXA_DATA_DIR:-./var}
.venv/bin/loaxa migrate
.venv/bin/loaxa seed-demo --sample-history  # made-up history: for demonstrations only
echo "[loaxa] serving on http://${LOAXA_HOST:-127.0.0.1}:${LOAXA_PORT:-8000} (console at /, API docs at /docs)"
exec .venv/bin/loaxa up --host "${LOAXA_HOST:-127.0.0.1}" --port "${LOAXA_PORT:-8000}"
