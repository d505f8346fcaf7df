#!/usr/bin/env bash
# Creates the two virtualenvs the project needs and keeps them in sync with uv.lock.
#   .venv          training, transformer, tests (kserve 0.21 SDK)
#   .venv-mlserver the reference v2 predictor (MLServer + mlserver-sklearn); it cannot share
#                  a venv with kserve 0.21 (starlette vs fastapi pins).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "venv: installing uv from PyPI" >&2
  python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
fi

# The images target 3.12; fall back to any 3.12/3.11 the machine has.
pick_python() {
  local candidate
  for candidate in "${CHURN_PYTHON:-}" python3.12 "$HOME/.pyenv/versions/3.12"*/bin/python3.12 python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] < (3, 13))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
  echo "venv: no Python 3.11 or 3.12 found (set CHURN_PYTHON)" >&2
  exit 1
}
PY="$(pick_python)"

uv sync --quiet --frozen --all-extras --python "$PY"

# The same hash-locked requirements as the cluster's MLServer runtime image (hack/images/lock.sh).
runtime_lock=hack/runtime/requirements.txt
if [[ ! -x .venv-mlserver/bin/mlserver ]] || [[ $runtime_lock -nt .venv-mlserver/bin/mlserver ]]; then
  echo "venv: creating .venv-mlserver (MLServer reference predictor)" >&2
  uv venv --quiet --allow-existing --python "$PY" .venv-mlserver
  uv pip install --quiet --require-hashes --python .venv-mlserver/bin/python -r "$runtime_lock"
  touch .venv-mlserver/bin/mlserver
fi
