#!/usr/bin/env bash
# Creates the two virtualenvs the project needs and keeps them in sync with uv.lock.
#   .venv               training, transformer, tests (kserve 0.21 SDK)
#   .venv-sklearnserver KServe's kserve-sklearnserver runtime (kserve 0.20, scikit-learn 1.5), locked
#                       exactly as its image is (hack/images/kserve-sklearnserver/requirements.txt)
#   .venv-mlserver      MLServer, a peer in the serving benchmark only (`venv.sh mlserver`)
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

# A venv from a hash-locked requirements file, rebuilt when the lock is newer than its marker.
locked_venv() {
  local venv="$1" lock="$2" what="$3" marker="$1/.lock-installed"
  if [[ -f "$marker" ]] && [[ ! "$lock" -nt "$marker" ]]; then
    return
  fi
  echo "venv: creating $venv ($what)" >&2
  uv venv --quiet --allow-existing --python "$PY" "$venv"
  # The locks are complete (uv pip compile); --no-deps keeps hash mode off extras.
  uv pip install --quiet --require-hashes --no-deps --python "$venv/bin/python" -r "$lock"
  touch "$marker"
}

locked_venv .venv-sklearnserver hack/images/kserve-sklearnserver/requirements.txt "kserve-sklearnserver runtime"
if [[ "${1:-}" == mlserver ]]; then
  locked_venv .venv-mlserver hack/runtime/requirements.txt "MLServer, a benchmark peer"
fi
