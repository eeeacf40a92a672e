#!/usr/bin/env bash
# Run the test suite. SQLite by default; set LOAXA_TEST_DATABASE_URL to a PostgreSQL server
# URL (e.g. postgresql://postgres@127.0.0.1:5432/test) to run it there in a fresh database.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
