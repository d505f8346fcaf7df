#!/usr/bin/env bash
# Prints the path of promtool, building it from its Go module into $CHURN_CACHE/bin on first use.
# The chart's alert tests run `promtool check rules` and `promtool test rules`.
# Pinned apart from PROMETHEUS_VERSION: Prometheus 3.13's module carries replace directives, so
# `go install` refuses it; 3.16 installs cleanly and reads the same rule language.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=SCRIPTDIR/../versions.env
source "$HACK_DIR/versions.env"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
# Prometheus v3.16.0 is published as the Go module version v0.316.0.
PROMTOOL_MODULE_VERSION="${PROMTOOL_MODULE_VERSION:-v0.316.0}"
promtool="$CHURN_CACHE/bin/promtool-$PROMTOOL_MODULE_VERSION"

if [[ ! -x "$promtool" ]]; then
	echo "promtool: building $PROMTOOL_MODULE_VERSION from the Go module proxy (10-17 min cold, once)" >&2
	gobin="$(mktemp -d)"
	trap 'rm -rf "$gobin"' EXIT
	GOBIN="$gobin" GOMODCACHE="$CHURN_CACHE/go/mod" GOCACHE="$CHURN_CACHE/go/build" CGO_ENABLED=0 \
		GOFLAGS="-mod=mod -trimpath -buildvcs=false" \
		nice -n 10 go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_MODULE_VERSION" >&2
	mkdir -p "$CHURN_CACHE/bin"
	install -m 0755 "$gobin/promtool" "$promtool"
fi
echo "$promtool"
