#!/usr/bin/env bash
# Installs what the serving benchmark needs beyond `make venv`, idempotently, then prints
# KEY=VALUE lines for bench/serving.py (progress goes to stderr):
#   wrk     the load generator, from Debian (apt-get; needs root or sudo the first time)
#   py-spy  the sampling profiler, from PyPI, in $CHURN_CACHE/bench keyed by its version
set -euo pipefail
cd "$(dirname "$0")/.."

CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
# WRK_DEBIAN_VERSION, PY_SPY_VERSION
# shellcheck source=hack/versions.env
source hack/versions.env

log() { echo "[bench tools] $*" >&2; }

as_root() {
	if ((EUID == 0)); then "$@"; else sudo "$@"; fi
}

installed_wrk_version() { dpkg-query --show --showformat '${Version}' wrk 2>/dev/null || true; }

if [[ "$(installed_wrk_version)" != "$WRK_DEBIAN_VERSION" ]]; then
	log "installing wrk $WRK_DEBIAN_VERSION from Debian"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -qq --no-install-recommends "wrk=$WRK_DEBIAN_VERSION" >&2; then
		as_root apt-get update -qq >&2
		as_root apt-get install -y -qq --no-install-recommends "wrk=$WRK_DEBIAN_VERSION" >&2
	fi
fi

PY_SPY_DIR="$CHURN_CACHE/bench/py-spy-$PY_SPY_VERSION"
if [[ ! -x "$PY_SPY_DIR/bin/py-spy" ]]; then
	log "installing py-spy $PY_SPY_VERSION into $PY_SPY_DIR"
	export PATH="$HOME/.local/bin:$PATH"
	rm -rf "$PY_SPY_DIR.tmp"
	uv venv --quiet --python .venv/bin/python "$PY_SPY_DIR.tmp" >&2
	uv pip install --quiet --python "$PY_SPY_DIR.tmp/bin/python" "py-spy==$PY_SPY_VERSION" >&2
	rm -rf "$PY_SPY_DIR"
	mv "$PY_SPY_DIR.tmp" "$PY_SPY_DIR"
fi

echo "WRK=$(command -v wrk)"
echo "WRK_VERSION=$WRK_DEBIAN_VERSION"
echo "PY_SPY=$PY_SPY_DIR/bin/py-spy"
echo "PY_SPY_VERSION=$PY_SPY_VERSION"
