#!/usr/bin/env bash
# Everything CI checks: lint, types, import layers, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/system-deps.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"
ruff check .
echo "== mypy --strict"
mypy -p modelwire
echo "== import layers (import-linter)"
lint-imports
echo "== pytest"
pytest "$@"
