#!/usr/bin/env bash
# Every check of the project, as CI and the pre-commit hooks run them: lint, format, layers, types, tests.
# Usage: bash scripts/check.sh [--no-tests] [pytest arguments]
#   (after bash scripts/setup.sh --dev; VENV=DIR uses another virtual environment than .venv; the tests run in
#   TEST_WORKERS pytest-xdist processes, default 2, the cores of the machine CI runs on; TEST_WORKERS=0: one process)
# Each check runs even when an earlier one failed; the script fails if any did and names them.
set -uo pipefail
cd "$(dirname "$0")/.."
bin="${VENV:-.venv}/bin"
tests=1
if [ "${1:-}" = "--no-tests" ]; then
  tests=0
  shift
fi
failed=()
check() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" || failed+=("$name")
}
check "ruff check" "$bin/ruff" check .
check "ruff format" "$bin/ruff" format --check .
check "lint-imports" env PYTHONPATH=src "$bin/lint-imports"
check "mypy" "$bin/mypy"
[ "$tests" = 1 ] && check "pytest" "$bin/python" -m pytest -q -n "${TEST_WORKERS:-2}" "$@"
if [ ${#failed[@]} -gt 0 ]; then
  echo "check.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "check.sh: all checks passed"
